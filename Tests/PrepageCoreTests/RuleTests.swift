import PrepageCore
import Testing

/// One test per rule of `docs/dp.md`, each from a fresh state and hand-computed expectations.
@Suite struct RuleTests {
    /// A state with `max_pages = 64` unless told otherwise.
    func dp(
        _ policy: PolicyName = .dp, maxPages: Int = 64, k: Int = 5, initial: Int? = nil,
        gap: Int = 0, memory: Int = 0, streams: Int = 64
    ) throws -> Prepager {
        try Prepager(
            config: PrepageConfig(
                policy: policy, maxPages: maxPages, k: k, initialPages: initial, gap: gap,
                memoryPages: memory, maxStreams: streams))
    }

    func expect(
        _ d: Decision, _ start: Int, _ count: Int, _ outcome: Outcome, ntest: Int, nmin: Int = 1, nmax: Int = 64,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(
            d == Decision(start: start, count: count, outcome: outcome, ntest: ntest, nmin: nmin, nmax: nmax),
            sourceLocation: sourceLocation)
    }

    @Test func firstFaultUsesInitialPages() throws {
        var s = try dp(initial: 8)
        expect(try s.decide(page: 100, stream: 0), 100, 8, .first, ntest: 8)
    }

    @Test func initialPagesIsClampedIntoTheRange() throws {
        var s = try dp(initial: 10_000)
        expect(try s.decide(page: 0, stream: 0), 0, 64, .first, ntest: 64)
        #expect(s.config.initialPages == 64)
    }

    @Test func repeatAnswersTheSameWindowAndChangesNothing() throws {
        var s = try dp(initial: 8)
        _ = try s.decide(page: 100, stream: 0)
        let before = s.snapshot
        expect(try s.decide(page: 103, stream: 0), 100, 8, .repeat, ntest: 8)
        #expect(s.snapshot == before)
    }

    @Test func upwardContinuationIsTooSmall() throws {
        var s = try dp()
        _ = try s.decide(page: 100, stream: 0)
        // inc = max(1, (64 − 1) / (2 × 1)) = 31 (eq. 4); NTest = 32 (eq. 5).
        expect(try s.decide(page: 101, stream: 0), 101, 31, .smaller, ntest: 32)
        #expect(s.snapshot.minRecord == [1])
    }

    @Test func newCaseAfterContinuationIsLargeEnough() throws {
        var s = try dp()
        _ = try s.decide(page: 100, stream: 0)
        _ = try s.decide(page: 101, stream: 0)
        // t = 32 − (32 − 1) / 2 = 17 (eq. 6); no MaxRecord push: the case needed two windows.
        expect(try s.decide(page: 5_000, stream: 0), 5_000, 17, .larger, ntest: 17)
        #expect(s.snapshot.maxRecord == [])
    }

    @Test func caseEndingInItsFirstWindowPushesOntoMaxRecord() throws {
        var s = try dp(initial: 8)
        _ = try s.decide(page: 100, stream: 0)
        _ = try s.decide(page: 900, stream: 0)
        #expect(s.snapshot.maxRecord == [8])
    }

    @Test func reverseReplacesTheFirstWindow() throws {
        var s = try dp(initial: 8)
        _ = try s.decide(page: 100, stream: 0)  // [100, 108) upward
        expect(try s.decide(page: 99, stream: 0), 92, 8, .reverse, ntest: 8)
        #expect(s.snapshot.minRecord == [])
        #expect(s.snapshot.streams.first?.up == false)
    }

    @Test func downwardContinuationGrowsDownward() throws {
        var s = try dp(initial: 8)
        _ = try s.decide(page: 100, stream: 0)
        _ = try s.decide(page: 99, stream: 0)  // reverse: [92, 100)
        // inc = (64 − 8) / 2 = 28, placed downward at 91: [64, 92).
        expect(try s.decide(page: 91, stream: 0), 64, 28, .smaller, ntest: 36)
        #expect(s.snapshot.minRecord == [8])
    }

    @Test func continuationOppositeToDirectionAfterFirstWindowIsNotReverse() throws {
        var s = try dp(initial: 8)
        _ = try s.decide(page: 100, stream: 0)  // [100, 108)
        _ = try s.decide(page: 108, stream: 0)  // smaller, [108, 136)
        // Page 107 is lo − 1 of the last window: a downward continuation. The case has
        // had two windows already, so it is step 2 (placed downward), not a reverse.
        let d = try s.decide(page: 107, stream: 0)
        #expect(d.outcome == .smaller)
        #expect(d.start + d.count == 108)
    }

    @Test func gapWidensContinuation() throws {
        var s = try dp(initial: 8, gap: 3)
        _ = try s.decide(page: 100, stream: 0)  // [100, 108)
        #expect(try s.decide(page: 111, stream: 0).outcome == .smaller)  // hi + gap
        var t = try dp(initial: 8, gap: 3)
        _ = try t.decide(page: 100, stream: 0)
        #expect(try t.decide(page: 112, stream: 0).outcome == .larger)  // one past hi + gap
    }

    @Test func gapWidensDownwardContinuation() throws {
        var s = try dp(initial: 8, gap: 2)
        _ = try s.decide(page: 100, stream: 0)
        #expect(try s.decide(page: 97, stream: 0).outcome == .reverse)  // lo − 1 − gap
    }

    @Test func windowIsClippedAtZero() throws {
        var s = try dp(initial: 8)
        _ = try s.decide(page: 3, stream: 0)  // [3, 11)
        expect(try s.decide(page: 2, stream: 0), 0, 3, .reverse, ntest: 8)
    }

    @Test func windowIsClippedAtMemoryPages() throws {
        var s = try dp(initial: 8, memory: 105)
        expect(try s.decide(page: 100, stream: 0), 100, 5, .first, ntest: 8)
    }

    @Test func faultAtOrPastMemoryPagesIsRejectedAndChangesNothing() throws {
        var s = try dp(memory: 105)
        _ = try s.decide(page: 10, stream: 0)
        let before = s.snapshot
        #expect(throws: FaultError.beyondMemory(page: 105, memoryPages: 105)) {
            try s.decide(page: 105, stream: 7)
        }
        #expect(s.snapshot == before)
    }

    @Test func negativePageIsRejected() throws {
        var s = try dp()
        #expect(throws: FaultError.negativePage(-1)) { try s.decide(page: -1, stream: 0) }
        #expect(s.snapshot.streams.isEmpty)
    }

    @Test func caseThatOutgrowsTheRangeRampsAtMaxPages() throws {
        var s = try dp(initial: 64)
        _ = try s.decide(page: 0, stream: 0)  // [0, 64), NTest = NMax = 64
        expect(try s.decide(page: 64, stream: 0), 64, 64, .smaller, ntest: 128)
        expect(try s.decide(page: 128, stream: 0), 128, 64, .smaller, ntest: 192)
    }

    @Test func rampDoublesBelowMaxPages() throws {
        // k = 1: one case ending in its first window closes NMax at once.
        var s = try dp(k: 1)
        _ = try s.decide(page: 1_000, stream: 0)
        expect(try s.decide(page: 5_000, stream: 0), 5_000, 1, .larger, ntest: 1, nmax: 1)
        expect(try s.decide(page: 5_001, stream: 0), 5_001, 1, .smaller, ntest: 2, nmax: 1)
        expect(try s.decide(page: 5_002, stream: 0), 5_002, 2, .smaller, ntest: 4, nmax: 1)
        expect(try s.decide(page: 5_004, stream: 0), 5_004, 4, .smaller, ntest: 8, nmax: 1)
    }

    @Test func boundsMoveOnlyWhenTheRecordIsFull() throws {
        var s = try dp(k: 2)
        _ = try s.decide(page: 1_000, stream: 0)
        #expect(try s.decide(page: 2_000, stream: 0).nmax == 64)  // MaxRecord [1]: not full
        #expect(try s.decide(page: 3_000, stream: 0).nmax == 1)  // MaxRecord [1, 1]: full
    }

    @Test func floorRisingAboveCeilingReopensCeiling() throws {
        var s = try dp(k: 1)
        _ = try s.decide(page: 1_000, stream: 1)
        _ = try s.decide(page: 1_001, stream: 1)  // smaller, NTest 32
        _ = try s.decide(page: 50_000, stream: 2)  // first
        _ = try s.decide(page: 2_000, stream: 1)  // larger, NTest = CaseGuess = 17
        _ = try s.decide(page: 60_000, stream: 2)  // larger, MaxRecord [1] → NMax 1
        // Stream 1 continues: MinRecord [17] → NMin 17 > NMax 1 → NMax = 64, MaxRecord emptied.
        expect(try s.decide(page: 2_017, stream: 1), 2_017, 23, .smaller, ntest: 40, nmin: 17, nmax: 64)
        #expect(s.snapshot.maxRecord == [])
    }

    @Test func ceilingFallingBelowFloorReopensFloor() throws {
        var s = try dp(k: 1)
        _ = try s.decide(page: 1_000, stream: 1)  // first, CaseGuess 1
        _ = try s.decide(page: 9_000, stream: 2)
        _ = try s.decide(page: 9_001, stream: 2)  // smaller, NTest 32
        _ = try s.decide(page: 20_000, stream: 2)  // larger, CaseGuess 17
        _ = try s.decide(page: 20_017, stream: 2)  // smaller: MinRecord [17] → NMin 17
        // Stream 1's case ends in its first window: MaxRecord [1] → NMax 1 < NMin → NMin = 1, MinRecord emptied.
        expect(try s.decide(page: 3_000, stream: 1), 3_000, 1, .larger, ntest: 1, nmin: 1, nmax: 1)
        #expect(s.snapshot.minRecord == [])
    }

    @Test func literalPolicyPushesEveryContinuation() throws {
        var literal = try dp(.dpLiteral, k: 2)
        var fixed = try dp(.dp, k: 2)
        for page in [100, 101, 132] {
            _ = try literal.decide(page: page, stream: 0)
            _ = try fixed.decide(page: page, stream: 0)
        }
        #expect(literal.snapshot.minRecord == [1, 32])  // NTest as each continuation arrived
        #expect(fixed.snapshot.minRecord == [1])  // one record per case: its first guess
    }

    @Test func literalPolicyMovesBoundsOnHitCount() throws {
        var s = try dp(.dpLiteral, k: 2)
        _ = try s.decide(page: 100, stream: 0)
        _ = try s.decide(page: 101, stream: 0)  // MinHit 1
        let d = try s.decide(page: 132, stream: 0)  // MinHit 2 ≥ k → NMin = min(1, 32)
        #expect(d.nmin == 1)
        #expect(d.ntest == 40)  // inc = (64 − 32) / (2 × 2) = 8
    }

    @Test func interleavedStreamsEachContinueTheirOwnCase() throws {
        var s = try dp()
        _ = try s.decide(page: 100, stream: 1)
        _ = try s.decide(page: 500, stream: 2)
        expect(try s.decide(page: 101, stream: 1), 101, 31, .smaller, ntest: 32)
        // Stream 2's own case is still at its first guess; the record is shared.
        let d = try s.decide(page: 501, stream: 2)
        #expect(d.outcome == .smaller)
        #expect(s.snapshot.minRecord == [1, 1])
    }

    @Test func streamJoiningLateStartsFromWhatTheSessionLearned() throws {
        var s = try dp(k: 1, initial: 1)
        _ = try s.decide(page: 100, stream: 1)
        _ = try s.decide(page: 101, stream: 1)  // MinRecord [1]: NMin 1
        _ = try s.decide(page: 5_000, stream: 1)  // CaseGuess 17
        _ = try s.decide(page: 5_017, stream: 1)  // MinRecord [17]: NMin 17
        expect(try s.decide(page: 90_000, stream: 9), 90_000, 17, .first, ntest: 17, nmin: 17)
    }

    @Test func faultInAnotherStreamsWindowIsARepeatOfThatWindow() throws {
        var s = try dp(initial: 8)
        _ = try s.decide(page: 100, stream: 1)
        let before = s.snapshot
        expect(try s.decide(page: 104, stream: 2), 100, 8, .repeat, ntest: 8)
        #expect(s.snapshot == before)
        #expect(s.snapshot.streams.map(\.stream) == [1])  // no state created for stream 2
    }

    @Test func repeatOfSeveralWindowsAnswersTheMostRecentlyUsedStream() throws {
        var s = try dp(initial: 8)
        _ = try s.decide(page: 100, stream: 1)  // [100, 108)
        _ = try s.decide(page: 96, stream: 2)  // [96, 104)
        let d = try s.decide(page: 102, stream: 3)
        #expect(d.outcome == .repeat)
        #expect(d.start == 96)
    }

    @Test func leastRecentlyUsedStreamIsEvicted() throws {
        var s = try dp(streams: 2)
        _ = try s.decide(page: 100, stream: 1)
        _ = try s.decide(page: 200, stream: 2)
        _ = try s.decide(page: 101, stream: 1)  // stream 1 is now the more recent
        _ = try s.decide(page: 300, stream: 3)  // evicts stream 2
        #expect(s.snapshot.streams.map(\.stream) == [1, 3])
        #expect(try s.decide(page: 201, stream: 2).outcome == .first)
    }

    @Test func repeatsDoNotRefreshRecency() throws {
        var s = try dp(streams: 2)
        _ = try s.decide(page: 100, stream: 1)
        _ = try s.decide(page: 200, stream: 2)
        _ = try s.decide(page: 100, stream: 1)  // a repeat: stream 1 stays the least recent
        _ = try s.decide(page: 300, stream: 3)
        #expect(s.snapshot.streams.map(\.stream) == [2, 3])
    }

    @Test func evictedStreamsRecordsStay() throws {
        var s = try dp(streams: 1)
        _ = try s.decide(page: 100, stream: 1)
        _ = try s.decide(page: 101, stream: 1)
        _ = try s.decide(page: 900, stream: 2)
        #expect(s.snapshot.minRecord == [1])
        #expect(s.snapshot.streams.map(\.stream) == [2])
    }

    @Test func resetForgetsWhatWasLearned() throws {
        var s = try dp(k: 1)
        _ = try s.decide(page: 1, stream: 0)
        _ = try s.decide(page: 900, stream: 0)
        s.reset()
        #expect(s.snapshot == PolicySnapshot(nmin: 1, nmax: 64, minRecord: [], maxRecord: [], streams: []))
    }
}

@Suite struct ConfigTests {
    @Test(arguments: [
        (PrepageConfig(minPages: 0), "min_pages"),
        (PrepageConfig(minPages: 8, maxPages: 4), "max_pages"),
        (PrepageConfig(maxPages: 1_048_577), "max_pages"),
        (PrepageConfig(k: 0), "k"),
        (PrepageConfig(k: 65), "k"),
        (PrepageConfig(maxPages: 64, gap: 65), "gap"),
        (PrepageConfig(gap: -1), "gap"),
        (PrepageConfig(memoryPages: -1), "memory_pages"),
        (PrepageConfig(maxStreams: 0), "max_streams"),
        (PrepageConfig(maxStreams: 1_025), "max_streams"),
    ])
    func rejectsOutOfRangeValueNamingTheField(_ config: PrepageConfig, _ field: String) {
        #expect(throws: ConfigError.self) { try config.validated() }
        do {
            _ = try config.validated()
        } catch {
            #expect(error.field == field)
            #expect(error.description.contains(field))
            #expect(error.description.contains("allowed"))
        }
    }

    @Test func acceptsTheEdgesOfEveryRange() throws {
        _ = try PrepageConfig(minPages: 1, maxPages: 1_048_576, k: 64, gap: 1_048_576, maxStreams: 1_024).validated()
        _ = try PrepageConfig(minPages: 7, maxPages: 7, k: 1, gap: 0, maxStreams: 1).validated()
    }

    @Test func initialPagesDefaultsToMinPagesAndIsClamped() throws {
        #expect(try PrepageConfig(minPages: 3).validated().initialPages == 3)
        #expect(try PrepageConfig(minPages: 3, initialPages: 0).validated().initialPages == 3)
        #expect(try PrepageConfig(maxPages: 16, initialPages: 99).validated().initialPages == 16)
    }
}

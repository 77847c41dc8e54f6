import PrepageCore
import Testing

@Suite struct BaselineTests {
    func policy(_ name: PolicyName, memory: Int = 0, _ edit: (inout PrepageConfig) -> Void = { _ in }) throws
        -> Prepager
    {
        var c = PrepageConfig(policy: name, memoryPages: memory)
        edit(&c)
        return try Prepager(config: c)
    }

    @Test func noneFetchesTheFaultingPageOnly() throws {
        var s = try policy(.none)
        let d = try s.decide(page: 77, stream: 3)
        #expect((d.start, d.count, d.outcome) == (77, 1, .first))
        #expect(try s.decide(page: 78, stream: 3).count == 1)
    }

    @Test func forwardFetchesAFixedWindowAroundTheFault() throws {
        var s = try policy(.forward)
        #expect(
            try s.decide(page: 100, stream: 0)
                == Decision(start: 100, count: 8, outcome: .first, ntest: 8, nmin: 8, nmax: 8))
        var b = try policy(.forward) {
            $0.forwardPages = 3; $0.backwardPages = 2
        }
        let d = try b.decide(page: 100, stream: 0)
        #expect((d.start, d.count) == (98, 6))
        #expect(try b.decide(page: 1, stream: 0).start == 0)  // clipped at 0
    }

    @Test func forwardIsClippedAtMemoryPages() throws {
        var s = try policy(.forward, memory: 103)
        #expect(try s.decide(page: 100, stream: 0).count == 3)
        #expect(throws: FaultError.beyondMemory(page: 103, memoryPages: 103)) { try s.decide(page: 103, stream: 0) }
    }

    @Test func readaheadRampsOnContinuations() throws {
        var s = try policy(.readahead)  // ra_initial 4, ra_max 32
        var d = try s.decide(page: 1_000, stream: 0)
        #expect((d.start, d.count, d.outcome) == (1_000, 4, .first))
        d = try s.decide(page: 1_004, stream: 0)  // 4 ≥ 32/16 = 2 and ≤ 16: ×2
        #expect((d.start, d.count, d.outcome) == (1_004, 8, .smaller))
        d = try s.decide(page: 1_012, stream: 0)
        #expect(d.count == 16)
        d = try s.decide(page: 1_028, stream: 0)  // 16 ≤ 16: ×2
        #expect(d.count == 32)
        d = try s.decide(page: 1_060, stream: 0)  // past max/2: max
        #expect(d.count == 32)
        d = try s.decide(page: 9_000, stream: 0)  // a new case starts over
        #expect((d.count, d.outcome) == (4, .larger))
    }

    @Test func readaheadGrowsFourfoldWhileSmall() throws {
        var s = try policy(.readahead) {
            $0.raInitial = 2; $0.raMax = 128
        }
        _ = try s.decide(page: 0, stream: 0)
        #expect(try s.decide(page: 2, stream: 0).count == 8)  // 2 < 128/16: ×4
    }

    @Test func readaheadFollowsADownwardContinuation() throws {
        var s = try policy(.readahead)
        _ = try s.decide(page: 1_000, stream: 0)  // [1000, 1004)
        let d = try s.decide(page: 999, stream: 0)
        #expect((d.start, d.count, d.outcome) == (992, 8, .smaller))
        #expect(try s.decide(page: 991, stream: 0).start == 991 - 16 + 1)
    }

    @Test func readaheadAnswersRepeatsAndKeepsACasePerStream() throws {
        var s = try policy(.readahead)
        _ = try s.decide(page: 1_000, stream: 1)
        _ = try s.decide(page: 5_000, stream: 2)
        #expect(try s.decide(page: 1_002, stream: 1).outcome == .repeat)
        #expect(try s.decide(page: 1_004, stream: 1).outcome == .smaller)
        #expect(try s.decide(page: 5_004, stream: 2).outcome == .smaller)
        #expect(s.snapshot.streams.map(\.stream) == [1, 2])
    }

    @Test(arguments: [
        (PrepageConfig(forwardPages: -1), "forward_pages"),
        (PrepageConfig(forwardPages: 1_048_576), "forward_pages"),
        (PrepageConfig(forwardPages: 1_000_000, backwardPages: 48_576), "backward_pages"),
        (PrepageConfig(raMax: 0), "ra_max"),
        (PrepageConfig(raInitial: 64, raMax: 32), "ra_initial"),
    ])
    func rejectsBadBaselineFields(_ config: PrepageConfig, _ field: String) {
        do {
            _ = try config.validated()
            Issue.record("accepted an invalid \(field)")
        } catch {
            #expect(error.field == field)
        }
    }
}

import CAllocationCounter
import PrepageCore
import PrepageSimulator
import PrepageTestSupport
import Testing

/// A policy's state taken and restored: the restored policy decides what the
/// original would have, at every point of every vector, through the binary
/// form; a damaged state is refused with the field named, or decides without
/// trapping.
@Suite struct StateTests {
    /// A trace of a closed-loop run: pages and streams.
    static func trace(_ config: PrepageConfig, vcpus: Int, streamIDs: Bool, seed: UInt64) throws -> [(Int, UInt32)] {
        let load = FSDWorkload(phases: [.init(n: 64, cases: 150), .init(n: 16, cases: 150)], noiseRate: 0.3)
        var policy = try PrepagerPolicy(config)
        var out: [(Int, UInt32)] = []
        _ = Simulation(vcpus: vcpus, streamIDs: streamIDs, seed: seed).run(&policy, cases: load.cases(seed: seed)) {
            p, s in out.append((p, s))
        }
        return out
    }

    /// Moves the policy at every fault: before each decision its state is taken,
    /// encoded, decoded and restored into a new policy, which decides. Every
    /// decision must be the undisturbed run's, and so must every state taken.
    func moveAtEveryFault(_ config: PrepageConfig, _ faults: [(Int, UInt32)], _ name: String) throws {
        var whole = try Prepager(config: config)
        var moved = try Prepager(config: config)
        for (i, (p, s)) in faults.enumerated() {
            let state = moved.state
            try #require(state == whole.state, "\(name): the state before fault #\(i) differs from the undisturbed one")
            let decoded = try PrepagerState(encoded: state.encoded)
            try #require(decoded == state, "\(name): the state before fault #\(i) does not survive its binary form")
            moved = try Prepager(state: decoded)
            let got = try moved.decide(page: p, stream: s)
            let expected = try whole.decide(page: p, stream: s)
            try #require(got == expected, "\(name): fault #\(i) after a move: \(got), undisturbed \(expected)")
        }
    }

    /// Splits the faults at every position: the first part decided by one policy, its
    /// state encoded, decoded and restored into another that decides the next `horizon`
    /// faults (all the rest at every `fullEvery`-th split, where the final states must
    /// be equal too).
    func splitEverywhere(
        _ config: PrepageConfig, _ faults: [(Int, UInt32)], _ name: String, horizon: Int = 24, fullEvery: Int = 40
    ) throws {
        var whole = try Prepager(config: config)
        var expected: [Decision] = []
        for (p, s) in faults { expected.append(try whole.decide(page: p, stream: s)) }
        var first = try Prepager(config: config)
        for split in 0...faults.count {
            let state = first.state
            var second = try Prepager(state: try PrepagerState(encoded: state.encoded))
            let end = split % fullEvery == 0 ? faults.count : min(faults.count, split + horizon)
            var got: [Decision] = []
            got.reserveCapacity(end - split)
            for i in split..<end { got.append(try second.decide(page: faults[i].0, stream: faults[i].1)) }
            if got[...] != expected[split..<end] {
                let i = split + (got.indices.first { got[$0] != expected[split + $0] } ?? 0)
                Issue.record(
                    "\(name): split at \(split), fault #\(i): restored \(got[i - split]), undisturbed \(expected[i])")
                return
            }
            if end == faults.count {
                #expect(second.state == whole.state, "\(name): split at \(split): the final states differ")
            }
            if split < faults.count { _ = try first.decide(page: faults[split].0, stream: faults[split].1) }
        }
    }

    @Test(arguments: try Vector.all())
    func aVectorMovedAtEveryFaultDecidesAsUndisturbed(_ vector: Vector) throws {
        try moveAtEveryFault(vector.config, Array(zip(vector.faults, vector.streams)), vector.name)
    }

    @Test(arguments: try Vector.all())
    func aVectorSplitAtEveryFaultDecidesAsUndisturbed(_ vector: Vector) throws {
        try splitEverywhere(vector.config, Array(zip(vector.faults, vector.streams)), vector.name)
    }

    @Test(arguments: [PolicyName.readahead, .forward, .none, .dp, .dpLiteral, .dpPlus])
    func everyPolicySplitAtEveryFaultDecidesAsUndisturbed(_ policy: PolicyName) throws {
        var config = PrepageConfig(policy: policy, maxPages: 128)
        if policy != .dpPlus { config.maxStreams = 3 }  // 4 vCPUs: streams are evicted too
        let faults = Array(try Self.trace(config, vcpus: 4, streamIDs: true, seed: 7).prefix(600))
        try moveAtEveryFault(config, faults, policy.rawValue)
        try splitEverywhere(config, faults, policy.rawValue)
    }

    /// Taking the state shares no buffer with the policy: once its tables have grown
    /// (the first half of a long load), the faults after each taking allocate nothing.
    @Test(arguments: [PolicyName.dp, .dpPlus, .readahead])
    func takingTheStateAddsNoAllocationToTheFaultPath(_ policy: PolicyName) throws {
        let config = PrepageConfig(policy: policy)
        let load = FSDWorkload(phases: [.init(n: 64, cases: 3_000), .init(n: 16, cases: 3_000)], noiseRate: 0.3)
        var faults: [(Int, UInt32)] = []
        var sim = try PrepagerPolicy(config)
        _ = Simulation(vcpus: 4, streamIDs: true, seed: 5).run(&sim, cases: load.cases(seed: 5)) {
            faults.append(($0, $1))
        }
        var p = try Prepager(config: config)
        let half = faults.count / 2
        for i in 0..<half { _ = try p.decide(page: faults[i].0, stream: faults[i].1) }
        var taken: [PrepagerState] = []
        var allocations: UInt64 = 0
        // An index loop: iterating an array allocates in the unoptimised builds tests run in.
        for i in half..<faults.count {
            if i % 50 == 0 { taken.append(p.state) }
            let before = ac_thread_allocations()
            _ = try p.decide(page: faults[i].0, stream: faults[i].1)
            allocations += ac_thread_allocations() - before
        }
        #expect(
            allocations == 0,
            "\(allocations) allocations in \(faults.count - half) faults, the state taken \(taken.count) times")
    }

    @Test func doublesSurviveBitForBit() throws {
        var state = try Prepager(config: PrepageConfig(policy: .dpPlus)).state
        guard case .plus(var s) = state.learned else { Issue.record("not dp-plus"); return }
        s.nearRate = .leastNonzeroMagnitude
        s.transitions = [.init(a: 0, b: 3, n: 0.1 + 0.2, c: .ulpOfOne, e: 0, last: 0)]
        state.learned = .plus(s)
        let back = try PrepagerState(encoded: state.encoded)
        guard case .plus(let t) = back.learned else { Issue.record("not dp-plus"); return }
        #expect(t.nearRate.bitPattern == Double.leastNonzeroMagnitude.bitPattern)
        #expect(t.transitions[0].n.bitPattern == (0.1 + 0.2).bitPattern)
    }

    // MARK: - Refusals

    func plusState(after faults: Int = 400) throws -> PrepagerState {
        let config = PrepageConfig(policy: .dpPlus)
        var p = try Prepager(config: config)
        for (page, s) in try Self.trace(config, vcpus: 2, streamIDs: false, seed: 1).prefix(faults) {
            _ = try p.decide(page: page, stream: s)
        }
        return p.state
    }

    func refusal(_ state: PrepagerState) -> StateError? {
        do {
            _ = try Prepager(state: state)
            return nil
        } catch {
            return error
        }
    }

    @Test func aStateOfAnotherPolicyIsRefused() throws {
        var state = try plusState()
        state.config.policy = .dp
        #expect(refusal(state)?.field == "learned")
    }

    @Test func aSlotOrderThatIsNotAPermutationIsRefused() throws {
        var state = try plusState()
        guard case .plus(var s) = state.learned, s.order.count > 1 else { Issue.record("no slots"); return }
        s.order[1] = s.order[0]
        state.learned = .plus(s)
        #expect(refusal(state)?.field == "learned.order[1]")
    }

    @Test func unorderedTransitionsAreRefused() throws {
        var state = try plusState()
        guard case .plus(var s) = state.learned, s.transitions.count > 1 else { Issue.record("no transitions"); return }
        s.transitions.swapAt(0, 1)
        state.learned = .plus(s)
        #expect(refusal(state)?.field.hasPrefix("learned.transitions[") == true)
    }

    @Test func aCleanEmptyPlanIsRefused() throws {
        var state = try plusState()
        guard case .plus(var s) = state.learned else { Issue.record("not dp-plus"); return }
        s.plan = []
        s.dirty = false
        state.learned = .plus(s)
        #expect(refusal(state)?.field == "learned.plan")
    }

    @Test func dpRangeAndRecordsAreChecked() throws {
        let config = PrepageConfig(policy: .dp, maxPages: 64)
        var p = try Prepager(config: config)
        for page in 0..<300 { _ = try p.decide(page: page * 7, stream: UInt32(page % 3)) }
        var state = p.state
        guard case .dp(var s) = state.learned else { Issue.record("not dp"); return }
        var bad = s
        bad.nmax = 65
        state.learned = .dp(bad)
        #expect(refusal(state)?.field == "learned.nmax")
        bad = s
        bad.minRecord = Array(repeating: 3, count: 6)
        state.learned = .dp(bad)
        #expect(refusal(state)?.field == "learned.min_record")
        s.streams.streams.append(s.streams.streams[0])
        state.learned = .dp(s)
        #expect(refusal(state)?.field == "learned.streams[3].stream")
    }

    @Test func anUnknownVersionIsRefused() throws {
        var bytes = try plusState().encoded
        bytes[0] = 9
        #expect(throws: StateError.self) { try PrepagerState(encoded: bytes) }
    }

    /// Damaged bytes — flipped, truncated, extended — are refused, or make a policy that
    /// decides a thousand faults without trapping (a trap would end the test process).
    @Test(arguments: [PolicyName.dp, .dpPlus, .readahead])
    func damagedBytesAreRefusedOrHarmless(_ policy: PolicyName) throws {
        let config = PrepageConfig(policy: policy)
        var p = try Prepager(config: config)
        for (page, s) in try Self.trace(config, vcpus: 3, streamIDs: true, seed: 2).prefix(500) {
            _ = try p.decide(page: page, stream: s)
        }
        let good = p.state.encoded
        var rng = SplitMix64(seed: 11)
        var refused = 0
        var accepted = 0
        for round in 0..<600 {
            var bytes = good
            switch round % 3 {
            case 0:
                for _ in 0...Int.random(in: 0..<4, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                }
            case 1: bytes.removeLast(Int.random(in: 1..<bytes.count, using: &rng))
            default:
                bytes.append(
                    contentsOf: (0..<Int.random(in: 1...8, using: &rng)).map { _ in
                        UInt8.random(in: 0...255, using: &rng)
                    })
            }
            guard let state = try? PrepagerState(encoded: bytes), var restored = try? Prepager(state: state) else {
                refused += 1
                continue
            }
            accepted += 1
            for _ in 0..<1_000 {
                _ = try? restored.decide(
                    page: Int.random(in: 0..<(1 << 40), using: &rng), stream: UInt32.random(in: 0..<8, using: &rng))
            }
        }
        #expect(refused > 0 && refused + accepted == 600)
    }
}

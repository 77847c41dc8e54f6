import PrepageCore
import PrepageSimulator
import Testing

/// Invariants of `docs/dp.md` over seeded random traces and random valid configurations.
@Suite struct PropertyTests {
    /// A random valid configuration.
    static func config(_ rng: inout SplitMix64, policy: PolicyName) -> PrepageConfig {
        let minPages = Int.random(in: 1...8, using: &rng)
        let maxPages = Int.random(in: minPages...256, using: &rng)
        return PrepageConfig(
            policy: policy, minPages: minPages, maxPages: maxPages,
            // Both storages of the records: inline (k ≤ 8) and heap (k > 8).
            k: Bool.random(using: &rng) ? Int.random(in: 1...8, using: &rng) : Int.random(in: 9...64, using: &rng),
            initialPages: Int.random(in: 0...300, using: &rng),
            gap: Int.random(in: 0...min(4, maxPages), using: &rng),
            memoryPages: Bool.random(using: &rng) ? 0 : Int.random(in: 1...50_000, using: &rng),
            maxStreams: Int.random(in: 1...6, using: &rng))
    }

    /// A fault near the stream's last window most of the time (continuations, repeats,
    /// reverses), elsewhere otherwise.
    static func nextFault(
        _ rng: inout SplitMix64, last: Decision?, memory: Int
    ) -> Int {
        let bound = memory > 0 ? memory : 1 << 40
        guard let last, Int.random(in: 0..<10, using: &rng) < 8 else {
            return Int.random(in: 0..<bound, using: &rng)
        }
        let choices = [
            last.start + last.count, last.start - 1, last.start + last.count + Int.random(in: 0...5, using: &rng),
            last.start, last.start + last.count / 2, last.start - 3,
        ]
        return min(max(0, choices.randomElement(using: &rng)!), bound - 1)
    }

    @Test(arguments: [PolicyName.dp, .dpLiteral], 0..<40)
    func invariantsHoldOnRandomTraces(policy: PolicyName, seed: UInt64) throws {
        var rng = SplitMix64(seed: seed &* 7_919 &+ (policy == .dp ? 0 : 1))
        let config = Self.config(&rng, policy: policy)
        var state = try Prepager(config: config)
        var lastOf: [UInt32: Decision] = [:]
        for _ in 0..<2_000 {
            let stream = UInt32.random(in: 0..<4, using: &rng)
            let page = Self.nextFault(&rng, last: lastOf[stream], memory: config.memoryPages)
            let before = state.snapshot
            let d = try state.decide(page: page, stream: stream)
            #expect(d.start <= page && page < d.start + d.count, "window must contain the fault")
            #expect(1 <= d.count && d.count <= config.maxPages)
            #expect(config.minPages <= d.nmin && d.nmin <= d.nmax && d.nmax <= config.maxPages)
            if config.memoryPages > 0 { #expect(d.start + d.count <= config.memoryPages) }
            if d.outcome == .repeat {
                #expect(state.snapshot == before, "a repeat never changes state")
            } else {
                lastOf[stream] = d
            }
            #expect(state.snapshot.streams.count <= config.maxStreams)
            if d.outcome == .repeat { continue }
            // Answering the same fault again is a repeat of the window just handed out.
            let again = try state.decide(page: page, stream: stream)
            #expect(again.outcome == .repeat && again.start == d.start && again.count == d.count)
        }
    }

    @Test func decisionsAreDeterministic() throws {
        var rng1 = SplitMix64(seed: 42)
        var rng2 = SplitMix64(seed: 42)
        var a = try Prepager(config: PrepageConfig(maxPages: 128))
        var b = try Prepager(config: PrepageConfig(maxPages: 128))
        for _ in 0..<1_000 {
            let p1 = Int.random(in: 0..<1_000, using: &rng1)
            let p2 = Int.random(in: 0..<1_000, using: &rng2)
            #expect(try a.decide(page: p1, stream: 0) == b.decide(page: p2, stream: 0))
        }
    }
}

import CAllocationCounter
import PrepageCore
import PrepageSimulator
import Testing

/// dp-plus beyond its vectors: invariants over seeded random traces, its bounds, its
/// allocation behaviour, and the spec's tie-breaking rules, each exercised by a fault
/// sequence where the other choice would give another decision.
@Suite struct DPPlusTests {
    typealias Expected = (start: Int, count: Int, outcome: Outcome)

    func replay(_ config: PrepageConfig, _ faults: [(Int, UInt32)]) throws -> [Decision] {
        var plus = try DynamicPrepagePlus(config: config)
        return try faults.map { try plus.decide(page: $0.0, stream: $0.1) }
    }

    func expect(_ got: [Decision], _ expected: [Expected], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(got.count == expected.count, sourceLocation: sourceLocation)
        for (i, (g, e)) in zip(got, expected).enumerated() {
            #expect(
                g.start == e.start && g.count == e.count && g.outcome == e.outcome,
                "fault #\(i): got \(g.start)+\(g.count) \(g.outcome.name), expected \(e.start)+\(e.count) \(e.outcome.name)",
                sourceLocation: sourceLocation)
        }
    }

    static func plus(_ rtt: Double, _ pt: Double, initial: Int, transitions: Int = 64, slots: Int = 64) -> PrepageConfig
    {
        PrepageConfig(
            policy: .dpPlus, initialPages: initial, maxSlots: slots, transitions: transitions, rttMicroseconds: rtt,
            pageMicroseconds: pt)
    }

    // MARK: - Tie-breaking

    /// Direction of a new case, up = probe = down (RTT 100, page 25, t1 = 5: each costs 100): up.
    @Test func directionTiesGoUpFirst() throws {
        expect(try replay(Self.plus(100, 25, initial: 5, transitions: 3, slots: 1), [(313, 0)]), [(313, 5, .first)])
        // up = down < probe (RTT 64, page 12.5, t1 = 5: 57, 57, 64): up, not down.
        expect(try replay(Self.plus(64, 12.5, initial: 5, transitions: 2), [(827, 0)]), [(827, 5, .first)])
    }

    /// probe = down < up after one downward case: the one-page probe, not the downward window.
    @Test func directionTiesPreferTheProbeToDown() throws {
        expect(
            try replay(Self.plus(50, 50, initial: 4, transitions: 1, slots: 3), [(545, 0), (544, 0), (2803, 0)]),
            [(545, 1, .first), (542, 3, .smaller), (2803, 1, .first)])  // down would be 2800+4
    }

    /// Eviction from a full transition table: equal decayed n, then the smaller `last`,
    /// then the smaller (a, b). Evicting the other entry would plan another first window.
    @Test func evictionTiesTakeTheOldestSmallestEntry() throws {
        expect(
            try replay(
                Self.plus(64, 12.5, initial: 5, transitions: 2), [(827, 0), (826, 0), (822, 0), (2348, 0)]),
            [(827, 5, .first), (823, 4, .smaller), (816, 7, .smaller), (2344, 5, .first)])  // other: 2348+1
    }

    /// The planner takes the first threshold whose cost is below the best by more than 1e-9:
    /// on a tie the smaller one. Taking the later one would plan 7 pages for the last case.
    @Test func plannerTiesTakeTheSmallerThreshold() throws {
        let faults = [
            2497, 2502, 2997, 2996, 2991, 2986, 1759, 1758, 837, 899, 383, 384, 385, 387, 392, 2092, 2091, 74, 73,
            67, 60, 50, 37, 258,
        ]
        let expected: [Expected] = [
            (2497, 5, .first), (2502, 6, .smaller), (2997, 6, .first), (2992, 5, .smaller), (2987, 5, .smaller),
            (2978, 9, .smaller), (1759, 1, .first), (1751, 8, .smaller), (831, 7, .first), (896, 4, .first),
            (382, 2, .first), (384, 1, .smaller), (385, 2, .smaller), (387, 5, .smaller), (392, 8, .smaller),
            (2092, 1, .first), (2086, 6, .smaller), (74, 1, .first), (68, 6, .smaller), (61, 7, .smaller),
            (51, 10, .smaller), (38, 13, .smaller), (21, 17, .smaller), (256, 3, .first),  // other: 252+7
        ]
        expect(try replay(Self.plus(50, 12.5, initial: 5, slots: 3), faults.map { ($0, 0) }), expected)
    }

    /// A repeat answers the fault's own stream's window before a more recent one holding the page.
    @Test func repeatsPreferTheStreamsOwnWindow() throws {
        expect(
            try replay(Self.plus(64, 12.5, initial: 5), [(100, 1), (98, 2), (101, 1)]),
            [(100, 5, .first), (98, 5, .first), (100, 5, .repeat)])
    }

    /// A continuation goes to the fault's own stream's case before a more recent one it also continues.
    @Test func continuationsPreferTheStreamsOwnCase() throws {
        expect(
            try replay(Self.plus(64, 12.5, initial: 5), [(100, 1), (106, 2), (105, 1)]),
            [(100, 5, .first), (106, 5, .first), (105, 7, .smaller)])  // stream 2's case would go down: 102+4
    }

    // MARK: - Invariants

    static func randomConfig(_ rng: inout SplitMix64) -> PrepageConfig {
        let maxPages = Int.random(in: 1...300, using: &rng)
        return PrepageConfig(
            policy: .dpPlus, maxPages: maxPages, initialPages: Int.random(in: 0...400, using: &rng),
            gap: Int.random(in: 0...min(3, maxPages), using: &rng),
            memoryPages: Bool.random(using: &rng) ? 0 : Int.random(in: 1...20_000, using: &rng),
            maxSlots: Int.random(in: 1...12, using: &rng), transitions: Int.random(in: 1...24, using: &rng),
            halfLife: Int.random(in: 1...40, using: &rng), probeStaleness: Double.random(in: 0...2_000, using: &rng),
            faultFee: Double.random(in: 0...3, using: &rng), nearWindow: Int.random(in: 0...10, using: &rng),
            minEvidence: Double.random(in: 0...1, using: &rng),
            rttMicroseconds: Double.random(in: 1...500, using: &rng),
            pageMicroseconds: Double.random(in: 1...100, using: &rng))
    }

    /// The next fault: near the last window most of the time, elsewhere otherwise.
    static func nextFault(_ rng: inout SplitMix64, last: Decision?, memory: Int) -> Int {
        let bound = memory > 0 ? memory : 1 << 40
        guard let last, Int.random(in: 0..<10, using: &rng) < 8 else { return Int.random(in: 0..<bound, using: &rng) }
        let choices = [
            last.start + last.count, last.start - 1, last.start + last.count + Int.random(in: 1...12, using: &rng),
            last.start - Int.random(in: 2...12, using: &rng), last.start + last.count / 2,
        ]
        return min(max(0, choices.randomElement(using: &rng)!), bound - 1)
    }

    @Test(arguments: 0..<60)
    func invariantsHoldOnRandomTraces(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed &* 104_729 &+ 17)
        let config = Self.randomConfig(&rng)
        var plus = try DynamicPrepagePlus(config: config)
        var twin = try DynamicPrepagePlus(config: config)
        var last: Decision?
        for i in 0..<2_000 {
            let p = Self.nextFault(&rng, last: last, memory: config.memoryPages)
            let stream = UInt32.random(in: 0...3, using: &rng)
            let d = try plus.decide(page: p, stream: stream)
            // The window holds the fault and lies inside memory; never more than max_pages.
            #expect(d.start <= p && p < d.start + d.count, "fault #\(i): \(d) misses \(p)")
            #expect(d.start >= 0 && d.count >= 1 && d.count <= config.maxPages, "fault #\(i): \(d)")
            if config.memoryPages > 0 { #expect(d.start + d.count <= config.memoryPages) }
            #expect([.first, .smaller, .repeat].contains(d.outcome))
            // Same faults, same decisions.
            #expect(try twin.decide(page: p, stream: stream) == d)
            // Never past its bounds.
            let learned = plus.learned
            #expect(learned.transitions <= config.transitions && learned.slots.count <= config.maxSlots)
            #expect(learned.depth >= 1 && learned.depth <= config.maxSlots)
            last = d
        }
    }

    @Test func aFaultOutsideMemoryChangesNothing() throws {
        var plus = try DynamicPrepagePlus(config: PrepageConfig(policy: .dpPlus, memoryPages: 1_000))
        _ = try plus.decide(page: 10, stream: 0)
        let before = plus.learned
        #expect(throws: FaultError.beyondMemory(page: 1_000, memoryPages: 1_000)) {
            try plus.decide(page: 1_000, stream: 0)
        }
        #expect(throws: FaultError.negativePage(-1)) { try plus.decide(page: -1, stream: 0) }
        #expect(plus.learned == before)
    }

    @Test func windowsAreClippedToMemory() throws {
        var plus = try DynamicPrepagePlus(config: PrepageConfig(policy: .dpPlus, initialPages: 8, memoryPages: 100))
        let d = try plus.decide(page: 97, stream: 0)
        #expect(d.start >= 0 && d.start + d.count <= 100 && d.start <= 97)
    }

    // MARK: - Bounds and allocation

    /// A long, varied load: once the tables are full, the session's memory stops growing
    /// and deciding allocates nothing.
    @Test func memoryIsBoundedAndDecidingStopsAllocating() throws {
        var plus = try DynamicPrepagePlus(config: PrepageConfig(policy: .dpPlus))
        let load = FSDWorkload(phases: [.init(n: 64, cases: 3_000), .init(n: 16, cases: 3_000)], noiseRate: 0.3)
        var trace: [Int] = []
        var policy = try PrepagerPolicy(PrepageConfig(policy: .dpPlus))
        _ = Simulation(vcpus: 4, streamIDs: false, seed: 5).run(&policy, cases: load.cases(seed: 5)) { p, _ in
            trace.append(p)
        }
        let half = trace.count / 2
        for i in 0..<half { _ = try plus.decide(page: trace[i], stream: 0) }
        let bytes = plus.accountedBytes
        // An index loop: iterating an array allocates in the unoptimised builds tests run in.
        let before = ac_thread_allocations()
        for i in half..<trace.count { _ = try plus.decide(page: trace[i], stream: 0) }
        let allocations = ac_thread_allocations() - before
        #expect(allocations == 0, "\(allocations) allocations in \(trace.count - half) decisions")
        #expect(plus.accountedBytes == bytes)
        #expect(plus.learned.transitions == 64 && plus.learned.slots.count == 64)
    }

    /// Past a memory budget its tables stop growing: a new case takes the least recently
    /// used slot, a new transition evicts one, as when full; the windows stay valid.
    @Test func tablesGrowOnlyWithinTheAllowance() throws {
        var capped = try Prepager(config: PrepageConfig(policy: .dpPlus))
        var free = try Prepager(config: PrepageConfig(policy: .dpPlus))
        var rng = SplitMix64(seed: 9)
        var base = 0
        for i in 0..<3_000 {
            if i % 5 == 0 { base = Int.random(in: 0..<(1 << 30), using: &rng) }
            let p = base + (i % 5) * Int.random(in: 1...40, using: &rng)
            let allowance = i < 20 ? Int.max : 0
            let d = try capped.decide(page: p, stream: 0, growthAllowance: allowance)
            #expect(d.start <= p && p < d.start + d.count)
            _ = try free.decide(page: p, stream: 0)
        }
        let cappedSlots = capped.snapshot.plus!.slots.count
        #expect(cappedSlots >= 1 && cappedSlots < 64, "\(cappedSlots) slots")
        #expect(free.snapshot.plus!.slots.count == 64)
        #expect(capped.accountedBytes < free.accountedBytes)
    }

    @Test func anIdleSessionHoldsNoTables() throws {
        let plus = try DynamicPrepagePlus(config: PrepageConfig(policy: .dpPlus))
        #expect(plus.accountedBytes == 0)
    }

    // MARK: - Configuration

    @Test(arguments: [
        ("max_slots", PrepageConfig(policy: .dpPlus, maxSlots: 0)),
        ("transitions", PrepageConfig(policy: .dpPlus, transitions: 257)),
        ("half_life", PrepageConfig(policy: .dpPlus, halfLife: 0)),
        ("probe_staleness", PrepageConfig(policy: .dpPlus, probeStaleness: -1)),
        ("fault_fee", PrepageConfig(policy: .dpPlus, faultFee: .nan)),
        ("near_window", PrepageConfig(policy: .dpPlus, nearWindow: -1)),
        ("min_evidence", PrepageConfig(policy: .dpPlus, minEvidence: .infinity)),
        ("rtt_us", PrepageConfig(policy: .dpPlus, rttMicroseconds: 0)),
        ("page_us", PrepageConfig(policy: .dpPlus, pageMicroseconds: 1e8)),
    ])
    func rejectsEachKeyOutOfRange(field: String, config: PrepageConfig) {
        #expect(throws: ConfigError.self) { try config.validated() }
        do {
            _ = try config.validated()
        } catch {
            #expect(error.field == field)
            #expect(error.description.contains(PrepageConfig.field(named: field)!.allowed))
        }
    }

    @Test func everyDPPlusKeyBelongsToDPPlusOnly() {
        for name in [
            "max_slots", "transitions", "half_life", "probe_staleness", "fault_fee", "near_window", "min_evidence",
            "rtt_us", "page_us",
        ] {
            let field = PrepageConfig.field(named: name)
            #expect(field?.policies == [.dpPlus], "\(name)")
        }
        for name in ["min_pages", "k", "max_streams"] {
            #expect(PrepageConfig.field(named: name)?.applies(to: .dpPlus) == false, "\(name)")
        }
    }
}

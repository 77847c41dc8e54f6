/// dp-plus: Dynamic Prepage with a learned stall model, exactly as `docs/dp-plus.md` fixes it.
///
/// DP learns one number N. dp-plus learns the *survival curve* of case sizes,
/// S(x) = P(a case needs more than x pages), at the thresholds it has tried, as
/// a product-limit estimate over a small table of transitions "(had passed a)
/// → (then tested b): passed or not" with counts that halve every `half_life`
/// cases. From S it plans, per new case, the cumulative thresholds t1 < t2 < …
/// that minimise the expected stall on the session's link (one round trip per
/// fault, one page time per page), adds a cheap bisection probe per planned
/// interval when the estimate there is stale, chooses a new case's direction by
/// comparing the cost of a wrong guess with a one-page probe, and matches a
/// fault to its case by address against a small LRU table of windows (slots),
/// so stream ids are a hint, not a necessity.
///
/// ```swift
/// var plus = try DynamicPrepagePlus(config: PrepageConfig(policy: .dpPlus, rttMicroseconds: 250))
/// let d = try plus.decide(page: 4_096, stream: 0)   // fetch [d.start, d.start + d.count)
/// ```
///
/// Every non-integer quantity is an IEEE-754 binary64 computed in the order the
/// spec writes it; two implementations that do so give identical decisions.
///
/// Memory is bounded by the configuration: at most `transitions` table entries,
/// `max_slots` slots, 32 direction bits, and the slots' plans (at most
/// 2 × (2 × `transitions` + 1) thresholds each). ``decide(page:stream:)``
/// allocates only while a table grows towards its bound; see ``accountedBytes``.
public struct DynamicPrepagePlus: Sendable {
    /// The validated configuration.
    public let config: PrepageConfig

    // The link, in µs: a fault costs `rtt`, a page `pt`.
    private let rtt: Double
    private let pt: Double
    private let rho: Double
    /// `FEE × RTT`, the planner's price of one more fault.
    private let faultPrice: Double
    private let halfLife: Int
    private let maxPages: Int
    private let maxSlots: Int

    /// Cases started.
    public private(set) var clock = 0
    private var table: TransitionTable
    /// The estimate of S behind the cached plan: its nodes, ascending, and S at each.
    private var nodes: [Int] = []
    private var survival: [Double] = []
    /// The cached plan (thresholds, ascending); recomputed at a new case when dirty.
    private var plan: [Int] = []
    private var dirty = true
    /// The commit depth: how many newer cases of its stream a case waits for before
    /// its last threshold is recorded as "ended".
    public private(set) var depth = 1
    /// The learned continuation gap and the near-miss rate behind it.
    public private(set) var learnedGap = 0
    public private(set) var nearRate = 0.0
    /// The last 32 known case directions, newest in bit 0 (1 = downward).
    private var directionBits: UInt32 = 0
    private var directionCount = 0
    private var slots: SlotTable
    /// Heap bytes the tables may still grow by (what a memory budget has left): a table
    /// that would grow past it reuses its least recently used entry instead, as when
    /// full, and a plan that does not fit is cut short. Default: unbounded.
    public var growthAllowance = Int.max

    /// The planner's working arrays and a new case's plan, kept so that planning does not allocate.
    private var scratch = PlanScratch()
    private var casePlan: [Int] = []

    /// Makes a fresh state.
    /// - Throws: ``ConfigError`` when the configuration is invalid.
    public init(config: PrepageConfig) throws(ConfigError) {
        self.init(checked: try config.validated())
    }

    /// A fresh state for a configuration already validated.
    init(checked config: PrepageConfig) {
        self.config = config
        rtt = config.rttMicroseconds
        pt = config.pageMicroseconds
        rho = rtt / pt
        faultPrice = config.faultFee * rtt
        halfLife = config.halfLife
        maxPages = config.maxPages
        maxSlots = config.maxSlots
        table = TransitionTable(capacity: config.transitions)
        slots = SlotTable(capacity: config.maxSlots)
    }

    // MARK: - On a fault

    /// Decides one fault of page `page`; `stream` is a hint (0 = unknown) used to
    /// prefer that stream's cases.
    ///
    /// Outcomes: `first` (a new case), `smaller` (a continuation: the case needed
    /// more), `repeat` (the fault lies in a window already handed out; nothing changes).
    /// `ntest` is the case's pages covered so far; `nmin` and `nmax` are the first
    /// and the last threshold of the current plan.
    ///
    /// - Throws: ``FaultError`` for a fault outside guest memory; nothing changes then.
    public mutating func decide(page p: Int, stream s: UInt32) throws(FaultError) -> Decision {
        guard p >= 0 else { throw .negativePage(p) }
        if config.memoryPages > 0 && p >= config.memoryPages {
            throw .beyondMemory(page: p, memoryPages: config.memoryPages)
        }
        // 1. Repeat: stream s's slots first, then the most recent.
        let held = slots.holder(of: p, stream: s)
        if held >= 0 { return answer(held, .repeat) }
        // 2. Continuation.
        let g = max(config.gap, learnedGap)
        let next = slots.continued(by: p, stream: s, gap: g)
        if next.slot >= 0 { return proceed(next.slot, page: p, direction: next.upward ? 1 : -1) }
        // 3. Near miss: a fault a little past a window teaches the gap.
        let miss = slots.nearMiss(of: p, gap: g, near: config.nearWindow)
        if miss.slot >= 0 {
            nearRate = nearRate * 15 / 16 + 1.0 / 16
            if nearRate >= 0.25 {
                learnedGap = max(learnedGap, miss.offset)
                let again = slots.continued(by: p, stream: s, gap: max(config.gap, learnedGap))
                if again.slot >= 0 { return proceed(again.slot, page: p, direction: again.upward ? 1 : -1) }
            }
        } else {
            nearRate = nearRate * 15 / 16
            if nearRate < 0.05 { learnedGap = 0 }
        }
        // 4. A new case.
        return newCase(page: p, stream: s)
    }

    /// Continue(slot, p, d): the case passed its threshold under test; fetch up to the next.
    private mutating func proceed(_ i: Int, page p: Int, direction d: Int8) -> Decision {
        var slot = slots[i]
        if slot.newer > 0 {
            depth = min(maxSlots, max(depth, 2 * slot.newer))
        }
        if slot.d == 0 {
            slot.d = d
            noteDirection(downward: d < 0)
            if slot.w != d {
                // The first window went the wrong way, or was a one-page probe.
                if slot.w != 0 && !slot.open {
                    if table.takeBack(a: 0, b: slot.cum, epoch: epoch) { dirty = true }
                    slot.open = true
                }
                slot.a = 0
                slot.cum = 1
            }
        }
        if slot.open {
            record(slot.a, slot.cum, passed: true)
        } else {
            if table.fix(a: slot.a, b: slot.cum, epoch: epoch) { dirty = true }
            slot.open = true
        }
        let t = slots.threshold(of: i, above: slot.cum) ?? slot.cum + step(slot.cum)
        let count = min(maxPages, t - slot.cum)
        slot.a = slot.cum
        slot.cum += count
        (slot.lo, slot.hi) = place(count, at: p, upward: d > 0)
        slots[i] = slot
        slots.touch(i)
        return answer(i, .smaller)
    }

    /// New case(p, s).
    private mutating func newCase(page p: Int, stream s: UInt32) -> Decision {
        // The open cases of this stream age by one case; old enough, they are committed.
        var aging = slots.next(after: -1)
        while aging >= 0 {
            if slots.isOpen(aging, of: s) {
                slots[aging].newer += 1
                if slots[aging].newer >= depth { commit(aging) }
            }
            aging = slots.next(after: aging)
        }
        clock += 1
        if dirty {
            replan()
            dirty = false
        }
        // The case's plan: the session's plan and its probes.
        casePlan.removeAll(keepingCapacity: true)
        var previous = 0
        for k in 0..<plan.count {
            let t = plan[k]
            if !nodes.isEmpty, let x = probe(after: previous, upTo: t) { casePlan.append(x) }
            casePlan.append(t)
            previous = t
        }
        let t1 = casePlan[0]
        // The direction of the new case.
        let n = min(maxPages, t1)
        var w: Int8 = 1
        var cum = n
        if t1 != 1 {
            let ones = (directionBits & (directionCount == 32 ? .max : (1 << directionCount) - 1)).nonzeroBitCount
            let q = (Double(ones) + 0.5) / (Double(directionCount) + 1)
            let wrong = rtt + Double(t1 - 1) * pt
            let s1 = survival(at: 1) ?? 1
            let up = q * wrong
            let down = (1 - q) * wrong
            let probe = s1 * rtt - (1 - s1) * Double(t1 - 1) * pt
            if up <= probe && up <= down {
                w = 1
            } else if probe <= down {
                w = 0
                cum = 1
            } else {
                w = -1
            }
        }
        let (lo, hi) = place(w == 0 ? 1 : n, at: p, upward: w >= 0)
        // A full table forgets its least recently used case, committed first.
        if let victim = slots.victim(allowance: growthAllowance) { commit(victim) }
        let i = slots.admit(
            Slot(lo: lo, hi: hi, d: 0, w: w, a: 0, cum: cum, stream: s, open: true, newer: 0),
            allowance: growthAllowance)
        slots.setPlan(i, casePlan, allowance: growthAllowance)
        return answer(i, .first)
    }

    /// Records the case in slot `i` as ended at its threshold under test, if still open.
    private mutating func commit(_ i: Int) {
        guard slots[i].open else { return }
        record(slots[i].a, slots[i].cum, passed: false)
        slots[i].open = false
    }

    /// Record(a, b, passed).
    private mutating func record(_ a: Int, _ b: Int, passed: Bool) {
        table.record(a: a, b: b, passed: passed, epoch: epoch, clock: clock, allowance: growthAllowance)
        dirty = true
    }

    /// The epoch of decayed counts: `clock div H`.
    private var epoch: Int { clock / halfLife }

    private mutating func noteDirection(downward: Bool) {
        directionBits = directionBits << 1 | (downward ? 1 : 0)
        directionCount = min(32, directionCount + 1)
    }

    // MARK: - Estimate and plan

    /// step(c) = min(max_pages, max(1, isqrt(floor(2 ρ c)))): the tail step after c pages.
    @inline(__always)
    private func step(_ c: Int) -> Int {
        let x = (2 * rho * Double(c)).rounded(.down)
        // Beyond (max_pages + 1)² the step is max_pages whatever x is: no conversion overflow.
        let cap = Double(maxPages + 1) * Double(maxPages + 1)
        guard x < cap else { return maxPages }
        return min(maxPages, max(1, integerSquareRoot(Int(x))))
    }

    /// S at x by the linear rule between nodes; `nil` beyond the last node.
    private func survival(at x: Int) -> Double? {
        if x == 0 { return 1 }
        var lower = 0
        var upper = nodes.count
        while lower < upper {
            let mid = (lower + upper) / 2
            if nodes[mid] < x { lower = mid + 1 } else { upper = mid }
        }
        guard lower < nodes.count else { return nil }
        let e = nodes[lower]
        let se = survival[lower]
        if e == x { return se }
        let p = lower > 0 ? nodes[lower - 1] : 0
        let sp = lower > 0 ? survival[lower - 1] : 1
        return se + (sp - se) * Double(e - x) / Double(e - p)
    }

    /// Estimates S from the table, then plans the thresholds that minimise the expected stall.
    private mutating func replan() {
        table.estimate(epoch: epoch, nodes: &nodes, survival: &survival)
        plan.removeAll(keepingCapacity: true)
        if plan.capacity < 2 * nodes.count + 1 { plan.reserveCapacity(2 * table.capacity + 1) }
        guard !nodes.isEmpty else {
            plan.append(config.effectiveInitialPages)
            return
        }
        // Candidates: 0, then for each node its midpoint from the predecessor (when ≥ 2 apart) and the node.
        // (The scratch and the plan are taken out of self while the closure below works on them.)
        var candidates = scratch
        scratch = PlanScratch()
        var chosenPlan = plan
        plan = []
        candidates.reset()
        candidates.append(0, 1)
        var p = 0
        var sp = 1.0
        // Index loops here and below: iterating an array allocates in unoptimised builds.
        for k in 0..<nodes.count {
            let e = nodes[k]
            let se = survival[k]
            if e - p >= 2 {
                let m = p + (e - p + 1) / 2
                candidates.append(m, se + (sp - se) * Double(e - m) / Double(e - p))
            }
            candidates.append(e, se)
            p = e
            sp = se
        }
        let last = candidates.count - 1
        candidates.withColumns { g, s, f, next in
            f[last] = s[last] > 0 ? rtt + Double(step(g[last])) * pt : 0
            next[last] = last
            var i = last - 1
            while i >= 0 {
                defer { i -= 1 }
                if s[i] <= 1e-12 {
                    f[i] = 0
                    next[i] = last
                    continue
                }
                var best = Double.infinity
                var chosen = last
                var j = i + 1
                while j <= last {
                    let linear = faultPrice + Double(g[j] - g[i]) * pt
                    // cost ≥ linear, and linear grows with j: once linear cannot beat the best,
                    // no later candidate can either. (The same choice as the full scan.)
                    if !(linear < best - 1e-9) { break }
                    let cost = linear + (s[j] / s[i]) * f[j]
                    if cost < best - 1e-9 {
                        best = cost
                        chosen = j
                    }
                    j += 1
                }
                f[i] = best
                next[i] = chosen
            }
            var at = 0
            repeat {
                at = next[at]
                chosenPlan.append(g[at])
            } while at != last && s[at] > 1e-12
        }
        scratch = candidates
        plan = chosenPlan
    }

    /// The bisection probe of the interval `(prev, t]`: the coarsest stale point
    /// `x = t − (w >> k)`, k = 1, 2, …, or `nil`.
    private mutating func probe(after prev: Int, upTo t: Int) -> Int? {
        let w = t - prev
        var k = 1
        while w >> k >= 1 {
            let x = t - (w >> k)
            if x > prev && isStale(x, stake: t - x) { return x }
            k += 1
        }
        return nil
    }

    /// Whether the estimate at x is stale: little evidence, or old in proportion to what is at stake.
    private mutating func isStale(_ x: Int, stake: Int) -> Bool {
        guard let (evidence, last) = table.evidence(b: x, epoch: epoch) else { return true }
        if evidence < config.minEvidence { return true }
        let (exposure, overflow) = (clock - last).multipliedReportingOverflow(by: stake)
        return overflow || Double(exposure) * pt >= config.probeStaleness * rtt
    }

    // MARK: - Windows

    /// A window of n pages at p, upward `[p, p + n)` or downward `[p − n + 1, p + 1)`,
    /// clipped to `[0, memory_pages)`.
    @inline(__always)
    private func place(_ n: Int, at p: Int, upward: Bool) -> (Int, Int) {
        var lo: Int
        var hi: Int
        if upward {
            lo = p
            let (sum, overflow) = p.addingReportingOverflow(n)
            hi = overflow ? Int.max : sum
        } else {
            lo = p - n + 1
            hi = p == Int.max ? Int.max : p + 1
        }
        if lo < 0 { lo = 0 }
        if config.memoryPages > 0 && hi > config.memoryPages { hi = config.memoryPages }
        return (lo, hi)
    }

    @inline(__always)
    private func answer(_ i: Int, _ outcome: Outcome) -> Decision {
        let slot = slots[i]
        // (Subscripts, not first/last: those allocate in unoptimised builds.)
        let n = plan.count
        return Decision(
            start: slot.lo, count: slot.hi - slot.lo, outcome: outcome, ntest: slot.cum,
            nmin: n > 0 ? plan[0] : config.effectiveInitialPages,
            nmax: n > 0 ? plan[n - 1] : config.effectiveInitialPages)
    }

    // MARK: - Observation

    /// What dp-plus has learned, for the session document.
    public var learned: DPPlusSnapshot {
        var points: [DPPlusSnapshot.Point] = []
        for t in plan { points.append(.init(threshold: t, survival: survival(at: t))) }
        let ones = (directionBits & (directionCount == 32 ? .max : (1 << directionCount) - 1)).nonzeroBitCount
        return DPPlusSnapshot(
            cases: clock, plan: points, estimate: zip(nodes, survival).map { .init(threshold: $0, survival: $1) },
            learnedGap: learnedGap, nearRate: nearRate,
            downwardShare: directionCount == 0 ? nil : Double(ones) / Double(directionCount),
            knownDirections: directionCount, depth: depth, transitions: table.count,
            slots: slots.byRecency.map { i in
                let s = slots[i]
                return .init(
                    stream: s.stream, start: s.lo, count: s.hi - s.lo, covered: s.cum, passed: s.a,
                    direction: s.d, open: s.open)
            })
    }

    /// Bytes this state holds beyond its fixed size: the tables' buffers.
    public var accountedBytes: Int {
        table.accountedBytes + slots.accountedBytes + scratch.accountedBytes
            + (nodes.capacity + plan.capacity + casePlan.capacity) * MemoryLayout<Int>.stride
            + survival.capacity * MemoryLayout<Double>.stride
    }
}

extension DynamicPrepagePlus {
    /// The whole state, for ``PrepagerState``.
    var state: DPPlusState {
        let (slotStates, order) = slots.state
        return DPPlusState(
            clock: clock, transitions: table.state, nodes: copy(nodes), survival: copy(survival), plan: copy(plan),
            dirty: dirty,
            depth: depth, learnedGap: learnedGap, nearRate: nearRate, directionBits: directionBits,
            directionCount: directionCount, slots: slotStates, order: order)
    }

    /// A copy of `a` in a buffer of its own: the state must not share the policy's
    /// buffers, or the next fault would copy them (allocate) before writing.
    private func copy<T>(_ a: [T]) -> [T] {
        a.withUnsafeBufferPointer { Array($0) }
    }

    /// The state `state` describes, under `config` (validated).
    init(checked config: PrepageConfig, state s: DPPlusState) throws(StateError) {
        self.init(checked: config)
        let t = config.transitions
        try StateError.check(s.clock, "learned.clock")
        clock = s.clock
        table = try TransitionTable(capacity: t, state: s.transitions, epoch: s.clock / halfLife, clock: s.clock)
        guard s.nodes.count == s.survival.count, s.nodes.count <= t else {
            throw StateError(
                field: "learned.estimate",
                "\(s.nodes.count) nodes and \(s.survival.count) survival values; accepted: as many of each, at most transitions = \(t)"
            )
        }
        for (k, x) in s.nodes.enumerated() {
            try StateError.check(x, "learned.nodes[\(k)]", in: (k == 0 ? 1 : s.nodes[k - 1] + 1)...StateError.maxValue)
        }
        for (k, v) in s.survival.enumerated() where !(v >= 0 && v <= 1) {
            throw StateError(field: "learned.survival[\(k)]", "\(v) is out of range; accepted: 0 … 1")
        }
        let maxPlan = 2 * (2 * t + 1)
        guard s.plan.count <= maxPlan else {
            throw StateError(field: "learned.plan", "\(s.plan.count) thresholds; a plan holds at most \(maxPlan)")
        }
        for (k, x) in s.plan.enumerated() {
            try StateError.check(x, "learned.plan[\(k)]", in: (k == 0 ? 1 : s.plan[k - 1] + 1)...StateError.maxValue)
        }
        guard s.dirty || !s.plan.isEmpty else {
            throw StateError(field: "learned.plan", "empty while not dirty; a clean plan has at least one threshold")
        }
        nodes = copy(s.nodes)
        survival = copy(s.survival)
        plan = copy(s.plan)
        // The working buffers at the sizes planning grows them to, so that the restored
        // policy decides without allocating where the original would not have.
        nodes.reserveCapacity(t)
        survival.reserveCapacity(t)
        plan.reserveCapacity(2 * t + 1)
        scratch.reserve(2 * t + 2)
        casePlan.reserveCapacity(maxPlan)
        dirty = s.dirty
        try StateError.check(s.depth, "learned.depth", in: 1...maxSlots)
        depth = s.depth
        try StateError.check(s.learnedGap, "learned.learned_gap")
        learnedGap = s.learnedGap
        guard s.nearRate >= 0 && s.nearRate <= 1 else {
            throw StateError(field: "learned.near_rate", "\(s.nearRate) is out of range; accepted: 0 … 1")
        }
        nearRate = s.nearRate
        try StateError.check(s.directionCount, "learned.direction_count", in: 0...32)
        directionBits = s.directionBits
        directionCount = s.directionCount
        slots = try SlotTable(capacity: maxSlots, slots: s.slots, order: s.order, maxPlan: maxPlan)
    }
}

/// What dp-plus has learned, as the session document shows it.
public struct DPPlusSnapshot: Sendable, Hashable {
    /// A threshold and the estimated probability that a case needs more pages than it.
    public struct Point: Sendable, Hashable {
        public var threshold: Int
        /// `nil` where unknown (beyond the last node of the estimate).
        public var survival: Double?
    }
    /// One recent case's slot, most recent first.
    public struct CaseSlot: Sendable, Hashable {
        public var stream: UInt32
        /// The last window handed out.
        public var start: Int
        public var count: Int
        /// Pages the case covers so far (the threshold under test) and the last threshold it passed.
        public var covered: Int
        public var passed: Int
        /// +1 upward, -1 downward, 0 not yet known.
        public var direction: Int8
        /// Whether the case's outcome at `covered` is still to be recorded.
        public var open: Bool
    }

    /// Cases started.
    public var cases: Int
    /// The current plan: the thresholds a new case is fetched to, with S at each.
    public var plan: [Point]
    /// The estimate's nodes (the thresholds with evidence), ascending.
    public var estimate: [Point]
    public var learnedGap: Int
    public var nearRate: Double
    /// The share of downward cases among the last known directions; `nil` before any.
    public var downwardShare: Double?
    public var knownDirections: Int
    public var depth: Int
    /// Entries in the transition table.
    public var transitions: Int
    public var slots: [CaseSlot]
}

/// isqrt(x): the largest r with r² ≤ x, for x ≥ 0.
@inline(__always)
func integerSquareRoot(_ x: Int) -> Int {
    var r = Int(Double(x).squareRoot())
    while r > 0 && r.multipliedReportingOverflow(by: r).overflow || r * r > x { r -= 1 }
    while case let (sq, false) = (r + 1).multipliedReportingOverflow(by: r + 1), sq <= x { r += 1 }
    return r
}

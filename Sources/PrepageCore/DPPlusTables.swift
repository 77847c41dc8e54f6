/// The bounded tables behind ``DynamicPrepagePlus``: transitions, slots, and the planner's scratch.

/// One transition "(had passed a) → (then tested b)": `n` cases, `c` of them
/// needed more than b; both decayed to epoch `e`; `last` is the clock of the last record.
struct TransitionEntry: Sendable, Hashable {
    var a: Int
    var b: Int
    var n: Double
    var c: Double
    var e: Int
    var last: Int
}

/// At most `capacity` transitions, ordered by (b, a) so that the estimate reads
/// them node by node and a node's evidence is one binary search away.
///
/// Reading an entry decays it first: with E the current epoch, n and c are
/// multiplied by 0.5^(E − e) (exact: a power of two) and e becomes E.
struct TransitionTable: Sendable {
    let capacity: Int
    /// Allocated at the first record, at full capacity: recording never allocates after.
    private(set) var entries: [TransitionEntry] = []

    init(capacity: Int) {
        self.capacity = capacity
    }

    var count: Int { entries.count }

    /// Where (a, b) is, or would be inserted, in (b, a) order.
    @inline(__always)
    private func position(a: Int, b: Int) -> (found: Bool, index: Int) {
        var lower = 0
        var upper = entries.count
        while lower < upper {
            let mid = (lower + upper) / 2
            let e = entries[mid]
            if e.b < b || (e.b == b && e.a < a) { lower = mid + 1 } else { upper = mid }
        }
        let found = lower < entries.count && entries[lower].a == a && entries[lower].b == b
        return (found, lower)
    }

    /// The first entry with `entries[i].b ≥ b`.
    @inline(__always)
    private func first(b: Int) -> Int {
        position(a: Int.min, b: b).index
    }

    @inline(__always)
    private mutating func decay(_ i: Int, epoch: Int) {
        let k = epoch - entries[i].e
        guard k > 0 else { return }
        let factor = k > 1_074 ? 0.0 : Double(sign: .plus, exponent: -k, significand: 1)
        entries[i].n *= factor
        entries[i].c *= factor
        entries[i].e = epoch
    }

    /// Record(a, b, passed): reads (decaying) or inserts (a, b); n += 1, c += 1 if passed, last = clock.
    /// A full table first evicts the entry with the smallest decayed n (ties: smaller
    /// last, then smaller (a, b)); so does a table whose growth would pass `allowance` bytes.
    mutating func record(a: Int, b: Int, passed: Bool, epoch: Int, clock: Int, allowance: Int = .max) {
        var (found, i) = position(a: a, b: b)
        if found {
            decay(i, epoch: epoch)
        } else {
            // The buffer doubles up to the table's capacity (a growth the allowance must cover).
            if entries.count == entries.capacity && entries.count < capacity {
                let grown = min(capacity, max(4, 2 * entries.capacity))
                if (grown - entries.capacity) * MemoryLayout<TransitionEntry>.stride <= allowance || entries.isEmpty {
                    entries.reserveCapacity(grown)
                }
            }
            if entries.count == capacity || (entries.count == entries.capacity && !entries.isEmpty) {
                evict(epoch: epoch)
                i = position(a: a, b: b).index
            }
            // Shifted by hand: Array.insert(_:at:) allocates in unoptimised builds.
            let entry = TransitionEntry(a: a, b: b, n: 0, c: 0, e: epoch, last: clock)
            entries.append(entry)
            var j = entries.count - 1
            while j > i {
                entries[j] = entries[j - 1]
                j -= 1
            }
            entries[i] = entry
        }
        entries[i].n += 1
        if passed { entries[i].c += 1 }
        entries[i].last = clock
    }

    private mutating func evict(epoch: Int) {
        var victim = 0
        for i in entries.indices {
            decay(i, epoch: epoch)
            let e = entries[i]
            let v = entries[victim]
            if e.n < v.n || (e.n == v.n && (e.last < v.last || (e.last == v.last && (e.a, e.b) < (v.a, v.b)))) {
                victim = i
            }
        }
        for j in victim..<(entries.count - 1) { entries[j] = entries[j + 1] }
        entries.removeLast()
    }

    /// Takes back an "ended" record of (a, b): n −= 1 (not below 0), c = min(c, n).
    /// - Returns: whether the entry was there.
    mutating func takeBack(a: Int, b: Int, epoch: Int) -> Bool {
        let (found, i) = position(a: a, b: b)
        guard found else { return false }
        decay(i, epoch: epoch)
        entries[i].n = max(0, entries[i].n - 1)
        entries[i].c = min(entries[i].c, entries[i].n)
        return true
    }

    /// Turns an "ended" record of (a, b) into "passed": c = min(n, c + 1).
    /// - Returns: whether the entry was there.
    mutating func fix(a: Int, b: Int, epoch: Int) -> Bool {
        let (found, i) = position(a: a, b: b)
        guard found else { return false }
        decay(i, epoch: epoch)
        entries[i].c = min(entries[i].n, entries[i].c + 1)
        return true
    }

    /// The evidence at b — the sum of decayed n over the entries (·, b), in ascending a —
    /// and the largest `last` among them; `nil` when there is none.
    mutating func evidence(b: Int, epoch: Int) -> (Double, Int)? {
        var i = first(b: b)
        guard i < entries.count && entries[i].b == b else { return nil }
        var sum = 0.0
        var last = Int.min
        while i < entries.count && entries[i].b == b {
            decay(i, epoch: epoch)
            sum += entries[i].n
            last = max(last, entries[i].last)
            i += 1
        }
        return (sum, last)
    }

    /// The product-limit estimate: for each b ascending, over the entries (a, b) whose a is
    /// 0 or an already estimated node, S(b) = min(Σ S(a)·c / Σ n, S(previous node or 0)),
    /// when Σ n > 0; otherwise b is not a node.
    mutating func estimate(epoch: Int, nodes: inout [Int], survival: inout [Double]) {
        nodes.removeAll(keepingCapacity: true)
        survival.removeAll(keepingCapacity: true)
        if nodes.capacity < capacity {
            nodes.reserveCapacity(capacity)
            survival.reserveCapacity(capacity)
        }
        var previous = 1.0
        var i = 0
        while i < entries.count {
            let b = entries[i].b
            var num = 0.0
            var den = 0.0
            while i < entries.count && entries[i].b == b {
                let a = entries[i].a
                if let sa = a == 0 ? 1.0 : Self.value(at: a, nodes: nodes, survival: survival) {
                    decay(i, epoch: epoch)
                    num += sa * entries[i].c
                    den += entries[i].n
                }
                i += 1
            }
            if den > 0 {
                let s = min(num / den, previous)
                nodes.append(b)
                survival.append(s)
                previous = s
            }
        }
    }

    /// S at node `a`, or `nil` when a is not a node.
    private static func value(at a: Int, nodes: [Int], survival: [Double]) -> Double? {
        var lower = 0
        var upper = nodes.count
        while lower < upper {
            let mid = (lower + upper) / 2
            if nodes[mid] < a { lower = mid + 1 } else { upper = mid }
        }
        return lower < nodes.count && nodes[lower] == a ? survival[lower] : nil
    }

    var accountedBytes: Int { entries.capacity * MemoryLayout<TransitionEntry>.stride }
}

/// One recent case: its last window `[lo, hi)`, its direction `d` (+1, −1, 0 = not yet
/// known), the direction of its first window `w` (+1, −1, 0 = a one-page probe), the
/// last threshold passed `a`, the threshold under test `cum`, its stream, whether
/// its outcome at `cum` is still to be recorded (`open`), and how many newer cases
/// its stream has started since (`newer`).
struct Slot: Sendable, Hashable {
    var lo: Int
    var hi: Int
    var d: Int8
    var w: Int8
    var a: Int
    var cum: Int
    var stream: UInt32
    var open: Bool
    var newer: Int
}

/// At most `capacity` slots, each with its case's plan, in least-recently-used order.
///
/// The windows are kept column by column, and the recency order as a doubly linked
/// list over slot indices: making a slot the most recent, and finding the least
/// recent, cost O(1); the scans of a fault walk the list from the most recent and
/// stop at the first slot of the fault's stream that matches.
///
/// The plans live in one pool: a new case's plan is appended; when the pool is
/// full the live plans are moved to its front (compaction), and it grows only when
/// they do not leave room, so a session with steady plans stops allocating.
struct SlotTable: Sendable {
    let capacity: Int
    private(set) var count = 0
    // The columns a fault's scans read.
    private var lo: [Int] = []
    private var hi: [Int] = []
    private var d: [Int8] = []
    private var stream: [UInt32] = []
    /// The rest of each slot.
    private var rest: [Slot] = []
    // Recency: newer[i] is the next more recent slot, older[i] the next less recent; -1 at the ends.
    private var newer: [Int] = []
    private var older: [Int] = []
    private var mostRecent = -1
    private var leastRecent = -1
    private var planStart: [Int] = []
    private var planCount: [Int] = []
    private var pool: [Int] = []
    private var poolUsed = 0

    init(capacity: Int) {
        self.capacity = capacity
    }

    subscript(i: Int) -> Slot {
        @inline(__always) get {
            var slot = rest[i]
            slot.lo = lo[i]
            slot.hi = hi[i]
            slot.d = d[i]
            slot.stream = stream[i]
            return slot
        }
        @inline(__always) set {
            lo[i] = newValue.lo
            hi[i] = newValue.hi
            d[i] = newValue.d
            stream[i] = newValue.stream
            rest[i] = newValue
        }
    }

    /// Whether slot `i` is a case of stream `s` whose outcome is still open.
    @inline(__always)
    func isOpen(_ i: Int, of s: UInt32) -> Bool { stream[i] == s && rest[i].open }

    /// Step 1: the slot whose window holds `p` — stream s's most recent such slot, else
    /// the most recent of any stream — or -1.
    @inline(__always)
    func holder(of p: Int, stream s: UInt32) -> Int {
        // One branch-free pass first: usually no window holds p.
        var held: UInt = 0
        lo.withUnsafeBufferPointer { lo in
            hi.withUnsafeBufferPointer { hi in
                for i in 0..<count {
                    held |= UInt(bitPattern: p &- lo[i]) < UInt(bitPattern: hi[i] &- lo[i]) ? 1 : 0
                }
            }
        }
        guard held != 0 else { return -1 }
        var any = -1
        var i = mostRecent
        while i >= 0 {
            if UInt(bitPattern: p &- lo[i]) < UInt(bitPattern: hi[i] &- lo[i]) {
                if stream[i] == s { return i }
                if any < 0 { any = i }
            }
            i = older[i]
        }
        return any
    }

    /// Step 2: the slot `p` continues with slack `g` — upward (`hi ≤ p ≤ hi + g`) or downward
    /// (`lo − 1 − g ≤ p ≤ lo − 1`), in its direction once known — stream s's most recent
    /// first, then the most recent; -1 when none. `upward` tells which way.
    @inline(__always)
    func continued(by p: Int, stream s: UInt32, gap g: Int) -> (slot: Int, upward: Bool) {
        let gap = UInt(bitPattern: g)
        // A branch-free pass first: a new case continues nothing.
        var hit: UInt = 0
        lo.withUnsafeBufferPointer { lo in
            hi.withUnsafeBufferPointer { hi in
                for i in 0..<count {
                    hit |= UInt(bitPattern: p &- hi[i]) <= gap || UInt(bitPattern: lo[i] &- 1 &- p) <= gap ? 1 : 0
                }
            }
        }
        guard hit != 0 else { return (-1, false) }
        var any = -1
        var anyUp = false
        var i = mostRecent
        while i >= 0 {
            let dir = d[i]
            // p, lo, hi ≥ 0: neither difference overflows.
            let up = dir >= 0 && UInt(bitPattern: p &- hi[i]) <= gap
            if up || (dir <= 0 && UInt(bitPattern: lo[i] &- 1 &- p) <= gap) {
                if stream[i] == s { return (i, up) }
                if any < 0 {
                    any = i
                    anyUp = up
                }
            }
            i = older[i]
        }
        return (any, anyUp)
    }

    /// Step 3: the most recent slot `p` lies just past — `g < p − hi ≤ g + near` or
    /// `g < lo − 1 − p ≤ g + near` — and that distance; (-1, 0) when none.
    func nearMiss(of p: Int, gap g: Int, near: Int) -> (slot: Int, offset: Int) {
        // A branch-free pass first: usually nothing is that close.
        let first = UInt(bitPattern: g + 1)
        let width = UInt(bitPattern: near)
        var hit: UInt = 0
        lo.withUnsafeBufferPointer { lo in
            hi.withUnsafeBufferPointer { hi in
                for i in 0..<count {
                    let above = UInt(bitPattern: p &- hi[i]) &- first
                    let below = UInt(bitPattern: lo[i] &- 1 &- p) &- first
                    hit |= min(above, below) < width ? 1 : 0
                }
            }
        }
        guard hit != 0 else { return (-1, 0) }
        var i = mostRecent
        while i >= 0 {
            let above = p - hi[i]
            if above > g && above <= g + near { return (i, above) }
            let below = lo[i] - 1 - p
            if below > g && below <= g + near { return (i, below) }
            i = older[i]
        }
        return (-1, 0)
    }

    /// Makes slot `i` the most recent.
    @inline(__always)
    mutating func touch(_ i: Int) {
        guard mostRecent != i else { return }
        unlink(i)
        older[i] = mostRecent
        newer[i] = -1
        if mostRecent >= 0 { newer[mostRecent] = i }
        mostRecent = i
        if leastRecent < 0 { leastRecent = i }
    }

    private mutating func unlink(_ i: Int) {
        let n = newer[i]
        let o = older[i]
        if n >= 0 { older[n] = o } else if mostRecent == i { mostRecent = o }
        if o >= 0 { newer[o] = n } else if leastRecent == i { leastRecent = n }
        newer[i] = -1
        older[i] = -1
    }

    /// Bytes one slot takes in the columns.
    private static let slotBytes =
        6 * MemoryLayout<Int>.stride + MemoryLayout<Int8>.stride + MemoryLayout<UInt32>.stride
        + MemoryLayout<Slot>.stride

    /// Whether a new slot needs the columns to grow, by how many slots.
    private var growth: Int {
        guard count < capacity && count == rest.capacity else { return 0 }
        return min(capacity, max(4, 2 * rest.capacity)) - rest.capacity
    }

    /// The slot a new case would replace: the least recently used, when the table is full or
    /// its growth would pass `allowance` bytes (a first slot is always made).
    func victim(allowance: Int = .max) -> Int? {
        if count == capacity { return leastRecent }
        return count > 0 && growth * Self.slotBytes > allowance ? leastRecent : nil
    }

    /// Adds a case as the most recent: in a new slot, or in place of ``victim(allowance:)``.
    mutating func admit(_ slot: Slot, allowance: Int = .max) -> Int {
        let i: Int
        if let v = victim(allowance: allowance) {
            i = v
            planCount[i] = 0
        } else {
            let more = growth
            if more > 0 {
                let n = rest.capacity + more
                lo.reserveCapacity(n)
                hi.reserveCapacity(n)
                d.reserveCapacity(n)
                stream.reserveCapacity(n)
                rest.reserveCapacity(n)
                newer.reserveCapacity(n)
                older.reserveCapacity(n)
                planStart.reserveCapacity(n)
                planCount.reserveCapacity(n)
            }
            i = count
            count += 1
            lo.append(0)
            hi.append(0)
            d.append(0)
            stream.append(0)
            rest.append(slot)
            newer.append(-1)
            older.append(-1)
            planStart.append(0)
            planCount.append(0)
        }
        self[i] = slot
        touch(i)
        return i
    }

    /// Slot indices from the most recent to the least, starting at `from` (-1: the most recent).
    @inline(__always)
    func next(after i: Int) -> Int { i < 0 ? mostRecent : older[i] }

    /// Every slot, most recent first.
    var byRecency: [Int] {
        var list: [Int] = []
        var i = mostRecent
        while i >= 0 {
            list.append(i)
            i = older[i]
        }
        return list
    }

    /// Gives slot `i` its plan (ascending thresholds). When the pool would grow past
    /// `allowance` bytes, the plan is cut to what fits (its last thresholds are dropped).
    mutating func setPlan(_ i: Int, _ thresholds: [Int], allowance: Int = .max) {
        var n = thresholds.count
        if poolUsed + n > pool.count {
            compact()
            // Grow when compaction leaves less than half the pool free, not only when the
            // plan does not fit: a pool kept just full would be compacted (O(slots²)) at
            // every new case. With the slack, compactions are one per pool's worth of plans.
            if 2 * (poolUsed + n) > pool.count {
                let target = max(64, 2 * (poolUsed + n))
                if (target - pool.count) * MemoryLayout<Int>.stride <= allowance || pool.isEmpty {
                    var grown = pool
                    grown.append(contentsOf: repeatElement(0, count: target - pool.count))
                    pool = grown
                } else {
                    n = min(n, pool.count - poolUsed)
                }
            }
        }
        for k in 0..<n { pool[poolUsed + k] = thresholds[k] }
        planStart[i] = poolUsed
        planCount[i] = n
        poolUsed += n
    }

    /// Moves the live plans to the front of the pool, in the order they lie in it.
    private mutating func compact() {
        var next = 0
        while true {
            // The live plan with the smallest start at or past `next` (at most max_slots of them).
            var pick = -1
            for i in 0..<count where planCount[i] > 0 && planStart[i] >= next {
                if pick < 0 || planStart[i] < planStart[pick] { pick = i }
            }
            guard pick >= 0 else { break }
            let start = planStart[pick]
            if start != next {
                for k in 0..<planCount[pick] { pool[next + k] = pool[start + k] }
                planStart[pick] = next
            }
            next += planCount[pick]
        }
        poolUsed = next
    }

    /// The first threshold of slot `i`'s plan above `cum`, or `nil`.
    @inline(__always)
    func threshold(of i: Int, above cum: Int) -> Int? {
        let start = planStart[i]
        for k in start..<(start + planCount[i]) where pool[k] > cum { return pool[k] }
        return nil
    }

    var accountedBytes: Int {
        (lo.capacity + hi.capacity + newer.capacity + older.capacity + planStart.capacity + planCount.capacity
            + pool.capacity) * MemoryLayout<Int>.stride
            + d.capacity + stream.capacity * MemoryLayout<UInt32>.stride
            + rest.capacity * MemoryLayout<Slot>.stride
    }
}

/// The planner's candidates and its dynamic program, column by column.
struct PlanScratch: Sendable {
    private var g: [Int] = []
    private var s: [Double] = []
    private var f: [Double] = []
    private var next: [Int] = []
    private(set) var count = 0

    mutating func reset() { count = 0 }

    /// Grows the columns to `n` candidates now, so that planning does not allocate later.
    mutating func reserve(_ n: Int) {
        while g.count < n {
            g.append(0)
            s.append(0)
            f.append(0)
            next.append(0)
        }
    }

    mutating func append(_ threshold: Int, _ survival: Double) {
        if count == g.count {
            g.append(threshold)
            s.append(survival)
            f.append(0)
            next.append(0)
        } else {
            g[count] = threshold
            s[count] = survival
        }
        count += 1
    }

    mutating func withColumns<R>(
        _ body: (
            UnsafeBufferPointer<Int>, UnsafeBufferPointer<Double>, UnsafeMutableBufferPointer<Double>,
            UnsafeMutableBufferPointer<Int>
        ) -> R
    ) -> R {
        g.withUnsafeBufferPointer { g in
            s.withUnsafeBufferPointer { s in
                f.withUnsafeMutableBufferPointer { f in
                    next.withUnsafeMutableBufferPointer { next in body(g, s, f, next) }
                }
            }
        }
    }

    var accountedBytes: Int {
        (g.capacity + next.capacity) * MemoryLayout<Int>.stride + (s.capacity + f.capacity)
            * MemoryLayout<Double>.stride
    }
}

// MARK: - State

extension TransitionTable {
    /// The entries, in table order.
    var state: [DPPlusState.Transition] {
        entries.map { .init(a: $0.a, b: $0.b, n: $0.n, c: $0.c, e: $0.e, last: $0.last) }
    }

    /// A table of `capacity` holding `state`'s entries, which must be in strictly
    /// ascending (b, a) order with 0 ≤ a < b, 0 ≤ c ≤ n finite, 0 ≤ e ≤ `epoch`, 0 ≤ last ≤ `clock`.
    init(capacity: Int, state: [DPPlusState.Transition], epoch: Int, clock: Int) throws(StateError) {
        self.init(capacity: capacity)
        guard state.count <= capacity else {
            throw StateError(
                field: "learned.transitions", "\(state.count) entries; the table holds transitions = \(capacity)")
        }
        guard !state.isEmpty else { return }
        entries.reserveCapacity(capacity)
        for (i, t) in state.enumerated() {
            let at = "learned.transitions[\(i)]"
            try StateError.check(t.a, "\(at).a")
            try StateError.check(t.b, "\(at).b", in: (t.a + 1)...StateError.maxValue)
            try StateError.check(t.e, "\(at).e", in: 0...epoch)
            try StateError.check(t.last, "\(at).last", in: 0...clock)
            guard t.n.isFinite, t.n >= 0, t.c.isFinite, t.c >= 0, t.c <= t.n else {
                throw StateError(field: at, "n = \(t.n), c = \(t.c); accepted: 0 ≤ c ≤ n, finite")
            }
            if let p = entries.last, !(p.b < t.b || (p.b == t.b && p.a < t.a)) {
                throw StateError(field: at, "entries must be in strictly ascending (b, a) order")
            }
            entries.append(TransitionEntry(a: t.a, b: t.b, n: t.n, c: t.c, e: t.e, last: t.last))
        }
    }
}

extension SlotTable {
    /// The slots in table order, each with its plan, and the recency order (most recent first).
    var state: (slots: [DPPlusState.Slot], order: [Int]) {
        var out: [DPPlusState.Slot] = []
        out.reserveCapacity(count)
        for i in 0..<count {
            let s = self[i]
            var plan: [Int] = []
            plan.reserveCapacity(planCount[i])
            for k in planStart[i]..<(planStart[i] + planCount[i]) { plan.append(pool[k]) }
            out.append(
                .init(
                    lo: s.lo, hi: s.hi, direction: s.d, firstDirection: s.w, passed: s.a, covered: s.cum,
                    stream: s.stream, open: s.open, newer: s.newer, plan: plan))
        }
        return (out, byRecency)
    }

    /// The table `slots` and `order` describe: `order` a permutation of the slots'
    /// indices, most recent first.
    init(capacity: Int, slots states: [DPPlusState.Slot], order: [Int], maxPlan: Int) throws(StateError) {
        self.init(capacity: capacity)
        guard states.count <= capacity else {
            throw StateError(field: "learned.slots", "\(states.count) slots; max_slots is \(capacity)")
        }
        guard order.count == states.count else {
            throw StateError(
                field: "learned.order", "\(order.count) entries for \(states.count) slots; give each slot once")
        }
        var seen = [Bool](repeating: false, count: states.count)
        for (rank, i) in order.enumerated() {
            guard (0..<states.count).contains(i), !seen[i] else {
                throw StateError(
                    field: "learned.order[\(rank)]",
                    "\(i) is not a slot index not yet listed; accepted: a permutation of 0 … \(states.count - 1)")
            }
            seen[i] = true
        }
        guard !states.isEmpty else { return }
        for (i, s) in states.enumerated() {
            let at = "learned.slots[\(i)]"
            try StateError.check(s.lo, "\(at).lo")
            try StateError.check(s.hi, "\(at).hi", in: s.lo...StateError.maxValue)
            try StateError.check(Int(s.direction), "\(at).direction", in: -1...1)
            try StateError.check(Int(s.firstDirection), "\(at).first_direction", in: -1...1)
            try StateError.check(s.passed, "\(at).passed")
            try StateError.check(s.covered, "\(at).covered", in: s.passed...StateError.maxValue)
            try StateError.check(s.newer, "\(at).newer")
            guard s.plan.count <= maxPlan else {
                throw StateError(field: "\(at).plan", "\(s.plan.count) thresholds; a plan holds at most \(maxPlan)")
            }
            for (k, t) in s.plan.enumerated() {
                try StateError.check(t, "\(at).plan[\(k)]", in: (k == 0 ? 1 : s.plan[k - 1] + 1)...StateError.maxValue)
            }
        }
        // Admitted from the least recent to the most recent: each admission makes its slot
        // the most recent, so the list ends in `order`; the slots keep their indices.
        lo = Array(repeating: 0, count: states.count)
        hi = lo
        d = Array(repeating: 0, count: states.count)
        stream = Array(repeating: 0, count: states.count)
        rest = states.map {
            Slot(
                lo: $0.lo, hi: $0.hi, d: $0.direction, w: $0.firstDirection, a: $0.passed, cum: $0.covered,
                stream: $0.stream, open: $0.open, newer: $0.newer)
        }
        newer = Array(repeating: -1, count: states.count)
        older = newer
        planStart = Array(repeating: 0, count: states.count)
        planCount = planStart
        for array in [\SlotTable.lo, \.hi, \.newer, \.older, \.planStart, \.planCount] {
            self[keyPath: array].reserveCapacity(capacity)
        }
        d.reserveCapacity(capacity)
        stream.reserveCapacity(capacity)
        rest.reserveCapacity(capacity)
        count = states.count
        for i in 0..<count { self[i] = rest[i] }
        for i in order.reversed() { touch(i) }
        // The pool as the growth rule of setPlan leaves it with these plans live (and room
        // for one more of the longest): a restored table does not grow on its next cases.
        let live = states.reduce(0) { $0 + $1.plan.count }
        pool = Array(repeating: 0, count: max(64, 2 * (live + maxPlan)))
        for (i, s) in states.enumerated() { setPlan(i, s.plan) }
    }
}

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
    /// last, then smaller (a, b)).
    mutating func record(a: Int, b: Int, passed: Bool, epoch: Int, clock: Int) {
        var (found, i) = position(a: a, b: b)
        if found {
            decay(i, epoch: epoch)
        } else {
            if entries.isEmpty { entries.reserveCapacity(capacity) }
            if entries.count == capacity {
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

/// At most `capacity` slots in least-recently-used order, each with its case's plan.
///
/// The plans live in one pool: a new case's plan is appended; when the pool is
/// full the live plans are moved to its front (compaction), and it grows only when
/// they do not leave room, so a session with steady plans stops allocating.
struct SlotTable: Sendable {
    let capacity: Int
    private var slots: [Slot] = []
    /// Slot indices, most recent first.
    private(set) var order: [Int] = []
    private var planStart: [Int] = []
    private var planCount: [Int] = []
    private var pool: [Int] = []
    private var poolUsed = 0

    init(capacity: Int) {
        self.capacity = capacity
    }

    var count: Int { slots.count }

    subscript(i: Int) -> Slot {
        @inline(__always) get { slots[i] }
        @inline(__always) set { slots[i] = newValue }
    }

    /// The first slot, in recency order, whose window satisfies `matches`, preferring
    /// slots of stream `s`.
    @inline(__always)
    func find(stream s: UInt32, where matches: (Slot) -> Bool) -> Int? {
        var any: Int?
        for rank in 0..<order.count {
            let i = order[rank]
            let slot = slots[i]
            guard matches(slot) else { continue }
            if slot.stream == s { return i }
            if any == nil { any = i }
        }
        return any
    }

    /// Makes slot `i` the most recent.
    @inline(__always)
    mutating func touch(_ i: Int) {
        guard order[0] != i else { return }
        var rank = 1
        while order[rank] != i { rank += 1 }
        while rank > 0 {
            order[rank] = order[rank - 1]
            rank -= 1
        }
        order[0] = i
    }

    /// The slot a new case would replace: the least recently used, when the table is full.
    var victim: Int? { slots.count == capacity ? order[order.count - 1] : nil }

    /// Adds a case as the most recent, in a new slot or in place of ``victim``.
    mutating func admit(_ slot: Slot) -> Int {
        let i: Int
        if slots.count < capacity {
            if slots.isEmpty {
                slots.reserveCapacity(capacity)
                order.reserveCapacity(capacity)
                planStart.reserveCapacity(capacity)
                planCount.reserveCapacity(capacity)
            }
            i = slots.count
            slots.append(slot)
            order.append(i)
            planStart.append(0)
            planCount.append(0)
        } else {
            i = order[order.count - 1]
            slots[i] = slot
            planCount[i] = 0
        }
        touch(i)
        return i
    }

    /// Gives slot `i` its plan (ascending thresholds).
    mutating func setPlan(_ i: Int, _ thresholds: [Int]) {
        let n = thresholds.count
        if poolUsed + n > pool.count {
            compact()
            if poolUsed + n > pool.count {
                var grown = pool
                grown.append(contentsOf: repeatElement(0, count: max(64, 2 * (poolUsed + n)) - pool.count))
                pool = grown
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
            for i in slots.indices where planCount[i] > 0 && planStart[i] >= next {
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

    /// Slot `i`'s plan.
    func plan(of i: Int) -> ArraySlice<Int> {
        pool[planStart[i]..<(planStart[i] + planCount[i])]
    }

    var accountedBytes: Int {
        slots.capacity * MemoryLayout<Slot>.stride
            + (order.capacity + planStart.capacity + planCount.capacity + pool.capacity) * MemoryLayout<Int>.stride
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
        (g.capacity + next.capacity) * MemoryLayout<Int>.stride + (s.capacity + f.capacity) * MemoryLayout<Double>.stride
    }
}

/// The streams (vCPUs) of one session and their last windows: step 1 of
/// `docs/dp.md` and the least-recently-used eviction, shared by every policy that
/// tracks a case per stream.
///
/// Copy on write: the table is a class, copied when a mutation finds it shared.
struct Streams: Sendable {
    /// Made at the first fault, so an idle session holds no table.
    private var table: StreamTable?
    /// Counts non-repeat faults: the clock of stream recency.
    private var tick: UInt64 = 0
    /// Streams in the table. Kept here, not in the class, so reading it costs no
    /// dynamic exclusivity check on the fault path.
    private(set) var count = 0
    let maxStreams: Int
    /// Heap bytes the table may still grow by (a memory budget's remainder).
    /// A new stream that would need more reuses the least recently used
    /// stream's slot, as it does at `maxStreams`. Default: unbounded.
    var growthAllowance = Int.max

    /// Heap bytes held: the table (its object and five columns), or 0 before the first fault.
    var heapBytes: Int {
        guard let t = table else { return 0 }
        return StreamTable.bytes(capacity: t.capacity)
    }

    init(maxStreams: Int) {
        self.maxStreams = maxStreams
    }

    /// Step 1: finds stream `s` (`own`, or -1) and the window a repeat of `p`
    /// answers (`holder`, or -1): the stream's own window when it holds `p`, else
    /// that of the most recently used stream whose window holds `p`.
    @inline(__always)
    mutating func lookup(stream s: UInt32, page p: Int) -> (table: StreamTable, own: Int, holder: Int) {
        if table == nil {
            table = StreamTable(capacity: min(maxStreams, 4))
        } else if !isKnownUniquelyReferenced(&table!) {
            table = table!.copy(count: count)
        }
        let t = table.unsafelyUnwrapped
        // One branch-free pass; a repeat is rare, so which window is looked for only then.
        var own = -1
        var held: UInt = 0
        let ids = t.ids
        let los = t.lo
        let his = t.hi
        for i in 0..<count {
            own = ids[i] == s ? i : own
            let lo = los[i]
            held |= UInt(bitPattern: p &- lo) < UInt(bitPattern: his[i] &- lo) ? 1 : 0
        }
        guard held != 0 else { return (t, own, -1) }
        if own >= 0 && t.holds(own, p) { return (t, own, own) }  // a retried request
        var holder = -1
        var newest: UInt64 = 0
        for i in 0..<count where t.holds(i, p) && t.lastUsed[i] >= newest {
            holder = i
            newest = t.lastUsed[i]
        }
        return (t, own, holder)
    }

    /// Marks stream `i` as used by a fault other than a repeat.
    @inline(__always)
    mutating func touch(_ i: Int, in t: StreamTable) {
        tick &+= 1
        t.lastUsed[i] = tick
    }

    /// A slot for a stream not yet seen, its id and recency set: a new one while
    /// fewer than `maxStreams` exist, else the least recently used stream's
    /// (forgotten; what it pushed onto the records stays).
    mutating func admit(stream s: UInt32) -> (table: StreamTable, index: Int) {
        tick &+= 1
        var t = table!
        let i: Int
        let grownCapacity = min(maxStreams, t.capacity * 2)
        let mayGrow =
            count < t.capacity
            || StreamTable.bytes(capacity: grownCapacity) - StreamTable.bytes(capacity: t.capacity) <= growthAllowance
        if count < maxStreams && mayGrow {
            if count == t.capacity {
                t = t.grown(to: grownCapacity, count: count)
                table = t
            }
            i = count
            count += 1
        } else {
            var victim = 0
            for j in 0..<count where t.lastUsed[j] < t.lastUsed[victim] { victim = j }
            i = victim
        }
        t.ids[i] = s
        t.lastUsed[i] = tick
        return (t, i)
    }

    /// Every tracked stream, ordered by id.
    var snapshots: [StreamSnapshot] {
        guard let t = table else { return [] }
        return (0..<count).map { i in
            let c = t.cases[i]
            return StreamSnapshot(
                stream: t.ids[i], ntest: c.ntest, minHit: c.minHit, maxHit: c.maxHit,
                start: t.lo[i], count: t.hi[i] - t.lo[i], up: c.up)
        }.sorted { $0.stream < $1.stream }
    }
}

/// The case of one stream (`docs/dp.md`, "State"); its window lives beside it in the table.
struct CaseState: Sendable {
    var ntest: Int
    var caseGuess: Int
    var caseFaults = 1
    var minHit = 0
    var maxHit = 0
    var up = true

    init(guess: Int) {
        ntest = guess
        caseGuess = guess
    }
}

/// The streams of one session, column by column so that the scan of step 1
/// touches only ids and windows. Copied on write by ``DynamicPrepage``.
final class StreamTable: @unchecked Sendable {
    let capacity: Int

    /// Bytes of one stream's slot across the five columns.
    static let bytesPerSlot =
        MemoryLayout<UInt32>.stride + 2 * MemoryLayout<Int>.stride + MemoryLayout<UInt64>.stride
        + MemoryLayout<CaseState>.stride

    /// Heap bytes of a table of `capacity` slots: the object and its five allocations.
    static func bytes(capacity: Int) -> Int {
        MemoryAccounting.allocation(16 + 6 * 8)
            + MemoryAccounting.allocation(capacity * MemoryLayout<UInt32>.stride)
            + 3 * MemoryAccounting.allocation(capacity * 8)
            + MemoryAccounting.allocation(capacity * MemoryLayout<CaseState>.stride)
    }
    let ids: UnsafeMutablePointer<UInt32>
    /// The last window `[lo, hi)` handed out to each stream.
    let lo: UnsafeMutablePointer<Int>
    let hi: UnsafeMutablePointer<Int>
    /// The tick of each stream's last fault other than a repeat.
    let lastUsed: UnsafeMutablePointer<UInt64>
    let cases: UnsafeMutablePointer<CaseState>

    init(capacity: Int) {
        self.capacity = capacity
        ids = .allocate(capacity: capacity)
        lo = .allocate(capacity: capacity)
        hi = .allocate(capacity: capacity)
        lastUsed = .allocate(capacity: capacity)
        cases = .allocate(capacity: capacity)
    }

    /// A table of `capacity` holding the same first `count` streams.
    func grown(to capacity: Int, count: Int) -> StreamTable {
        let t = StreamTable(capacity: capacity)
        t.ids.update(from: ids, count: count)
        t.lo.update(from: lo, count: count)
        t.hi.update(from: hi, count: count)
        t.lastUsed.update(from: lastUsed, count: count)
        t.cases.initialize(from: cases, count: count)
        return t
    }

    func copy(count: Int) -> StreamTable { grown(to: capacity, count: count) }

    /// Whether stream `i`'s window holds `p`.
    @inline(__always)
    func holds(_ i: Int, _ p: Int) -> Bool {
        UInt(bitPattern: p &- lo[i]) < UInt(bitPattern: hi[i] &- lo[i])
    }

    deinit {
        ids.deallocate()
        lo.deallocate()
        hi.deallocate()
        lastUsed.deallocate()
        cases.deallocate()  // CaseState is trivial: nothing to deinitialize
    }
}

extension Streams {
    /// The table as a plain value, in table order.
    var state: StreamTableState {
        var entries: [StreamTableState.Entry] = []
        if let t = table {
            entries.reserveCapacity(count)
            for i in 0..<count {
                let c = t.cases[i]
                entries.append(
                    StreamTableState.Entry(
                        stream: t.ids[i], lo: t.lo[i], hi: t.hi[i], lastUsed: t.lastUsed[i], ntest: c.ntest,
                        caseGuess: c.caseGuess, caseFaults: c.caseFaults, minHit: c.minHit, maxHit: c.maxHit, up: c.up))
            }
        }
        return StreamTableState(tick: tick, streams: entries)
    }

    /// The table `state` describes, of the capacity the original had grown to
    /// (4, doubling, at most `maxStreams`: the smallest that holds its streams).
    init(maxStreams: Int, state: StreamTableState, field: String) throws(StateError) {
        self.init(maxStreams: maxStreams)
        let n = state.streams.count
        guard n <= maxStreams else {
            throw StateError(field: "\(field).streams", "\(n) streams; max_streams is \(maxStreams)")
        }
        tick = state.tick
        guard n > 0 else { return }
        var capacity = min(maxStreams, 4)
        while capacity < n { capacity = min(maxStreams, capacity * 2) }
        let t = StreamTable(capacity: capacity)
        var seen = Set<UInt32>()
        for (i, e) in state.streams.enumerated() {
            let at = "\(field).streams[\(i)]"
            guard seen.insert(e.stream).inserted else {
                throw StateError(field: "\(at).stream", "stream \(e.stream) appears twice")
            }
            try StateError.check(e.lo, "\(at).lo")
            try StateError.check(e.hi, "\(at).hi", in: e.lo...StateError.maxValue)
            try StateError.check(e.ntest, "\(at).ntest")
            try StateError.check(e.caseGuess, "\(at).case_guess")
            try StateError.check(e.caseFaults, "\(at).case_faults")
            try StateError.check(e.minHit, "\(at).min_hit")
            try StateError.check(e.maxHit, "\(at).max_hit")
            t.ids[i] = e.stream
            t.lo[i] = e.lo
            t.hi[i] = e.hi
            t.lastUsed[i] = e.lastUsed
            var c = CaseState(guess: e.caseGuess)
            c.ntest = e.ntest
            c.caseFaults = e.caseFaults
            c.minHit = e.minHit
            c.maxHit = e.maxHit
            c.up = e.up
            (t.cases + i).initialize(to: c)
        }
        table = t
        count = n
    }
}

/// How heap memory is counted for ``Prepager/accountedBytes``.
public enum MemoryAccounting {
    /// The bytes malloc really takes for a request of `n` bytes: glibc adds an
    /// 8-byte header and rounds the chunk to 16 (32 at least).
    @inline(__always)
    public static func allocation(_ n: Int) -> Int {
        max(32, (n + 8 + 15) & ~15)
    }
}

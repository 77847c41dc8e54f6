/// The DP (Dynamic Prepage) state of one session, exactly as `dp.md` fixes it.
///
/// What is learned — `NMin`, `NMax`, `MinRecord`, `MaxRecord` — is shared by
/// the session; what a case is doing is kept per stream (vCPU), at most
/// `max_streams` of them, least recently used forgotten first.
///
/// ```swift
/// var dp = try DynamicPrepage(config: PrepageConfig(maxPages: 64))
/// let d = try dp.decide(page: 4_096, stream: 0)   // fetch [d.start, d.start + d.count)
/// ```
///
/// > Note: ``decide(page:stream:)`` does not allocate once a stream is known:
/// > the records are rings allocated at `k` when the state is made, and the
/// > stream table grows only when a new stream joins.
public struct DynamicPrepage: Sendable {
    /// The validated configuration (`initialPages` clamped).
    public let config: PrepageConfig

    /// The current range.
    public private(set) var nmin: Int
    public private(set) var nmax: Int
    private var minRecord: Record
    private var maxRecord: Record
    /// One entry per stream seen, at most `max_streams`; made at the first fault.
    private var table: StreamTable?
    /// Counts non-repeat faults: the clock of stream recency.
    private var tick: UInt64 = 0

    private let literal: Bool

    /// Makes a fresh state.
    /// - Throws: ``ConfigError`` when the configuration is invalid.
    public init(config: PrepageConfig) throws(ConfigError) {
        let config = try config.validated()
        self.config = config
        nmin = config.minPages
        nmax = config.maxPages
        minRecord = Record(capacity: config.k)
        maxRecord = Record(capacity: config.k)
        literal = config.policy == .dpLiteral
    }

    /// Decides one fault of page `page` raised by stream `stream` (`dp.md`, "On each fault").
    ///
    /// - Throws: ``FaultError`` for a fault outside guest memory; nothing changes then.
    public mutating func decide(page p: Int, stream s: UInt32) throws(FaultError) -> Decision {
        guard p >= 0 else { throw .negativePage(p) }
        if config.memoryPages > 0 && p >= config.memoryPages {
            throw .beyondMemory(page: p, memoryPages: config.memoryPages)
        }
        if table == nil {
            table = StreamTable(capacity: min(config.maxStreams, 4))
        } else if !isKnownUniquelyReferenced(&table!) {
            table = table!.copy()
        }
        let t = table.unsafelyUnwrapped

        // Step 1: find the stream and whether any window holds p (one branch-free pass;
        // a repeat is rare, so which window is looked for only then).
        var own = -1
        var held: UInt = 0
        let ids = t.ids, los = t.lo, his = t.hi
        for i in 0..<t.count {
            own = ids[i] == s ? i : own
            let lo = los[i]
            held |= UInt(bitPattern: p &- lo) < UInt(bitPattern: his[i] &- lo) ? 1 : 0
        }
        var holder = -1
        if held != 0 {
            holder = Self.repeatWindow(t, own: own, page: p)
        }
        if holder >= 0 {
            return Decision(
                start: t.lo[holder], count: t.hi[holder] - t.lo[holder], outcome: .repeat,
                ntest: t.cases[holder].ntest, nmin: nmin, nmax: nmax)
        }

        tick &+= 1
        guard own >= 0 else { return first(page: p, stream: s, table: t) }
        t.lastUsed[own] = tick
        return step(t.cases + own, lo: t.lo + own, hi: t.hi + own, page: p)
    }

    /// The window a repeat answers: the stream's own when it holds `p`, else the
    /// most recently used stream's whose window holds `p`.
    private static func repeatWindow(_ t: StreamTable, own: Int, page p: Int) -> Int {
        if own >= 0 && UInt(bitPattern: p &- t.lo[own]) < UInt(bitPattern: t.hi[own] &- t.lo[own]) {
            return own  // a retried request
        }
        var holder = -1
        var newest: UInt64 = 0
        for i in 0..<t.count
        where UInt(bitPattern: p &- t.lo[i]) < UInt(bitPattern: t.hi[i] &- t.lo[i]) && t.lastUsed[i] >= newest {
            holder = i
            newest = t.lastUsed[i]
        }
        return holder
    }

    // MARK: - Steps

    /// Step 0: the first fault of a stream.
    private mutating func first(page p: Int, stream s: UInt32, table t: StreamTable) -> Decision {
        let guess = clamp(config.effectiveInitialPages, nmin, nmax)
        let i: Int
        if t.count < config.maxStreams {
            if t.count == t.capacity {
                table = t.grown(to: min(config.maxStreams, t.capacity * 2))
                return first(page: p, stream: s, table: table!)
            }
            i = t.count
            t.count += 1
        } else {
            // Forget the least recently used stream; what it pushed stays.
            var victim = 0
            for j in 0..<t.count where t.lastUsed[j] < t.lastUsed[victim] { victim = j }
            i = victim
        }
        t.ids[i] = s
        t.lastUsed[i] = tick
        t.cases[i] = CaseState(guess: guess)
        return place(t.cases + i, lo: t.lo + i, hi: t.hi + i, pages: guess, at: p, .first)
    }

    /// Steps 1', 1'', 2 and 3 for a known stream.
    @inline(__always)
    private mutating func step(
        _ st: UnsafeMutablePointer<CaseState>, lo: UnsafeMutablePointer<Int>, hi: UnsafeMutablePointer<Int>,
        page p: Int
    ) -> Decision {
        let gap = config.gap
        // Step 1': does p continue the case, and which way?
        let upward = hi.pointee <= p && p <= hi.pointee &+ gap
        let downward = p <= lo.pointee - 1 && p >= lo.pointee - 1 - gap
        guard upward || downward else { return larger(st, lo: lo, hi: hi, page: p) }

        // Step 1'': the case's first window went the wrong way.
        if upward != st.pointee.up && st.pointee.caseFaults == 1 {
            st.pointee.up = upward
            return place(st, lo: lo, hi: hi, pages: st.pointee.caseGuess, at: p, .reverse)
        }
        return smaller(st, lo: lo, hi: hi, page: p, upward: upward)
    }

    /// Step 2: the guess was too small (paper steps 2 and 4).
    private mutating func smaller(
        _ st: UnsafeMutablePointer<CaseState>, lo: UnsafeMutablePointer<Int>, hi: UnsafeMutablePointer<Int>,
        page p: Int, upward: Bool
    ) -> Decision {
        st.pointee.caseFaults += 1
        st.pointee.minHit += 1
        st.pointee.maxHit = 0
        if literal {
            minRecord.push(min(st.pointee.ntest, config.maxPages))
            if st.pointee.minHit >= config.k { raiseFloor() }
        } else if st.pointee.caseFaults == 2 {
            // One record per case: its first guess was short.
            minRecord.push(st.pointee.caseGuess)
            // NMin moves only when the record changes (it equals min(MinRecord)
            // whenever the record is full, so recomputing here is the same).
            if minRecord.isFull { raiseFloor() }
        }
        let ntest = st.pointee.ntest
        let inc: Int
        if ntest < nmax {
            inc = max(1, quotient(nmax - ntest, 2 * st.pointee.minHit))  // paper eq. 4
        } else {
            inc = min(config.maxPages, ntest)  // the case outgrew the range: double
        }
        st.pointee.ntest = ntest + inc  // paper eq. 5
        st.pointee.up = upward
        return place(st, lo: lo, hi: hi, pages: inc, at: p, .smaller)
    }

    /// Step 3: the last case ended inside its window (paper steps 3 and 5).
    private mutating func larger(
        _ st: UnsafeMutablePointer<CaseState>, lo: UnsafeMutablePointer<Int>, hi: UnsafeMutablePointer<Int>,
        page p: Int
    ) -> Decision {
        st.pointee.maxHit += 1
        st.pointee.minHit = 0
        if literal {
            maxRecord.push(min(st.pointee.ntest, config.maxPages))
            if st.pointee.maxHit >= config.k { lowerCeiling() }
        } else if st.pointee.caseFaults == 1 {
            maxRecord.push(st.pointee.caseGuess)
            if maxRecord.isFull { lowerCeiling() }
        }
        let ntest = st.pointee.ntest
        let t = ntest - quotient(max(0, ntest - nmin), 2 * st.pointee.maxHit)  // paper eq. 6
        let guess = clamp(t, nmin, nmax)
        st.pointee.ntest = guess
        st.pointee.caseGuess = guess
        st.pointee.caseFaults = 1
        return place(st, lo: lo, hi: hi, pages: guess, at: p, .larger)
    }

    /// `NMin = min(MinRecord)`; when the range inverts, reopen NMax.
    private mutating func raiseFloor() {
        nmin = minRecord.minimum
        if nmin > nmax {
            nmax = config.maxPages
            maxRecord.removeAll()
        }
    }

    /// `NMax = max(MaxRecord)`; when the range inverts, reopen NMin.
    private mutating func lowerCeiling() {
        nmax = maxRecord.maximum
        if nmax < nmin {
            nmin = config.minPages
            minRecord.removeAll()
        }
    }

    // MARK: - Windows

    /// Places a window of `n` pages at `p` in the stream's direction, clipped
    /// to `[0, memory_pages)`, and answers with it. The window always contains `p`.
    @inline(__always)
    private func place(
        _ st: UnsafeMutablePointer<CaseState>, lo: UnsafeMutablePointer<Int>, hi: UnsafeMutablePointer<Int>,
        pages n: Int, at p: Int, _ outcome: Outcome
    ) -> Decision {
        var l: Int
        var h: Int
        if st.pointee.up {
            l = p
            let (sum, overflow) = p.addingReportingOverflow(n)
            h = overflow ? Int.max : sum
        } else {
            l = p - n + 1
            h = p == Int.max ? Int.max : p + 1
        }
        if l < 0 { l = 0 }
        if config.memoryPages > 0 && h > config.memoryPages { h = config.memoryPages }
        lo.pointee = l
        hi.pointee = h
        return Decision(start: l, count: h - l, outcome: outcome, ntest: st.pointee.ntest, nmin: nmin, nmax: nmax)
    }

    // MARK: - Observation

    /// MinRecord, oldest first.
    public var minRecordValues: [Int] { minRecord.values }
    /// MaxRecord, oldest first.
    public var maxRecordValues: [Int] { maxRecord.values }

    /// Every tracked stream, ordered by id.
    public var streamSnapshots: [StreamSnapshot] {
        guard let t = table else { return [] }
        return (0..<t.count).map { i in
            let c = t.cases[i]
            return StreamSnapshot(
                stream: t.ids[i], ntest: c.ntest, minHit: c.minHit, maxHit: c.maxHit,
                start: t.lo[i], count: t.hi[i] - t.lo[i], up: c.up)
        }.sorted { $0.stream < $1.stream }
    }
}

/// `a / b` for positive operands, in 32 bits when they fit (a 64-bit divide costs several times more).
@inline(__always)
func quotient(_ a: Int, _ b: Int) -> Int {
    if UInt(bitPattern: a) <= UInt(UInt32.max) && UInt(bitPattern: b) <= UInt(UInt32.max) {
        return Int(UInt32(truncatingIfNeeded: a) / UInt32(truncatingIfNeeded: b))
    }
    return a / b
}

/// What one stream's case is doing, for the session document.
public struct StreamSnapshot: Sendable, Hashable {
    public var stream: UInt32
    public var ntest: Int
    public var minHit: Int
    public var maxHit: Int
    /// The last window handed out: `[start, start + count)`.
    public var start: Int
    public var count: Int
    /// `true` for upward.
    public var up: Bool
}

/// The case of one stream (`dp.md`, "State"); its window lives beside it in the table.
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
    var count = 0
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

    /// A table of `capacity` holding the same streams.
    func grown(to capacity: Int) -> StreamTable {
        let t = StreamTable(capacity: capacity)
        t.count = count
        t.ids.update(from: ids, count: count)
        t.lo.update(from: lo, count: count)
        t.hi.update(from: hi, count: count)
        t.lastUsed.update(from: lastUsed, count: count)
        t.cases.initialize(from: cases, count: count)
        return t
    }

    func copy() -> StreamTable { grown(to: capacity) }


    deinit {
        ids.deallocate()
        lo.deallocate()
        hi.deallocate()
        lastUsed.deallocate()
        cases.deinitialize(count: count)
        cases.deallocate()
    }
}

/// The DP (Dynamic Prepage) state of one session, exactly as `docs/dp.md` fixes it.
///
/// What is learned — `NMin`, `NMax`, `MinRecord`, `MaxRecord` — is shared by
/// the session; what a case is doing is kept per stream (vCPU), at most
/// `max_streams` of them, least recently used forgotten first.
///
/// ```swift
/// var dp = try DynamicPrepage(config: PrepageConfig(policy: .dp, maxPages: 64))
/// let d = try dp.decide(page: 4_096, stream: 0)   // fetch [d.start, d.start + d.count)
/// ```
///
/// > Note: ``decide(page:stream:)`` does not allocate once a stream is known:
/// > the records are rings held inline (`k` ≤ 8) or allocated at `k` when the
/// > state is made, and the stream table grows only when a new stream joins.
public struct DynamicPrepage: Sendable {
    /// The validated configuration (`initialPages` clamped).
    public let config: PrepageConfig

    /// The current range.
    public private(set) var nmin: Int
    public private(set) var nmax: Int
    private var minRecord: Record
    private var maxRecord: Record
    /// One entry per stream seen, at most `max_streams`.
    private var streams: Streams

    private let literal: Bool

    /// Makes a fresh state.
    /// - Throws: ``ConfigError`` when the configuration is invalid.
    public init(config: PrepageConfig) throws(ConfigError) {
        self.init(checked: try config.validated())
    }

    /// A fresh state for a configuration already validated.
    init(checked config: PrepageConfig) {
        self.config = config
        nmin = config.minPages
        nmax = config.maxPages
        minRecord = Record(capacity: config.k)
        maxRecord = Record(capacity: config.k)
        literal = config.policy == .dpLiteral
        streams = Streams(maxStreams: config.maxStreams)
    }

    /// Decides one fault of page `page` raised by stream `stream` (`docs/dp.md`, "On each fault").
    ///
    /// - Throws: ``FaultError`` for a fault outside guest memory; nothing changes then.
    @inline(__always)
    public mutating func decide(page p: Int, stream s: UInt32) throws(FaultError) -> Decision {
        guard p >= 0 else { throw .negativePage(p) }
        if config.memoryPages > 0 && p >= config.memoryPages {
            throw .beyondMemory(page: p, memoryPages: config.memoryPages)
        }
        // Step 1: a fault inside a window already handed out is a repeat.
        let (t, own, holder) = streams.lookup(stream: s, page: p)
        if holder >= 0 {
            return Decision(
                start: t.lo[holder], count: t.hi[holder] - t.lo[holder], outcome: .repeat,
                ntest: t.cases[holder].ntest, nmin: nmin, nmax: nmax)
        }
        guard own >= 0 else { return first(page: p, stream: s) }
        streams.touch(own, in: t)
        return step(t.cases + own, lo: t.lo + own, hi: t.hi + own, page: p)
    }

    // MARK: - Steps

    /// Step 0: the first fault of a stream.
    private mutating func first(page p: Int, stream s: UInt32) -> Decision {
        let guess = clamp(config.effectiveInitialPages, nmin, nmax)
        let (t, i) = streams.admit(stream: s)
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
        // Step 1': does p continue the case, and which way? Upward: hi ≤ p ≤ hi + gap;
        // downward: lo − 1 − gap ≤ p ≤ lo − 1. Each is one unsigned comparison, with
        // no branch: whether a fault continues its case is as good as random to the
        // branch predictor. (p, lo, hi, gap ≥ 0, so neither difference overflows.)
        let upward = UInt(bitPattern: p &- hi.pointee) <= UInt(bitPattern: gap)
        let downward = UInt(bitPattern: lo.pointee &- 1 &- p) <= UInt(bitPattern: gap)
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
    public var streamSnapshots: [StreamSnapshot] { streams.snapshots }

    /// Heap bytes held beyond the value itself: records over the inline size, the stream table.
    var heapBytes: Int { minRecord.heapBytes + maxRecord.heapBytes + streams.heapBytes }

    /// See ``Streams/growthAllowance``.
    var streamGrowthAllowance: Int {
        get { streams.growthAllowance }
        set { streams.growthAllowance = newValue }
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

extension DynamicPrepage {
    /// The whole state, for ``PrepagerState``.
    var state: DPState {
        DPState(
            nmin: nmin, nmax: nmax, minRecord: minRecord.values, maxRecord: maxRecord.values, streams: streams.state)
    }

    /// The state `state` describes, under `config` (validated).
    init(checked config: PrepageConfig, state: DPState) throws(StateError) {
        self.init(checked: config)
        let c = config
        try StateError.check(state.nmin, "learned.nmin", in: c.minPages...c.maxPages)
        try StateError.check(state.nmax, "learned.nmax", in: state.nmin...c.maxPages)
        nmin = state.nmin
        nmax = state.nmax
        minRecord = try Record(
            capacity: c.k, values: state.minRecord, field: "learned.min_record", range: 1...c.maxPages)
        maxRecord = try Record(
            capacity: c.k, values: state.maxRecord, field: "learned.max_record", range: 1...c.maxPages)
        streams = try Streams(maxStreams: c.maxStreams, state: state.streams, field: "learned")
    }
}

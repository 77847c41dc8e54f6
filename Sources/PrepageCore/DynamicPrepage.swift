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
    private var streams: ContiguousArray<StreamState> = []
    /// Counts non-repeat faults: the clock of stream recency.
    private var tick: UInt64 = 0
    /// Index of the stream that faulted last (a hint for the lookup).
    private var lastIndex = 0

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

        // Step 1: find the stream, and any window that already holds p.
        let own = index(of: s)
        if own >= 0 {
            let st = streams[own]
            if st.lo <= p && p < st.hi {
                return Decision(
                    start: st.lo, count: st.hi - st.lo, outcome: .repeat,
                    ntest: st.ntest, nmin: nmin, nmax: nmax)
            }
        }
        let holder = mostRecentWindow(holding: p)
        if holder >= 0 {
            let st = streams[holder]
            return Decision(
                start: st.lo, count: st.hi - st.lo, outcome: .repeat,
                ntest: st.ntest, nmin: nmin, nmax: nmax)
        }

        tick &+= 1
        guard own >= 0 else { return first(page: p, stream: s) }
        lastIndex = own
        var st = streams[own]
        let decision = step(&st, page: p)
        streams[own] = st
        return decision
    }

    // MARK: - Steps

    /// Step 0: the first fault of a stream.
    private mutating func first(page p: Int, stream s: UInt32) -> Decision {
        let guess = clamp(config.effectiveInitialPages, nmin, nmax)
        var st = StreamState(id: s, guess: guess, tick: tick)
        place(&st, pages: guess, at: p)
        if streams.count < config.maxStreams {
            if streams.isEmpty { streams.reserveCapacity(min(config.maxStreams, 8)) }
            streams.append(st)
            lastIndex = streams.count - 1
        } else {
            // Forget the least recently used stream; what it pushed stays.
            var victim = 0
            for i in streams.indices where streams[i].lastUsed < streams[victim].lastUsed { victim = i }
            streams[victim] = st
            lastIndex = victim
        }
        return Decision(
            start: st.lo, count: st.hi - st.lo, outcome: .first,
            ntest: guess, nmin: nmin, nmax: nmax)
    }

    /// Steps 1', 1'', 2 and 3 for a known stream.
    private mutating func step(_ st: inout StreamState, page p: Int) -> Decision {
        st.lastUsed = tick
        let gap = config.gap
        // Step 1': does p continue the case, and which way?
        let upward = st.hi <= p && p <= st.hi &+ gap
        let downward = p <= st.lo - 1 && p >= st.lo - 1 - gap
        guard upward || downward else { return larger(&st, page: p) }

        // Step 1'': the case's first window went the wrong way.
        if upward != st.up && st.caseFaults == 1 {
            st.up = upward
            place(&st, pages: st.caseGuess, at: p)
            return answer(st, .reverse)
        }
        return smaller(&st, page: p, upward: upward)
    }

    /// Step 2: the guess was too small (paper steps 2 and 4).
    private mutating func smaller(_ st: inout StreamState, page p: Int, upward: Bool) -> Decision {
        st.caseFaults += 1
        st.minHit += 1
        st.maxHit = 0
        if literal {
            minRecord.push(min(st.ntest, config.maxPages))
            if st.minHit >= config.k { raiseFloor() }
        } else if st.caseFaults == 2 {
            // One record per case: its first guess was short.
            minRecord.push(st.caseGuess)
            // NMin moves only when the record changes (it equals min(MinRecord)
            // whenever the record is full, so recomputing here is the same).
            if minRecord.isFull { raiseFloor() }
        }
        let inc: Int
        if st.ntest < nmax {
            inc = max(1, (nmax - st.ntest) / (2 * st.minHit))  // paper eq. 4
        } else {
            inc = min(config.maxPages, st.ntest)  // the case outgrew the range: double
        }
        st.ntest += inc  // paper eq. 5
        st.up = upward
        place(&st, pages: inc, at: p)
        return answer(st, .smaller)
    }

    /// Step 3: the last case ended inside its window (paper steps 3 and 5).
    private mutating func larger(_ st: inout StreamState, page p: Int) -> Decision {
        st.maxHit += 1
        st.minHit = 0
        if literal {
            maxRecord.push(min(st.ntest, config.maxPages))
            if st.maxHit >= config.k { lowerCeiling() }
        } else if st.caseFaults == 1 {
            maxRecord.push(st.caseGuess)
            if maxRecord.isFull { lowerCeiling() }
        }
        let t = st.ntest - max(0, st.ntest - nmin) / (2 * st.maxHit)  // paper eq. 6
        st.ntest = clamp(t, nmin, nmax)
        st.caseGuess = st.ntest
        st.caseFaults = 1
        place(&st, pages: st.ntest, at: p)
        return answer(st, .larger)
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

    // MARK: - Windows and streams

    /// Places a window of `n` pages at `p` in the stream's direction, clipped
    /// to `[0, memory_pages)`. The window always contains `p`.
    @inline(__always)
    private func place(_ st: inout StreamState, pages n: Int, at p: Int) {
        var lo: Int
        var hi: Int
        if st.up {
            lo = p
            hi = p.addingReportingOverflow(n).overflow ? Int.max : p + n
        } else {
            lo = p - n + 1
            hi = p == Int.max ? Int.max : p + 1
        }
        if lo < 0 { lo = 0 }
        if config.memoryPages > 0 && hi > config.memoryPages { hi = config.memoryPages }
        st.lo = lo
        st.hi = hi
    }

    @inline(__always)
    private func answer(_ st: StreamState, _ outcome: Outcome) -> Decision {
        Decision(
            start: st.lo, count: st.hi - st.lo, outcome: outcome,
            ntest: st.ntest, nmin: nmin, nmax: nmax)
    }

    /// The index of stream `s`, or -1.
    @inline(__always)
    private func index(of s: UInt32) -> Int {
        if lastIndex < streams.count && streams[lastIndex].id == s { return lastIndex }
        return streams.withUnsafeBufferPointer { buffer in
            for i in buffer.indices where buffer[i].id == s { return i }
            return -1
        }
    }

    /// The most recently used stream whose window holds `p`, or -1.
    @inline(__always)
    private func mostRecentWindow(holding p: Int) -> Int {
        streams.withUnsafeBufferPointer { buffer in
            var found = -1
            var newest: UInt64 = 0
            for i in buffer.indices {
                let st = buffer[i]
                if st.lo <= p && p < st.hi && (found < 0 || st.lastUsed > newest) {
                    found = i
                    newest = st.lastUsed
                }
            }
            return found
        }
    }

    // MARK: - Observation

    /// MinRecord, oldest first.
    public var minRecordValues: [Int] { minRecord.values }
    /// MaxRecord, oldest first.
    public var maxRecordValues: [Int] { maxRecord.values }

    /// Every tracked stream, ordered by id.
    public var streamSnapshots: [StreamSnapshot] {
        streams.map {
            StreamSnapshot(
                stream: $0.id, ntest: $0.ntest, minHit: $0.minHit, maxHit: $0.maxHit,
                start: $0.lo, count: $0.hi - $0.lo, up: $0.up)
        }.sorted { $0.stream < $1.stream }
    }
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

/// The case state of one stream (`dp.md`, "State").
struct StreamState: Sendable {
    var id: UInt32
    var up = true
    /// The last window `[lo, hi)` handed out.
    var lo = 0
    var hi = 0
    var ntest: Int
    var caseGuess: Int
    var caseFaults = 1
    var minHit = 0
    var maxHit = 0
    /// The tick of the last fault other than a repeat.
    var lastUsed: UInt64

    init(id: UInt32, guess: Int, tick: UInt64) {
        self.id = id
        ntest = guess
        caseGuess = guess
        lastUsed = tick
    }
}

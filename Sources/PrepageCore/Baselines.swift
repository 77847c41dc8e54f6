/// The policies people use instead of DP, as an agent can run them: from faults alone.

/// `none` and `forward`: the same window around every fault, no state.
///
/// Every fault is answered as the first of its case (`first`); `ntest`,
/// `nmin` and `nmax` report the fixed window size.
struct FixedWindow: Sendable {
    let before: Int
    let after: Int
    let memoryPages: Int

    init(config: PrepageConfig) {
        let fixed = config.policy == .forward
        before = fixed ? config.backwardPages : 0
        after = fixed ? config.forwardPages : 0
        memoryPages = config.memoryPages
    }

    @inline(__always)
    func decide(page p: Int) -> Decision {
        let lo = max(0, p - before)
        var hi = p.addingReportingOverflow(after + 1).overflow ? Int.max : p + after + 1
        if memoryPages > 0 && hi > memoryPages { hi = memoryPages }
        let size = before + after + 1
        return Decision(start: lo, count: hi - lo, outcome: .first, ntest: size, nmin: size, nmax: size)
    }
}

/// `readahead`: Linux's file readahead ramp (mm/readahead.c, `get_next_ra_size`),
/// per stream.
///
/// A new case starts with `ra_initial` pages placed upward (`first` for a
/// stream's first fault, `larger` after); each continuation — the fault right
/// after the last window, either way — grows the next window ×4 while it is
/// below `ra_max`/16, ×2 while at most `ra_max`/2, else to `ra_max`, placed in
/// the continuation's direction (`smaller`). A fault inside a window already
/// handed out is a `repeat`, as in DP. `ntest` is the window size; `nmin` and
/// `nmax` report `ra_initial` and `ra_max`.
struct Readahead: Sendable {
    let initial: Int
    let maxWindow: Int
    let memoryPages: Int
    private var streams: Streams

    init(config: PrepageConfig) {
        initial = config.raInitial
        maxWindow = config.raMax
        memoryPages = config.memoryPages
        streams = Streams(maxStreams: config.maxStreams)
    }

    mutating func decide(page p: Int, stream s: UInt32) -> Decision {
        let (t, own, holder) = streams.lookup(stream: s, page: p)
        if holder >= 0 {
            return answer(t, holder, .repeat)
        }
        guard own >= 0 else {
            let (t, i) = streams.admit(stream: s)
            t.cases[i] = CaseState(guess: initial)
            place(t, i, size: initial, at: p, up: true)
            return answer(t, i, .first)
        }
        streams.touch(own, in: t)
        let upward = p == t.hi[own]
        let downward = p == t.lo[own] - 1
        guard upward || downward else {
            place(t, own, size: initial, at: p, up: true)
            return answer(t, own, .larger)
        }
        let cur = t.cases[own].ntest
        let next = cur < maxWindow / 16 ? 4 * cur : cur <= maxWindow / 2 ? 2 * cur : maxWindow
        place(t, own, size: min(next, maxWindow), at: p, up: upward)
        return answer(t, own, .smaller)
    }

    @inline(__always)
    private func place(_ t: StreamTable, _ i: Int, size: Int, at p: Int, up: Bool) {
        var lo = up ? p : p - size + 1
        var hi = up ? (p.addingReportingOverflow(size).overflow ? Int.max : p + size) : p + 1
        if lo < 0 { lo = 0 }
        if memoryPages > 0 && hi > memoryPages { hi = memoryPages }
        t.lo[i] = lo
        t.hi[i] = hi
        t.cases[i].ntest = size
        t.cases[i].up = up
    }

    @inline(__always)
    private func answer(_ t: StreamTable, _ i: Int, _ outcome: Outcome) -> Decision {
        Decision(
            start: t.lo[i], count: t.hi[i] - t.lo[i], outcome: outcome,
            ntest: t.cases[i].ntest, nmin: initial, nmax: maxWindow)
    }

    var snapshots: [StreamSnapshot] { streams.snapshots }

    /// Heap bytes held: the stream table.
    var heapBytes: Int { streams.heapBytes }

    /// See ``Streams/growthAllowance``.
    var streamGrowthAllowance: Int {
        get { streams.growthAllowance }
        set { streams.growthAllowance = newValue }
    }
}

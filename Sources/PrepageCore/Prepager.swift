/// One session's prepaging policy, whichever it is: the interface the server,
/// the simulator and the benchmarks drive.
///
/// Each policy's state is a stored property mutated in place (never an enum
/// payload, which would copy its buffers on every fault).
public struct Prepager: Sendable {
    /// The validated configuration.
    public var config: PrepageConfig { dp.config }

    private var dp: DynamicPrepage
    private var fixed: FixedWindow
    private var readahead: Readahead
    private var plus: DynamicPrepagePlus?

    /// - Throws: ``ConfigError`` when the configuration is invalid.
    public init(config: PrepageConfig) throws(ConfigError) {
        dp = try DynamicPrepage(config: config)
        fixed = FixedWindow(config: dp.config)
        readahead = Readahead(config: dp.config)
        plus = dp.config.policy == .dpPlus ? try DynamicPrepagePlus(config: dp.config) : nil
    }

    /// Decides one fault. See ``DynamicPrepage/decide(page:stream:)``.
    @inline(__always)
    public mutating func decide(page: Int, stream: UInt32) throws(FaultError) -> Decision {
        switch config.policy {
        case .dp, .dpLiteral:
            return try dp.decide(page: page, stream: stream)
        case .none, .forward:
            try check(page)
            return fixed.decide(page: page)
        case .readahead:
            try check(page)
            return readahead.decide(page: page, stream: stream)
        case .dpPlus:
            return try plus!.decide(page: page, stream: stream)
        }
    }

    /// Decides one fault, letting the policy's tables grow by at most
    /// `growthAllowance` heap bytes (what a memory budget has left). A new
    /// stream that would need more takes the least recently used stream's slot,
    /// as at `max_streams`; the decision is otherwise the same.
    @inline(__always)
    public mutating func decide(page: Int, stream: UInt32, growthAllowance: Int) throws(FaultError) -> Decision {
        switch config.policy {
        case .dp, .dpLiteral: dp.streamGrowthAllowance = growthAllowance
        case .readahead: readahead.streamGrowthAllowance = growthAllowance
        case .dpPlus: plus!.growthAllowance = growthAllowance
        case .none, .forward: break
        }
        return try decide(page: page, stream: stream)
    }

    /// The memory this policy state holds, in bytes: the value itself plus every
    /// heap allocation it owns (records, stream tables), as malloc sizes them.
    ///
    /// This is the one figure a server's memory budget counts for a policy:
    /// every policy, present or future, adds its own tables here, and grows
    /// them only within the allowance of ``decide(page:stream:growthAllowance:)``.
    /// Costs a few loads; no allocation.
    public var accountedBytes: Int {
        MemoryLayout<Prepager>.size + dp.heapBytes + readahead.heapBytes + (plus?.accountedBytes ?? 0)
    }

    /// Rejects a fault outside guest memory, as every policy does.
    @inline(__always)
    private func check(_ page: Int) throws(FaultError) {
        guard page >= 0 else { throw .negativePage(page) }
        if config.memoryPages > 0 && page >= config.memoryPages {
            throw .beyondMemory(page: page, memoryPages: config.memoryPages)
        }
    }

    private func snapshot(of learned: DPPlusSnapshot) -> PolicySnapshot {
        PolicySnapshot(
            nmin: learned.plan.first?.threshold ?? config.effectiveInitialPages,
            nmax: learned.plan.last?.threshold ?? config.effectiveInitialPages,
            minRecord: [], maxRecord: [], streams: [], plus: learned)
    }

    /// Forgets everything learned; the configuration stays.
    public mutating func reset() {
        // The configuration was validated when this value was made.
        self = try! Prepager(config: dp.config)
    }

    /// The learned state, for the session document.
    public var snapshot: PolicySnapshot {
        switch config.policy {
        case .dp, .dpLiteral:
            PolicySnapshot(
                nmin: dp.nmin, nmax: dp.nmax,
                minRecord: dp.minRecordValues, maxRecord: dp.maxRecordValues,
                streams: dp.streamSnapshots)
        case .none, .forward:
            PolicySnapshot(
                nmin: fixed.before + fixed.after + 1, nmax: fixed.before + fixed.after + 1,
                minRecord: [], maxRecord: [], streams: [])
        case .readahead:
            PolicySnapshot(
                nmin: readahead.initial, nmax: readahead.maxWindow, minRecord: [], maxRecord: [],
                streams: readahead.snapshots)
        case .dpPlus:
            snapshot(of: plus!.learned)
        }
    }
}

/// What a session has learned, as the session document shows it.
public struct PolicySnapshot: Sendable, Hashable {
    public var nmin: Int
    public var nmax: Int
    /// MinRecord and MaxRecord, oldest first.
    public var minRecord: [Int]
    public var maxRecord: [Int]
    /// Tracked streams, ordered by id; empty before the first fault.
    public var streams: [StreamSnapshot]
    /// What dp-plus learned; `nil` for the other policies.
    public var plus: DPPlusSnapshot?

    public init(
        nmin: Int, nmax: Int, minRecord: [Int], maxRecord: [Int], streams: [StreamSnapshot],
        plus: DPPlusSnapshot? = nil
    ) {
        self.nmin = nmin
        self.nmax = nmax
        self.minRecord = minRecord
        self.maxRecord = maxRecord
        self.streams = streams
        self.plus = plus
    }
}

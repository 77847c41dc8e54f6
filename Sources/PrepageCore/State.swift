/// A policy's whole state as a plain value: what a session has learned and
/// everything else that shapes its next decisions, so that a ``Prepager``
/// made from it with ``Prepager/init(state:)`` decides exactly as the one it
/// was taken from would have.
///
/// Taken with ``Prepager/state``; written and read by ``encode(into:)`` and
/// ``decode(_:)`` (a compact versioned binary form) and, by the server, as a
/// JSON document. Nothing here is computed lazily or shared: the value owns
/// its arrays, so taking it leaves the policy's buffers unshared (the next
/// fault copies nothing).
///
/// What is *not* here: working memory a decision overwrites before reading it
/// (the planner's scratch, a new case's plan under construction) and the
/// sizes of buffers (a restored policy grows them as the original did).
public struct PrepagerState: Sendable, Hashable {
    /// The version of this value's layout, written first by ``encode(into:)``.
    /// Version 1: the fields below.
    public static let version = 1

    /// The validated configuration.
    public var config: PrepageConfig
    /// What the configuration's policy holds.
    public var learned: Learned

    public init(config: PrepageConfig, learned: Learned) {
        self.config = config
        self.learned = learned
    }

    /// The state of each kind of policy.
    public enum Learned: Sendable, Hashable {
        /// `none` and `forward`: nothing to learn.
        case stateless
        /// `dp` and `dp-literal`.
        case dp(DPState)
        /// `readahead`: its streams.
        case readahead(StreamTableState)
        /// `dp-plus`.
        case plus(DPPlusState)
    }
}

/// The streams a policy tracks (`dp`, `dp-literal`, `readahead`), in the order of
/// its table, with the recency clock.
public struct StreamTableState: Sendable, Hashable {
    /// The recency clock: counts faults other than repeats.
    public var tick: UInt64
    /// The tracked streams, in table order (not sorted: the order breaks no tie,
    /// but it is kept so the restored table is the same table).
    public var streams: [Entry]

    public init(tick: UInt64, streams: [Entry]) {
        self.tick = tick
        self.streams = streams
    }

    /// One stream: its last window and its case.
    public struct Entry: Sendable, Hashable {
        public var stream: UInt32
        /// The last window handed out, `[lo, hi)`.
        public var lo: Int
        public var hi: Int
        /// The tick of the stream's last fault other than a repeat.
        public var lastUsed: UInt64
        public var ntest: Int
        /// The first guess of the stream's current case.
        public var caseGuess: Int
        /// Faults of the current case so far.
        public var caseFaults: Int
        public var minHit: Int
        public var maxHit: Int
        /// `true` for upward.
        public var up: Bool

        public init(
            stream: UInt32, lo: Int, hi: Int, lastUsed: UInt64, ntest: Int, caseGuess: Int, caseFaults: Int,
            minHit: Int, maxHit: Int, up: Bool
        ) {
            self.stream = stream
            self.lo = lo
            self.hi = hi
            self.lastUsed = lastUsed
            self.ntest = ntest
            self.caseGuess = caseGuess
            self.caseFaults = caseFaults
            self.minHit = minHit
            self.maxHit = maxHit
            self.up = up
        }
    }
}

/// DP's state (`dp.md`, "State"): the range, the records and the streams.
public struct DPState: Sendable, Hashable {
    public var nmin: Int
    public var nmax: Int
    /// MinRecord and MaxRecord, oldest first (at most `k` values each).
    public var minRecord: [Int]
    public var maxRecord: [Int]
    public var streams: StreamTableState

    public init(nmin: Int, nmax: Int, minRecord: [Int], maxRecord: [Int], streams: StreamTableState) {
        self.nmin = nmin
        self.nmax = nmax
        self.minRecord = minRecord
        self.maxRecord = maxRecord
        self.streams = streams
    }
}

/// dp-plus's state (`dp-plus.md`, "State"), including the cached estimate and
/// plan and whether they are stale: a restored session replans exactly when
/// the original would have.
public struct DPPlusState: Sendable, Hashable {
    /// Cases started.
    public var clock: Int
    /// The transition table, in its order: ascending (b, a).
    public var transitions: [Transition]
    /// The estimate behind the cached plan: its nodes (ascending) and S at each.
    public var nodes: [Int]
    public var survival: [Double]
    /// The cached plan (ascending thresholds).
    public var plan: [Int]
    /// Whether the plan must be recomputed at the next new case.
    public var dirty: Bool
    public var depth: Int
    public var learnedGap: Int
    public var nearRate: Double
    /// The last known case directions, newest in bit 0 (1 = downward), and how many are known (≤ 32).
    public var directionBits: UInt32
    public var directionCount: Int
    /// The slots, in table order; ``order`` lists their indices, most recent first.
    public var slots: [Slot]
    public var order: [Int]

    public init(
        clock: Int, transitions: [Transition], nodes: [Int], survival: [Double], plan: [Int], dirty: Bool,
        depth: Int, learnedGap: Int, nearRate: Double, directionBits: UInt32, directionCount: Int, slots: [Slot],
        order: [Int]
    ) {
        self.clock = clock
        self.transitions = transitions
        self.nodes = nodes
        self.survival = survival
        self.plan = plan
        self.dirty = dirty
        self.depth = depth
        self.learnedGap = learnedGap
        self.nearRate = nearRate
        self.directionBits = directionBits
        self.directionCount = directionCount
        self.slots = slots
        self.order = order
    }

    /// One entry of the transition table: (had passed a) → (then tested b).
    public struct Transition: Sendable, Hashable {
        public var a: Int
        public var b: Int
        /// Decayed counts: cases, and of those the ones that needed more than b.
        public var n: Double
        public var c: Double
        /// The epoch n and c are expressed in.
        public var e: Int
        /// The clock of the last record.
        public var last: Int

        public init(a: Int, b: Int, n: Double, c: Double, e: Int, last: Int) {
            self.a = a
            self.b = b
            self.n = n
            self.c = c
            self.e = e
            self.last = last
        }
    }

    /// One recent case.
    public struct Slot: Sendable, Hashable {
        /// Its last window, `[lo, hi)`.
        public var lo: Int
        public var hi: Int
        /// Its direction: +1, −1, 0 while unknown.
        public var direction: Int8
        /// The direction of its first window: +1, −1, 0 for a one-page probe.
        public var firstDirection: Int8
        /// The last threshold passed (a) and the threshold under test (cum).
        public var passed: Int
        public var covered: Int
        public var stream: UInt32
        public var open: Bool
        /// Cases its stream has started since.
        public var newer: Int
        /// The case's plan (ascending thresholds).
        public var plan: [Int]

        public init(
            lo: Int, hi: Int, direction: Int8, firstDirection: Int8, passed: Int, covered: Int, stream: UInt32,
            open: Bool, newer: Int, plan: [Int]
        ) {
            self.lo = lo
            self.hi = hi
            self.direction = direction
            self.firstDirection = firstDirection
            self.passed = passed
            self.covered = covered
            self.stream = stream
            self.open = open
            self.newer = newer
            self.plan = plan
        }
    }
}

/// A state that cannot be restored: what is wrong with it. Nothing is made.
public struct StateError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Where, as a path into the state (`learned.slots[3].covered`).
    public var field: String
    /// What is wrong, and what is accepted.
    public var reason: String

    public init(field: String, _ reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(field): \(reason)" }

    /// The largest magnitude a count, a page or a clock may have in a state:
    /// 2^53. A session that faults a million times a second reaches it in
    /// 285 years; beyond it, sums on the fault path could overflow.
    public static let maxValue = 1 << 53

    /// Checks `0 … maxValue` (or `range`) for a field.
    static func check(_ value: Int, _ field: @autoclosure () -> String, in range: ClosedRange<Int> = 0...maxValue)
        throws(StateError)
    {
        guard range.contains(value) else {
            throw StateError(
                field: field(), "\(value) is out of range; accepted: \(range.lowerBound) … \(range.upperBound)")
        }
    }
}

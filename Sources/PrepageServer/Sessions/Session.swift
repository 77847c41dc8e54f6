import PrepageCore
import Synchronization

/// One migration session: its policy state, its counters, its own lock.
///
/// Faults of one session are decided one at a time, in the order they take
/// the lock; different sessions never share a lock. Kept small (a few hundred
/// bytes when idle): the DP streams are allocated at the first fault.
public final class Session: Sendable {
    public let id: String
    public let config: SessionConfig
    /// Wall-clock nanoseconds since the epoch.
    public let createdAt: Int64
    let state: Mutex<SessionState>
    /// Restored from this instance's own state directory while peers are configured,
    /// and not checked since: at its first use, a peer that holds the session now (it
    /// moved while this instance was away) hands it over (see ``Peers``).
    let tentative = Atomic<Bool>(false)

    init(
        id: String, config: SessionConfig, prepager: Prepager, now: Int64, fixedBytes: Int = 0, incarnation: UInt64 = 0
    ) {
        self.id = id
        self.config = config
        createdAt = now
        state = Mutex(
            SessionState(
                prepager: prepager, lastActivity: now, fixedBytes: fixedBytes,
                prepagerBytes: prepager.accountedBytes, incarnation: incarnation))
    }

    /// The session an image describes (its learned state already restored into `prepager`).
    init(image: SessionImage, prepager: Prepager, incarnation: UInt64, fixedBytes: Int = 0) {
        id = image.id
        config = image.config
        createdAt = image.createdAt
        var st = SessionState(
            prepager: prepager, lastActivity: image.lastActivity, fixedBytes: fixedBytes,
            prepagerBytes: prepager.accountedBytes, incarnation: incarnation)
        st.stats = image.stats
        state = Mutex(st)
    }

    /// A session restored from a snapshot, its learned state left in its binary form
    /// (``SessionState/encoded``) until its first use; `fresh` is a fresh policy of `config`.
    init(
        restored id: String, config: SessionConfig, createdAt: Int64, lastActivity: Int64, stats: SessionStats,
        fresh: Prepager, encoded: ArraySlice<UInt8>, incarnation: UInt64
    ) {
        self.id = id
        self.config = config
        self.createdAt = createdAt
        var st = SessionState(
            prepager: fresh, lastActivity: lastActivity, fixedBytes: Session.fixedBytes(id: id, config: config),
            prepagerBytes: fresh.accountedBytes, incarnation: incarnation)
        st.stats = stats
        st.encoded = encoded
        state = Mutex(st)
    }
    /// Everything the session is, copied under its lock (the policy's state is
    /// copied, not shared: the next fault allocates nothing).
    func image() -> SessionImage {
        state.withLock { st in
            st.materialize()
            return image(of: st)
        }
    }

    /// The image of `st`, this session's locked state (not made ready: a restored
    /// session not used since is read from its binary form).
    func image(of st: borrowing SessionState) -> SessionImage {
        SessionImage(
            id: id, config: config, createdAt: createdAt, lastActivity: st.lastActivity, stats: st.stats,
            learned: st.encoded.flatMap { SessionState.decode($0) } ?? st.prepager.state.learned)
    }
}

/// What a session's lock protects.
struct SessionState: Sendable {
    var prepager: Prepager
    var stats = SessionStats()
    /// Last fault, read or reset (wall-clock nanoseconds): what idle expiry looks at.
    var lastActivity: Int64
    /// Bytes charged to the memory budget for the object, id and labels (at most a
    /// few tens of KB: 32 bits keep an idle session small).
    private var fixed: UInt32
    /// Bytes charged for the policy state: its ``Prepager/accountedBytes`` when last counted.
    private var policy: UInt32

    var fixedBytes: Int { Int(fixed) }
    var prepagerBytes: Int { Int(policy) }
    /// Removed from the store (deleted or expired). Set under this lock, so that a
    /// fault that finds the session afterwards is not decided here: it looks the id
    /// up again. Every fault answered is thus in the document of the session that
    /// decided it.
    var removed = false

    init(prepager: Prepager, lastActivity: Int64, fixedBytes: Int, prepagerBytes: Int, incarnation: UInt64 = 0) {
        self.prepager = prepager
        self.lastActivity = lastActivity
        self.incarnation = incarnation
        fixed = UInt32(clamping: fixedBytes)
        policy = UInt32(clamping: prepagerBytes)
    }

    /// Every byte this session has charged to the budget.
    var accountedBytes: Int { fixedBytes + prepagerBytes }

    /// Charges the policy state's growth (or shrinking) since it was last counted.
    @inline(__always)
    mutating func recount(_ budget: MemoryBudget) {
        let now = UInt32(clamping: prepager.accountedBytes)
        if now != policy {
            budget.adjust(Int(now) - Int(policy))
            policy = now
        }
    }

    /// The journal record this state starts from (its creation, import or last
    /// reset); 0 without a state directory. Snapshots carry it, so that a restore
    /// never gives a session the state of an earlier one of the same id.
    var incarnation: UInt64
    /// Changed since the last snapshot (set by every fault, reset and creation; a
    /// snapshot clears it under this lock when it copies the state).
    var unsaved = true

    /// A restored session's learned state still in its snapshot's binary form
    /// (``PrepagerState/Learned``), made into ``prepager`` at the session's first
    /// use — a fault, a read, a reset: a restart parses the snapshots but rebuilds
    /// no session's tables before they are needed. `nil` once made (or never restored).
    /// Boxed: an idle session carries one pointer for it.
    var encoded: ArraySlice<UInt8>? {
        get { encodedBox?.bytes }
        set { encodedBox = newValue.map(EncodedState.init) }
    }
    private var encodedBox: EncodedState?

    /// Makes ``prepager`` from ``encoded`` if the session was restored and not used since.
    @inline(__always)
    mutating func materialize() {
        if encoded != nil { materializeNow() }
    }

    /// Restored learned states that could not be made (counted in `/metrics`): the
    /// session goes on with a fresh policy. Checksums make this a bug, never a disk error.
    static let materializeFailures = Atomic<Int>(0)

    private mutating func materializeNow() {
        guard let bytes = encoded else { return }
        encoded = nil
        guard let learned = Self.decode(bytes),
            let restored = try? Prepager(state: PrepagerState(config: prepager.config, learned: learned))
        else {
            Self.materializeFailures.add(1, ordering: .relaxed)
            return
        }
        prepager = restored
    }

    /// The learned state in `bytes`, or `nil` when it does not decode whole.
    static func decode(_ bytes: ArraySlice<UInt8>) -> PrepagerState.Learned? {
        bytes.withUnsafeBytes { raw in
            var r = StateReader(raw)
            guard let learned = try? PrepagerState.Learned.decode(from: &r), r.isAtEnd else { return nil }
            return learned
        }
    }

    /// Whether the learned state changed since the last snapshot.
    var changedSinceSnapshot: Bool { unsaved }

    /// Notes that a snapshot has this state.
    mutating func markSaved() {
        unsaved = false
    }

    /// Counts one decided fault.
    @inline(__always)
    mutating func count(_ d: Decision, now: Int64) {
        unsaved = true
        stats.faults &+= 1
        switch d.outcome {
        case .first: stats.first &+= 1
        case .smaller: stats.smaller &+= 1
        case .larger: stats.larger &+= 1
        case .reverse: stats.reverse &+= 1
        case .repeat: stats.repeats &+= 1
        }
        stats.pagesAdvised &+= UInt64(d.count)
        stats.lastFaultAt = now
        lastActivity = now
    }
}

/// A restored learned state's bytes (a slice of its snapshot file, read once for all).
final class EncodedState: Sendable {
    let bytes: ArraySlice<UInt8>
    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }
}

/// A session's counters, as the `stats` of its document.
struct SessionStats: Sendable, Hashable {
    var faults: UInt64 = 0
    var first: UInt64 = 0
    var smaller: UInt64 = 0
    var larger: UInt64 = 0
    var reverse: UInt64 = 0
    var repeats: UInt64 = 0
    /// Sum of `count` over every decision answered.
    var pagesAdvised: UInt64 = 0
    /// 0 before the first fault.
    var lastFaultAt: Int64 = 0
}

extension Session {
    /// Writes the session document (docs/api.md, "Session document").
    func writeDocument(_ w: inout JSONWriter) {
        let (snapshot, stats) = state.withLock { st in
            st.materialize()
            return (st.prepager.snapshot, st.stats)
        }
        w.raw("{")
        w.key("id")
        w.string(id)
        w.raw(",")
        w.key("config")
        Self.writeConfig(config, &w)
        w.raw(",")
        w.key("state")
        w.raw("{")
        w.key("nmin")
        w.int(snapshot.nmin)
        w.raw(",")
        w.key("nmax")
        w.int(snapshot.nmax)
        w.raw(",")
        w.key("min_record")
        Self.writeInts(snapshot.minRecord, &w)
        w.raw(",")
        w.key("max_record")
        Self.writeInts(snapshot.maxRecord, &w)
        w.raw(",")
        w.key("streams")
        w.raw("[")
        for (i, st) in snapshot.streams.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{")
            w.key("stream")
            w.uint(st.stream)
            w.raw(",")
            w.key("ntest")
            w.int(st.ntest)
            w.raw(",")
            w.key("min_hit")
            w.int(st.minHit)
            w.raw(",")
            w.key("max_hit")
            w.int(st.maxHit)
            w.raw(",")
            w.key("window")
            w.raw("{")
            w.key("start")
            w.int(st.start)
            w.raw(",")
            w.key("count")
            w.int(st.count)
            w.raw("},")
            w.key("direction")
            if st.up { w.raw("\"up\"") } else { w.raw("\"down\"") }
            w.raw("}")
        }
        w.raw("]")
        if let plus = snapshot.plus { Self.writeLearned(plus, &w) }
        w.raw("},")
        w.key("stats")
        w.raw("{")
        w.key("faults")
        w.uint(stats.faults)
        w.raw(",")
        w.key("first")
        w.uint(stats.first)
        w.raw(",")
        w.key("smaller")
        w.uint(stats.smaller)
        w.raw(",")
        w.key("larger")
        w.uint(stats.larger)
        w.raw(",")
        w.key("reverse")
        w.uint(stats.reverse)
        w.raw(",")
        w.key("repeat")
        w.uint(stats.repeats)
        w.raw(",")
        w.key("pages_advised")
        w.uint(stats.pagesAdvised)
        w.raw(",")
        w.key("created_at")
        w.timestamp(nanoseconds: createdAt)
        w.raw(",")
        w.key("last_fault_at")
        w.timestamp(nanoseconds: stats.lastFaultAt)
        w.raw("}}")
    }

    static func writeConfig(_ c: SessionConfig, _ w: inout JSONWriter) {
        let p = c.prepage
        w.raw("{")
        // Every field the session's policy reads, in the table's order.
        for field in PrepageConfig.fields where field.applies(to: p.policy) {
            w.key(field.name)
            switch field.value(in: p) {
            case .policy(let name): w.string(name.rawValue)
            case .integer(let i): w.int(i)
            case .real(let d): w.double(d)
            }
            w.raw(",")
        }
        w.key("page_size")
        w.int(c.pageSize)
        w.raw(",")
        w.key("labels")
        w.raw("{")
        for (i, key) in c.labels.keys.sorted().enumerated() {
            if i > 0 { w.raw(",") }
            w.string(key)
            w.raw(":")
            w.string(c.labels[key]!)
        }
        w.raw("}}")
    }

    /// What dp-plus learned, inside `state`: why it fetches what it fetches.
    private static func writeLearned(_ p: DPPlusSnapshot, _ w: inout JSONWriter) {
        w.raw(",")
        w.key("plan")
        writePoints(p.plan, &w)
        w.raw(",")
        w.key("estimate")
        writePoints(p.estimate, &w)
        w.raw(",")
        w.key("learned_gap")
        w.int(p.learnedGap)
        w.raw(",")
        w.key("near_rate")
        w.double(p.nearRate)
        w.raw(",")
        w.key("downward_share")
        if let share = p.downwardShare { w.double(share) } else { w.raw("null") }
        w.raw(",")
        w.key("known_directions")
        w.int(p.knownDirections)
        w.raw(",")
        w.key("depth")
        w.int(p.depth)
        w.raw(",")
        w.key("cases")
        w.int(p.cases)
        w.raw(",")
        w.key("transitions")
        w.int(p.transitions)
        w.raw(",")
        w.key("slots")
        w.raw("[")
        for (i, slot) in p.slots.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{")
            w.key("stream")
            w.uint(slot.stream)
            w.raw(",")
            w.key("window")
            w.raw("{")
            w.key("start")
            w.int(slot.start)
            w.raw(",")
            w.key("count")
            w.int(slot.count)
            w.raw("},")
            w.key("covered")
            w.int(slot.covered)
            w.raw(",")
            w.key("passed")
            w.int(slot.passed)
            w.raw(",")
            w.key("direction")
            switch slot.direction {
            case 1: w.raw("\"up\"")
            case -1: w.raw("\"down\"")
            default: w.raw("null")
            }
            w.raw(",")
            w.key("open")
            w.bool(slot.open)
            w.raw("}")
        }
        w.raw("]")
    }

    private static func writePoints(_ points: [DPPlusSnapshot.Point], _ w: inout JSONWriter) {
        w.raw("[")
        for (i, point) in points.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{")
            w.key("threshold")
            w.int(point.threshold)
            w.raw(",")
            w.key("survival")
            if let s = point.survival { w.double(s) } else { w.raw("null") }
            w.raw("}")
        }
        w.raw("]")
    }

    private static func writeInts(_ values: [Int], _ w: inout JSONWriter) {
        w.raw("[")
        for (i, v) in values.enumerated() {
            if i > 0 { w.raw(",") }
            w.int(v)
        }
        w.raw("]")
    }
}

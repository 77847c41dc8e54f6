import PrepageCore
import Synchronization

/// Where sessions live, as the routes see them.
///
/// Internal: the one store is ``SessionRegistry``, and the durable state (Durable/) is
/// built into it (it appends to the registry's journal and snapshots the registry
/// itself) rather than plugged in behind this protocol, so no other module implements it.
/// Every method is safe from any thread and holds a lock only briefly.
protocol SessionStore: AnyObject, Sendable {
    /// Looks a session up.
    func session(_ id: String) -> Session?
    /// Creates a session, or finds the existing one.
    func create(id: String, config: SessionConfig, now: Int64) throws(APIProblemBox) -> (
        session: Session, created: Bool
    )
    /// Removes a session; returns it when it existed.
    func remove(_ id: String) -> Session?
    /// Up to `limit` sessions with ids greater than `after`, ordered by id, and whether more follow.
    func list(after: String?, limit: Int) -> (sessions: [Session], more: Bool)
    /// Removes sessions idle for `idleTimeout` nanoseconds or more at time `now`; returns how many.
    func expireIdle(now: Int64, idleTimeout: Int64) -> Int
    /// Counters for `/metrics`.
    var counts: SessionCounts { get }
    /// Creates the session an image describes, or replaces the session of that id: journaled
    /// and synced (`durably`), or journaled and written, to be synced by ``makeDurable()``.
    func install(id: String, image: SessionImage, now: Int64, durably: Bool) throws(APIProblemBox) -> (
        session: Session, created: Bool
    )
    /// Makes every change made so far durable (the journal synced).
    func makeDurable() throws(APIProblemBox)
    /// Forgets what a session learned (its counters continue).
    func reset(_ session: Session, now: Int64) throws(APIProblemBox)
    /// The memory budget sessions are charged to.
    var budget: MemoryBudget { get }
}

extension SessionStore {
    /// A store that keeps no budget never refuses for memory.
    var budget: MemoryBudget { MemoryBudget.unlimited }
}

/// Session counters for `/metrics`.
public struct SessionCounts: Sendable, Hashable {
    public var live: Int
    public var created: UInt64
    public var expired: UInt64
}

/// An error of the store, as an API problem.
struct APIProblemBox: Error {
    let problem: APIProblem
}

/// What the problem of a refused session tells the client to do about the limit.
/// The server's own words name no flags; prepaged gives its command line's.
public struct LimitAdvice: Sendable, Hashable {
    /// After "the server holds its limit of N sessions; ".
    public var sessions: String
    /// After "the sessions' memory budget is spent: …; ".
    public var memory: String

    public init(
        sessions: String = "delete some or raise the server's session limit",
        memory: String = "delete sessions or raise the server's memory limit"
    ) {
        self.sessions = sessions
        self.memory = memory
    }
}

/// The in-memory store: sessions spread over 64 shards by the hash of their id,
/// each shard a dictionary behind its own short lock.
public final class SessionRegistry: SessionStore {
    /// Shards: enough that 2–64 event loops rarely meet on one lock.
    static let shardCount = 64

    private let shards: [Shard]
    private let live = Atomic<Int>(0)
    private let created = Atomic<UInt64>(0)
    private let expired = Atomic<UInt64>(0)
    /// Most sessions at once. Default 1,000,000.
    public let maxSessions: Int
    /// The journal, with `--state-dir`: set before the event loops start, never changed after.
    private let journalBox = JournalBox()
    /// What sessions may hold in memory (`--memory-limit`).
    public let budget: MemoryBudget
    /// What a refusal for a limit tells the client to do (the command line names its flags).
    let advice: LimitAdvice

    public init(maxSessions: Int = 1_000_000, memoryLimit: Int = Int.max, advice: LimitAdvice = LimitAdvice()) {
        self.maxSessions = maxSessions
        self.advice = advice
        budget = MemoryBudget(limit: memoryLimit)
        shards = (0..<Self.shardCount).map { _ in Shard() }
    }

    /// Records every lifecycle change in `journal` from now on. Call before serving.
    func attach(_ journal: Journal) {
        journalBox.journal = journal
    }

    private var journal: Journal? { journalBox.journal }

    /// Makes a journal record durable before its change is acknowledged (`durably`), or
    /// writes it, so that it outlives the process, to be synced later.
    private func sync(_ lsn: UInt64, durably: Bool = true) throws(APIProblemBox) {
        guard let journal else { return }
        do {
            if durably { try journal.sync(lsn) } else { try journal.write(lsn) }
        } catch {
            throw APIProblemBox(
                problem: APIProblem(
                    .unavailable,
                    "the change is made but could not be made durable in the state directory (\(error)); the server stops being ready"
                ))
        }
    }

    @inline(__always)
    private func shard(_ id: String) -> Int {
        var h = Hasher()
        h.combine(id)
        return Int(UInt(bitPattern: h.finalize()) % UInt(Self.shardCount))
    }

    public func session(_ id: String) -> Session? {
        shards[shard(id)].map.withLock { $0[id] }
    }

    func create(id: String, config: SessionConfig, now: Int64) throws(APIProblemBox) -> (
        session: Session, created: Bool
    ) {
        let payload = journal.map { _ in Journal.payload(.create(id: id, config: config, createdAt: now)) }
        let result: Result<(Session, Bool), APIProblemBox> = shards[shard(id)].map.withLock { map in
            if let existing = map[id] {
                guard existing.config == config else {
                    return .failure(
                        APIProblemBox(
                            problem: APIProblem(
                                .sessionConflict,
                                "session \(Inputs.quoted(id)) exists with another configuration; DELETE it first or PUT the same configuration"
                            )))
                }
                return .success((existing, false))
            }
            // Reserve a slot first, so concurrent creations on other shards cannot overshoot.
            var current = live.load(ordering: .relaxed)
            while true {
                guard current < maxSessions else {
                    return .failure(
                        APIProblemBox(
                            problem: APIProblem(
                                .tooManySessions,
                                "the server holds its limit of \(maxSessions) sessions; \(advice.sessions)"
                            )))
                }
                let (exchanged, original) = live.compareExchange(
                    expected: current, desired: current + 1, ordering: .relaxed)
                if exchanged { break }
                current = original
            }
            let prepager: Prepager
            do {
                prepager = try Prepager(config: config.prepage)
            } catch {
                live.subtract(1, ordering: .relaxed)
                return .failure(APIProblemBox(problem: APIProblem(.invalidField, String(describing: error))))
            }
            let fixed = Session.fixedBytes(id: id, config: config)
            let needed = fixed + prepager.accountedBytes
            guard budget.reserve(needed) else {
                live.subtract(1, ordering: .relaxed)
                return .failure(
                    APIProblemBox(
                        problem: APIProblem(
                            .memoryLimit,
                            "the sessions' memory budget is spent: \(budget.usedBytes) of \(budget.limit) bytes held, and this session needs \(needed); \(advice.memory)"
                        )))
            }
            let lsn = journal?.append(type: 1, payload: payload ?? [])
            let session = Session(
                id: id, config: config, prepager: prepager, now: now, fixedBytes: fixed, incarnation: lsn ?? 0)
            map[id] = session
            created.add(1, ordering: .relaxed)
            return .success((session, true))
        }
        let (session, isNew) = try result.get()
        if isNew { try sync(session.state.withLock { $0.incarnation }) }
        return (session, isNew)
    }

    func install(id: String, image: SessionImage, now: Int64, durably: Bool) throws(APIProblemBox) -> (
        session: Session, created: Bool
    ) {
        var image = image
        image.id = id
        let prepager: Prepager
        do {
            prepager = try Prepager(state: image.prepagerState)
        } catch {
            throw APIProblemBox(problem: APIProblem(.invalidField, "state.\(error)"))
        }
        let payload = journal.map { _ in Journal.payload(.install(image)) }
        let fixed = Session.fixedBytes(id: id, config: image.config)
        let needed = fixed + prepager.accountedBytes
        let result: Result<(Session, Bool, Session?), APIProblemBox> = shards[shard(id)].map.withLock { map in
            let old = map[id]
            let replaced = old != nil
            guard budget.reserve(needed) else {
                return .failure(
                    APIProblemBox(
                        problem: APIProblem(
                            .memoryLimit,
                            "the sessions' memory budget is spent: \(budget.usedBytes) of \(budget.limit) bytes held, and this session needs \(needed); \(advice.memory)"
                        )))
            }
            if !replaced {
                var current = live.load(ordering: .relaxed)
                while true {
                    guard current < maxSessions else {
                        budget.adjust(-needed)
                        return .failure(
                            APIProblemBox(
                                problem: APIProblem(
                                    .tooManySessions,
                                    "the server holds its limit of \(maxSessions) sessions; \(advice.sessions)"
                                )))
                    }
                    let (exchanged, original) = live.compareExchange(
                        expected: current, desired: current + 1, ordering: .relaxed)
                    if exchanged { break }
                    current = original
                }
                created.add(1, ordering: .relaxed)
            }
            let lsn = journal?.append(type: 4, payload: payload ?? [])
            let session = Session(image: image, prepager: prepager, incarnation: lsn ?? 0, fixedBytes: fixed)
            map[id] = session
            return .success((session, !replaced, old))
        }
        let (session, isNew, old) = try result.get()
        // The session replaced: a fault that found it and takes its lock now looks the id up again.
        if let old { retire(old) }
        try sync(session.state.withLock { $0.incarnation }, durably: durably)
        return (session, isNew)
    }

    func makeDurable() throws(APIProblemBox) {
        guard let journal else { return }
        try sync(journal.nextLSN - 1)
    }

    func reset(_ session: Session, now: Int64) throws(APIProblemBox) {
        let journal = self.journal
        let budget = self.budget
        let lsn: UInt64? = session.state.withLock { st in
            st.encoded = nil
            st.prepager.reset()
            st.recount(budget)
            st.lastActivity = now
            st.unsaved = true
            guard let journal else { return nil }
            let record = JournalRecord.reset(id: session.id, at: now, stats: st.stats)
            st.incarnation = journal.append(type: record.type, payload: Journal.payload(record))
            return st.incarnation
        }
        if let lsn { try sync(lsn) }
    }

    /// Calls `body` with every session, taking each shard's lock only to list its sessions.
    func forEachSession(_ body: (Session) -> Void) {
        var batch: [Session] = []
        for shard in shards {
            batch.removeAll(keepingCapacity: true)
            shard.map.withLock { map in batch.append(contentsOf: map.values) }
            for session in batch { body(session) }
        }
    }

    /// Adds restored sessions (before serving; an id already present is kept).
    func insert(restored sessions: [Session]) {
        var byShard = [[Session]](repeating: [], count: Self.shardCount)
        for s in sessions { byShard[shard(s.id)].append(s) }
        var added = 0
        for (k, list) in byShard.enumerated() where !list.isEmpty {
            shards[k].map.withLock { map in
                map.reserveCapacity(map.count + list.count)
                for s in list where map[s.id] == nil {
                    map[s.id] = s
                    added += 1
                    // Charged whatever the budget says: a restart does not drop what was acknowledged.
                    budget.adjust(s.state.withLock { $0.accountedBytes })
                }
            }
        }
        live.add(added, ordering: .relaxed)
    }

    public func remove(_ id: String) -> Session? {
        let journal = self.journal
        let (removed, lsn) = shards[shard(id)].map.withLock { map -> (Session?, UInt64?) in
            guard let removed = map.removeValue(forKey: id) else { return (nil, nil) }
            return (removed, journal?.append(.delete(id: id)))
        }
        if let removed {
            live.subtract(1, ordering: .relaxed)
            retire(removed)
        }
        if let lsn { try? sync(lsn) }
        return removed
    }

    /// Marks a session removed under its lock (a fault that took the lock first is
    /// in its document; one after looks the id up again) and gives its bytes back.
    /// What ``release(_:expecting:)`` did.
    enum Release {
        case released(SessionImage)
        case notFound
        /// The session is here with another configuration (it stays).
        case conflict(SessionConfig)
    }

    /// Removes a session for another instance and returns all it is: a fault it
    /// decided is in the image; one that finds it afterwards looks the id up again
    /// (404 here). The removal is journaled and durable before this returns, so a
    /// restart does not bring back what the other instance now holds.
    func release(_ id: String, expecting config: SessionConfig?) -> Release {
        let journal = self.journal
        let found: (session: Session?, lsn: UInt64?, refusal: Release?) = shards[shard(id)].map.withLock { map in
            guard let session = map[id] else { return (nil, nil, .notFound) }
            if let config, session.config != config { return (nil, nil, .conflict(session.config)) }
            map.removeValue(forKey: id)
            return (session, journal?.append(.delete(id: id)), nil)
        }
        guard let session = found.session else { return found.refusal ?? .notFound }
        live.subtract(1, ordering: .relaxed)
        let (image, bytes): (SessionImage, Int) = session.state.withLock { st in
            st.removed = true
            st.materialize()
            return (session.image(of: st), st.accountedBytes)
        }
        budget.adjust(-bytes)
        if let lsn = found.lsn { try? sync(lsn) }
        return .released(image)
    }

    private func retire(_ session: Session) {
        let bytes = session.state.withLock { st in
            st.removed = true
            return st.accountedBytes
        }
        budget.adjust(-bytes)
    }

    public func list(after: String?, limit: Int) -> (sessions: [Session], more: Bool) {
        // Keep the `limit + 1` smallest ids above `after`: sorted, bounded insertion.
        var best: [Session] = []
        best.reserveCapacity(limit + 1)
        for shard in shards {
            shard.map.withLock { map in
                for (id, session) in map {
                    if let after, id <= after { continue }
                    if best.count == limit + 1 {
                        guard id < best[limit].id else { continue }
                        best.removeLast()
                    }
                    var lo = 0
                    var hi = best.count
                    while lo < hi {
                        let mid = (lo + hi) / 2
                        if best[mid].id < id { lo = mid + 1 } else { hi = mid }
                    }
                    best.insert(session, at: lo)
                }
            }
        }
        let more = best.count > limit
        if more { best.removeLast() }
        return (best, more)
    }

    public func expireIdle(now: Int64, idleTimeout: Int64) -> Int {
        guard idleTimeout > 0 else { return 0 }
        var total = 0
        for shard in shards {
            // Find first (no copy of the dictionary), then remove only what expired.
            let n = shard.map.withLock { map in
                var idle: [String] = []
                var bytes = 0
                for (id, session) in map {
                    // Decided and marked under the session's lock: a fault cannot slip in between.
                    let expired = session.state.withLock { st in
                        guard now &- st.lastActivity >= idleTimeout else { return false }
                        st.removed = true
                        bytes += st.accountedBytes
                        return true
                    }
                    if expired { idle.append(id) }
                }
                for id in idle {
                    map.removeValue(forKey: id)
                    _ = journal?.append(.delete(id: id))
                }
                budget.adjust(-bytes)
                return idle.count
            }
            total += n
        }
        if total > 0 {
            live.subtract(total, ordering: .relaxed)
            expired.add(UInt64(total), ordering: .relaxed)
            try? journal?.syncAll()
        }
        return total
    }

    public var counts: SessionCounts {
        SessionCounts(
            live: live.load(ordering: .relaxed), created: created.load(ordering: .relaxed),
            expired: expired.load(ordering: .relaxed))
    }
}

/// The registry's journal: written once, before any event loop starts.
private final class JournalBox: @unchecked Sendable {
    var journal: Journal?
}

/// One shard: a dictionary behind a short lock.
private final class Shard: Sendable {
    let map = Mutex<[String: Session]>([:])
}

import PrepageCore
import Synchronization

/// Where sessions live: the boundary a durable or distributed store would replace.
///
/// Every method is safe from any thread and holds a lock only briefly.
public protocol SessionStore: AnyObject, Sendable {
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
    /// The memory budget sessions are charged to.
    var budget: MemoryBudget { get }
}

extension SessionStore {
    /// A store that keeps no budget never refuses for memory.
    public var budget: MemoryBudget { MemoryBudget.unlimited }
}

/// Session counters for `/metrics`.
public struct SessionCounts: Sendable, Hashable {
    public var live: Int
    public var created: UInt64
    public var expired: UInt64
}

/// An error of the store, as an API problem (public wrapper for the protocol).
public struct APIProblemBox: Error {
    let problem: APIProblem
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
    /// What sessions may hold in memory (`--memory-limit`).
    public let budget: MemoryBudget

    public init(maxSessions: Int = 1_000_000, memoryLimit: Int = Int.max) {
        self.maxSessions = maxSessions
        budget = MemoryBudget(limit: memoryLimit)
        shards = (0..<Self.shardCount).map { _ in Shard() }
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

    public func create(id: String, config: SessionConfig, now: Int64) throws(APIProblemBox) -> (
        session: Session, created: Bool
    ) {
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
                                "the server holds its limit of \(maxSessions) sessions; delete some or raise --max-sessions"
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
                            "the sessions' memory budget is spent: \(budget.usedBytes) of \(budget.limit) bytes held (--memory-limit), and this session needs \(needed); delete sessions or raise --memory-limit"
                        )))
            }
            let session = Session(id: id, config: config, prepager: prepager, now: now, fixedBytes: fixed)
            map[id] = session
            created.add(1, ordering: .relaxed)
            return .success((session, true))
        }
        return try result.get()
    }

    public func remove(_ id: String) -> Session? {
        let removed = shards[shard(id)].map.withLock { $0.removeValue(forKey: id) }
        if let removed {
            live.subtract(1, ordering: .relaxed)
            retire(removed)
        }
        return removed
    }

    /// Marks a session removed under its lock (a fault that took the lock first is
    /// in its document; one after looks the id up again) and gives its bytes back.
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
                for id in idle { map.removeValue(forKey: id) }
                budget.adjust(-bytes)
                return idle.count
            }
            total += n
        }
        if total > 0 {
            live.subtract(total, ordering: .relaxed)
            expired.add(UInt64(total), ordering: .relaxed)
        }
        return total
    }

    public var counts: SessionCounts {
        SessionCounts(
            live: live.load(ordering: .relaxed), created: created.load(ordering: .relaxed),
            expired: expired.load(ordering: .relaxed))
    }
}

/// One shard: a dictionary behind a short lock.
private final class Shard: Sendable {
    let map = Mutex<[String: Session]>([:])
}

import Logging
import PrepageCore
import PrepageSockets
import Synchronization

/// `--state-dir`: the journal of session lifecycles and the snapshots of what
/// sessions learned, in one directory this process holds an exclusive lock on.
///
/// - Lifecycle changes (create, install, reset, delete, expiry) are appended to
///   the ``Journal`` under the lock that orders them and made durable before the
///   request is answered.
/// - Every `snapshotInterval`, the sessions whose state changed since the last
///   snapshot are written to a delta file, each copied under its own lock, one at
///   a time: the fault path takes no other lock and allocates nothing more. Now
///   and then (when the deltas outweigh the last full snapshot, or the journal
///   grew long) a full snapshot is written instead: the journal starts a new
///   segment and files older than the previous full snapshot are removed.
/// - At drain, after the event loops have stopped, one last snapshot.
public final class DurableState: Sendable {
    public let directory: String
    let journal: Journal
    private let lockFD: Int32

    private struct Files_ {
        var nextSeq: UInt64
        var fulls: [(seq: UInt64, covers: UInt64, bytes: Int)]
        var deltas: [(seq: UInt64, bytes: Int)]
        var segments: [UInt64]
        /// Delta bytes written since the last full snapshot.
        var deltaBytes = 0
        /// A full snapshot is due (at start, and after a failed write).
        var fullDue = true
    }

    private let files: Mutex<Files_>
    /// Serialises snapshots (the periodic thread and the one at drain).
    private let snapshotting = Mutex<Void>(())
    let counters = DurableCounters()

    /// Opens `directory` (creating it), takes its lock and reads what it holds.
    /// - Throws: when the directory cannot be made or read, or another process holds it.
    static func open(directory: String) throws(SocketError) -> (DurableState, Restored) {
        try Files.makeDirectories(directory)
        // A peer reading this directory probes the lock for an instant: try for a second.
        var lock = try Files.tryLock(directory + "/LOCK")
        for _ in 0..<100 where lock == nil {
            System.sleep(milliseconds: 10)
            lock = try Files.tryLock(directory + "/LOCK")
        }
        guard let lock else {
            throw SocketError(call: "flock(\(directory)/LOCK): another prepaged uses this state directory", errno: 11)
        }
        do throws(SocketError) {
            let restored = try Restored.read(directory: directory, removeTemporaries: true)
            let journal = try Journal(directory: directory, nextLSN: restored.nextLSN)
            var segments = restored.segments
            if !segments.contains(restored.nextLSN) { segments.append(restored.nextLSN) }
            segments.sort()
            let state = DurableState(
                directory: directory, journal: journal, lockFD: lock,
                files: Files_(
                    nextSeq: restored.nextSeq, fulls: restored.fulls, deltas: restored.deltas, segments: segments,
                    deltaBytes: restored.deltas.filter { $0.seq > (restored.fulls.last?.seq ?? 0) }.reduce(0) {
                        $0 + $1.bytes
                    },
                    // A clean restore from a full snapshot goes on with deltas; otherwise a new full one at once.
                    fullDue: restored.fulls.isEmpty || !restored.problems.isEmpty))
            state.counters.restoredSessions.store(restored.sessions.count, ordering: .relaxed)
            state.counters.restoredSnapshotAt.store(restored.newestSnapshotAt, ordering: .relaxed)
            state.counters.problems.add(restored.problems.count, ordering: .relaxed)
            return (state, restored)
        } catch {
            Files.close(lock)
            throw error
        }
    }

    private init(directory: String, journal: Journal, lockFD: Int32, files: Files_) {
        self.directory = directory
        self.journal = journal
        self.lockFD = lockFD
        self.files = Mutex(files)
    }

    /// What one snapshot wrote.
    struct Written {
        var kind: SnapshotWriter.Kind
        var sessions: Int
        var bytes: Int
        var nanoseconds: UInt64
    }

    /// Writes a snapshot: a full one when due (or `full`), else a delta of the
    /// sessions changed since the last one (nothing when none changed).
    @discardableResult
    func snapshot(_ store: SessionRegistry, full forced: Bool = false) throws(SocketError) -> Written? {
        try snapshotting.withLock { _ throws(SocketError) -> Written? in
            let started = System.monotonicNanoseconds()
            let (seq, full) = files.withLock { f -> (UInt64, Bool) in
                let last = f.fulls.last
                let due =
                    forced || f.fullDue || last == nil || f.deltaBytes >= max(last!.bytes, 1 << 20)
                    || journal.nextLSN - last!.covers >= 100_000
                f.nextSeq += 1
                return (f.nextSeq - 1, due)
            }
            // Deletes and expiries not yet synced become durable before anything newer.
            try journal.syncAll()
            let covers = full ? try journal.rotate() : 0
            var writer = try SnapshotWriter(
                directory: directory, seq: seq, kind: full ? .full : .delta, covers: covers,
                takenAt: System.wallNanoseconds())
            store.forEachSession { session in
                // Copied under the session's own lock, one session at a time; encoded after.
                // A restored session not used since is copied in its binary form, as restored.
                let copy: Copy? = session.state.withLock { st in
                    guard full || st.changedSinceSnapshot else { return nil }
                    st.markSaved()
                    if let encoded = st.encoded {
                        return .encoded(st.lastActivity, st.stats, encoded, st.incarnation)
                    }
                    return .image(session.image(of: st), st.incarnation)
                }
                switch copy {
                case .image(let image, let incarnation):
                    writer.add(image, incarnation: incarnation)
                case .encoded(let lastActivity, let stats, let learned, let incarnation):
                    writer.add(
                        id: session.id, config: session.config, createdAt: session.createdAt,
                        lastActivity: lastActivity,
                        stats: stats, learned: learned, incarnation: incarnation)
                case nil:
                    break
                }
            }
            let count = writer.count
            if !full && count == 0 {
                writer.abandon()
                files.withLock { $0.nextSeq -= 1 }
                return nil
            }
            let bytes: Int
            do throws(SocketError) {
                bytes = try writer.finish()
            } catch {
                // The sessions copied were marked saved: only a full snapshot saves them now.
                files.withLock { $0.fullDue = true }
                counters.failures.add(1, ordering: .relaxed)
                throw error
            }
            var obsolete: [String] = []
            files.withLock { f in
                if full {
                    f.fulls.append((seq, covers, bytes))
                    f.deltaBytes = 0
                    f.fullDue = false
                    if !f.segments.contains(covers) {
                        f.segments.append(covers)
                        f.segments.sort()
                    }
                    // Keep the previous full snapshot and what it needs, in case this one is damaged.
                    if f.fulls.count >= 2 {
                        let keep = f.fulls[f.fulls.count - 2]
                        for old in f.fulls where old.seq < keep.seq {
                            obsolete.append(SnapshotWriter.name(seq: old.seq, kind: .full))
                        }
                        f.fulls.removeAll { $0.seq < keep.seq }
                        for old in f.deltas where old.seq < keep.seq {
                            obsolete.append(SnapshotWriter.name(seq: old.seq, kind: .delta))
                        }
                        f.deltas.removeAll { $0.seq < keep.seq }
                        // A segment whose successor starts at or before `keep.covers` holds nothing to replay.
                        var kept: [UInt64] = []
                        for (k, start) in f.segments.enumerated() {
                            if k + 1 < f.segments.count && f.segments[k + 1] <= keep.covers {
                                obsolete.append(String(Journal.segmentPath("", start).dropFirst()))
                            } else {
                                kept.append(start)
                            }
                        }
                        f.segments = kept
                    }
                } else {
                    f.deltas.append((seq, bytes))
                    f.deltaBytes += bytes
                }
            }
            for name in obsolete { try? Files.remove(directory + "/" + name) }
            let elapsed = System.monotonicNanoseconds() - started
            counters.snapshots(full: full, sessions: count, bytes: bytes, nanoseconds: elapsed)
            return Written(kind: full ? .full : .delta, sessions: count, bytes: bytes, nanoseconds: elapsed)
        }
    }

    /// A session as one snapshot copies it.
    private enum Copy {
        case image(SessionImage, UInt64)
        case encoded(Int64, SessionStats, ArraySlice<UInt8>, UInt64)
    }

    /// Ends: the journal flushed and closed, the directory's lock released.
    func close() {
        journal.close()
        Files.close(lockFD)
    }
}

/// What `/metrics` shows of the state directory.
final class DurableCounters: Sendable {
    let fullSnapshots = Atomic<UInt64>(0)
    let deltaSnapshots = Atomic<UInt64>(0)
    let failures = Atomic<UInt64>(0)
    let problems = Atomic<Int>(0)
    let restoredSessions = Atomic<Int>(0)
    let restoredSnapshotAt = Atomic<Int64>(0)
    let lastSessions = Atomic<Int>(0)
    let lastBytes = Atomic<Int>(0)
    let lastNanoseconds = Atomic<UInt64>(0)
    /// Wall-clock ns of the last snapshot written.
    let lastAt = Atomic<Int64>(0)

    func snapshots(full: Bool, sessions: Int, bytes: Int, nanoseconds: UInt64) {
        if full { fullSnapshots.add(1, ordering: .relaxed) } else { deltaSnapshots.add(1, ordering: .relaxed) }
        lastSessions.store(sessions, ordering: .relaxed)
        lastBytes.store(bytes, ordering: .relaxed)
        lastNanoseconds.store(nanoseconds, ordering: .relaxed)
        lastAt.store(System.wallNanoseconds(), ordering: .relaxed)
    }

    func render(into out: inout String) {
        out += "# HELP prepage_state_snapshots_total Snapshots written to --state-dir, by kind.\n"
        out += "# TYPE prepage_state_snapshots_total counter\n"
        out += "prepage_state_snapshots_total{kind=\"full\"} \(fullSnapshots.load(ordering: .relaxed))\n"
        out += "prepage_state_snapshots_total{kind=\"delta\"} \(deltaSnapshots.load(ordering: .relaxed))\n"
        out += "# HELP prepage_state_snapshot_failures_total Snapshots that could not be written.\n"
        out += "# TYPE prepage_state_snapshot_failures_total counter\n"
        out += "prepage_state_snapshot_failures_total \(failures.load(ordering: .relaxed))\n"
        out += "# HELP prepage_state_last_snapshot_sessions Sessions in the last snapshot.\n"
        out += "# TYPE prepage_state_last_snapshot_sessions gauge\n"
        out += "prepage_state_last_snapshot_sessions \(lastSessions.load(ordering: .relaxed))\n"
        out += "# HELP prepage_state_last_snapshot_bytes Size of the last snapshot.\n"
        out += "# TYPE prepage_state_last_snapshot_bytes gauge\n"
        out += "prepage_state_last_snapshot_bytes \(lastBytes.load(ordering: .relaxed))\n"
        out += "# HELP prepage_state_last_snapshot_seconds Time the last snapshot took.\n"
        out += "# TYPE prepage_state_last_snapshot_seconds gauge\n"
        out += "prepage_state_last_snapshot_seconds \(Double(lastNanoseconds.load(ordering: .relaxed)) / 1e9)\n"
        out += "# HELP prepage_state_last_snapshot_timestamp_seconds When the last snapshot was written (Unix time).\n"
        out += "# TYPE prepage_state_last_snapshot_timestamp_seconds gauge\n"
        out += "prepage_state_last_snapshot_timestamp_seconds \(Double(lastAt.load(ordering: .relaxed)) / 1e9)\n"
        out += "# HELP prepage_state_restored_sessions Sessions restored at start.\n"
        out += "# TYPE prepage_state_restored_sessions gauge\n"
        out += "prepage_state_restored_sessions \(restoredSessions.load(ordering: .relaxed))\n"
        out +=
            "# HELP prepage_state_restored_snapshot_timestamp_seconds When the newest snapshot restored at start was begun (Unix time; 0: none): every fault answered before it was restored.\n"
        out += "# TYPE prepage_state_restored_snapshot_timestamp_seconds gauge\n"
        out +=
            "prepage_state_restored_snapshot_timestamp_seconds \(Double(restoredSnapshotAt.load(ordering: .relaxed)) / 1e9)\n"
        out +=
            "# HELP prepage_state_problems_total Damaged files or records found (and skipped) at start, and restored states that could not be made at their first use.\n"
        out += "# TYPE prepage_state_problems_total counter\n"
        out +=
            "prepage_state_problems_total \(problems.load(ordering: .relaxed) + SessionState.materializeFailures.load(ordering: .relaxed))\n"
    }
}

/// The server's state directory, once opened (before any event loop starts).
final class DurableBox: @unchecked Sendable {
    var state: DurableState?

    /// Why the state directory cannot promise durability any more, or `nil`.
    var failure: String? {
        guard let state, let error = state.journal.failure else { return nil }
        return error.description
    }
}

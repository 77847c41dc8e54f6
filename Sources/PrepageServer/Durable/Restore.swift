import PrepageCore
import PrepageSockets

/// What a state directory holds, read back: the sessions to restore, and what
/// was found damaged and skipped (`docs/server.md`, "Durable sessions").
///
/// The newest full snapshot that passes its checksum is the base; every delta
/// after it is applied; then the journal from the snapshot's `covers` LSN on
/// decides which sessions exist and from which record their state starts
/// (their incarnation). A session takes the newest snapshot entry of its
/// incarnation, else the state its journal record gives (fresh for a create or
/// a reset, the image of an install). An entry of an earlier incarnation —
/// a session deleted, reset or replaced since — is never used.
struct Restored: Sendable {
    var sessions: [Session] = []
    /// Damaged or refused files and records, one line each, for the log.
    var problems: [String] = []
    var nextLSN: UInt64 = 1
    var nextSeq: UInt64 = 1
    /// The files found, for the snapshotter's bookkeeping.
    var fulls: [(seq: UInt64, covers: UInt64, bytes: Int)] = []
    var deltas: [(seq: UInt64, bytes: Int)] = []
    var segments: [UInt64] = []
    /// How many sessions came from a snapshot entry, and how many from the journal alone.
    var fromSnapshots = 0
    var fromJournal = 0
    var bytesRead = 0
    /// When the newest snapshot restored was begun (wall ns; 0 without one): every
    /// fault answered before it is in the sessions restored.
    var newestSnapshotAt: Int64 = 0

    /// The newest snapshot entry of a session: file, entry, incarnation, the file's seq.
    typealias Best = (file: Int, entry: Int, incarnation: UInt64, seq: UInt64)

    /// Which sessions a directory holds and where each one's state is, none of them made
    /// yet: what ``read(directory:removeTemporaries:)`` makes every session from,
    /// and what an instance looks up one session at a time in a peer's directory.
    struct Index: Sendable {
        /// The figures and problems of the read (``Restored/sessions`` empty).
        var restored: Restored
        /// The sessions that exist.
        var live: [String: Live]
        let best: [String: Best]
        let files: [SnapshotFile]

        /// The snapshot entry session `id` (as `l` says it exists) takes its state from: its
        /// newest of the same incarnation (an earlier one's session was deleted, reset or
        /// replaced since); `nil` when only its journal record gives its state.
        func entry(_ id: String, _ l: Live) -> Best? {
            guard let b = best[id], b.incarnation == l.incarnation else { return nil }
            return b
        }

        /// Session `id` as the directory holds it: its snapshot ``entry(_:_:)``, else what
        /// its journal record gives; `nil` when it is not there or does not decode.
        func image(_ id: String) -> SessionImage? {
            guard let l = live[id] else { return nil }
            if let b = entry(id, l), let image = try? files[b.file].image(b.entry) { return image }
            var problems: [String] = []
            return l.session(id: id, files: files, problems: &problems)?.image()
        }
    }

    /// The state in `directory`. Never throws on damaged content: what cannot be
    /// read is reported in ``problems`` and skipped. `removeTemporaries` removes
    /// files a crash left half-written (only the directory's owner may).
    static func read(directory: String, removeTemporaries: Bool) throws(SocketError) -> Restored {
        let index = try index(directory: directory, removeTemporaries: removeTemporaries)
        var out = index.restored

        // 4. Each live session's state: its snapshot entry, else what its journal record
        //    gives. Sessions are independent: made on every core.
        let work = Array(index.live)
        let workers = max(1, min(System.processorCount, work.count / 2_000 + 1))
        let parts = (0..<workers).map { w in
            Part(work: work, range: (work.count * w / workers)..<(work.count * (w + 1) / workers), index: index)
        }
        if workers == 1 {
            parts[0].run()
        } else {
            var running: [OSThread] = []
            for (w, part) in parts.enumerated().dropFirst() {
                if let t = try? OSThread(name: "prepaged-restore", { part.run() }) {
                    running.append(t)
                } else {
                    parts[w].run()  // no thread: here
                }
            }
            parts[0].run()
            for t in running { t.join() }
        }
        out.sessions.reserveCapacity(work.count)
        for part in parts {
            out.sessions += part.sessions
            out.problems += part.problems
            out.fromSnapshots += part.fromSnapshots
            out.fromJournal += part.fromJournal
        }
        return out
    }

    /// Steps 1–3 of ``read(directory:removeTemporaries:)``: the files read and
    /// checked, the journal replayed; no session made.
    static func index(directory: String, removeTemporaries: Bool) throws(SocketError) -> Index {
        var out = Restored()
        var fullNames: [(UInt64, String)] = []
        var deltaNames: [(UInt64, String)] = []
        var segmentNames: [(UInt64, String)] = []
        for name in try Files.list(directory) {
            if name.hasSuffix(".tmp") {
                if removeTemporaries { try? Files.remove(directory + "/" + name) }
                continue
            }
            if let seq = number(name, prefix: "snapshot-", suffix: ".full") {
                fullNames.append((seq, name))
            } else if let seq = number(name, prefix: "snapshot-", suffix: ".delta") {
                deltaNames.append((seq, name))
            } else if let lsn = number(name, prefix: "journal-", suffix: ".log") {
                segmentNames.append((lsn, name))
            }
        }
        fullNames.sort { $0.0 > $1.0 }
        deltaNames.sort { $0.0 < $1.0 }
        segmentNames.sort { $0.0 < $1.0 }
        out.segments = segmentNames.map(\.0)
        out.nextSeq = (fullNames.map(\.0) + deltaNames.map(\.0)).max().map { $0 + 1 } ?? 1

        // 1. The newest full snapshot that reads back whole.
        var files: [SnapshotFile] = []
        var base: SnapshotFile?
        for (seq, name) in fullNames {
            do {
                if base != nil {
                    // An older full snapshot: kept as the fallback, not read (its header says what it covers).
                    let path = directory + "/" + name
                    let head = try Files.read(path, limit: SnapshotWriter.headerBytes)
                    if let covers = SnapshotFile.covers(header: head), let size = Files.size(path) {
                        out.fulls.append((seq, covers, size))
                    }
                    continue
                }
                let bytes = try Files.read(directory + "/" + name)
                out.bytesRead += bytes.count
                let file = try SnapshotFile(bytes: bytes, name: name)
                out.fulls.append((seq, file.covers, bytes.count))
                base = file
            } catch let e as SnapshotFile.Refusal {
                out.problems.append(e.description + (base == nil ? "; falling back to an older snapshot" : ""))
            } catch {
                out.problems.append("\(name): \(error); skipped")
            }
        }
        out.fulls.sort { $0.seq < $1.seq }
        let covers = base?.covers ?? 1
        let baseSeq = base?.seq ?? 0

        // The newest entry of each session, by (incarnation, seq).
        var best: [String: Best] = [:]
        func consider(_ file: SnapshotFile) {
            let f = files.count
            files.append(file)
            out.newestSnapshotAt = max(out.newestSnapshotAt, file.takenAt)
            best.reserveCapacity(best.count + file.entries.count)
            for (i, e) in file.entries.enumerated() {
                if let b = best[e.id], (b.incarnation, b.seq) > (e.incarnation, file.seq) { continue }
                best[e.id] = (f, i, e.incarnation, file.seq)
            }
        }
        if let base { consider(base) }
        // 2. Every delta after it (an older one is kept with the older full snapshot, not read).
        for (seq, name) in deltaNames {
            do {
                guard seq > baseSeq else {
                    if let size = Files.size(directory + "/" + name) { out.deltas.append((seq, size)) }
                    continue
                }
                let bytes = try Files.read(directory + "/" + name)
                out.bytesRead += bytes.count
                out.deltas.append((seq, bytes.count))
                consider(try SnapshotFile(bytes: bytes, name: name))
            } catch let e as SnapshotFile.Refusal {
                out.problems.append(e.description + "; its sessions keep what an earlier snapshot saved")
            } catch {
                out.problems.append("\(name): \(error); skipped")
            }
        }

        // 3. Which sessions exist, from the base's sessions and the journal after it.
        var live: [String: Live] = [:]
        if let base {
            live.reserveCapacity(base.entries.count)
            for (i, e) in base.entries.enumerated() {
                live[e.id] = Live(incarnation: e.incarnation, config: base.configs[e.config], origin: .snapshot(0, i))
            }
        }
        var maxLSN = covers - 1
        for (k, (start, name)) in segmentNames.enumerated() {
            // A segment ending before `covers` holds nothing to replay.
            if k + 1 < segmentNames.count && segmentNames[k + 1].0 <= covers { continue }
            let bytes: [UInt8]
            do {
                bytes = try Files.read(directory + "/" + name)
            } catch {
                out.problems.append("\(name): \(error); its records are lost")
                continue
            }
            out.bytesRead += bytes.count
            let contents = Journal.read(bytes, name: name)
            out.problems += contents.problems
            _ = start
            for (lsn, record) in contents.records {
                maxLSN = max(maxLSN, lsn)
                guard lsn >= covers else { continue }
                apply(record, lsn: lsn, to: &live, files: files, problems: &out.problems)
            }
        }
        for file in files {
            maxLSN = max(maxLSN, file.covers == 0 ? 0 : file.covers - 1)
            for e in file.entries { maxLSN = max(maxLSN, e.incarnation) }
        }
        out.nextLSN = maxLSN + 1
        return Index(restored: out, live: live, best: best, files: files)
    }

    /// Some of the sessions to make, on one thread.
    private final class Part: @unchecked Sendable {
        let work: [(key: String, value: Live)]
        let range: Range<Int>
        let index: Index
        var sessions: [Session] = []
        var problems: [String] = []
        var fromSnapshots = 0
        var fromJournal = 0

        init(
            work: [(key: String, value: Live)], range: Range<Int>,
            index: Index
        ) {
            self.work = work
            self.range = range
            self.index = index
        }

        /// A fresh policy per configuration, made (validated) once and copied.
        private var templates: [Int: Prepager] = [:]

        /// `key`: the file and the config's index in it (configs are listed once per file).
        private func fresh(_ config: SessionConfig, key: Int) throws -> Prepager {
            if let p = templates[key] { return p }
            let p = try Prepager(config: config.prepage)
            templates[key] = p
            return p
        }

        func run() {
            sessions.reserveCapacity(range.count)
            for k in range {
                let (id, l) = work[k]
                var session: Session?
                if let b = index.entry(id, l) {
                    do {
                        // Checked to decode whole now; its tables are made at its first use.
                        let file = index.files[b.file]
                        let h = try file.header(b.entry, check: true)
                        let c = file.entries[b.entry].config
                        let config = file.configs[c]
                        session = Session(
                            restored: id, config: config, createdAt: h.createdAt, lastActivity: h.lastActivity,
                            stats: h.stats, fresh: try fresh(config, key: b.file << 32 | c), encoded: h.learned,
                            incarnation: l.incarnation)
                        fromSnapshots += 1
                    } catch {
                        problems.append(
                            "session \(Inputs.quoted(id)): its snapshot entry does not restore (\(error)); restored from its journal record"
                        )
                    }
                }
                if session == nil {
                    session = l.session(id: id, files: index.files, problems: &problems)
                    if session != nil { fromJournal += 1 }
                }
                if let session {
                    // What a snapshot holds needs no new one (a session from the journal alone
                    // is rebuilt from the journal until the next full snapshot holds it).
                    session.state.withLock { $0.markSaved() }
                    sessions.append(session)
                }
            }
        }
    }

    /// A session the replay found to exist.
    struct Live {
        var incarnation: UInt64
        var config: SessionConfig
        var origin: Origin

        enum Origin {
            /// Entry `entry` of loaded file `file` (the base).
            case snapshot(Int, Int)
            /// A fresh state made at `createdAt`, with these counters (after a reset).
            case fresh(createdAt: Int64, lastActivity: Int64, stats: SessionStats)
            /// An installed image.
            case image(SessionImage)
        }

        /// When the session was created, as its origin knows it.
        func createdAt(files: [SnapshotFile]) -> Int64? {
            switch origin {
            case .snapshot(let f, let i): (try? files[f].image(i))?.createdAt
            case .fresh(let createdAt, _, _): createdAt
            case .image(let image): image.createdAt
            }
        }

        func session(id: String, files: [SnapshotFile], problems: inout [String]) -> Session? {
            do {
                switch origin {
                case .snapshot(let f, let i):
                    return try files[f].image(i).session(incarnation: incarnation)
                case .fresh(let createdAt, let lastActivity, let stats):
                    let s = Session(
                        id: id, config: config, prepager: try Prepager(config: config.prepage), now: createdAt,
                        incarnation: incarnation)
                    s.state.withLock {
                        $0.stats = stats
                        $0.lastActivity = lastActivity
                    }
                    return s
                case .image(var image):
                    image.id = id
                    return try image.session(incarnation: incarnation)
                }
            } catch {
                problems.append("session \(Inputs.quoted(id)): does not restore (\(error)); skipped")
                return nil
            }
        }
    }

    /// Applies one journal record: only a record newer than the session's incarnation
    /// changes it (records replay in LSN order; a base snapshot may already hold later ones).
    private static func apply(
        _ record: JournalRecord, lsn: UInt64, to live: inout [String: Live], files: [SnapshotFile],
        problems: inout [String]
    ) {
        let id = record.id
        if let current = live[id], current.incarnation >= lsn { return }
        switch record {
        case .create(_, let config, let createdAt):
            live[id] = Live(
                incarnation: lsn, config: config,
                origin: .fresh(createdAt: createdAt, lastActivity: createdAt, stats: SessionStats()))
        case .delete:
            live[id] = nil
        case .reset(_, let at, let stats):
            guard let current = live[id] else { return }
            let createdAt = current.createdAt(files: files) ?? at
            live[id] = Live(
                incarnation: lsn, config: current.config,
                origin: .fresh(createdAt: createdAt, lastActivity: at, stats: stats))
        case .install(let image):
            live[id] = Live(incarnation: lsn, config: image.config, origin: .image(image))
        }
    }

    /// The hexadecimal number in `prefix<16 hex digits>suffix`, or `nil`.
    static func number(_ name: String, prefix: String, suffix: String) -> UInt64? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        let digits = name.dropFirst(prefix.count).dropLast(suffix.count)
        guard digits.count == 16 else { return nil }
        return UInt64(digits, radix: 16)
    }
}

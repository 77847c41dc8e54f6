import PrepageCore
import PrepageSockets
import Synchronization

/// The other instances of a sharded deployment (`--peers`, `--peer-state-dirs`):
/// where a session this instance is asked for may be now, with what it learned.
///
/// A consistent-hash balancer sends a session to another instance when its
/// instance stops, fails, drains or comes back. The client's fault there moves
/// it (``pullForFault(_:)``, ``adoptFromStopped(_:)``); a client whose first
/// request is another meets a 404 and re-creates the session (`PUT` with its
/// configuration); before creating it fresh, this instance asks each peer to
/// **release** it
/// (`POST /sessions/{id}/release`: the peer removes it, journaled, and answers
/// its whole state — any fault it decided is in that state, any fault after is
/// refused there) and installs what it gets: the session goes on exactly where
/// it was. When no peer answers with it and the peers' state directories are on
/// shared storage, the newest copy found there is taken instead (what the
/// failed instance last snapshotted; after a drain, everything). A session this
/// instance restored from its own directory is checked the same way at its
/// first use: when a peer has it now, the peer's copy — the one its client has
/// been using meanwhile — replaces the restored one.
///
/// These calls run on the mover threads (``Movers``; never on an event loop: the
/// request waits, parked), with short timeouts (connect 100 ms, answer 1 s); a peer
/// that fails is skipped for 1 s. They happen when a session moves, never on a fault
/// of a session in place.
final class Peers: Sendable {
    final class Peer: Sendable {
        let url: String
        let host: String
        let port: Int
        /// Monotonic ns before which the peer is not asked (it failed just before).
        let skipUntil = Atomic<UInt64>(0)

        init(url: String, host: String, port: Int) {
            self.url = url
            self.host = host
            self.port = port
        }
    }

    let peers: [Peer]
    /// `directories[i]` is `peers[i]`'s state directory, when on shared storage (or empty).
    let directories: [PeerDirectory]
    let token: String?
    /// Whether a fault for a session this instance does not have may find it in a
    /// stopped peer's directory (``adoptFromStopped(_:)``): with `--peer-state-dirs`.
    let adoptsOnFault: Bool
    static let connectTimeoutMilliseconds: Int32 = 100
    static let answerTimeoutMilliseconds = 1_000
    static let skipNanoseconds: UInt64 = 1_000_000_000
    /// Sessions received from peers and from their directories, for `/metrics`.
    let pulled = Atomic<UInt64>(0)
    let adopted = Atomic<UInt64>(0)
    let released = Atomic<UInt64>(0)

    /// `urls`: `http://host:port` each (the peers as this instance reaches them, not
    /// through the balancer). `nil` when a URL is not of that form.
    init?(urls: [String], directories: [String], token: String?) {
        guard directories.isEmpty || directories.count == urls.count else { return nil }
        var list: [Peer] = []
        for url in urls {
            guard let (host, port) = Self.parse(url) else { return nil }
            list.append(Peer(url: url, host: host, port: port))
        }
        peers = list
        self.directories = directories.map(PeerDirectory.init)
        self.token = token
        adoptsOnFault = directories.contains { !$0.isEmpty }
    }

    /// `http://host:port[/]` → (host, port).
    static func parse(_ url: String) -> (String, Int)? {
        guard url.hasPrefix("http://") else { return nil }
        var rest = url.dropFirst("http://".count)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]),
            (1...65_535).contains(port), colon != rest.startIndex, !rest[..<colon].contains("/")
        else { return nil }
        var host = rest[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }  // [::1]
        return (String(host), port)
    }

    /// Where session `id` is now, with what it learned: released by the first peer that
    /// holds it, else (`fromDirectories`) the newest copy (most faults) in the state
    /// directories of the peers that did not answer; `nil` when none has it (a peer that
    /// has it with another configuration keeps it).
    func find(_ id: String, config: SessionConfig, fromDirectories: Bool) -> SessionImage? {
        var w = JSONWriter()
        Session.writeConfig(config, &w)
        let body = w.bytes
        let (released, silent) = releasedByRunning(id, body: body, matching: config)
        if let released { return released }
        guard fromDirectories, !directories.isEmpty else { return nil }
        // A peer that answers is the authority on its sessions; one that does not may have
        // left them in its directory (a live peer's files are only what it last saved). A
        // peer that still holds its directory runs: it is draining (its listeners closed, its
        // last snapshot on its way: the lock is let go when it is written) or starting (it
        // answers soon): wait for either, for a while.
        // A copy in a stopped peer's directory: the newest (most faults) is taken.
        var candidates: [(Int, SessionImage)] = []
        let deadline = System.monotonicNanoseconds() + PeerDirectory.waitNanoseconds
        for k in silent {
            waiting: while true {
                if !directories[k].isHeld {
                    guard let image = directories[k].find(id), image.config == config else { break waiting }
                    candidates.append((k, image))
                    break waiting
                }
                guard System.monotonicNanoseconds() < deadline else { break waiting }
                switch exchange(peers[k], path: "/sessions/\(id)/release", body: body) {
                case .answered(200, let answer):
                    if let image = Self.releasedImage(answer, matching: config) {
                        pulled.add(1, ordering: .relaxed)
                        peers[k].skipUntil.store(0, ordering: .relaxed)
                        return image
                    }
                    break waiting
                case .answered:
                    break waiting  // it runs and does not have it: its files are not the truth
                case .failed:
                    System.sleep(milliseconds: 5)
                }
            }
        }
        candidates.sort { a, b in
            (a.1.stats.faults, a.1.lastActivity) > (b.1.stats.faults, b.1.lastActivity)
        }
        for (k, _) in candidates {
            taking: while true {
                switch directories[k].take(id, config: config) {
                case .taken(let image):
                    adopted.add(1, ordering: .relaxed)
                    return image
                case .absent:
                    break taking  // taken meanwhile by another instance
                case .busy:
                    // Another instance is taking from it, or the peer started again: then it answers soon.
                    guard System.monotonicNanoseconds() < deadline else { break taking }
                    switch exchange(peers[k], path: "/sessions/\(id)/release", body: body) {
                    case .answered(200, let answer):
                        if let image = Self.releasedImage(answer, matching: config) {
                            pulled.add(1, ordering: .relaxed)
                            return image
                        }
                        break taking
                    case .answered:
                        break taking
                    case .failed:
                        System.sleep(milliseconds: 2)
                    }
                }
            }
        }
        return nil
    }

    /// Session `id` taken from the directory of a peer that is not running (its lock not
    /// held), with the configuration that peer journaled for it — for a fault that names a
    /// session this instance does not have (its client meets it here after the balancer
    /// moved it; no configuration comes with a fault). The newest copy (most faults) when
    /// several stopped peers have it. `nil` when no stopped peer has it: a peer that runs
    /// is not read (it answers for its sessions; its files are only what it last saved),
    /// nor asked.
    func adoptFromStopped(_ id: String) -> SessionImage? {
        var candidates: [(Int, SessionImage)] = []
        for (k, directory) in directories.enumerated() where !directory.path.isEmpty && !directory.isHeld {
            if let image = directory.find(id) { candidates.append((k, image)) }
        }
        candidates.sort { a, b in
            (a.1.stats.faults, a.1.lastActivity) > (b.1.stats.faults, b.1.lastActivity)
        }
        for (k, image) in candidates {
            // The same take as a re-creation's: on its turn, journaled in the peer's directory
            // as moved (synced by ``syncMoves()`` once the session is durable here).
            if case .taken(let taken) = directories[k].take(id, config: image.config) {
                adopted.add(1, ordering: .relaxed)
                return taken
            }
        }
        return nil
    }

    /// Makes the moves this instance recorded in its peers' directories durable: after
    /// the sessions taken are durable here (see ``PeerDirectory/take(_:config:)``).
    func syncMoves() {
        for directory in directories where !directory.path.isEmpty { directory.syncMoved() }
    }

    /// Session `id` released by the first running peer that holds it, whatever its
    /// configuration — for a fault that names a session this instance does not have (no
    /// configuration comes with a fault: the session's own moves with it). The balancer
    /// sends the session's client here now: its instance is draining, came back, or the
    /// balancer's ring is changing. `nil` when no peer answers with it.
    func pullForFault(_ id: String) -> SessionImage? {
        releasedByRunning(id, body: [], matching: nil).image
    }

    /// Asks each peer not being skipped, in turn, to release session `id` (`body`: the
    /// configuration expected, or empty for any): the first image answered with the
    /// configuration `matching` (any, when `nil`), and the peers that did not answer
    /// (skipped, or failing now: skipped for a while from now on).
    private func releasedByRunning(
        _ id: String, body: [UInt8], matching config: SessionConfig?
    ) -> (image: SessionImage?, silent: [Int]) {
        let now = System.monotonicNanoseconds()
        var silent: [Int] = []
        for (k, peer) in peers.enumerated() {
            guard peer.skipUntil.load(ordering: .relaxed) <= now else {
                silent.append(k)
                continue
            }
            switch exchange(peer, path: "/sessions/\(id)/release", body: body) {
            case .answered(200, let answer):
                if let image = Self.releasedImage(answer, matching: config) {
                    pulled.add(1, ordering: .relaxed)
                    return (image, silent)
                }
            case .answered:
                continue  // 404: not there; 409: there with another configuration (kept there)
            case .failed:
                peer.skipUntil.store(now + Self.skipNanoseconds, ordering: .relaxed)
                silent.append(k)
            }
        }
        return (nil, silent)
    }

    /// The session a peer released (the body of its `200`), when it has the configuration
    /// asked for (any, when `nil`).
    private static func releasedImage(_ answer: [UInt8], matching config: SessionConfig?) -> SessionImage? {
        let image: SessionImage? = answer.withUnsafeBytes { raw in
            var s = JSONScanner(raw)
            return try? StateDocument.read(&s, body: raw)
        }
        guard let image, config == nil || image.config == config else { return nil }
        return image
    }

    enum Exchange {
        case answered(Int, [UInt8])
        case failed
    }

    /// One `POST` with `Connection: close`: the status and body of the answer.
    private func exchange(_ peer: Peer, path: String, body: [UInt8]) -> Exchange {
        let fd: Int32
        do {
            fd = try Socket.connect(
                host: peer.host, port: peer.port, timeoutMilliseconds: Self.connectTimeoutMilliseconds)
        } catch {
            return .failed
        }
        defer { Socket.close(fd) }
        Socket.setTimeouts(fd, milliseconds: Self.answerTimeoutMilliseconds)
        var head = "POST \(path) HTTP/1.1\r\nHost: \(peer.host):\(peer.port)\r\nContent-Type: application/json\r\n"
        head += "Content-Length: \(body.count)\r\nConnection: close\r\n"
        if let token { head += "Authorization: Bearer \(token)\r\n" }
        head += "\r\n"
        let request = Array(head.utf8) + body
        let sent: Bool = request.withUnsafeBytes { raw in (try? Socket.sendAll(fd, raw)) != nil }
        guard sent else { return .failed }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let deadline = System.monotonicNanoseconds() + UInt64(Self.answerTimeoutMilliseconds) * 1_000_000
        while answer.count < 64 << 20 {
            let now = System.monotonicNanoseconds()
            guard now < deadline else { return .failed }
            let timeout = Int32((deadline - now) / 1_000_000) + 1
            let read: Int?? = chunk.withUnsafeMutableBytes { raw in
                try? Socket.read(fd, into: raw, timeoutMilliseconds: timeout)
            }
            guard let result = read, let n = result else { return .failed }
            if n == 0 { break }
            answer.append(contentsOf: chunk[0..<n])
        }
        // "HTTP/1.1 200 OK\r\n…\r\n\r\nbody"
        guard answer.count >= 12, let end = Self.headEnd(answer),
            let status = Int(String(decoding: answer[9..<12], as: UTF8.self))
        else { return .failed }
        return .answered(status, Array(answer[(end + 4)...]))
    }

    private static func headEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 {
            return i
        }
        return nil
    }
}

/// A peer's state directory on shared storage, read when the peer does not
/// answer: its sessions as the peer last saved them.
///
/// Locks (`flock`, in the directory): the peer holds `LOCK` exclusively while it
/// runs. An instance taking a session from the directory holds `LOCK` *shared*
/// (the peer cannot start meanwhile) and `TAKE` exclusively (takers take turns):
/// so a taker never looks like a running peer to the others (``isHeld`` probes
/// for an exclusive holder), and they wait for each other for an instant, not
/// for a peer's drain. What takers add — a `delete` per session, in a journal
/// segment of its own — is read incrementally: the directory is read whole only
/// once, and again when the peer itself changed it.
final class PeerDirectory: Sendable {
    let path: String

    private struct Cache {
        /// Whether the directory was read since this instance started.
        var loaded = false
        /// File names and sizes when read: the directory changed when they differ.
        var signature: [String: Int] = [:]
        /// Its sessions, made one at a time when asked for.
        var index: Restored.Index?
        /// The next LSN of the directory's journal, when read.
        var nextLSN: UInt64 = 1
        /// What a take made for another mover's ticket, until that mover collects it.
        var answers: [UInt64: Take] = [:]
    }

    private let cache = Mutex(Cache())
    /// Moves recorded in the directory's journal (counted) and the segments written since
    /// the last sync; the count synced so far (its lock held while it syncs, so that one
    /// sync covers every move recorded before it started: group commit).
    private let recorded = Mutex<(count: UInt64, unsynced: Set<String>)>((0, []))
    private let synced = Mutex<UInt64>(0)
    /// The sessions this instance's movers asked to take, not yet taken (by ticket).
    private let asked = Mutex<(next: UInt64, list: [(ticket: UInt64, id: String, config: SessionConfig)])>((0, []))

    init(_ path: String) {
        self.path = path
    }

    /// The longest a lookup waits for a peer that holds its directory (draining: its
    /// last snapshot is on its way) before reading what is there.
    static let waitNanoseconds: UInt64 = 2_000_000_000
    /// The longest a take waits for other instances taking from the same directory
    /// (each holds its turn for a read of what changed and a record).
    static let turnWaitNanoseconds: UInt64 = 1_000_000_000

    /// Whether the peer holds its directory (it runs: draining, or starting). An
    /// instance taking a session from it holds its lock shared: not counted.
    var isHeld: Bool { Files.isLocked(path + "/LOCK") }

    /// The session `id` as the directory holds it now.
    func find(_ id: String) -> SessionImage? {
        cache.withLock { c -> SessionImage? in
            refresh(&c)
            return c.index?.image(id)
        }
    }

    /// The directory's file names and sizes (the locks left out).
    private var signature: [String: Int]? {
        guard let names = try? Files.list(path) else { return nil }
        var signature: [String: Int] = [:]
        for name in names where !name.hasSuffix(".tmp") && name != "LOCK" && name != "TAKE" {
            signature[name] = Files.size(path + "/" + name) ?? -1
        }
        return signature
    }

    /// Reads the directory again when it changed since it was last read: only the
    /// journal records added since, when that is all that changed.
    private func refresh(_ c: inout Cache) {
        guard let now = signature else { return }
        guard !c.loaded || c.signature != now else { return }
        if c.loaded && readAdded(&c, now) {
            c.signature = now
            return
        }
        guard let index = try? Restored.index(directory: path, removeTemporaries: false) else { return }
        c.loaded = true
        c.signature = now
        c.nextLSN = index.restored.nextLSN
        c.index = index
    }

    /// Applies what other instances taking sessions added since the directory was read:
    /// journal segments (new or grown) whose new records are deletes. `false` when
    /// anything else changed (a snapshot written, a file removed, another kind of
    /// record: the peer itself ran), to read the directory whole.
    private func readAdded(_ c: inout Cache, _ now: [String: Int]) -> Bool {
        if c.signature.keys.contains(where: { now[$0] == nil }) { return false }
        var changed: [(start: UInt64, name: String)] = []
        for (name, size) in now {
            let before = c.signature[name]
            if before == size { continue }
            // A journal segment another instance created (empty yet, or written), or one that grew.
            guard let start = Restored.number(name, prefix: "journal-", suffix: ".log"), before ?? 0 <= size
            else { return false }
            changed.append((start, name))
        }
        changed.sort { $0.start < $1.start }
        var next = c.nextLSN
        var removed: [String] = []
        for (_, name) in changed {
            guard let bytes = try? Files.read(path + "/" + name) else { return false }
            for (lsn, record) in Journal.read(bytes, name: name).records where lsn >= c.nextLSN {
                guard case .delete(let id) = record else { return false }
                removed.append(id)
                next = max(next, lsn + 1)
            }
        }
        for id in removed { c.index?.live[id] = nil }
        c.nextLSN = next
        return true
    }

    /// What ``take(_:config:)`` found.
    enum Take {
        /// The session as the peer last saved it, now recorded there as moved.
        case taken(SessionImage)
        /// Not there (or there with another configuration).
        case absent
        /// The peer holds its directory: it runs (draining, or starting again).
        case busy
    }

    /// Takes session `id` from the directory of a peer that is not running: on its
    /// turn among the instances taking from it, with the peer's lock held shared (the
    /// peer cannot start meanwhile), reads its newest copy and records in the peer's
    /// own journal that it moved away (a delete), so that the peer does not bring it
    /// back when it restarts. The record is written when this returns (other takers read
    /// it, and it outlives this process), and durable after ``syncMoved()``, which the
    /// caller calls once the session is durable here: a machine that fails between the two
    /// syncs leaves it in both directories, unless the kernel wrote this record back first.
    ///
    /// Takes are group-committed, like the journal's syncs: the mover that gets the
    /// directory takes every session asked for meanwhile by this instance's movers, in
    /// one segment with one write (and, later, one `fdatasync`); the others find their
    /// answer made. (A stopped peer's sessions all move at once; one disk flush each would
    /// queue them.)
    func take(_ id: String, config: SessionConfig) -> Take {
        let ticket = asked.withLock { a -> UInt64 in
            a.next += 1
            a.list.append((a.next, id, config))
            return a.next
        }
        // The movers of this process take turns (under the cache's lock); TAKE keeps other
        // instances taking from this directory out meanwhile, LOCK (shared) the peer.
        return cache.withLock { c -> Take in
            if let made = c.answers.removeValue(forKey: ticket) { return made }
            let batch = asked.withLock { a in
                defer { a.list.removeAll(keepingCapacity: true) }
                return a.list
            }
            let made = takeAll(batch, &c)
            for (k, (t, _, _)) in batch.enumerated() where t != ticket { c.answers[t] = made[k] }
            return made[batch.firstIndex { $0.ticket == ticket }!]
        }
    }

    /// The sessions of `batch`, taken in one record of the directory (see ``take(_:config:)``).
    private func takeAll(_ batch: [(ticket: UInt64, id: String, config: SessionConfig)], _ c: inout Cache) -> [Take] {
        guard let turn = waitForTurn() else { return batch.map { _ in .busy } }
        defer { Files.close(turn) }
        guard let lock = try? Files.tryLockShared(path + "/LOCK") else { return batch.map { _ in .busy } }
        defer { Files.close(lock) }
        refresh(&c)
        var made: [Take] = []
        var taking: [String] = []
        for (_, id, config) in batch {
            if c.index?.live[id]?.config == config, !taking.contains(id), let image = c.index?.image(id) {
                made.append(.taken(image))
                taking.append(id)
            } else {
                made.append(.absent)
            }
        }
        guard !taking.isEmpty else { return made }
        guard let segment = recordMoved(taking, &c) else { return batch.map { _ in .absent } }
        for id in taking { c.index?.live[id] = nil }
        c.nextLSN += UInt64(taking.count)
        // What this take added to the directory: the signature stays current without listing it.
        c.signature[String(segment.dropFirst(path.count + 1))] = Files.size(segment) ?? -1
        return made
    }

    /// Records in the peer's journal that `ids` moved away (deletes, from `nextLSN` on):
    /// appended to its newest segment (no new file, so no directory to sync; a torn
    /// record the peer left at its end is skipped by the reader, which finds the next
    /// intact one) and written, to be synced by ``syncMoved()``; else in a new segment,
    /// synced with its directory. The segment's path, or `nil` when it failed.
    private func recordMoved(_ ids: [String], _ c: inout Cache) -> String? {
        let newest = c.signature.keys.compactMap { Restored.number($0, prefix: "journal-", suffix: ".log") }.max()
        guard let newest, newest <= c.nextLSN else {
            guard let journal = try? Journal(directory: path, nextLSN: c.nextLSN) else { return nil }
            for id in ids { _ = journal.append(.delete(id: id)) }
            let durable = (try? journal.syncAll()) != nil
            journal.close()
            return durable ? Journal.segmentPath(path, c.nextLSN) : nil
        }
        var bytes: [UInt8] = []
        for (k, id) in ids.enumerated() {
            Journal.frame(
                lsn: c.nextLSN + UInt64(k), type: JournalRecord.delete(id: id).type,
                payload: Journal.payload(.delete(id: id)), into: &bytes)
        }
        let segment = Journal.segmentPath(path, newest)
        guard let fd = try? Files.openAppend(segment, create: false) else { return nil }
        defer { Files.close(fd) }
        do throws(SocketError) {
            try Files.writeAll(fd, bytes, what: "write(\(segment))")
        } catch {
            return nil
        }
        recorded.withLock { r in
            r.count += 1
            r.unsynced.insert(segment)
        }
        return segment
    }

    /// Makes every move recorded in the directory so far durable (`fdatasync` of the
    /// segments written), unless a sync that started after it already did. A segment that
    /// fails to sync is tried again by the next call.
    func syncMoved() {
        let target = recorded.withLock { $0.count }
        synced.withLock { done in
            guard done < target else { return }
            let (count, segments) = recorded.withLock { r in
                defer { r.unsynced.removeAll() }
                return (r.count, r.unsynced)
            }
            var failed: Set<String> = []
            for segment in segments {
                guard let fd = try? Files.openAppend(segment, create: false) else {
                    failed.insert(segment)
                    continue
                }
                if (try? Files.syncData(fd)) == nil { failed.insert(segment) }
                Files.close(fd)
            }
            if failed.isEmpty {
                done = count
            } else {
                recorded.withLock { $0.unsynced.formUnion(failed) }
            }
        }
    }

    /// This instance's turn to take from the directory: `TAKE` locked (its descriptor),
    /// waited for while another instance has it (polled from 50 µs up to 1 ms apart);
    /// `nil` when it cannot be had.
    private func waitForTurn() -> Int32? {
        let deadline = System.monotonicNanoseconds() + Self.turnWaitNanoseconds
        var pause = 50
        while true {
            let attempt: Int32?
            do {
                attempt = try Files.tryLock(path + "/TAKE")
            } catch {
                return nil
            }
            if let fd = attempt { return fd }
            guard System.monotonicNanoseconds() < deadline else { return nil }
            System.sleep(microseconds: pause)
            pause = min(pause * 2, 1_000)
        }
    }
}

/// The server's peers, once configured (before any event loop starts).
final class ClusterBox: @unchecked Sendable {
    var peers: Peers?
}

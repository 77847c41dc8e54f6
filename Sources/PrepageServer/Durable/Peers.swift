import PrepageCore
import PrepageSockets
import Synchronization

/// The other instances of a sharded deployment (`--peers`, `--peer-state-dirs`):
/// where a session this instance is asked for may be now, with what it learned.
///
/// A consistent-hash balancer sends a session to another instance when its
/// instance stops, fails, drains or comes back. The client meets a 404 there
/// and re-creates the session (`PUT` with its configuration); before creating
/// it fresh, this instance asks each peer to **release** it
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
                    return image
                }
            case .answered:
                continue  // 404: not there; 409: there with another configuration (kept there)
            case .failed:
                peer.skipUntil.store(now + Self.skipNanoseconds, ordering: .relaxed)
                silent.append(k)
            }
        }
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

    /// The session a peer released (the body of its `200`), when it has the configuration asked for.
    private static func releasedImage(_ answer: [UInt8], matching config: SessionConfig) -> SessionImage? {
        let image: SessionImage? = answer.withUnsafeBytes { raw in
            var s = JSONScanner(raw)
            return try? StateDocument.read(&s, body: raw)
        }
        return image?.config == config ? image : nil
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

/// A peer's state directory on shared storage, read (never written) when the
/// peer does not answer: its sessions as the peer last saved them.
final class PeerDirectory: Sendable {
    let path: String

    private struct Cache {
        /// File names and sizes when read: the directory changed when they differ.
        var signature: [String: Int] = [:]
        var sessions: [String: Session] = [:]
        /// The next LSN of the directory's journal, when read.
        var nextLSN: UInt64 = 1
    }

    private let cache = Mutex(Cache())

    init(_ path: String) {
        self.path = path
    }

    /// The longest a lookup waits for a peer that holds its directory (draining: its
    /// last snapshot is on its way) before reading what is there.
    static let waitNanoseconds: UInt64 = 2_000_000_000

    /// Whether the peer holds its directory (it runs: draining, or starting).
    var isHeld: Bool { Files.isLocked(path + "/LOCK") }

    /// The session `id` as the directory holds it now.
    func find(_ id: String) -> SessionImage? {
        cache.withLock { c -> SessionImage? in
            refresh(&c)
            return c.sessions[id]?.image()
        }
    }

    /// The directory's file names and sizes.
    private var signature: [String: Int]? {
        guard let names = try? Files.list(path) else { return nil }
        var signature: [String: Int] = [:]
        for name in names where !name.hasSuffix(".tmp") && name != "LOCK" {
            signature[name] = Files.size(path + "/" + name) ?? -1
        }
        return signature
    }

    /// Reads the directory again when it changed since it was last read.
    private func refresh(_ c: inout Cache) {
        guard let now = signature else { return }
        guard c.signature != now || c.sessions.isEmpty else { return }
        guard let restored = try? Restored.read(directory: path, removeTemporaries: false, threads: 1) else { return }
        c.signature = now
        c.nextLSN = restored.nextLSN
        c.sessions = Dictionary(restored.sessions.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
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

    /// Takes session `id` from the directory of a peer that is not running: under the
    /// directory's lock (the peer cannot start meanwhile), reads its newest copy and
    /// records in the peer's own journal that it moved away (a delete), so that the
    /// peer does not bring it back when it restarts.
    func take(_ id: String, config: SessionConfig) -> Take {
        // The movers of this process take turns (under the cache's lock); the file lock
        // keeps the peer (and other instances taking from it) out meanwhile.
        cache.withLock { c -> Take in
            guard let lock = try? Files.tryLock(path + "/LOCK") else { return .busy }
            defer { Files.close(lock) }
            refresh(&c)
            guard let session = c.sessions[id], session.config == config else { return .absent }
            let image = session.image()
            guard let journal = try? Journal(directory: path, nextLSN: c.nextLSN) else { return .absent }
            _ = journal.append(.delete(id: id))
            let durable = (try? journal.syncAll()) != nil
            journal.close()
            guard durable else { return .absent }
            c.sessions[id] = nil
            c.nextLSN += 1
            if let now = signature { c.signature = now }
            return .taken(image)
        }
    }
}

/// The server's peers, once configured (before any event loop starts).
final class ClusterBox: @unchecked Sendable {
    var peers: Peers?
}

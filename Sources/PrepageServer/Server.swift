import Glibc
import Logging
import PrepageHTTP
import PrepageSockets
import Synchronization

/// The prepage HTTP service: event loops over epoll, one per thread, each with
/// its own `SO_REUSEPORT` listener, sharing one session store.
///
/// ```swift
/// let server = Server(configuration: ServerConfiguration(port: 0), logger: logger)
/// try server.start()          // binds, then serves on background threads
/// print(server.port)
/// server.shutdown()           // graceful: readyz 503, listeners closed, in-flight requests finish
/// server.wait()
/// ```
public final class Server: @unchecked Sendable {
    public let configuration: ServerConfiguration
    private let logger: Logger
    private let shared: ServerShared
    private var loops: [EventLoop] = []
    private var threads: [OSThread] = []
    /// Wakes the session janitor for shutdown.
    private let janitorWake: EventFD?
    /// Wakes the snapshot thread for shutdown.
    private let snapshotWake: EventFD?
    private var snapshotThread: OSThread?
    /// The bound port (after ``start()``).
    public private(set) var port = 0

    /// Every route served, as data (the route-coverage test compares it with openapi.yaml).
    public static var routes: [Route] { Route.allCases }

    public init(configuration: ServerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        let registry = SessionRegistry(
            maxSessions: configuration.maxSessions, memoryLimit: configuration.effectiveMemoryLimit,
            advice: configuration.limitAdvice)
        store = registry
        shared = ServerShared(
            configuration: configuration, store: registry, openAPI: Self.loadOpenAPI(configuration.openAPIPath))
        janitorWake = try? EventFD()
        snapshotWake = try? EventFD()
        if shared.api.openAPI == nil {
            logger.warning("openapi.yaml not found; GET /openapi.yaml answers 404")
        }
    }

    /// Where the sessions live: in memory, with the state directory's journal when there is one.
    public let store: SessionRegistry

    /// The server's version (semantic versioning), as `GET /version` and `prepaged --version` say.
    public static var version: String { API.version }

    /// Binds one listener per event loop and starts the loops.
    /// - Throws: ``SocketError`` when the address cannot be bound; with `EADDRINUSE`
    ///   when another socket holds it, even one that would share it (`SO_REUSEPORT`).
    public func start() throws(SocketError) {
        let count = max(1, configuration.threads)
        var listeners: [Int32] = []
        do throws(SocketError) {
            // The loops' listeners share the port with SO_REUSEPORT, which would let
            // another process's listener share it too: check that nobody holds it first.
            try Socket.claim(host: configuration.host, port: configuration.port)
            // The first listener fixes the port (the kernel's choice for port 0); the others share it.
            var port = configuration.port
            for _ in 0..<count {
                let fd = try Socket.listen(host: configuration.host, port: port, reusePort: true)
                listeners.append(fd)
                if port == 0 { port = try Socket.localPort(fd) }
            }
            self.port = port
            if !configuration.peers.isEmpty || !configuration.peerStateDirectories.isEmpty {
                // The same list may be given to every instance (a StatefulSet's pods): an
                // instance leaves itself out (its host name, first label, and its port).
                let me = System.hostName()
                var urls: [String] = []
                var dirs: [String] = []
                for (k, url) in configuration.peers.enumerated() {
                    if let (host, peerPort) = Peers.parse(url), peerPort == port,
                        host == me || host.hasPrefix(me + ".") || (me.hasPrefix(host + ".") && !host.isEmpty)
                    {
                        continue
                    }
                    urls.append(url)
                    if k < configuration.peerStateDirectories.count {
                        dirs.append(configuration.peerStateDirectories[k])
                    }
                }
                guard let peers = Peers(urls: urls, directories: dirs, token: configuration.token)
                else {
                    throw SocketError(
                        call: "--peers \(configuration.peers): each must be http://host:port", errno: EINVAL)
                }
                shared.api.cluster.peers = peers
                try shared.movers.start()
            }
            // Sessions are restored before any request is served (and /readyz turns 200).
            if let directory = configuration.stateDirectory { try openStateDirectory(directory) }
            for (i, fd) in listeners.enumerated() {
                let loop = try EventLoop(
                    index: i, listener: fd, shared: shared, metrics: shared.metrics[i], logger: logger)
                loop.refreshDate()
                loops.append(loop)
            }
            for loop in loops {
                threads.append(try OSThread(name: "prepaged-\(loop.index)") { loop.run() })
            }
            // Idle sessions are swept on a thread of their own, off the request path:
            // scanning a million sessions must not stall an event loop.
            if shared.sessionSweepInterval > 0, let wake = janitorWake {
                let shared = shared
                let logger = logger
                threads.append(
                    try OSThread(name: "prepaged-expiry") {
                        let period = Int32(clamping: shared.sessionSweepInterval / 1_000_000)
                        while !shared.draining.load(ordering: .acquiring) {
                            if wake.wait(timeoutMilliseconds: period) { continue }
                            shared.expireIdleSessions(logger: logger)
                        }
                    })
            }
            if let state = shared.api.durable.state, let registry = shared.api.store as? SessionRegistry {
                let interval = UInt64(max(1_000_000, configuration.snapshotInterval.nanoseconds))
                let wake = snapshotWake
                let shared = shared
                let logger = logger
                snapshotThread = try OSThread(name: "prepaged-state") {
                    // At a fixed rate: a snapshot begins every interval (not an interval after the
                    // last one ended), so what a crash can lose is at most one interval of learning
                    // plus the time one snapshot takes to write.
                    var next = System.monotonicNanoseconds() + interval
                    while !shared.draining.load(ordering: .acquiring) {
                        let now = System.monotonicNanoseconds()
                        if now < next {
                            let ms = Int32(clamping: (next - now + 999_999) / 1_000_000)
                            _ = wake?.wait(timeoutMilliseconds: ms)
                            continue
                        }
                        next += interval
                        if next <= now { next = now + interval }  // fell behind: skip, do not burst
                        do {
                            try state.snapshot(registry)
                        } catch {
                            logger.error(
                                "snapshot failed", metadata: ["directory": "\(state.directory)", "error": "\(error)"])
                        }
                    }
                }
            }
        } catch {
            for fd in listeners.dropFirst(loops.count) { Socket.close(fd) }
            throw error
        }
        shared.api.ready.store(true, ordering: .releasing)
        logger.info(
            "listening",
            metadata: [
                "address": "\(Self.hostPort(configuration.host, port))", "threads": .stringConvertible(count),
                "auth": "\(configuration.token == nil ? "none" : "bearer")",
                "memory_limit": "\(shared.api.store.budget.limit)",
            ])
    }

    /// `host:port` as people write it: `[::1]:7070` for IPv6.
    public static func hostPort(_ host: String, _ port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Takes the server out of rotation: `/readyz` answers 503 from now on while every
    /// other route keeps serving. Call it first when stopping, wait long enough for
    /// load balancers and Kubernetes to see it (prepaged's `--shutdown-delay`), then
    /// ``shutdown()``.
    public func withdraw() {
        shared.api.ready.store(false, ordering: .releasing)
    }

    /// Begins a graceful shutdown: `/readyz` answers 503, listeners close, requests in
    /// flight finish, idle connections close; after `drainTimeout` everything closes.
    /// Returns at once; ``wait()`` for the loops to end.
    public func shutdown() {
        shared.api.ready.store(false, ordering: .releasing)
        shared.draining.store(true, ordering: .releasing)
        for loop in loops { loop.wake.signal() }
        janitorWake?.signal()
        snapshotWake?.signal()
    }

    /// Waits until every event loop has ended (after ``shutdown()``); with a state
    /// directory, then writes the last snapshot and closes the journal.
    public func wait() {
        for thread in threads { thread.join() }
        threads.removeAll()
        shared.movers.stop()
        snapshotThread?.join()
        snapshotThread = nil
        if let state = shared.api.durable.state, let registry = shared.api.store as? SessionRegistry {
            do {
                let written = try state.snapshot(registry)
                logger.info(
                    "saved sessions at drain",
                    metadata: [
                        "directory": "\(state.directory)", "sessions": "\(written?.sessions ?? 0)",
                        "kind": "\(written.map { $0.kind == .full ? "full" : "delta" } ?? "none: nothing changed")",
                    ])
            } catch {
                logger.error(
                    "the snapshot at drain failed", metadata: ["directory": "\(state.directory)", "error": "\(error)"])
            }
            state.close()
            shared.api.durable.state = nil
        }
    }

    /// Takes the state directory's lock, restores its sessions and journals from now on.
    private func openStateDirectory(_ directory: String) throws(SocketError) {
        guard let registry = shared.api.store as? SessionRegistry else {
            logger.error("--state-dir needs the built-in session registry; sessions are not saved")
            return
        }
        let started = System.monotonicNanoseconds()
        let (state, restored) = try DurableState.open(directory: directory)
        if shared.api.cluster.peers != nil {
            // A session may have moved to a peer while this instance was away: checked at its first use.
            for session in restored.sessions { session.tentative.store(true, ordering: .relaxed) }
        }
        registry.insert(restored: restored.sessions)
        registry.attach(state.journal)
        shared.api.durable.state = state
        for problem in restored.problems {
            logger.warning("damaged state skipped", metadata: ["directory": "\(directory)", "problem": "\(problem)"])
        }
        let ms = Double((System.monotonicNanoseconds() - started) / 1_000) / 1_000
        logger.info(
            "restored sessions",
            metadata: [
                "directory": "\(directory)", "sessions": "\(restored.sessions.count)",
                "from_snapshots": "\(restored.fromSnapshots)", "from_journal": "\(restored.fromJournal)",
                "problems": "\(restored.problems.count)", "bytes_read": "\(restored.bytesRead)", "ms": "\(ms)",
            ])
    }

    /// Writes a snapshot now (tests; the server writes one every `snapshotInterval`).
    @discardableResult
    public func snapshotNow(full: Bool = false) throws(SocketError) -> Int {
        guard let state = shared.api.durable.state, let registry = shared.api.store as? SessionRegistry else {
            return 0
        }
        return try state.snapshot(registry, full: full)?.sessions ?? 0
    }

    /// Removes sessions idle for `sessionIdleTimeout` by the configured clock.
    /// The server does the same by itself on its janitor thread (`prepaged-expiry`, off the
    /// event loops), every tenth of the timeout (1 … 60 s); tests call it after moving the
    /// clock they gave the server.
    @discardableResult
    public func expireIdleSessions() -> Int {
        shared.expireIdleSessions(logger: logger)
    }

    /// Reads openapi.yaml from `path`, or searches, in order: the working directory,
    /// the executable's directory and its parents (a checkout: `.build/release/prepaged`),
    /// and `<prefix>/share/prepage/` beside an installed `<prefix>/bin/prepaged`.
    static func loadOpenAPI(_ path: String?) -> [UInt8]? {
        if let path { return System.readFile(path, limit: 4 << 20) }
        var candidates: [String] = []
        if let cwd = System.currentDirectory() { candidates.append(cwd + "/openapi.yaml") }
        if var dir = System.executablePath() {
            var first = true
            for _ in 0..<6 {
                guard let slash = dir.lastIndex(of: "/"), slash != dir.startIndex else { break }
                dir = String(dir[..<slash])
                candidates.append(dir + "/openapi.yaml")
                if first {
                    candidates.append(dir + "/../share/prepage/openapi.yaml")
                    first = false
                }
            }
        }
        for candidate in candidates {
            if let bytes = System.readFile(candidate, limit: 4 << 20) { return bytes }
        }
        return nil
    }
}

/// What every loop of one server shares.
final class ServerShared: Sendable {
    let api: API
    let limits: HTTPLimits
    let metrics: [LoopMetrics]
    let draining = Atomic<Bool>(false)
    /// Serve the requests that wait for other instances (with `--peers`).
    let movers: Movers
    let drainTimeout: Duration
    /// Connection sweep period: 1 s, or a quarter of the smallest timeout.
    let sweepInterval: UInt64
    /// Session expiry period (nanoseconds): a tenth of the idle timeout, 1 … 60 s; 0 = never.
    let sessionSweepInterval: UInt64

    init(configuration: ServerConfiguration, store: any SessionStore, openAPI: [UInt8]?) {
        limits = configuration.limits.clamped
        metrics = (0..<max(1, configuration.threads)).map { _ in LoopMetrics() }
        movers = Movers(count: 8)
        api = API(
            store: store, clock: configuration.clock, token: configuration.token,
            idleTimeout: configuration.sessionIdleTimeout, openAPI: openAPI, metrics: metrics + movers.metrics)
        drainTimeout = configuration.drainTimeout
        let smallest = min(limits.keepAliveIdleTimeout.nanoseconds, limits.requestDeadline.nanoseconds) / 4
        sweepInterval = UInt64(max(10_000_000, min(1_000_000_000, smallest)))
        let idle = configuration.sessionIdleTimeout.nanoseconds
        sessionSweepInterval = idle <= 0 ? 0 : UInt64(max(1_000_000_000, min(60_000_000_000, idle / 10)))
    }

    /// The configured wall clock's time in whole seconds: what the `Date` header says.
    func clockSeconds() -> Int64 {
        api.clock.now() / 1_000_000_000
    }

    @discardableResult
    func expireIdleSessions(logger: Logger) -> Int {
        let n = api.store.expireIdle(now: api.clock.now(), idleTimeout: api.idleTimeout)
        if n > 0 { logger.info("expired idle sessions", metadata: ["count": .stringConvertible(n)]) }
        return n
    }
}

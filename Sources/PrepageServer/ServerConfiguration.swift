import PrepageHTTP
import PrepageSockets

/// Everything that configures a ``Server``; the defaults are the service's.
public struct ServerConfiguration: Sendable {
    /// Address to listen on: numeric IPv4 or IPv6 (`::` takes IPv4 too), or `localhost`
    /// (`127.0.0.1`). Default `127.0.0.1`.
    public var host: String
    /// Port; 0 lets the kernel choose (read ``Server/port`` after ``Server/start()``). Default 7070.
    public var port: Int
    /// Event loops, one thread and one `SO_REUSEPORT` listener each. Default: the CPUs the
    /// process may use, the smaller of its affinity and its cgroup's CPU quota (``CPULimits``).
    public var threads: Int
    /// The bearer token every route but the probes requires; `nil` for none. Default `nil`.
    public var token: String?
    /// Most sessions at once; one more is a 429. Default 1,000,000.
    public var maxSessions: Int
    /// Bytes sessions may hold in total (ids, labels, policy state as
    /// ``Prepager/accountedBytes`` counts it); past it a new session is a 507
    /// and a new stream reuses its least recently used slot. `nil`: a quarter
    /// of the cgroup's memory limit or of the machine's memory, whichever is smaller.
    public var memoryLimit: Int?
    /// A session without a fault (or creation, or reset) for this long is removed;
    /// `.zero` never removes. Default 24 h: a paused migration resumes hours later.
    public var sessionIdleTimeout: Duration
    /// HTTP limits: line, headers, body, idle and request timeouts, connections.
    public var limits: HTTPLimits
    /// How long a graceful shutdown waits for requests in flight before closing
    /// everything. Default 8 s (the process exits within 10 s of SIGTERM).
    public var drainTimeout: Duration
    /// Path of `openapi.yaml`; `nil` searches the working directory and the
    /// executable's directory and its parents. Default `nil`.
    public var openAPIPath: String?
    /// The wall clock for timestamps and idle expiry. Default ``SystemClock``.
    public var clock: any WallClock
    /// `--state-dir`: where session lifecycles are journaled and what sessions
    /// learned is snapshotted, to be restored at start. `nil` (the default): sessions
    /// live in memory only.
    public var stateDirectory: String?
    /// How often the sessions changed since the last snapshot are written. Default 1 s.
    public var snapshotInterval: Duration
    /// `--peers`: the other instances of a sharded deployment, `http://host:port` each,
    /// asked to hand over a session that moves here (see `docs/server.md`). Default none.
    public var peers: [String]
    /// `--peer-state-dirs`: their state directories on shared storage, read when a peer
    /// does not answer. Default none.
    public var peerStateDirectories: [String]
    /// What a 429 (session limit) or 507 (memory limit) tells the client to do; prepaged
    /// names its flags. Default: advice that names none.
    public var limitAdvice: LimitAdvice

    public init(
        host: String = "127.0.0.1",
        port: Int = 7070,
        threads: Int? = nil,
        token: String? = nil,
        maxSessions: Int = 1_000_000,
        memoryLimit: Int? = nil,
        sessionIdleTimeout: Duration = .seconds(86_400),
        limits: HTTPLimits = .default,
        drainTimeout: Duration = .seconds(8),
        openAPIPath: String? = nil,
        clock: any WallClock = SystemClock(),
        stateDirectory: String? = nil,
        snapshotInterval: Duration = .seconds(1),
        peers: [String] = [],
        peerStateDirectories: [String] = [],
        limitAdvice: LimitAdvice = LimitAdvice()
    ) {
        self.host = host
        self.port = port
        self.threads = threads ?? CPULimits.current().usable
        self.token = token
        self.maxSessions = maxSessions
        self.memoryLimit = memoryLimit
        self.sessionIdleTimeout = sessionIdleTimeout
        self.limits = limits
        self.drainTimeout = drainTimeout
        self.openAPIPath = openAPIPath
        self.clock = clock
        self.stateDirectory = stateDirectory
        self.snapshotInterval = snapshotInterval
        self.peers = peers
        self.peerStateDirectories = peerStateDirectories
        self.limitAdvice = limitAdvice
    }

    /// ``memoryLimit``, or its default on this machine.
    public var effectiveMemoryLimit: Int {
        memoryLimit
            ?? MemoryBudget.defaultLimit(
                machineBytes: System.physicalMemoryBytes(), cgroupBytes: System.cgroupMemoryLimitBytes())
    }
}

// Value types of the client: options, session configuration and documents,
// decisions and errors. Coding keys are the field names of docs/api.md, so a value
// encodes to the same JSON the server speaks (prepagectl --json relies on it).

public import PrepageCore

/// How a ``PrepageConnection`` connects, times out, retries and recovers.
///
/// Defaults are those of `pp_options_init()` in `prepage.h`.
public struct PrepageClientOptions: Sendable, Hashable {
    /// The server. Default `http://127.0.0.1:7070`.
    public var baseURL: String
    /// Bearer token sent with every request. Default `nil` (none).
    public var token: String?
    /// Connect timeout in milliseconds. Default 1,000.
    public var connectTimeoutMilliseconds: Int
    /// Whole-request timeout in milliseconds, connect included. Default 5,000.
    public var requestTimeoutMilliseconds: Int
    /// Retries after a connection failure or timeout, for idempotent calls and
    /// single faults (never for a batch). Default 3; 0 turns retries off.
    public var maxRetries: Int
    /// First backoff in milliseconds; doubles each retry, jittered. Default 10.
    public var retryBaseMilliseconds: Int
    /// Cap of one backoff in milliseconds. Default 1,000.
    public var retryMaxMilliseconds: Int
    /// Re-create a session this client created (or registered) when the server
    /// answers 404 for it (the server restarted, or the session moved), then retry — up to
    /// three re-creations while 404s go on (a balancer whose ring is changing).
    /// Default `true`.
    public var recreateSessions: Bool
    /// The longest a single fault may take, retries included, in milliseconds. Default 5.
    public var faultDeadlineMilliseconds: Int
    /// When the oracle is away (no answer within the deadline, no connection, 5xx),
    /// answer a ``RemoteOutcome/fallback`` decision — the faulting page alone — instead of
    /// throwing, and stop asking for a while (the circuit breaker). Default `true`.
    public var faultFallback: Bool
    /// First period the breaker stays open, in milliseconds. Default 50.
    public var breakerBaseMilliseconds: Int
    /// Cap of the period, which doubles per failed probe, in milliseconds. Default 1,000.
    public var breakerMaxMilliseconds: Int

    public init(
        baseURL: String = "http://127.0.0.1:7070",
        token: String? = nil,
        connectTimeoutMilliseconds: Int = 1_000,
        requestTimeoutMilliseconds: Int = 5_000,
        maxRetries: Int = 3,
        retryBaseMilliseconds: Int = 10,
        retryMaxMilliseconds: Int = 1_000,
        recreateSessions: Bool = true,
        faultDeadlineMilliseconds: Int = 5,
        faultFallback: Bool = true,
        breakerBaseMilliseconds: Int = 50,
        breakerMaxMilliseconds: Int = 1_000
    ) {
        self.baseURL = baseURL
        self.token = token
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.requestTimeoutMilliseconds = requestTimeoutMilliseconds
        self.maxRetries = maxRetries
        self.retryBaseMilliseconds = retryBaseMilliseconds
        self.retryMaxMilliseconds = retryMaxMilliseconds
        self.recreateSessions = recreateSessions
        self.faultDeadlineMilliseconds = faultDeadlineMilliseconds
        self.faultFallback = faultFallback
        self.breakerBaseMilliseconds = breakerBaseMilliseconds
        self.breakerMaxMilliseconds = breakerMaxMilliseconds
    }
}

/// A session's configuration as a client of `prepaged` sends and reads it (docs/api.md, docs/dp.md).
///
/// `nil` leaves a field to the server's default when creating; in a
/// ``RemoteSession`` returned by the server every field is set.
///
/// The fields are those of PrepageCore's table, ``PrepageConfig/fields``, plus
/// `page_size` and `labels` (``SessionFields``): a config stores the fields set by
/// their API names, the subscript reaches any of them through the table, the
/// properties below are named views of the same storage, and the JSON coding and
/// the conversion to libprepage's `pp_session_config` go through the table, so a
/// field added there needs no code here.
public struct RemoteSessionConfig: Sendable, Hashable, Codable {
    /// `dp`, `dp-literal`, `dp-plus`, or a baseline: `none`, `forward`, `readahead`;
    /// `nil` for the server's default. A string, so a newer server's policy reads back.
    public var policy: String?
    /// At most 16, for the orchestrator's own use.
    public var labels: [String: String]
    /// The integer fields set, by API name (`page_size` among them).
    var integers: [String: Int] = [:]
    /// The real fields set, by API name.
    var reals: [String: Double] = [:]

    /// The fields a config holds beside `labels`, by API name and kind: the core's table and `page_size`.
    static let fields: [(name: String, kind: ConfigField.Kind)] =
        PrepageConfig.fields.map { ($0.name, $0.kind) } + [(SessionFields.pageSize, .integer)]

    /// A field of ``PrepageConfig/fields`` by the table's entry: `nil` when left to the server.
    /// Setting a value of another kind than the field's is a programming error (an integer is
    /// taken for a real field, as the core's table does).
    public subscript(field: ConfigField) -> ConfigValue? {
        get {
            switch field.kind {
            case .policy: policy.flatMap { PolicyName(rawValue: $0) }.map(ConfigValue.policy)
            case .integer: integers[field.name].map(ConfigValue.integer)
            case .real: reals[field.name].map(ConfigValue.real)
            }
        }
        set {
            switch (field.kind, newValue) {
            case (.policy, .policy(let p)?): policy = p.rawValue
            case (.policy, nil): policy = nil
            case (.integer, .integer(let i)?): integers[field.name] = i
            case (.integer, nil): integers[field.name] = nil
            case (.real, .real(let d)?): reals[field.name] = d
            case (.real, .integer(let i)?): reals[field.name] = Double(i)
            case (.real, nil): reals[field.name] = nil
            default: preconditionFailure("\(field.name) takes a \(field.kind) value, not \(newValue!)")
            }
        }
    }

    public var minPages: Int? {
        get { integers["min_pages"] }
        set { integers["min_pages"] = newValue }
    }
    public var maxPages: Int? {
        get { integers["max_pages"] }
        set { integers["max_pages"] = newValue }
    }
    public var k: Int? {
        get { integers["k"] }
        set { integers["k"] = newValue }
    }
    public var initialPages: Int? {
        get { integers["initial_pages"] }
        set { integers["initial_pages"] = newValue }
    }
    public var gap: Int? {
        get { integers["gap"] }
        set { integers["gap"] = newValue }
    }
    /// Guest memory in pages; 0 means unbounded.
    public var memoryPages: Int? {
        get { integers["memory_pages"] }
        set { integers["memory_pages"] = newValue }
    }
    public var maxStreams: Int? {
        get { integers["max_streams"] }
        set { integers["max_streams"] = newValue }
    }
    /// Bytes per page, a power of two from 512 to 1 GiB. Server default 4,096.
    public var pageSize: Int? {
        get { integers[SessionFields.pageSize] }
        set { integers[SessionFields.pageSize] = newValue }
    }
    /// Policy `forward` only: pages fetched after the faulting one.
    public var forwardPages: Int? {
        get { integers["forward_pages"] }
        set { integers["forward_pages"] = newValue }
    }
    /// Policy `forward` only: pages fetched before the faulting one.
    public var backwardPages: Int? {
        get { integers["backward_pages"] }
        set { integers["backward_pages"] = newValue }
    }
    /// Policy `readahead` only: the first window.
    public var raInitial: Int? {
        get { integers["ra_initial"] }
        set { integers["ra_initial"] = newValue }
    }
    /// Policy `readahead` only: the largest window.
    public var raMax: Int? {
        get { integers["ra_max"] }
        set { integers["ra_max"] = newValue }
    }
    /// Policy `dp-plus` only: 1 … 1,024; server default 64.
    public var maxSlots: Int? {
        get { integers["max_slots"] }
        set { integers["max_slots"] = newValue }
    }
    /// Policy `dp-plus` only: 1 … 256; server default 64.
    public var transitions: Int? {
        get { integers["transitions"] }
        set { integers["transitions"] = newValue }
    }
    /// Policy `dp-plus` only: in cases, 1 … 1,000,000; server default 22.
    public var halfLife: Int? {
        get { integers["half_life"] }
        set { integers["half_life"] = newValue }
    }
    /// Policy `dp-plus` only: 0 … 1,048,576; server default 8.
    public var nearWindow: Int? {
        get { integers["near_window"] }
        set { integers["near_window"] = newValue }
    }
    /// Policy `dp-plus` only: 0 … 1e9; server default 1,000.
    public var probeStaleness: Double? {
        get { reals["probe_staleness"] }
        set { reals["probe_staleness"] = newValue }
    }
    /// Policy `dp-plus` only: 0 … 1,000; server default 1.1.
    public var faultFee: Double? {
        get { reals["fault_fee"] }
        set { reals["fault_fee"] = newValue }
    }
    /// Policy `dp-plus` only: 0 … 1e6; server default 0.01.
    public var minEvidence: Double? {
        get { reals["min_evidence"] }
        set { reals["min_evidence"] = newValue }
    }
    /// Policy `dp-plus` only: the link's round trip in µs, 0.001 … 1e7; server default 100.
    public var rttMicroseconds: Double? {
        get { reals["rtt_us"] }
        set { reals["rtt_us"] = newValue }
    }
    /// Policy `dp-plus` only: one page's transfer time in µs, 0.001 … 1e7; server default 32.768.
    public var pageMicroseconds: Double? {
        get { reals["page_us"] }
        set { reals["page_us"] = newValue }
    }

    public init(
        policy: String? = nil, minPages: Int? = nil, maxPages: Int? = nil, k: Int? = nil,
        initialPages: Int? = nil, gap: Int? = nil, memoryPages: Int? = nil, maxStreams: Int? = nil,
        pageSize: Int? = nil, labels: [String: String] = [:], forwardPages: Int? = nil,
        backwardPages: Int? = nil, raInitial: Int? = nil, raMax: Int? = nil,
        maxSlots: Int? = nil, transitions: Int? = nil, halfLife: Int? = nil, nearWindow: Int? = nil,
        probeStaleness: Double? = nil, faultFee: Double? = nil, minEvidence: Double? = nil,
        rttMicroseconds: Double? = nil, pageMicroseconds: Double? = nil
    ) {
        self.policy = policy
        self.labels = labels
        self.minPages = minPages
        self.maxPages = maxPages
        self.k = k
        self.initialPages = initialPages
        self.gap = gap
        self.memoryPages = memoryPages
        self.maxStreams = maxStreams
        self.pageSize = pageSize
        self.forwardPages = forwardPages
        self.backwardPages = backwardPages
        self.raInitial = raInitial
        self.raMax = raMax
        self.maxSlots = maxSlots
        self.transitions = transitions
        self.halfLife = halfLife
        self.nearWindow = nearWindow
        self.probeStaleness = probeStaleness
        self.faultFee = faultFee
        self.minEvidence = minEvidence
        self.rttMicroseconds = rttMicroseconds
        self.pageMicroseconds = pageMicroseconds
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Encodes the fields set, by their API names; `labels` always.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        for (name, kind) in Self.fields {
            switch kind {
            case .policy: try c.encodeIfPresent(policy, forKey: Key(name))
            case .integer: try c.encodeIfPresent(integers[name], forKey: Key(name))
            case .real: try c.encodeIfPresent(reals[name], forKey: Key(name))
            }
        }
        try c.encode(labels, forKey: Key(SessionFields.labels))
    }

    /// Decodes the fields of the table by their API names (others are ignored); `labels` is required.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        labels = try c.decode([String: String].self, forKey: Key(SessionFields.labels))
        for (name, kind) in Self.fields {
            switch kind {
            case .policy: policy = try c.decodeIfPresent(String.self, forKey: Key(name))
            case .integer: integers[name] = try c.decodeIfPresent(Int.self, forKey: Key(name))
            case .real: reals[name] = try c.decodeIfPresent(Double.self, forKey: Key(name))
            }
        }
    }
}

/// How a decision was reached: PrepageCore's `Outcome` as the oracle answers it, or the client's fallback.
public enum RemoteOutcome: String, Sendable, Hashable, Codable, CaseIterable {
    case first, smaller, larger, reverse, `repeat`
    /// Decided by the client, not the oracle, which was away: the faulting page alone.
    case fallback
}

/// The window to fetch, as the oracle (or the fallback) answers a fault: pages `[start, start + count)`,
/// bytes `[addr, addr + bytes)`.
public struct RemoteDecision: Sendable, Hashable, Codable {
    public var start: UInt64
    public var count: UInt64
    public var outcome: RemoteOutcome
    public var ntest: UInt64
    public var nmin: UInt64
    public var nmax: UInt64
    public var addr: UInt64
    public var bytes: UInt64

    public init(
        start: UInt64, count: UInt64, outcome: RemoteOutcome, ntest: UInt64, nmin: UInt64, nmax: UInt64,
        addr: UInt64, bytes: UInt64
    ) {
        self.start = start
        self.count = count
        self.outcome = outcome
        self.ntest = ntest
        self.nmin = nmin
        self.nmax = nmax
        self.addr = addr
        self.bytes = bytes
    }
}

/// What one stream (vCPU) of a session is doing.
public struct StreamState: Sendable, Hashable, Codable {
    public struct Window: Sendable, Hashable, Codable {
        public var start: Int
        public var count: Int
    }
    public var stream: UInt32
    public var ntest: Int
    public var minHit: Int
    public var maxHit: Int
    public var window: Window
    /// `up` or `down`.
    public var direction: String

    enum CodingKeys: String, CodingKey {
        case stream, ntest, window, direction
        case minHit = "min_hit", maxHit = "max_hit"
    }
}

/// What a session has learned.
public struct SessionState: Sendable, Hashable, Codable {
    public var nmin: Int
    public var nmax: Int
    public var minRecord: [Int]
    public var maxRecord: [Int]
    /// Ordered by stream id.
    public var streams: [StreamState]

    enum CodingKeys: String, CodingKey {
        case nmin, nmax, streams
        case minRecord = "min_record", maxRecord = "max_record"
    }
}

/// A session's counters; times in RFC 3339 UTC.
public struct SessionStats: Sendable, Hashable, Codable {
    public var faults: Int
    public var first: Int
    public var smaller: Int
    public var larger: Int
    public var reverse: Int
    public var `repeat`: Int
    public var pagesAdvised: Int
    public var createdAt: String?
    /// `nil` before the first fault.
    public var lastFaultAt: String?

    enum CodingKeys: String, CodingKey {
        case faults, first, smaller, larger, reverse, `repeat`
        case pagesAdvised = "pages_advised", createdAt = "created_at", lastFaultAt = "last_fault_at"
    }

    /// Encodes as the server does: `last_fault_at` is `null` before the first fault, not absent.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(faults, forKey: .faults)
        try c.encode(first, forKey: .first)
        try c.encode(smaller, forKey: .smaller)
        try c.encode(larger, forKey: .larger)
        try c.encode(reverse, forKey: .reverse)
        try c.encode(`repeat`, forKey: .repeat)
        try c.encode(pagesAdvised, forKey: .pagesAdvised)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(lastFaultAt, forKey: .lastFaultAt)
    }
}

/// A session document, as the server returns it.
public struct RemoteSession: Sendable, Hashable, Codable {
    public var id: String
    public var config: RemoteSessionConfig
    public var state: SessionState
    public var stats: SessionStats
}

/// One page of ``PrepageConnection/listSessions(limit:after:)``.
public struct SessionPage: Sendable, Hashable, Codable {
    /// Ordered by id.
    public var sessions: [RemoteSession]
    /// Pass as `after` for the next page; `nil` at the end.
    public var next: String?
}

/// A failed call: what kind, the HTTP status when the server answered, and why.
public struct PrepageClientError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// Connection refused, reset, unresolvable host.
        case io
        /// Connect or request timeout elapsed (after the retries).
        case timeout
        /// The server answered ≥ 400; ``PrepageClientError/detail`` is its problem `detail`.
        case http
        /// An answer that cannot be parsed.
        case `protocol`
        /// Out of memory.
        case outOfMemory
        /// A bad argument (a malformed session id, an empty batch…); nothing was sent.
        case invalid
    }

    public var kind: Kind
    /// The HTTP status of the answer, `nil` when none came.
    public var status: Int?
    /// What went wrong: the server's problem detail for ``Kind/http``.
    public var detail: String

    public init(kind: Kind, status: Int?, detail: String) {
        self.kind = kind
        self.status = status
        self.detail = detail
    }

    public var description: String {
        if let status, kind == .http { return "HTTP \(status): \(detail)" }
        return "\(kind.rawValue) error: \(detail)"
    }
}

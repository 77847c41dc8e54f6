// PrepageClient: the Swift face of libprepage (CPrepageClient). Every call
// goes through the same C code a C agent uses, so the two never drift.
internal import CPrepageClient

#if canImport(Glibc)
    internal import Glibc
#endif

/// A client of `prepaged`: one kept-alive connection, retries, re-creation of
/// lost sessions. Method names share their stems with the operationIds of
/// `openapi.yaml` and the C functions (`createSession` ↔ `pp_session_create`).
///
/// ```swift
/// let client = try PrepageConnection(options: .init(baseURL: "http://127.0.0.1:7070"))
/// try client.createSession("vm-1", config: RemoteSessionConfig(pageSize: 4_096))
/// let window = try client.fault(addr: 0x7f00_0000_1000, stream: vcpu)
/// ```
///
/// > Warning: A client belongs to one thread at a time and is not `Sendable`:
/// > give each thread (or task that stays on one) its own client. Admin calls
/// > block the calling thread for up to the request timeout times the retries;
/// > a fault for at most ``PrepageClientOptions/faultDeadlineMilliseconds``, after
/// > which (by default) it answers a ``RemoteOutcome/fallback`` decision.
public final class PrepageConnection {
    private let client: OpaquePointer

    /// Creates a client; connects lazily, on the first call.
    ///
    /// - Throws: ``PrepageClientError`` `.invalid` for a base URL that is not
    ///   `http(s)://…` or negative timeouts, `.outOfMemory`.
    public init(options: PrepageClientOptions = PrepageClientOptions()) throws(PrepageClientError) {
        _ = pp_global_init()  // once per process; later calls do nothing
        var opts = pp_options()
        pp_options_init(&opts)  // sets opts.size, which the library checks
        opts.connect_timeout_ms = options.connectTimeoutMilliseconds
        opts.request_timeout_ms = options.requestTimeoutMilliseconds
        opts.max_retries = Int32(clamping: options.maxRetries)
        opts.retry_base_ms = options.retryBaseMilliseconds
        opts.retry_max_ms = options.retryMaxMilliseconds
        opts.recreate_sessions = options.recreateSessions ? 1 : 0
        opts.fault_deadline_ms = options.faultDeadlineMilliseconds
        opts.fault_fallback = options.faultFallback ? 1 : 0
        opts.breaker_base_ms = options.breakerBaseMilliseconds
        opts.breaker_max_ms = options.breakerMaxMilliseconds
        // pp_client_new copies both strings.
        let made: OpaquePointer? = options.baseURL.withCString { url in
            opts.base_url = url
            return withOptionalCString(options.token) { token in
                opts.token = token
                return pp_client_new(&opts)
            }
        }
        guard let made else {
            throw PrepageClientError(kind: .outOfMemory, status: nil, detail: "out of memory")
        }
        // Checked before `client` is set: once every property is, a throw runs deinit.
        if pp_client_err(made) != Int32(PP_OK) {
            let error = Self.error(of: made)
            pp_client_free(made)
            throw error
        }
        client = made
    }

    deinit { pp_client_free(client) }

    /// libprepage's version, `MAJOR.MINOR.PATCH`.
    public static var libraryVersion: String { String(cString: pp_version()) }

    // MARK: Sessions

    /// `PUT /sessions/{id}`: creates the session, or finds the identical one.
    ///
    /// - Returns: the session document; `created` is `false` when an identical
    ///   session already existed (200 rather than 201).
    /// - Throws: `.http` 409 when the session exists with another config, 400
    ///   for an invalid value (the detail names the field).
    @discardableResult
    public func createSession(_ id: String, config: RemoteSessionConfig = RemoteSessionConfig())
        throws(PrepageClientError)
        -> (session: RemoteSession, created: Bool)
    {
        let session = try withCConfig(config) { cfg throws(PrepageClientError) in
            try document { out in pp_session_create_ex(client, id, cfg, out) }
        }
        return (session, pp_client_http_status(client) == 201)
    }

    /// Tells this client a session's config without sending anything, so that it
    /// re-creates the session after a 404 (a restarted server) as ``createSession(_:config:)``
    /// would: for clients that only fault a session another client created.
    public func registerSession(_ id: String, config: RemoteSessionConfig = RemoteSessionConfig())
        throws(PrepageClientError)
    {
        let rc = try withCConfig(config) { cfg throws(PrepageClientError) in pp_session_register(client, id, cfg) }
        guard rc == 0 else { throw Self.error(of: client) }
    }

    /// `GET /sessions/{id}`.
    public func getSession(_ id: String) throws(PrepageClientError) -> RemoteSession {
        try document { out in pp_session_get(client, id, out) }
    }

    /// `GET /sessions?limit=N&after=ID`: one page, ordered by id.
    ///
    /// - Parameters:
    ///   - limit: 1 … 1,000; `nil` for the server's default (100).
    ///   - after: the `next` of the previous page; `nil` to start.
    public func listSessions(limit: Int? = nil, after: String? = nil) throws(PrepageClientError) -> SessionPage {
        guard limit.map({ (1...1_000).contains($0) }) ?? true else {
            throw PrepageClientError(kind: .invalid, status: nil, detail: "limit must be 1 … 1000, got \(limit!)")
        }
        var page: UnsafeMutablePointer<pp_session_page>?
        let rc = withOptionalCString(after) { after in pp_session_list(client, limit ?? 0, after, &page) }
        guard rc == 0, let page else { throw Self.error(of: client) }
        defer { pp_session_page_free(page) }
        let sessions = UnsafeBufferPointer(start: page.pointee.sessions, count: page.pointee.count)
        return SessionPage(
            sessions: sessions.map { RemoteSession(c: $0!.pointee) },
            next: page.pointee.next.map { String(cString: $0) })
    }

    /// `DELETE /sessions/{id}`; the client forgets the session's config.
    ///
    /// - Returns: the final document, or `nil` when a retried delete found the
    ///   session already gone (the first attempt deleted it; its answer was lost).
    @discardableResult
    public func deleteSession(_ id: String) throws(PrepageClientError) -> RemoteSession? {
        var doc: UnsafeMutablePointer<pp_session>?
        guard pp_session_delete_ex(client, id, &doc) == 0 else { throw Self.error(of: client) }
        defer { pp_session_free(doc) }
        return doc.map { RemoteSession(c: $0.pointee) }
    }

    /// `POST /sessions/{id}/reset`: forgets what was learned, keeps config and counters.
    @discardableResult
    public func resetSession(_ id: String) throws(PrepageClientError) -> RemoteSession {
        try document { out in pp_session_reset(client, id, out) }
    }

    // MARK: Moving a session

    /// `GET /sessions/{id}/state`: the session's whole state (configuration, what its
    /// policy learned, counters) as the server's versioned JSON document. Opaque: give
    /// it to ``importSession(_:state:)`` on another server.
    public func exportSession(_ id: String) throws(PrepageClientError) -> String {
        var doc: UnsafeMutablePointer<CChar>?
        var length = 0
        guard pp_session_export(client, id, &doc, &length) == 0, let doc else { throw Self.error(of: client) }
        defer { pp_free(doc) }
        return String(decoding: UnsafeRawBufferPointer(start: doc, count: length), as: UTF8.self)
    }

    /// `PUT /sessions/{id}` with `{"state": state}`: the session becomes exactly the one
    /// `state` (``exportSession(_:)``'s document) describes — new, or in place of the
    /// session of that id — and decides next what the exported one would have.
    /// The client remembers the document's config to re-create the session after a 404.
    ///
    /// - Returns: `true` when the session was created (201), `false` when replaced (200).
    /// - Throws: `.http` 400 naming the field for a document the server refuses.
    @discardableResult
    public func importSession(_ id: String, state: String) throws(PrepageClientError) -> Bool {
        var state = state
        let rc = state.withUTF8 { utf8 in
            utf8.withMemoryRebound(to: CChar.self) { pp_session_import(client, id, $0.baseAddress, $0.count) }
        }
        guard rc == 0 else { throw Self.error(of: client) }
        return pp_client_http_status(client) == 201
    }

    /// Moves a session from this client's server to `destination`'s: export, import
    /// there, then delete here. Faults that reach this server after the export are
    /// answered 404 here once it is deleted (a client that knows the config re-creates
    /// it, on the server its balancer sends it to).
    public func moveSession(_ id: String, to destination: PrepageConnection) throws(PrepageClientError) {
        let state = try exportSession(id)
        try destination.importSession(id, state: state)
        try deleteSession(id)
    }

    // MARK: Faults

    /// `POST /sessions/{id}/fault` by page, within the fault deadline.
    ///
    /// When the oracle is away and ``PrepageClientOptions/faultFallback`` is on,
    /// returns a ``RemoteOutcome/fallback`` decision (the faulting page alone) rather than
    /// throwing; ``lastError`` then says why. A 4xx (the oracle saying no) throws.
    ///
    /// - Parameter stream: the vCPU or thread that faulted. Default 0.
    public func fault(_ id: String, page: UInt64, stream: UInt32 = 0) throws(PrepageClientError) -> RemoteDecision {
        var d = pp_decision()
        pp_decision_init(&d)
        guard pp_fault_page(client, id, page, stream, &d) == 0 else { throw Self.error(of: client) }
        return RemoteDecision(c: d)
    }

    /// ``fault(_:page:stream:)`` by byte address; the server divides by the session's
    /// `page_size` (a fallback uses the page size this client knows for the session).
    public func fault(_ id: String, addr: UInt64, stream: UInt32 = 0) throws(PrepageClientError) -> RemoteDecision {
        var d = pp_decision()
        pp_decision_init(&d)
        guard pp_fault_addr(client, id, addr, stream, &d) == 0 else { throw Self.error(of: client) }
        return RemoteDecision(c: d)
    }

    /// Why the last call failed, or why the last fault was a fallback; `nil` after a success.
    public var lastError: PrepageClientError? {
        pp_client_err(client) == Int32(PP_OK) ? nil : Self.error(of: client)
    }

    /// The circuit breaker of the fault calls: milliseconds until this client asks the
    /// oracle again (0: at the next fault), and the current open period (0: closed).
    public var breaker: (remainingMilliseconds: Int, periodMilliseconds: Int) {
        var period = 0
        let remaining = pp_client_breaker_ms(client, &period)
        return (remaining, period)
    }

    /// `POST /sessions/{id}/faults`: 1 … 65,536 pages decided in order, exactly
    /// as if posted one by one. Not retried after a connection failure.
    ///
    /// - Parameter streams: empty (all stream 0) or one per page.
    public func faults(_ id: String, pages: [UInt64], streams: [UInt32] = []) throws(PrepageClientError)
        -> [RemoteDecision]
    {
        try batch(id, values: pages, streams: streams, byAddress: false)
    }

    /// ``faults(_:pages:streams:)`` by byte addresses.
    public func faults(_ id: String, addrs: [UInt64], streams: [UInt32] = []) throws(PrepageClientError)
        -> [RemoteDecision]
    {
        try batch(id, values: addrs, streams: streams, byAddress: true)
    }

    // MARK: Plumbing

    private func batch(_ id: String, values: [UInt64], streams: [UInt32], byAddress: Bool)
        throws(PrepageClientError) -> [RemoteDecision]
    {
        guard streams.isEmpty || streams.count == values.count else {
            throw PrepageClientError(
                kind: .invalid, status: nil,
                detail: "streams holds \(streams.count) entries for \(values.count) faults")
        }
        guard !values.isEmpty else {
            throw PrepageClientError(kind: .invalid, status: nil, detail: "a batch holds 1 … 65536 faults, not 0")
        }
        var first = pp_decision()
        pp_decision_init(&first)
        var out = [pp_decision](repeating: first, count: values.count)
        let rc = values.withUnsafeBufferPointer { v in
            streams.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBufferPointer { o in
                    byAddress
                        ? pp_faults_addr(
                            client, id, v.baseAddress, streams.isEmpty ? nil : s.baseAddress, v.count, o.baseAddress)
                        : pp_faults_page(
                            client, id, v.baseAddress, streams.isEmpty ? nil : s.baseAddress, v.count, o.baseAddress)
                }
            }
        }
        guard rc == 0 else { throw Self.error(of: client) }
        return out.map(RemoteDecision.init(c:))
    }

    /// Runs a C call that hands out one session document, and converts it.
    private func document(_ call: (UnsafeMutablePointer<UnsafeMutablePointer<pp_session>?>) -> Int32)
        throws(PrepageClientError) -> RemoteSession
    {
        var doc: UnsafeMutablePointer<pp_session>?
        guard call(&doc) == 0, let doc else { throw Self.error(of: client) }
        defer { pp_session_free(doc) }
        return RemoteSession(c: doc.pointee)
    }

    private static func error(of c: OpaquePointer) -> PrepageClientError {
        let kind: PrepageClientError.Kind =
            switch Int(pp_client_err(c)) {
            case Int(PP_ERR_TIMEOUT): .timeout
            case Int(PP_ERR_HTTP): .http
            case Int(PP_ERR_PROTOCOL): .protocol
            case Int(PP_ERR_OOM): .outOfMemory
            case Int(PP_ERR_INVALID): .invalid
            default: .io
            }
        let status = Int(pp_client_http_status(c))
        return PrepageClientError(
            kind: kind, status: status == 0 ? nil : status, detail: String(cString: pp_client_errstr(c)))
    }
}

// MARK: - C conversions

private func withOptionalCString<R>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let s else { return body(nil) }
    return s.withCString { body($0) }
}

/// A field of `pp_session_config` as libprepage's table describes it.
private struct CField: Sendable {
    var type: pp_config_type.RawValue
    var offset: Int
}

/// libprepage's fields of `pp_session_config` by name (`pp_session_config_fields()`).
private let cFields: [String: CField] = {
    var count = 0
    let table = UnsafeBufferPointer(start: pp_session_config_fields(&count), count: count)
    return Dictionary(
        table.map { (String(cString: $0.name), CField(type: $0.type.rawValue, offset: $0.offset)) },
        uniquingKeysWith: { a, _ in a })
}()

/// Lends a `pp_session_config` for `config` to `body`; its strings live until `body` returns.
/// Every field set goes through libprepage's table by the core table's name.
///
/// - Throws: `.invalid` for a field set that this libprepage does not know.
private func withCConfig<R>(
    _ config: RemoteSessionConfig, _ body: (UnsafePointer<pp_session_config>) throws(PrepageClientError) -> R
) throws(PrepageClientError) -> R {
    var cfg = pp_session_config()
    pp_session_config_init(&cfg)
    func field(_ name: String, _ type: pp_config_type) throws(PrepageClientError) -> Int {
        guard let f = cFields[name], f.type == type.rawValue else {
            throw PrepageClientError(
                kind: .invalid, status: nil,
                detail: "libprepage \(String(cString: pp_version())) has no config field \(name) of this type")
        }
        return f.offset
    }
    for (name, value) in config.integers {
        let offset = try field(name, PP_CONFIG_INT)
        withUnsafeMutableBytes(of: &cfg) { $0.storeBytes(of: Int64(value), toByteOffset: offset, as: Int64.self) }
    }
    for (name, value) in config.reals {
        let offset = try field(name, PP_CONFIG_DOUBLE)
        withUnsafeMutableBytes(of: &cfg) { $0.storeBytes(of: value, toByteOffset: offset, as: Double.self) }
    }
    let policyOffset = try field("policy", PP_CONFIG_STRING)
    // Copies of the strings, freed after the call.
    let strings = config.labels.sorted { $0.key < $1.key }.map { (strdup($0.key), strdup($0.value)) }
    defer { for (k, v) in strings { free(k); free(v) } }
    let labels = strings.map { pp_label(key: UnsafePointer($0.0), value: UnsafePointer($0.1)) }
    let policy = config.policy.map { strdup($0) } ?? nil
    defer { free(policy) }
    withUnsafeMutableBytes(of: &cfg) {
        $0.storeBytes(of: UnsafePointer(policy), toByteOffset: policyOffset, as: UnsafePointer<CChar>?.self)
    }
    return try labels.withUnsafeBufferPointer { (l) throws(PrepageClientError) -> R in
        cfg.labels = l.baseAddress
        cfg.nlabels = l.count
        return try body(&cfg)
    }
}

extension RemoteSessionConfig {
    /// The config of a document libprepage parsed: the fields of the table it has, by name.
    init(c: pp_session_config) {
        var c = c
        self.init()
        for l in UnsafeBufferPointer(start: c.labels, count: c.nlabels) {
            labels[String(cString: l.key)] = String(cString: l.value)
        }
        withUnsafeBytes(of: &c) { bytes in
            for (name, kind) in Self.fields {
                guard let f = cFields[name] else { continue }
                switch (kind, pp_config_type(rawValue: f.type)) {
                case (.policy, PP_CONFIG_STRING):
                    policy = bytes.load(fromByteOffset: f.offset, as: UnsafePointer<CChar>?.self)
                        .map { String(cString: $0) }
                case (.integer, PP_CONFIG_INT):
                    let v = bytes.load(fromByteOffset: f.offset, as: Int64.self)
                    integers[name] = v == -1 ? nil : Int(v)
                case (.real, PP_CONFIG_DOUBLE):
                    let v = bytes.load(fromByteOffset: f.offset, as: Double.self)
                    reals[name] = v == -1 ? nil : v
                default: continue
                }
            }
        }
    }
}

extension RemoteDecision {
    init(c d: pp_decision) {
        self.init(
            start: d.start, count: d.count, outcome: RemoteOutcome(c: d.outcome), ntest: d.ntest, nmin: d.nmin,
            nmax: d.nmax, addr: d.addr, bytes: d.bytes)
    }
}

extension RemoteOutcome {
    init(c o: pp_outcome) {
        switch o {
        case PP_SMALLER: self = .smaller
        case PP_LARGER: self = .larger
        case PP_REVERSE: self = .reverse
        case PP_REPEAT: self = .repeat
        case PP_FALLBACK: self = .fallback
        default: self = .first
        }
    }
}

extension RemoteSession {
    init(c s: pp_session) {
        let streams = UnsafeBufferPointer(start: s.streams, count: s.nstreams).map { p in
            let st = p!.pointee
            return StreamState(
                stream: st.stream, ntest: Int(st.ntest), minHit: Int(st.min_hit), maxHit: Int(st.max_hit),
                window: .init(start: Int(st.window_start), count: Int(st.window_count)),
                direction: st.up != 0 ? "up" : "down")
        }
        var stats = s.stats.pointee
        let created = withUnsafeBytes(of: &stats.created_at) {
            String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self))
        }
        let last = withUnsafeBytes(of: &stats.last_fault_at) {
            String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self))
        }
        self.init(
            id: String(cString: s.id),
            config: RemoteSessionConfig(c: s.config.pointee),
            state: SessionState(
                nmin: Int(s.nmin), nmax: Int(s.nmax),
                minRecord: UnsafeBufferPointer(start: s.min_record, count: s.min_record_len).map { Int($0) },
                maxRecord: UnsafeBufferPointer(start: s.max_record, count: s.max_record_len).map { Int($0) },
                streams: streams),
            stats: SessionStats(
                faults: Int(stats.faults), first: Int(stats.first), smaller: Int(stats.smaller),
                larger: Int(stats.larger), reverse: Int(stats.reverse), repeat: Int(stats.repeat),
                pagesAdvised: Int(stats.pages_advised), createdAt: created.isEmpty ? nil : created,
                lastFaultAt: last.isEmpty ? nil : last))
    }
}

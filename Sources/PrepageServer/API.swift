import PrepageCore
import PrepageHTTP
import PrepageSockets
import Synchronization

/// The answer to one request, before HTTP framing.
struct Reply {
    var status: Int
    var contentType: String?
    /// Taken from the loop's scratch buffer; given back after framing.
    var body: [UInt8]
    var headers: [(String, String)] = []
    /// The detail of a problem, for the log line.
    var problemDetail: String?
    /// Work that must not run on the event loop (it waits for other instances): the
    /// loop parks the connection, a mover thread runs this and the loop sends what it
    /// returns. `nil` for every ordinary reply.
    var deferred: (@Sendable (LoopContext) -> Reply)?
    /// Work a mover does once it has handed this reply back to the loop (making what the
    /// reply did durable, when the client need not wait for the disk). Off the loop only.
    var afterwards: (@Sendable () -> Void)?

    static let json = "application/json"

    /// A reply made later, off the event loop.
    static func later(_ work: @escaping @Sendable (LoopContext) -> Reply) -> Reply {
        Reply(status: 0, contentType: nil, body: [], deferred: work)
    }
}

/// Scratch space one event loop reuses for every request, so steady traffic does not allocate.
final class LoopContext {
    let metrics: LoopMetrics
    var body: [UInt8] = []
    var decisions: [Decision] = []
    var batchValues: [UInt64] = []

    init(metrics: LoopMetrics) {
        self.metrics = metrics
        body.reserveCapacity(4_096)
    }

    /// Scratch capacity kept between requests; a larger answer's buffer is given back.
    static let keptBodyBytes = 256 << 10
    static let keptElements = 4_096

    /// Takes back the body buffer after framing; shrinks it after a large answer.
    @inline(__always)
    func giveBack(_ bytes: inout [UInt8]) {
        swap(&bytes, &body)
        if body.capacity > Self.keptBodyBytes {
            body = []
            body.reserveCapacity(4_096)
        }
    }

    /// A JSON writer over the scratch buffer (give the bytes back with the reply).
    @inline(__always)
    func writer() -> JSONWriter {
        var taken: [UInt8] = []
        swap(&taken, &body)
        return JSONWriter(reusing: consume taken)
    }
}

/// The routes of docs/api.md: from a parsed request to a ``Reply``. Shared by every loop.
final class API: Sendable {
    let store: any SessionStore
    let clock: any WallClock
    let token: [UInt8]?
    let idleTimeout: Int64
    let openAPI: [UInt8]?
    let ready = Atomic<Bool>(false)
    /// The state directory, with `--state-dir`.
    let durable = DurableBox()
    /// The other instances, with `--peers`.
    let cluster = ClusterBox()
    /// Sums every loop's counters for a scrape.
    let metricsSources: [LoopMetrics]
    let connections: Atomic<Int>

    /// A page of `GET /sessions` ends before this many bytes (a document past it goes to the next page).
    static let listPageBytes = 1 << 20

    static let version = "0.1.0"
    static let apiVersion = "1"

    init(
        store: any SessionStore, clock: any WallClock, token: String?, idleTimeout: Duration,
        openAPI: [UInt8]?, metrics: [LoopMetrics]
    ) {
        self.store = store
        self.clock = clock
        self.token = token.map { Array($0.utf8) }
        self.idleTimeout = idleTimeout.nanoseconds
        self.openAPI = openAPI
        metricsSources = metrics
        connections = Atomic(0)
    }

    /// Routes and answers one request. Never throws: every failure is a problem reply.
    ///
    /// Every JSON answer ends with a newline: `curl` output then ends its line, and JSON
    /// allows whitespace after the value (RFC 8259 §2), so parsers do not mind.
    func handle(_ req: HTTPRequest, route match: RouteMatch?, _ ctx: LoopContext) -> Reply {
        do {
            var reply = try dispatch(req, match, ctx)
            if reply.contentType == Reply.json { reply.body.append(0x0A) }
            return reply
        } catch {
            if let session = error.unchecked, let peers = cluster.peers {
                // A restored session at its first use: checked with the peers off the loop,
                // then the request is served as usual.
                return .later { [self] ctx in
                    _ = reconciled(session, peers)
                    return handle(req, route: match, ctx)
                }
            }
            return problem(error, ctx)
        }
    }

    func problem(_ p: APIProblem, _ ctx: LoopContext) -> Reply {
        var body = ctx.writer().bytes
        body.append(contentsOf: p.body())
        body.append(0x0A)
        return Reply(
            status: p.kind.status, contentType: APIProblem.contentType, body: body, headers: p.headers,
            problemDetail: p.detail)
    }

    /// The credentials check the parser runs on each head, before reading its body
    /// or offering `100 Continue`: probes are open, everything else needs the token.
    func admits(_ req: HTTPRequest) -> Bool {
        guard token != nil else { return true }
        if let match = RouteMatch.match(req.path), match.route.isProbe { return true }
        do {
            try authorize(req)
            return true
        } catch {
            return false
        }
    }

    private func dispatch(_ req: HTTPRequest, _ match: RouteMatch?, _ ctx: LoopContext) throws(APIProblem) -> Reply {
        if match.map({ !$0.route.isProbe }) ?? true { try authorize(req) }
        guard req.admitted else {
            // Refused at its head; authorize agrees and has thrown. Never serve it regardless.
            throw APIProblem(.unauthorized, "this route needs Authorization: Bearer <token>")
        }
        guard let match else {
            throw APIProblem(.routeNotFound, "no route for \(Inputs.quoted(req.path)); see /openapi.yaml")
        }
        let route = match.route
        guard let operation = route.operation(for: req.method) else {
            throw APIProblem(
                .methodNotAllowed, "\(req.methodName) is not served on \(route.template); allowed: \(route.allow)",
                headers: [("Allow", route.allow)])
        }
        // One handler per operationId of openapi.yaml, named as the operation.
        switch operation {
        case .livez: return livez(ctx)
        case .healthz: return healthz(ctx)
        case .readyz: return try readyz(ctx)
        case .metrics: return metrics(ctx)
        case .version: return version(ctx)
        case .openapiSpec: return try openapiSpec()
        case .listSessions: return try listSessions(req, ctx)
        case .createSession: return try createSession(try SessionID.parse(match.rawID!), req, ctx)
        case .getSession: return try getSession(try SessionID.parse(match.rawID!), ctx)
        case .deleteSession: return try deleteSession(try SessionID.parse(match.rawID!), ctx)
        case .getSessionState: return try getSessionState(try SessionID.parse(match.rawID!), ctx)
        case .resetSession: return try resetSession(try SessionID.parse(match.rawID!), ctx)
        case .postFault: return try postFault(try SessionID.parse(match.rawID!), req, ctx)
        case .postFaults: return try postFaults(try SessionID.parse(match.rawID!), req, ctx)
        case .releaseSession: return try releaseSession(try SessionID.parse(match.rawID!), req, ctx)
        }
    }

    // MARK: - Probes and service documents

    /// `GET /livez`.
    private func livez(_ ctx: LoopContext) -> Reply {
        fixed(#"{"status":"ok"}"#, ctx)
    }

    /// `GET /healthz`.
    private func healthz(_ ctx: LoopContext) -> Reply {
        fixed(#"{"status":"ok"}"#, ctx)
    }

    /// `GET /readyz`.
    private func readyz(_ ctx: LoopContext) throws(APIProblem) -> Reply {
        guard ready.load(ordering: .relaxed) else {
            throw APIProblem(.unavailable, "not ready: starting or draining for shutdown")
        }
        if let failure = durable.failure {
            throw APIProblem(.unavailable, "not ready: the state directory failed (\(failure))")
        }
        return fixed(#"{"status":"ready"}"#, ctx)
    }

    /// `GET /version`.
    private func version(_ ctx: LoopContext) -> Reply {
        var w = ctx.writer()
        w.raw("{")
        w.key("version")
        w.string(Self.version)
        w.raw(",")
        w.key("api")
        w.string(Self.apiVersion)
        w.raw("}")
        return Reply(status: 200, contentType: Reply.json, body: w.bytes)
    }

    /// `GET /openapi.yaml`.
    private func openapiSpec() throws(APIProblem) -> Reply {
        guard let openAPI else {
            throw APIProblem(
                .routeNotFound, "openapi.yaml was not found beside the executable or in the working directory")
        }
        return Reply(status: 200, contentType: "application/yaml", body: openAPI)
    }

    /// `GET /metrics`.
    private func metrics(_ ctx: LoopContext) -> Reply {
        var totals: [UInt64] = []
        for m in metricsSources { m.accumulate(into: &totals) }
        var text = LoopMetrics.render(
            totals, sessions: store.counts, connections: connections.load(ordering: .relaxed),
            ready: ready.load(ordering: .relaxed), process: ProcessStats.current(),
            memory: (store.budget.usedBytes, store.budget.limit), logLinesDropped: LogQueue.shared.dropped)
        if let state = durable.state {
            var more = ""
            state.counters.render(into: &more)
            text.append(contentsOf: more.utf8)
        }
        if let peers = cluster.peers {
            var more =
                "# HELP prepage_sessions_moved_total Sessions moved to or from this instance: pulled from a peer, adopted from a peer's state directory, released to a peer.\n"
            more += "# TYPE prepage_sessions_moved_total counter\n"
            more += "prepage_sessions_moved_total{how=\"pulled\"} \(peers.pulled.load(ordering: .relaxed))\n"
            more += "prepage_sessions_moved_total{how=\"adopted\"} \(peers.adopted.load(ordering: .relaxed))\n"
            more += "prepage_sessions_moved_total{how=\"released\"} \(peers.released.load(ordering: .relaxed))\n"
            text.append(contentsOf: more.utf8)
        }
        return Reply(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: text)
    }

    // MARK: - Faults

    /// `POST /sessions/{id}/fault`: the hot path. Takes the session lock once and does not allocate.
    /// A session this instance does not have may come from a peer first
    /// (``faultAdopting(_:_:_:)``), when `adopting` and peers are configured.
    private func postFault(
        _ id: String, _ req: HTTPRequest, _ ctx: LoopContext, adopting: Bool = true
    ) throws(APIProblem) -> Reply {
        var session: Session
        do {
            session = try find(id)
        } catch {
            if adopting, error.kind == .sessionNotFound, let peers = cluster.peers {
                return try faultAdopting(id, req, peers)
            }
            throw error
        }
        let input = try faultInput(req)
        let budget = store.budget
        var decision: Decision
        while true {
            let page = try input.location.page(shift: session.config.pageShift)
            let now = clock.now()
            let result: Result<Decision, FaultError>? = session.state.withLock { st in
                // Removed since it was looked up: not decided here (it would be counted nowhere).
                guard !st.removed else { return nil }
                st.materialize()
                do throws(FaultError) {
                    let d = try st.prepager.decide(
                        page: page, stream: input.stream, growthAllowance: budget.remaining)
                    st.recount(budget)
                    st.count(d, now: now)
                    return .success(d)
                } catch {
                    return .failure(error)
                }
            }
            guard let result else {
                // Deleted (and perhaps re-created) meanwhile: decide in the session the id names now.
                session = try find(id)
                continue
            }
            switch result {
            case .success(let d): decision = d
            case .failure(let e): throw APIProblem(.faultBeyondMemory, e.description)
            }
            break
        }
        ctx.metrics.fault(decision.outcome, pages: decision.count)
        var w = ctx.writer()
        Self.write(decision, pageSize: UInt64(session.config.pageSize), &w)
        return Reply(status: 200, contentType: Reply.json, body: w.bytes)
    }

    /// A fault for a session this instance does not have, with `--peers`: the balancer sent
    /// its client here because its instance stopped (killed, failed, drained), is draining,
    /// came back, or the balancer's ring is changing. Off the loop (file and network I/O, as
    /// a re-creation's): the session is taken from a stopped peer's directory (with
    /// `--peer-state-dirs`; the configuration that peer journaled), else released by the
    /// running peer that holds it (its whole state and configuration), installed here, and
    /// the fault is decided in it — one round trip for the client, no 404 and no
    /// re-creation. When no peer has it: the 404 of any absent session. A fault that would
    /// be refused is answered that 404 without looking (nothing is taken for it).
    ///
    /// The client's vCPU waits, and a fault acknowledges no change (what it teaches is kept
    /// by the snapshots), so the answer does not wait for the disk: the move is journaled
    /// in both directories and written (a crash of either process loses nothing) before the
    /// answer, and synced right after it — here first, then the peer's record (see
    /// ``PeerDirectory/take(_:config:)``). A request that acknowledges a change of the
    /// session syncs the journal first, as always.
    private func faultAdopting(_ id: String, _ req: HTTPRequest, _ peers: Peers) throws(APIProblem) -> Reply {
        guard (try? faultInput(req)) != nil else { throw notFound(id) }
        return .later { [self] ctx in
            var moved = false
            if store.session(id) == nil,
                let image = (peers.adoptsOnFault ? peers.adoptFromStopped(id) : nil) ?? peers.pullForFault(id)
            {
                do throws(APIProblemBox) {
                    _ = try store.install(id: id, image: image, now: clock.now(), durably: false)
                } catch {
                    return problem(error.problem, ctx)
                }
                moved = true
            }
            var reply: Reply
            do throws(APIProblem) {
                reply = try postFault(id, req, ctx, adopting: false)
                reply.body.append(0x0A)
            } catch {
                reply = problem(error, ctx)
            }
            if moved {
                reply.afterwards = { [store] in
                    // Not ready when it fails (the journal says so); the peer's record waits.
                    guard (try? store.makeDurable()) != nil else { return }
                    peers.syncMoves()
                }
            }
            return reply
        }
    }

    /// The fault of a request: JSON body, form body, or query parameters (when the body is empty).
    private func faultInput(_ req: HTTPRequest) throws(APIProblem) -> FaultInput {
        let hasBody = !Inputs.isBlank(req.body)
        if !hasBody {
            guard let query = req.query, !query.isEmpty else {
                throw APIProblem(.invalidField, "missing field: give page or addr (JSON body, form body or query)")
            }
            return try Array(query.utf8).withBytes { raw throws(APIProblem) in try Inputs.fault(form: raw) }
        }
        guard Inputs.isEmpty(query: req.query) else {
            throw APIProblem(.invalidQuery, "give the fault either in the body or in the query, not both")
        }
        switch req.contentType {
        case .json, .none:
            return try req.body.withBytes { raw throws(APIProblem) in try Inputs.fault(json: raw) }
        case .form:
            return try req.body.withBytes { raw throws(APIProblem) in try Inputs.fault(form: raw) }
        case .other:
            throw unsupported(req, accepted: "application/json, application/x-www-form-urlencoded")
        }
    }

    /// `POST /sessions/{id}/faults`: every fault checked first, then all decided under one lock.
    private func postFaults(_ id: String, _ req: HTTPRequest, _ ctx: LoopContext) throws(APIProblem) -> Reply {
        var session = try find(id)
        guard req.contentType == .json || req.contentType == .none else {
            throw unsupported(req, accepted: "application/json")
        }
        guard Inputs.isEmpty(query: req.query) else {
            throw APIProblem(.invalidQuery, "/faults takes no query parameters; give pages or addrs in the JSON body")
        }
        guard !req.body.isEmpty else {
            throw APIProblem(.invalidField, "missing body: give pages or addrs (and optionally streams) as JSON")
        }
        var reuse: [UInt64] = []
        swap(&reuse, &ctx.batchValues)
        let batch = try req.body.withBytes { raw throws(APIProblem) in
            try Inputs.batch(json: raw, reusing: reuse)
        }
        var values = batch.values
        defer {
            // A large batch does not keep its scratch: give back what it grew.
            if values.capacity > LoopContext.keptElements { values = [] }
            swap(&values, &ctx.batchValues)
        }
        var decisions: [Decision] = []
        swap(&decisions, &ctx.decisions)
        defer {
            if decisions.capacity > LoopContext.keptElements { decisions = [] }
            swap(&decisions, &ctx.decisions)
        }
        let budget = store.budget
        let streams = batch.streams
        let shift = session.config.pageShift
        let memory = session.config.prepage.memoryPages
        // A bad request changes nothing: check every page before deciding any.
        for i in values.indices {
            let page = try (batch.addresses ? FaultLocation.addr(values[i]) : .page(values[i])).page(shift: shift)
            if memory > 0 && page >= memory {
                throw APIProblem(
                    .faultBeyondMemory,
                    "\(batch.addresses ? "addrs" : "pages")[\(i)]: \(FaultError.beyondMemory(page: page, memoryPages: memory))"
                )
            }
            values[i] = UInt64(page)
        }
        let pages = values
        while true {
            decisions.removeAll(keepingCapacity: true)
            decisions.reserveCapacity(pages.count)
            let now = clock.now()
            let decided: Bool = session.state.withLock { st in
                guard !st.removed else { return false }
                st.materialize()
                for i in pages.indices {
                    // Pages were checked above, so no decision can be refused.
                    guard
                        let d = try? st.prepager.decide(
                            page: Int(pages[i]), stream: streams.isEmpty ? 0 : streams[i],
                            growthAllowance: budget.remaining)
                    else { continue }
                    st.recount(budget)
                    st.count(d, now: now)
                    decisions.append(d)
                }
                return true
            }
            if decided { break }
            // Deleted (and perhaps re-created) meanwhile: decide in the session the id names now,
            // when its pages mean the same (page size and memory); else the session is gone.
            session = try find(id)
            guard session.config.pageShift == shift && session.config.prepage.memoryPages == memory else {
                throw APIProblem(
                    .sessionNotFound,
                    "session \(Inputs.quoted(id)) was deleted while this batch was decided, and re-created with another page_size or memory_pages; send the batch again"
                )
            }
        }
        var w = ctx.writer()
        w.bytes.reserveCapacity(decisions.count * 110 + 16)
        w.raw("{")
        w.key("decisions")
        w.raw("[")
        let pageSize = UInt64(session.config.pageSize)
        for (i, d) in decisions.enumerated() {
            if i > 0 { w.raw(",") }
            Self.write(d, pageSize: pageSize, &w)
            ctx.metrics.fault(d.outcome, pages: d.count)
        }
        w.raw("]}")
        return Reply(status: 200, contentType: Reply.json, body: w.bytes)
    }

    /// `{"start","count","outcome","ntest","nmin","nmax","addr","bytes"}`.
    @inline(__always)
    static func write(_ d: Decision, pageSize: UInt64, _ w: inout JSONWriter) {
        w.raw("{\"start\":")
        w.int(d.start)
        w.raw(",\"count\":")
        w.int(d.count)
        w.raw(",\"outcome\":\"")
        w.raw(d.outcome.staticName)
        w.raw("\",\"ntest\":")
        w.int(d.ntest)
        w.raw(",\"nmin\":")
        w.int(d.nmin)
        w.raw(",\"nmax\":")
        w.int(d.nmax)
        w.raw(",\"addr\":")
        w.uint(UInt64(d.start) &* pageSize)
        w.raw(",\"bytes\":")
        w.uint(UInt64(d.count) &* pageSize)
        w.raw("}")
    }

    // MARK: - Sessions

    /// `PUT /sessions/{id}`: a session from a configuration, or from a state document.
    private func createSession(_ id: String, _ req: HTTPRequest, _ ctx: LoopContext) throws(APIProblem) -> Reply {
        guard Inputs.isEmpty(query: req.query) else {
            throw APIProblem(
                .invalidQuery, "PUT /sessions/{id} takes no query parameters; give the configuration in the JSON body")
        }
        let empty = Inputs.isBlank(req.body)
        guard empty || req.contentType == .json || req.contentType == .none else {
            throw unsupported(req, accepted: "application/json")
        }
        let body = try req.body.withBytes { raw throws(APIProblem) in try Inputs.sessionBody(json: raw) }
        let result: (session: Session, created: Bool)
        do {
            switch body {
            case .config(let config):
                if let peers = cluster.peers, store.session(id) == nil {
                    // Perhaps a session that moved: asked of the peers off the loop.
                    return .later { [self] ctx in
                        do throws(APIProblemBox) {
                            let result: (session: Session, created: Bool)
                            if let moved = try movedHere(id, config: config, peers) {
                                result = (moved, true)
                            } else {
                                result = try store.create(id: id, config: config, now: clock.now())
                            }
                            var reply = document(result.session, status: result.created ? 201 : 200, ctx)
                            if result.created { reply.headers.append(("Location", "/sessions/\(id)")) }
                            return reply
                        } catch {
                            return problem(error.problem, ctx)
                        }
                    }
                }
                result = try store.create(id: id, config: config, now: clock.now())
            case .state(let image): result = try store.install(id: id, image: image, now: clock.now(), durably: true)
            }
        } catch {
            throw error.problem
        }
        var reply = document(result.session, status: result.created ? 201 : 200, ctx)
        if result.created { reply.headers.append(("Location", "/sessions/\(id)")) }
        return reply
    }

    /// `GET /sessions`: a page of session documents in id order.
    private func listSessions(_ req: HTTPRequest, _ ctx: LoopContext) throws(APIProblem) -> Reply {
        let (limit, after) = try Inputs.listQuery(req.query)
        let (sessions, more) = store.list(after: after, limit: limit)
        var w = ctx.writer()
        w.raw("{")
        w.key("sessions")
        w.raw("[")
        // A page ends by count (`limit`) or by size: the document that would take the
        // answer past `listPageBytes` starts the next page instead (one always fits).
        var written = 0
        for s in sessions {
            let mark = w.bytes.count
            if written > 0 { w.raw(",") }
            s.writeDocument(&w)
            if written > 0 && w.bytes.count > Self.listPageBytes {
                w.bytes.removeSubrange(mark...)
                break
            }
            written += 1
        }
        w.raw("],")
        w.key("next")
        if more || written < sessions.count { w.string(sessions[written - 1].id) } else { w.raw("null") }
        w.raw("}")
        return Reply(status: 200, contentType: Reply.json, body: w.bytes)
    }

    /// `GET /sessions/{id}`.
    private func getSession(_ id: String, _ ctx: LoopContext) throws(APIProblem) -> Reply {
        document(try find(id), status: 200, ctx)
    }

    /// `DELETE /sessions/{id}`: the session's last document.
    private func deleteSession(_ id: String, _ ctx: LoopContext) throws(APIProblem) -> Reply {
        guard let session = store.remove(id) else { throw notFound(id) }
        return document(session, status: 200, ctx)
    }

    /// `POST /sessions/{id}/reset`: back to a fresh session with the same configuration.
    private func resetSession(_ id: String, _ ctx: LoopContext) throws(APIProblem) -> Reply {
        let session = try find(id)
        do {
            try store.reset(session, now: clock.now())
        } catch {
            throw error.problem
        }
        return document(session, status: 200, ctx)
    }

    /// `GET /sessions/{id}/state`: the state document a `PUT` restores.
    private func getSessionState(_ id: String, _ ctx: LoopContext) throws(APIProblem) -> Reply {
        let session = try find(id)
        var w = ctx.writer()
        StateDocument.write(session.image(), &w)
        return Reply(status: 200, contentType: Reply.json, body: w.bytes)
    }

    private func document(_ session: Session, status: Int, _ ctx: LoopContext) -> Reply {
        var w = ctx.writer()
        session.writeDocument(&w)
        return Reply(status: status, contentType: Reply.json, body: w.bytes)
    }

    // MARK: - Sessions that move between instances

    /// A session being created here that a peer holds (it moved: its instance stopped,
    /// failed or came back), installed here with what it learned; `nil` when none has it.
    private func movedHere(_ id: String, config: SessionConfig, _ peers: Peers) throws(APIProblemBox) -> Session? {
        if store.session(id) != nil { return nil }  // created meanwhile: the create finds it
        guard let image = peers.find(id, config: config, fromDirectories: true) else { return nil }
        let session = try store.install(id: id, image: image, now: clock.now(), durably: true).session
        peers.syncMoves()  // durable here first: see ``PeerDirectory/take(_:config:)``
        return session
    }

    /// A session restored here and not checked since: the peer's copy if one holds it now.
    @inline(__always)
    private func reconciled(_ session: Session, _ peers: Peers) -> Session {
        guard session.tentative.load(ordering: .relaxed) else { return session }
        guard session.tentative.exchange(false, ordering: .acquiringAndReleasing) else { return session }
        guard let image = peers.find(session.id, config: session.config, fromDirectories: false),
            let installed = try? store.install(id: session.id, image: image, now: clock.now(), durably: true)
        else { return session }
        return installed.session
    }

    /// `POST /sessions/{id}/release`: the session leaves this instance for the caller's
    /// (a peer's), with its whole state.
    private func releaseSession(_ id: String, _ req: HTTPRequest, _ ctx: LoopContext) throws(APIProblem) -> Reply {
        guard let registry = store as? SessionRegistry else {
            throw APIProblem(.routeNotFound, "this server's session store does not release sessions")
        }
        let config: SessionConfig? =
            Inputs.isBlank(req.body)
            ? nil : try req.body.withBytes { raw throws(APIProblem) in try Inputs.config(json: raw) }
        switch registry.release(id, expecting: config) {
        case .notFound:
            throw notFound(id)
        case .conflict:
            throw APIProblem(
                .sessionConflict,
                "session \(Inputs.quoted(id)) is here with another configuration; it stays here")
        case .released(let image):
            cluster.peers?.released.add(1, ordering: .relaxed)
            var w = ctx.writer()
            StateDocument.write(image, &w)
            return Reply(status: 200, contentType: Reply.json, body: w.bytes)
        }
    }

    private func find(_ id: String) throws(APIProblem) -> Session {
        guard let session = store.session(id) else { throw notFound(id) }
        if session.tentative.load(ordering: .relaxed) && cluster.peers != nil {
            // Restored and not checked with the peers: the request is served after that, off the loop.
            var p = APIProblem(.unavailable, "")
            p.unchecked = session
            throw p
        }
        return session
    }

    private func notFound(_ id: String) -> APIProblem {
        APIProblem(.sessionNotFound, "no session \(Inputs.quoted(id)); create it with PUT /sessions/\(id)")
    }

    // MARK: - Helpers

    private func fixed(_ text: StaticString, _ ctx: LoopContext) -> Reply {
        var w = ctx.writer()
        w.raw(text)
        return Reply(status: 200, contentType: Reply.json, body: w.bytes)
    }

    private func unsupported(_ req: HTTPRequest, accepted: String) -> APIProblem {
        let sent = req.header("content-type") ?? "none"
        return APIProblem(
            .unsupportedMediaType, "Content-Type \(Inputs.quoted(sent)) is not accepted here; accepted: \(accepted)")
    }

    /// `Authorization: Bearer TOKEN` when a token is configured (RFC 6750 §2.1).
    private func authorize(_ req: HTTPRequest) throws(APIProblem) {
        guard let token else { return }
        let challenge = [("WWW-Authenticate", "Bearer realm=\"prepage\"")]
        guard var value = req.authorization else {
            throw APIProblem(.unauthorized, "this route needs Authorization: Bearer <token>", headers: challenge)
        }
        let valid: Bool? = value.withUTF8 { (bytes: UnsafeBufferPointer<UInt8>) -> Bool? in
            // "Bearer" (any case), spaces, the token, optional spaces; no copy made.
            let scheme = "bearer "
            guard bytes.count > 7 else { return nil }
            var i = 0
            for c in scheme.utf8 {
                guard bytes[i] | 0x20 == c | 0x20 else { return nil }
                i += 1
            }
            var end = bytes.count
            while i < end, bytes[i] == 0x20 { i += 1 }
            while end > i, bytes[end - 1] == 0x20 { end -= 1 }
            // Compare in time independent of where the first difference is.
            var diff = UInt8(end - i == token.count ? 0 : 1)
            var j = 0
            while i + j < end && j < token.count {
                diff |= bytes[i + j] ^ token[j]
                j += 1
            }
            return diff == 0
        }
        guard let valid else {
            throw APIProblem(.unauthorized, "the Authorization scheme must be Bearer", headers: challenge)
        }
        guard valid else {
            throw APIProblem(
                .unauthorized, "the bearer token is not valid",
                headers: [("WWW-Authenticate", "Bearer realm=\"prepage\", error=\"invalid_token\"")])
        }
    }
}

extension Array where Element == UInt8 {
    /// `withUnsafeBytes` for a body that throws ``APIProblem`` (the standard one is untyped).
    func withBytes<T>(_ body: (UnsafeRawBufferPointer) throws(APIProblem) -> T) throws(APIProblem) -> T {
        let result: Result<T, APIProblem> = withUnsafeBytes { raw in
            Result { () throws(APIProblem) -> T in try body(raw) }
        }
        return try result.get()
    }
}

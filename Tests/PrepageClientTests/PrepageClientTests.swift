import PrepageClient
import Testing

/// The Swift wrapper against the real server on port 0.
@Suite struct PrepageClientTests {
    let server: LiveServer
    init() throws { server = try LiveServer() }

    func client(retries: Int = 3, recreate: Bool = true, timeout: Int = 5_000) throws -> PrepageClient {
        try PrepageClient(
            options: .init(
                baseURL: server.url, requestTimeoutMilliseconds: timeout, maxRetries: retries,
                retryBaseMilliseconds: 20, retryMaxMilliseconds: 300, recreateSessions: recreate))
    }

    @Test func createsGetsListsAndDeletesSessions() throws {
        let c = try client()
        let config = SessionConfig(policy: "dp", maxPages: 256, k: 4, pageSize: 8_192, labels: ["vm": "guest-1"])
        let (session, created) = try c.createSession("s-1", config: config)
        #expect(created)
        #expect(session.id == "s-1")
        #expect(session.config.maxPages == 256 && session.config.k == 4 && session.config.pageSize == 8_192)
        #expect(session.config.policy == "dp" && session.config.minPages == 1)
        #expect(session.config.labels == ["vm": "guest-1"])
        #expect(session.state.streams.isEmpty && session.stats.faults == 0 && session.stats.createdAt != nil)

        #expect(try c.createSession("s-1", config: config).created == false)
        let conflict = #expect(throws: PrepageClientError.self) {
            try c.createSession("s-1", config: SessionConfig(policy: "dp", k: 5))
        }
        #expect(conflict?.kind == .http && conflict?.status == 409 && conflict?.detail.isEmpty == false)

        try c.createSession("s-2")
        try c.createSession("s-3")
        let first = try c.listSessions(limit: 2)
        #expect(first.sessions.map(\.id) == ["s-1", "s-2"])
        #expect(first.next == "s-2")
        let rest = try c.listSessions(limit: 2, after: first.next)
        #expect(rest.sessions.map(\.id) == ["s-3"] && rest.next == nil)

        #expect(try c.getSession("s-1").config.k == 4)
        #expect(try c.deleteSession("s-1")?.id == "s-1")
        let gone = #expect(throws: PrepageClientError.self) { try c.getSession("s-1") }
        #expect(gone?.kind == .http && gone?.status == 404)
    }

    @Test func decidesFaultsByPageAndAddress() throws {
        let c = try client()
        try c.createSession("f-1", config: SessionConfig(policy: "dp", pageSize: 4_096))
        let d = try c.fault("f-1", page: 1_000)
        #expect(d.outcome == .first)
        #expect(d.start <= 1_000 && 1_000 < d.start + d.count)
        #expect(d.addr == d.start * 4_096 && d.bytes == d.count * 4_096)
        #expect(
            try c.fault("f-1", page: 1_000)
                == Decision(
                    start: d.start, count: d.count, outcome: .repeat, ntest: d.ntest, nmin: d.nmin, nmax: d.nmax,
                    addr: d.addr, bytes: d.bytes))

        let a = try c.fault("f-1", addr: 0x7f00_0000_0000 + 5, stream: 7)
        #expect(a.start == 0x7f00_0000_0000 / 4_096 && a.outcome == .first)

        let s = try c.getSession("f-1")
        #expect(s.stats.faults == 3 && s.stats.repeat == 1)
        #expect(s.state.streams.map(\.stream) == [0, 7])

        let reset = try c.resetSession("f-1")
        #expect(reset.stats.faults == 3 && reset.state.streams.isEmpty)
        #expect(try c.fault("f-1", page: 1_000).outcome == .first)
    }

    @Test func batchAnswersExactlyAsOneByOne() throws {
        let c = try client()
        try c.createSession("b-1")
        try c.createSession("b-2")
        var pages: [UInt64] = []
        var streams: [UInt32] = []
        for i in 0..<200 {
            streams.append(UInt32(i % 3))
            pages.append(UInt64(10_000 * (i % 3) + i / 3 * 2))
        }
        let many = try c.faults("b-1", pages: pages, streams: streams)
        let single = try zip(pages, streams).map { try c.fault("b-2", page: $0, stream: $1) }
        #expect(many == single)

        let byAddress = try c.faults("b-2", addrs: [4_096 * 50_000], streams: [])
        #expect(byAddress.count == 1 && byAddress[0].start == 50_000)

        let mismatch = #expect(throws: PrepageClientError.self) {
            try c.faults("b-1", pages: [1, 2], streams: [0])
        }
        #expect(mismatch?.kind == .invalid)
        #expect(throws: PrepageClientError.self) { try c.faults("b-1", pages: []) }
    }

    @Test func sendsAndReadsThePolicyFields() throws {
        let c = try client()
        let (session, _) = try c.createSession(
            "fw-1", config: SessionConfig(policy: "forward", forwardPages: 7, backwardPages: 1))
        #expect(session.config.policy == "forward")
        #expect(session.config.forwardPages == 7 && session.config.backwardPages == 1)
        #expect(session.config.raInitial == nil && session.config.raMax == nil)
        let d = try c.fault("fw-1", page: 100)
        #expect(d.start == 99 && d.count == 9)
        let wrong = #expect(throws: PrepageClientError.self) {
            try c.createSession("fw-2", config: SessionConfig(raMax: 32))
        }
        #expect(wrong?.status == 400 && wrong?.detail.contains("ra_max") == true)
    }

    @Test func passesTheProblemDetailOfA400Through() throws {
        let c = try client()
        let error = #expect(throws: PrepageClientError.self) {
            try c.createSession("bad", config: SessionConfig(maxPages: 2_000_000))
        }
        #expect(error?.kind == .http && error?.status == 400)
        #expect(error?.detail.contains("max_pages") == true)

        try c.createSession("mem", config: SessionConfig(memoryPages: 10))
        let beyond = #expect(throws: PrepageClientError.self) { try c.fault("mem", page: 10) }
        #expect(beyond?.status == 422)
    }

    @Test func rejectsBadArgumentsWithoutSending() throws {
        let c = try client()
        for id in ["", "a/b", "a b", String(repeating: "x", count: 129), "é"] {
            let error = #expect(throws: PrepageClientError.self) { try c.fault(id, page: 1) }
            #expect(error?.kind == .invalid && error?.status == nil)
        }
        #expect(throws: PrepageClientError.self) { try c.listSessions(limit: 1_001) }
        let url = #expect(throws: PrepageClientError.self) {
            try PrepageClient(options: .init(baseURL: "ftp://127.0.0.1"))
        }
        #expect(url?.kind == .invalid)
    }

    @Test func reportsRefusedConnectionsAsIO() throws {
        let c = try PrepageClient(
            options: .init(baseURL: "http://127.0.0.1:\(closedPort())", maxRetries: 1, retryBaseMilliseconds: 1))
        let error = #expect(throws: PrepageClientError.self) { try c.getSession("x") }
        #expect(error?.kind == .io && error?.status == nil)
    }

    @Test func reportsASilentServerAsTimeout() throws {
        let silent = SilentServer()
        let c = try PrepageClient(
            options: .init(baseURL: "http://127.0.0.1:\(silent.port)", requestTimeoutMilliseconds: 200, maxRetries: 1))
        let error = #expect(throws: PrepageClientError.self) { try c.fault("x", page: 1) }
        #expect(error?.kind == .timeout)
    }

    @Test func recreatesItsSessionsAfterARestart() throws {
        let c = try client(retries: 10)
        let other = try client(retries: 10, recreate: false)
        try c.createSession("r-1", config: SessionConfig(maxPages: 128))
        try other.createSession("r-2")
        _ = try c.fault("r-1", page: 10)

        try server.restart()
        let d = try c.fault("r-1", page: 500)
        #expect(d.outcome == .first)
        #expect(try c.getSession("r-1").config.maxPages == 128)

        let lost = #expect(throws: PrepageClientError.self) { try other.fault("r-2", page: 1) }
        #expect(lost?.kind == .http && lost?.status == 404)
    }

    @Test func sendsTheBearerToken() throws {
        let guarded = try LiveServer(token: "s3cret")
        let anonymous = try PrepageClient(options: .init(baseURL: guarded.url))
        let error = #expect(throws: PrepageClientError.self) { try anonymous.createSession("t") }
        #expect(error?.status == 401)
        let c = try PrepageClient(options: .init(baseURL: guarded.url, token: "s3cret"))
        #expect(try c.createSession("t").created)
    }

    @Test func reportsTheLibraryVersion() {
        #expect(PrepageClient.libraryVersion == "0.1.0")
    }
}

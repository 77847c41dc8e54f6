import Foundation
import PrepageClient
import Testing

/// The Swift wrapper against the real server on port 0.
@Suite struct PrepageClientTests {
    let server: LiveServer
    init() throws { server = try LiveServer() }

    /// A client whose faults wait up to `timeout` too: these tests want the oracle's
    /// answers (tests run in parallel on a shared machine); the fallback has tests of its own.
    func client(retries: Int = 3, recreate: Bool = true, timeout: Int = 5_000) throws -> PrepageConnection {
        try PrepageConnection(
            options: .init(
                baseURL: server.url, requestTimeoutMilliseconds: timeout, maxRetries: retries,
                retryBaseMilliseconds: 20, retryMaxMilliseconds: 300, recreateSessions: recreate,
                faultDeadlineMilliseconds: timeout))
    }

    /// Export on one server, import on another: the moved session decides as the one it was.
    @Test func movesASessionBetweenServersWithWhatItLearned() throws {
        let other = try LiveServer()
        let a = try client()
        let b = try PrepageConnection(
            options: .init(baseURL: other.url, requestTimeoutMilliseconds: 5_000, faultDeadlineMilliseconds: 5_000))
        let control = try client()
        try a.createSession("mv")
        try control.createSession("mv-control")
        var page: UInt64 = 7
        for i in 0..<300 {
            page = i % 9 == 0 ? page &* 2_654_435_761 % 1_000_000_007 : page + 1
            _ = try a.fault("mv", page: page)
            _ = try control.fault("mv-control", page: page)
        }
        try a.moveSession("mv", to: b)
        #expect(throws: PrepageClientError.self) { try a.getSession("mv") }
        #expect(try b.getSession("mv").stats.faults == 300)
        for i in 0..<300 {
            page = i % 4 == 0 ? page &* 2_654_435_761 % 1_000_000_007 : page + 1
            let moved = try b.fault("mv", page: page)
            let stayed = try control.fault("mv-control", page: page)
            try #require(moved.start == stayed.start && moved.count == stayed.count && moved.outcome == stayed.outcome)
        }
        let bad = #expect(throws: PrepageClientError.self) {
            try b.importSession("mv-2", state: "{\"config\":{},\"version\":9}")
        }
        #expect(bad?.status == 400 && bad?.detail.contains("state.") == true)
        let notAState = #expect(throws: PrepageClientError.self) { try b.importSession("mv-2", state: "{}") }
        #expect(notAState?.kind == .invalid)
        #expect(try b.importSession("mv-2", state: try b.exportSession("mv")))
        #expect(try b.importSession("mv-2", state: try b.exportSession("mv")) == false)
    }

    @Test func createsGetsListsAndDeletesSessions() throws {
        let c = try client()
        // Policy named: k is dp's, and the server's default policy may change.
        let config = RemoteSessionConfig(policy: "dp", maxPages: 256, k: 4, pageSize: 8_192, labels: ["vm": "guest-1"])
        let (session, created) = try c.createSession("s-1", config: config)
        #expect(created)
        #expect(session.id == "s-1")
        #expect(session.config.maxPages == 256 && session.config.k == 4 && session.config.pageSize == 8_192)
        #expect(session.config.policy == "dp" && session.config.minPages == 1)
        #expect(session.config.labels == ["vm": "guest-1"])
        #expect(session.state.streams.isEmpty && session.stats.faults == 0 && session.stats.createdAt != nil)

        #expect(try c.createSession("s-1", config: config).created == false)
        let conflict = #expect(throws: PrepageClientError.self) {
            try c.createSession("s-1", config: RemoteSessionConfig(policy: "dp", k: 5))
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
        // Policy dp: the streams checked below are DP's.
        try c.createSession("f-1", config: RemoteSessionConfig(policy: "dp", pageSize: 4_096))
        let d = try c.fault("f-1", page: 1_000)
        #expect(d.outcome == .first)
        #expect(d.start <= 1_000 && 1_000 < d.start + d.count)
        #expect(d.addr == d.start * 4_096 && d.bytes == d.count * 4_096)
        #expect(
            try c.fault("f-1", page: 1_000)
                == RemoteDecision(
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
            "fw-1", config: RemoteSessionConfig(policy: "forward", forwardPages: 7, backwardPages: 1))
        #expect(session.config.policy == "forward")
        #expect(session.config.forwardPages == 7 && session.config.backwardPages == 1)
        #expect(session.config.raInitial == nil && session.config.raMax == nil)
        let d = try c.fault("fw-1", page: 100)
        #expect(d.start == 99 && d.count == 9)
        let wrong = #expect(throws: PrepageClientError.self) {
            try c.createSession("fw-2", config: RemoteSessionConfig(raMax: 32))
        }
        #expect(wrong?.status == 400 && wrong?.detail.contains("ra_max") == true)
    }

    @Test func passesTheProblemDetailOfA400Through() throws {
        let c = try client()
        let error = #expect(throws: PrepageClientError.self) {
            try c.createSession("bad", config: RemoteSessionConfig(maxPages: 2_000_000))
        }
        #expect(error?.kind == .http && error?.status == 400)
        #expect(error?.detail.contains("max_pages") == true)

        try c.createSession("mem", config: RemoteSessionConfig(memoryPages: 10))
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
            try PrepageConnection(options: .init(baseURL: "ftp://127.0.0.1"))
        }
        #expect(url?.kind == .invalid)
    }

    @Test func reportsRefusedConnectionsAsIO() throws {
        let c = try PrepageConnection(
            options: .init(baseURL: "http://127.0.0.1:\(closedPort())", maxRetries: 1, retryBaseMilliseconds: 1))
        let error = #expect(throws: PrepageClientError.self) { try c.getSession("x") }
        #expect(error?.kind == .io && error?.status == nil)
    }

    @Test func reportsASilentServerAsTimeout() throws {
        let silent = SilentServer()
        let c = try PrepageConnection(
            options: .init(
                baseURL: "http://127.0.0.1:\(silent.port)", requestTimeoutMilliseconds: 200, maxRetries: 1,
                faultDeadlineMilliseconds: 200, faultFallback: false))
        let error = #expect(throws: PrepageClientError.self) { try c.fault("x", page: 1) }
        #expect(error?.kind == .timeout)
        let admin = #expect(throws: PrepageClientError.self) { try c.getSession("x") }
        #expect(admin?.kind == .timeout)
    }

    @Test func answersAFallbackWhenTheServerHangs() throws {
        let silent = SilentServer()
        // Every default: a 5 ms deadline, the fallback, a 50 ms breaker.
        let c = try PrepageConnection(options: .init(baseURL: "http://127.0.0.1:\(silent.port)"))
        try c.registerSession("x", config: RemoteSessionConfig(pageSize: 8_192))
        let d = try c.fault("x", addr: 8_192 * 12 + 5, stream: 1)
        #expect(d.outcome == .fallback && d.start == 12 && d.count == 1 && d.addr == 8_192 * 12 && d.bytes == 8_192)
        #expect(c.lastError?.kind == .timeout)
        #expect(c.breaker.periodMilliseconds == 50)
        #expect(try c.fault("x", page: 99).outcome == .fallback)
    }

    @Test func answersAFallbackWhenNothingListens() throws {
        let c = try PrepageConnection(
            options: .init(baseURL: "http://127.0.0.1:\(closedPort())", breakerBaseMilliseconds: 30))
        let d = try c.fault("x", page: 7)
        #expect(
            d
                == RemoteDecision(
                    start: 7, count: 1, outcome: .fallback, ntest: 0, nmin: 0, nmax: 0, addr: 7 * 4_096, bytes: 4_096))
        #expect(c.lastError?.kind == .io && c.breaker.periodMilliseconds == 30)
        // The fallback decision encodes like the others.
        #expect(String(decoding: try JSONEncoder().encode(d.outcome), as: UTF8.self) == "\"fallback\"")
    }

    @Test func recoversAfterTheServerComesBack() throws {
        let c = try PrepageConnection(
            options: .init(
                baseURL: server.url, faultDeadlineMilliseconds: 2_000, breakerBaseMilliseconds: 20,
                breakerMaxMilliseconds: 40))
        try c.createSession("back-1", config: RemoteSessionConfig(maxPages: 64))
        #expect(try c.fault("back-1", page: 1).outcome == .first)
        server.stop()
        #expect(try c.fault("back-1", page: 2).outcome == .fallback)
        #expect(c.breaker.periodMilliseconds == 20)
        try server.restart()
        while c.breaker.remainingMilliseconds > 0 { usleep(2_000) }
        let d = try c.fault("back-1", page: 300)
        #expect(d.outcome == .first && c.breaker.periodMilliseconds == 0 && c.lastError == nil)
        #expect(try c.getSession("back-1").config.maxPages == 64)
    }

    @Test func registeredClientsRecoverASessionAfterARestart() throws {
        let creator = try client(retries: 10)
        let worker = try client(retries: 10)
        let config = RemoteSessionConfig(maxPages: 96, pageSize: 8_192, labels: ["vm": "w"])
        try worker.registerSession("reg-1", config: config)
        #expect(throws: PrepageClientError.self) { try creator.getSession("reg-1") }  // nothing sent
        try creator.createSession("reg-1", config: config)
        _ = try worker.fault("reg-1", page: 10, stream: 1)

        try server.restart()
        let d = try worker.fault("reg-1", page: 400, stream: 1)  // 404, re-created, decided
        #expect(d.outcome == .first && d.bytes == d.count * 8_192)
        _ = try creator.fault("reg-1", page: 900)
        let s = try creator.getSession("reg-1")
        #expect(s.config.maxPages == 96 && s.config.labels == ["vm": "w"] && s.stats.faults == 2)
    }

    @Test func encodesTheDpPlusFieldsByTheirWireNames() throws {
        let config = RemoteSessionConfig(
            policy: "dp-plus", maxSlots: 32, transitions: 16, halfLife: 10, nearWindow: 0, probeStaleness: 500,
            faultFee: 1.1, minEvidence: 0.01, rttMicroseconds: 250.5, pageMicroseconds: 32.768)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as? [String: Any]
        #expect(json?["max_slots"] as? Int == 32 && json?["half_life"] as? Int == 10)
        #expect(json?["near_window"] as? Int == 0 && json?["transitions"] as? Int == 16)
        #expect(json?["rtt_us"] as? Double == 250.5 && json?["page_us"] as? Double == 32.768)
        #expect(json?["fault_fee"] as? Double == 1.1 && json?["probe_staleness"] as? Double == 500)
        #expect(try JSONDecoder().decode(RemoteSessionConfig.self, from: JSONEncoder().encode(config)) == config)
        // Sent to the server, which names a field it refuses for policy dp (400).
        let c = try client()
        let refused = #expect(throws: PrepageClientError.self) {
            try c.createSession("plus-x", config: RemoteSessionConfig(policy: "dp", rttMicroseconds: 100))
        }
        #expect(refused?.status == 400 && refused?.detail.contains("rtt_us") == true)
    }

    @Test func recreatesItsSessionsAfterARestart() throws {
        let c = try client(retries: 10)
        let other = try client(retries: 10, recreate: false)
        try c.createSession("r-1", config: RemoteSessionConfig(maxPages: 128))
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
        let anonymous = try PrepageConnection(options: .init(baseURL: guarded.url))
        let error = #expect(throws: PrepageClientError.self) { try anonymous.createSession("t") }
        #expect(error?.status == 401)
        let c = try PrepageConnection(options: .init(baseURL: guarded.url, token: "s3cret"))
        #expect(try c.createSession("t").created)
    }

    @Test func reportsTheLibraryVersion() {
        #expect(PrepageConnection.libraryVersion == "1.2.1")
    }
}

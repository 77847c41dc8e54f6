import Foundation
import PrepageHTTP
import PrepageServer
import PrepageSockets
import Testing

/// Graceful shutdown, session expiry with an injected clock, and the route table against openapi.yaml.
@Suite struct LifecycleTests {
    @Test func gracefulShutdownFinishesInFlightRequestsAndClosesIdleOnes() throws {
        // One loop: once it has answered a request sent after the partial ones, it has read those too.
        let s = try TestServer(threads: 1)
        let idle = try s.client()
        #expect(try idle.request("GET", "/livez").status == 200)
        let busy = try s.client()
        let body = #"{"max_pages":16}"#
        try busy.send(
            "PUT /sessions/late HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
                + body.prefix(5))
        let probe = try s.client()
        try probe.send("GET /readyz HTTP/1.1\r\nHost: x\r\n")
        #expect(try idle.request("GET", "/livez").status == 200)

        s.server.shutdown()
        // Idle connections are closed at once.
        #expect(idle.isClosedByServer())
        // New connections are refused (or, if the kernel queued them before the
        // listener closed, reset unanswered).
        let refused: Bool
        do {
            let late = try s.client()
            try late.send(RawClient.format("GET", "/livez"))
            refused = late.isClosedByServer()
        } catch {
            refused = true
        }
        #expect(refused)
        // Requests in flight finish, with Connection: close.
        try busy.send(String(body.dropFirst(5)))
        let r = try busy.readResponse()
        #expect(r.status == 201)
        #expect(r.header("connection") == "close")
        #expect(busy.isClosedByServer())
        // Readiness turned 503 while draining.
        try probe.send("\r\n")
        let ready = try probe.readResponse()
        #expect(ready.status == 503)
        #expect(ready.problemType == "urn:prepage:problem:unavailable")
        let done = DispatchSemaphore(value: 0)
        Thread {
            s.server.wait(); done.signal()
        }.start()
        #expect(done.wait(timeout: .now() + 10) == .success)
    }

    @Test func shutdownDoesNotWaitForeverForAStalledRequest() throws {
        let s = try TestServer(threads: 1, drainTimeout: .milliseconds(300))
        let stalled = try s.client()
        // Read by the loop or still in the kernel at the drain, the partial request is in flight
        // either way (ConnectionStateTests): the drain waits for it until the drain timeout.
        try stalled.send("GET /livez HTTP/1.1\r\nHost: x\r\n")
        s.server.shutdown()
        let done = DispatchSemaphore(value: 0)
        Thread {
            s.server.wait(); done.signal()
        }.start()
        #expect(done.wait(timeout: .now() + 5) == .success)
        #expect(stalled.isClosedByServer())
    }

    @Test func idleSessionsExpireByTheInjectedClock() throws {
        let clock = ManualClock()
        let s = try TestServer(idleTimeout: .seconds(3_600), clock: clock)
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/old", body: "{}").status == 201)
        #expect(try c.request("PUT", "/sessions/busy", body: "{}").status == 201)
        clock.advance(by: .seconds(1_800))
        #expect(try c.request("POST", "/sessions/busy/fault", body: #"{"page":1}"#).status == 200)
        #expect(s.server.expireIdleSessions() == 0)
        clock.advance(by: .seconds(2_400))  // old: 70 min idle, busy: 40 min
        #expect(s.server.expireIdleSessions() == 1)
        #expect(try c.request("GET", "/sessions/old").status == 404)
        #expect(try c.request("GET", "/sessions/busy").status == 200)
        // Reading does not keep a session alive; a reset does.
        clock.advance(by: .seconds(3_000))
        #expect(try c.request("POST", "/sessions/busy/reset").status == 200)
        clock.advance(by: .seconds(3_000))
        #expect(s.server.expireIdleSessions() == 0)
        clock.advance(by: .seconds(600))
        #expect(s.server.expireIdleSessions() == 1)
        let metrics = try c.request("GET", "/metrics").text
        #expect(metrics.contains("prepage_sessions_expired_total 2\n"))
        #expect(metrics.contains("prepage_sessions_live 0\n"))
    }

    /// The server sweeps by itself (every tenth of the timeout, at least each second).
    @Test func idleSessionsAreSweptWithoutBeingAsked() throws {
        let clock = ManualClock()
        let s = try TestServer(idleTimeout: .seconds(5), clock: clock)
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/gone", body: "{}").status == 201)
        clock.advance(by: .seconds(6))
        var status = 200
        let deadline = Date().addingTimeInterval(5)
        while status == 200 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
            status = try c.request("GET", "/sessions/gone").status
        }
        #expect(status == 404)
    }

    @Test func zeroIdleTimeoutNeverExpires() throws {
        let clock = ManualClock()
        let s = try TestServer(idleTimeout: .zero, clock: clock)
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/forever", body: "{}").status == 201)
        clock.advance(by: .seconds(1_000 * 86_400))
        #expect(s.server.expireIdleSessions() == 0)
        #expect(try c.request("GET", "/sessions/forever").status == 200)
    }

    @Test func sessionTimestampsComeFromTheClock() throws {
        let clock = ManualClock(nanoseconds: 1_800_000_000_123_000_000)  // 2027-01-15T08:00:00.123Z
        let s = try TestServer(clock: clock)
        let c = try s.client()
        let doc = try c.request("PUT", "/sessions/t", body: "{}")
        #expect((doc.json["stats"] as? [String: Any])?["created_at"] as? String == "2027-01-15T08:00:00.123Z")
        clock.advance(by: .seconds(61))
        _ = try c.request("POST", "/sessions/t/fault", body: #"{"page":1}"#)
        let after = try c.request("GET", "/sessions/t")
        #expect((after.json["stats"] as? [String: Any])?["last_fault_at"] as? String == "2027-01-15T08:01:01.123Z")
    }

    @Test func dateHeaderComesFromTheClock() throws {
        let clock = ManualClock(nanoseconds: 1_800_000_000_123_000_000)  // 2027-01-15T08:00:00.123Z
        let s = try TestServer(clock: clock)
        let r = try s.client().request("GET", "/livez")
        #expect(r.header("date") == "Fri, 15 Jan 2027 08:00:00 GMT")
    }

    /// The repository's openapi.yaml, parsed simply: `paths:` keys and their operations.
    static func openAPIRoutes() throws -> [String: Set<String>] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("openapi.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        var routes: [String: Set<String>] = [:]
        var inPaths = false
        var current: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("paths:") { inPaths = true; continue }
            if inPaths, let first = line.first, first != " ", first != "#" { break }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") {
                let path = String(line.dropFirst(2).dropLast())
                current = path
                routes[path] = []
            } else if let current, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let key = line.trimmingCharacters(in: .whitespaces).dropLast()
                if ["get", "put", "post", "delete", "patch", "head", "options"].contains(String(key)) {
                    routes[current]!.insert(key.uppercased())
                }
            }
        }
        return routes
    }

    @Test func routeTableMatchesOpenAPIPaths() throws {
        let spec = try Self.openAPIRoutes()
        #expect(!spec.isEmpty)
        var served: [String: Set<String>] = [:]
        for route in Server.routes {
            served[route.template] = Set(route.methods.filter { $0 != .head }.map(\.name))
        }
        #expect(Set(served.keys) == Set(spec.keys), "paths served but not in openapi.yaml, or the reverse")
        for (path, methods) in served {
            #expect(
                spec[path] == methods, "\(path): served \(methods.sorted()), openapi.yaml \(spec[path]?.sorted() ?? [])"
            )
        }
    }

    @Test func openAPIListsEveryProblemTypeWithItsStatus() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("openapi.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
            .replacingOccurrences(of: "\n    ", with: " ")  // the description's lines, joined
        // "Problem `type`s are …: `a`, `b` (400), `c` (401), …": a kind's status is the first after it.
        let list = try #require(text.range(of: "Problem `type`s are ")).upperBound
        for kind in ProblemKind.allCases {
            guard let named = text.range(of: "`\(kind.rawValue)`", range: list..<text.endIndex) else {
                Issue.record("openapi.yaml does not name the problem type \(kind.rawValue)")
                continue
            }
            let status = text[named.upperBound...].firstMatch(of: #/\((\d{3})\)/#).map { String($0.1) }
            #expect(status == "\(kind.status)", "openapi.yaml lists \(kind.rawValue) as \(status ?? "no status")")
        }
    }

    @Test func servesTheRepositoryOpenAPIFile() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("openapi.yaml")
        let s = try TestServer()
        let r = try s.client().request("GET", "/openapi.yaml")
        #expect(r.status == 200)
        #expect(Data(r.body) == (try Data(contentsOf: url)))
    }
}

import Foundation
import PrepageHTTP
import PrepageServer
import PrepageSockets
import PrepageTestSupport
import Testing

/// HTTP/1.1 behaviour over real sockets: pipelining, 100-continue, limits, slow and bad clients.
@Suite struct ProtocolTests {
    @Test func answersPipelinedRequestsInOrder() throws {
        let s = try TestServer()
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/p", body: "{}").status == 201)
        var batch = ""
        let pages = (0..<50).map { $0 * 1_000 }
        for (i, page) in pages.enumerated() {
            batch += RawClient.format(
                "POST", "/sessions/p/fault", body: "{\"page\":\(page)}", headers: [("X-Request-ID", "r\(i)")])
        }
        batch += RawClient.format("GET", "/livez", headers: [("X-Request-ID", "last")])
        try c.send(batch)  // one write: every request arrives in the same read
        for (i, page) in pages.enumerated() {
            let r = try c.readResponse()
            #expect(r.status == 200)
            #expect(r.header("x-request-id") == "r\(i)")
            #expect(r.json["start"] as? Int == page)
        }
        #expect(try c.readResponse().header("x-request-id") == "last")
    }

    /// Responses larger than the output high-water mark pause parsing; every pipelined
    /// request is still answered, in order, whether the writes block or not.
    @Test func answersPipelinedRequestsWithLargeResponses() throws {
        let s = try TestServer()
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/big", body: "{}").status == 201)
        var batch = ""
        for i in 0..<4 {
            let body =
                "{\"pages\":[" + (0..<20_000).map { String(i * 10_000_000 + $0 * 1_000) }.joined(separator: ",") + "]}"
            batch += RawClient.format("POST", "/sessions/big/faults", body: body, headers: [("X-Request-ID", "b\(i)")])
        }
        batch += RawClient.format("GET", "/livez", headers: [("X-Request-ID", "after")])
        try c.send(batch)
        for i in 0..<4 {
            let r = try c.readResponse()
            #expect(r.status == 200)
            #expect(r.header("x-request-id") == "b\(i)")
            #expect(r.body.count > 1 << 20)
            #expect((r.json["decisions"] as? [Any])?.count == 20_000)
        }
        #expect(try c.readResponse().header("x-request-id") == "after")
    }

    @Test func requestSplitIntoSingleBytesIsAnswered() throws {
        let s = try TestServer()
        let c = try s.client()
        for byte in RawClient.format("PUT", "/sessions/slow", body: #"{"policy":"dp","k":3}"#).utf8 {
            try c.send([byte])
        }
        #expect(try c.readResponse().status == 201)
    }

    @Test func sendsInterim100ContinueBeforeTheBody() throws {
        let s = try TestServer()
        let c = try s.client()
        let body = #"{"max_pages":32}"#
        try c.send(
            "PUT /sessions/cont HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
        )
        let interim = try c.readResponse(timeout: 5, interim: true)
        #expect(interim.status == 100)
        try c.send(body)
        let r = try c.readResponse()
        #expect(r.status == 201)
        #expect((r.json["config"] as? [String: Any])?["max_pages"] as? Int == 32)
    }

    @Test func oversizedBodyIs413ThenClose() throws {
        var limits = HTTPLimits()
        limits.maxBodyBytes = 1_024
        let s = try TestServer(limits: limits)
        let c = try s.client()
        let body = "{\"pages\":[" + Array(repeating: "1", count: 2_000).joined(separator: ",") + "]}"
        try c.send(RawClient.format("POST", "/sessions/x/faults", body: body))
        let r = try c.readResponse()
        #expect(r.status == 413)
        #expect(r.problemType == "urn:prepage:problem:body-too-large")
        #expect(r.header("connection") == "close")
        #expect(c.isClosedByServer())
    }

    @Test func oversizedHeaderBlockIs431() throws {
        let s = try TestServer()
        let c = try s.client()
        let big = String(repeating: "a", count: 17_000)
        try c.send("GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: \(big)\r\n\r\n")
        let r = try c.readResponse()
        #expect(r.status == 431)
        #expect(r.problemType == "urn:prepage:problem:headers-too-large")
        #expect(c.isClosedByServer())
        let many = try s.client()
        var head = "GET /livez HTTP/1.1\r\nHost: x\r\n"
        for i in 0..<101 { head += "X-H\(i): v\r\n" }
        try many.send(head + "\r\n")
        #expect(try many.readResponse().status == 431)
    }

    @Test func malformedRequestsAre400AndOtherProtocolErrors() throws {
        let s = try TestServer()
        let cases: [(String, Int)] = [
            ("GARBAGE\r\n\r\n", 400),
            (
                "POST /sessions/a/fault HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                400
            ),
            ("GET /livez HTTP/2.0\r\nHost: x\r\n\r\n", 505),
            ("POST /sessions/a/fault HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
            ("GET /" + String(repeating: "a", count: 9_000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        ]
        for (text, status) in cases {
            let c = try s.client()
            try c.send(text)
            let r = try c.readResponse()
            #expect(r.status == status, "\(text.prefix(60))")
            #expect(r.header("content-type") == "application/problem+json")
            #expect(c.isClosedByServer())
        }
    }

    @Test func acceptsChunkedBodies() throws {
        let s = try TestServer()
        let c = try s.client()
        try c.send(
            "PUT /sessions/ch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nf\r\n{\"policy\":\"dp\",\r\n4\r\n\"k\":\r\n2\r\n7}\r\n0\r\n\r\n"
        )
        let r = try c.readResponse()
        #expect(r.status == 201)
        #expect((r.json["config"] as? [String: Any])?["k"] as? Int == 7)
    }

    @Test func connectionCloseAndHTTP10KeepAlive() throws {
        let s = try TestServer()
        let c = try s.client()
        let closed = try c.request("GET", "/livez", headers: [("Connection", "close")])
        #expect(closed.header("connection") == "close")
        #expect(c.isClosedByServer())

        let old = try s.client()
        try old.send("GET /livez HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(try old.readResponse().header("connection")?.lowercased() == "keep-alive")
        try old.send("GET /livez HTTP/1.0\r\n\r\n")
        #expect(try old.readResponse().status == 200)
        #expect(old.isClosedByServer())
    }

    @Test func stalledHalfRequestDoesNotDelayOthers() throws {
        let s = try TestServer(threads: 1)
        let stalled = try s.client()
        try stalled.send("POST /sessions/a/fault HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"pa")
        let other = try s.client()
        #expect(try other.request("PUT", "/sessions/b", body: "{}").status == 201)
        for i in 0..<20 {
            #expect(try other.request("POST", "/sessions/b/fault", body: "{\"page\":\(i * 100)}").status == 200)
        }
        let headerOnly = try s.client()
        try headerOnly.send("GET /livez HTTP/1.1\r\nHost: x\r\n")
        #expect(try other.request("GET", "/livez").status == 200)
    }

    @Test func slowRequestTimesOutWith408() throws {
        var limits = HTTPLimits()
        limits.requestDeadline = .milliseconds(300)
        let s = try TestServer(limits: limits)
        let c = try s.client()
        try c.send("GET /livez HTTP/1.1\r\nHost: x\r\n")
        let r = try c.readResponse(timeout: 5)
        #expect(r.status == 408)
        #expect(r.problemType == "urn:prepage:problem:request-timeout")
        #expect(c.isClosedByServer())
    }

    @Test func connectionThatSendsNothingIsClosedUnanswered() throws {
        var limits = HTTPLimits()
        limits.requestDeadline = .milliseconds(300)
        let s = try TestServer(limits: limits)
        let c = try s.client()
        #expect(throws: TestError.closed) { try c.readResponse(timeout: 5) }
    }

    @Test func idleKeepAliveConnectionIsClosed() throws {
        var limits = HTTPLimits()
        limits.keepAliveIdleTimeout = .milliseconds(300)
        let s = try TestServer(limits: limits)
        let c = try s.client()
        #expect(try c.request("GET", "/livez").status == 200)
        #expect(c.isClosedByServer(timeout: 5))
    }

    @Test func clientThatStopsReadingIsClosed() throws {
        var limits = HTTPLimits()
        limits.keepAliveIdleTimeout = .milliseconds(300)
        let s = try TestServer(limits: limits)
        let c = try s.client()
        #expect(try c.request("GET", "/openapi.yaml").status == 200)
        // 1,000 answers of ~50 KB that cost the server nothing to make (so that it blocks on
        // writing well within the pause, even on a loaded machine). The send may fail once
        // the server gives up on us: that is the point.
        let count = 1_000
        try? c.send(String(repeating: RawClient.format("GET", "/openapi.yaml"), count: count))
        Thread.sleep(forTimeInterval: 2)  // never read: the server's writes block
        var answered = 0
        while answered < count, (try? c.readResponse(timeout: 5)) != nil { answered += 1 }
        #expect(answered < count)
        #expect(c.isClosedByServer())
        #expect(try s.client().request("GET", "/livez").status == 200)
    }

    /// At the cap a new connection is taken by closing the longest-idle one; when every
    /// connection is busy (a request in progress), the new one is closed.
    @Test func connectionsOverTheLimitCloseTheLongestIdleOrAreClosed() throws {
        var limits = HTTPLimits()
        limits.maxConnections = 2
        let s = try TestServer(threads: 1, limits: limits)
        let a = try s.client()
        let b = try s.client()
        #expect(try a.request("GET", "/livez").status == 200)
        #expect(try b.request("GET", "/livez").status == 200)
        let c = try s.client()
        #expect(try c.request("GET", "/livez").status == 200)
        #expect(a.isClosedByServer())
        #expect(try b.request("GET", "/livez").status == 200)
        // Both connections in the middle of a request: nothing to close, the newcomer is refused.
        try b.send("GET /livez HTTP/1.1\r\n")
        try c.send("GET /livez HTTP/1.1\r\n")
        Thread.sleep(forTimeInterval: 0.2)
        let d = try s.client()
        #expect(d.isClosedByServer())
        try b.send("Host: h\r\n\r\n")
        #expect(try b.readResponse().status == 200)
    }

    /// Seeded garbage, cut at random places, on many connections: the server answers
    /// or closes, never crashes, and every session stays as it was.
    @Test func garbageNeverCrashesTheServerOrChangesSessions() throws {
        let s = try TestServer()
        let setup = try s.client()
        #expect(try setup.request("PUT", "/sessions/keep", body: #"{"policy":"dp"}"#).status == 201)
        var rng = SplitMix64(seed: 7)
        let templates = [
            RawClient.format("POST", "/sessions/keep/fault", body: #"{"page":1}"#),
            RawClient.format("PUT", "/sessions/keep", body: #"{"policy":"dp","k":2}"#),
            "GET /sessions HTTP/1.1\r\nHost: x\r\n\r\n",
        ]
        for _ in 0..<200 {
            var bytes = Array(templates.randomElement(using: &rng)!.utf8)
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[i] = UInt8.random(in: 0...255, using: &rng)
            }
            let c = try s.client()
            try c.send(bytes)
            Socket.shutdownWrite(c.fd)
            _ = c.isClosedByServer(timeout: 3)
        }
        let doc = try setup.request("GET", "/sessions/keep")
        #expect(doc.status == 200)
        let config = doc.json["config"] as? [String: Any]
        #expect(config?["k"] as? Int == 5)
        let faults = (doc.json["stats"] as? [String: Any])?["faults"] as? Int ?? -1
        #expect(faults >= 0)
        #expect(try setup.request("GET", "/livez").status == 200)
    }
}

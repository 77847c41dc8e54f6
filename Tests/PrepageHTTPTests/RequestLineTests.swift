import Testing

@testable import PrepageHTTP

@Suite struct RequestLineTests {
    @Test func parsesASimpleGet() throws {
        let r = try #require(request("GET /sessions/vm-1?limit=10&after=a HTTP/1.1\r\nHost: localhost\r\n\r\n"))
        #expect(r.method == .get)
        #expect(r.path == "/sessions/vm-1")
        #expect(r.query == "limit=10&after=a")
        #expect(!r.isHTTP10)
        #expect(r.keepAlive)
        #expect(r.body.isEmpty)
        #expect(r.contentType == .none)
    }

    @Test func reportsTheConsumedLength() {
        let s = "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
        #expect(driveWhole(s) == [.request(Summary(request(s)!), consumed: s.utf8.count)])
    }

    @Test func keepsAnEmptyQuery() throws {
        let r = try #require(request("GET /x? HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(r.path == "/x")
        #expect(r.query == "")
    }

    @Test func keepsThePathRaw() throws {
        let r = try #require(request("GET /sessions/a%2Fb HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(r.path == "/sessions/a%2Fb")
        #expect(r.query == nil)
    }

    @Test(arguments: [
        ("GET", HTTPMethod.get), ("HEAD", .head), ("POST", .post), ("PUT", .put),
        ("DELETE", .delete), ("OPTIONS", .options), ("PATCH", .patch), ("BREW", .other), ("get", .other),
    ])
    func recognisesMethods(token: String, method: HTTPMethod) throws {
        let r = try #require(request("\(token) /x HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(r.method == method)
        #expect(r.methodName == token)
    }

    @Test func acceptsAbsoluteFormTargets() throws {
        let r = try #require(request("GET http://localhost:7070/livez?x=1 HTTP/1.1\r\nHost: localhost:7070\r\n\r\n"))
        #expect(r.path == "/livez")
        #expect(r.query == "x=1")
        let root = try #require(request("GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(root.path == "/")
    }

    @Test func acceptsTheAsteriskOnlyForOptions() {
        #expect(request("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")?.path == "*")
        #expect(failure("GET * HTTP/1.1\r\nHost: h\r\n\r\n")?.kind == .malformedRequest)
    }

    @Test(arguments: [
        "GET HTTP/1.1\r\nHost: h\r\n\r\n",  // no target
        "GET  /x HTTP/1.1\r\nHost: h\r\n\r\n",  // two spaces
        "GET /x  HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /x HTTP/1.1 \r\nHost: h\r\n\r\n",  // trailing space
        "GET /x\r\nHost: h\r\n\r\n",  // HTTP/0.9 style
        "GET /x http/1.1\r\nHost: h\r\n\r\n",  // version is case-sensitive
        "GET /x HTTP/1.1x\r\nHost: h\r\n\r\n",
        " GET /x HTTP/1.1\r\nHost: h\r\n\r\n",
        "G(T /x HTTP/1.1\r\nHost: h\r\n\r\n",  // not a token
        "GET x HTTP/1.1\r\nHost: h\r\n\r\n",  // not origin-form
        "GET /a\u{7F}b HTTP/1.1\r\nHost: h\r\n\r\n",  // DEL in the target
        "GET /a\u{1}b HTTP/1.1\r\nHost: h\r\n\r\n",  // control byte
        "GET /é HTTP/1.1\r\nHost: h\r\n\r\n",  // non-ASCII must be percent-encoded
        "GET http:// HTTP/1.1\r\nHost: h\r\n\r\n",  // absolute-form without authority
    ])
    func rejectsMalformedRequestLines(_ s: String) {
        #expect(failure(s)?.kind == .malformedRequest)
    }

    @Test(arguments: ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3", "HTTP/11.1"])
    func rejectsOtherVersionsWith505(_ version: String) throws {
        let e = try #require(failure("GET / \(version)\r\nHost: h\r\n\r\n"))
        #expect(e.kind == .unsupportedVersion)
        #expect(e.detail.contains("HTTP/1.1"))
    }

    @Test func ignoresEmptyLinesBeforeTheRequestLine() throws {
        let r = try #require(request("\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(r.path == "/x")
        #expect(r.methodName == "GET")
    }

    @Test func requiresHostInHTTP11() throws {
        let e = try #require(failure("GET / HTTP/1.1\r\n\r\n"))
        #expect(e.kind == .malformedRequest)
        #expect(e.detail.contains("Host"))
        #expect(request("GET / HTTP/1.0\r\n\r\n") != nil)
    }

    @Test func rejectsTwoHostHeaders() {
        #expect(failure("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")?.kind == .malformedRequest)
    }

    // MARK: request line limit

    /// A request line of exactly `n` bytes (without CRLF).
    func line(_ n: Int) -> String {
        let fixed = "GET / HTTP/1.1".utf8.count
        return "GET /" + String(repeating: "a", count: n - fixed) + " HTTP/1.1"
    }

    @Test func acceptsARequestLineAtTheLimit() {
        let limits = HTTPLimits(maxRequestLineBytes: 64)
        #expect(line(64).utf8.count == 64)
        #expect(request(line(64) + "\r\nHost: h\r\n\r\n", limits: limits) != nil)
    }

    @Test func rejectsARequestLineOneOverTheLimitWith414() throws {
        let limits = HTTPLimits(maxRequestLineBytes: 64)
        let e = try #require(failure(line(65) + "\r\nHost: h\r\n\r\n", limits: limits))
        #expect(e.kind == .requestLineTooLong)
        #expect(e.detail.contains("64"))
    }

    @Test func rejectsALongRequestLineBeforeItEnds() {
        let limits = HTTPLimits(maxRequestLineBytes: 64)
        // 64 bytes without CRLF: could still be fine.
        #expect(Parsed(parseOne(String(repeating: "a", count: 64), limits: limits)) == .needMore)
        // The 65th byte that is not CR settles it.
        #expect(Parsed(parseOne(String(repeating: "a", count: 65), limits: limits)) == .failure(.requestLineTooLong))
    }

    @Test func enforcesTheDefaultRequestLineLimitOf8KiB() {
        #expect(HTTPLimits().maxRequestLineBytes == 8_192)
        #expect(request(line(8_192) + "\r\nHost: h\r\n\r\n") != nil)
        #expect(failure(line(8_193) + "\r\nHost: h\r\n\r\n")?.kind == .requestLineTooLong)
    }

    @Test func countsEmptyLinesBeforeTheRequestAgainstTheLimit() {
        let limits = HTTPLimits(maxRequestLineBytes: 64)
        let blanks = String(repeating: "\r\n", count: 40)
        #expect(failure(blanks, limits: limits)?.kind == .requestLineTooLong)
    }
}

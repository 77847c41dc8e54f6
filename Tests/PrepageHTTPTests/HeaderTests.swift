import Testing

@testable import PrepageHTTP

@Suite struct HeaderTests {
    @Test func looksUpHeadersCaseInsensitively() throws {
        let r = try #require(
            request("GET / HTTP/1.1\r\nHOST: h\r\nx-custom:  spaced value \t\r\nX-Custom: second\r\n\r\n"))
        #expect(r.header("x-custom") == "spaced value")
        #expect(r.header("X-CUSTOM") == "spaced value")
        #expect(r.headerValues("x-custom") == ["spaced value", "second"])
        #expect(r.header("missing") == nil)
        #expect(r.headers.map(\.name) == ["HOST", "x-custom", "X-Custom"])
    }

    @Test func extractsRequestIDAndAuthorization() throws {
        let r = try #require(
            request("GET / HTTP/1.1\r\nHost: h\r\nx-request-id: abc-123\r\nAUTHORIZATION: Bearer s3cret\r\n\r\n"))
        #expect(r.requestID == "abc-123")
        #expect(r.authorization == "Bearer s3cret")
        let none = try #require(request("GET / HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(none.requestID == nil)
        #expect(none.authorization == nil)
    }

    @Test(arguments: [
        ("application/json", ContentTypeKind.json),
        ("Application/JSON; charset=utf-8", .json),
        ("application/json ;charset=UTF-8", .json),
        ("application/x-www-form-urlencoded", .form),
        ("application/x-www-form-urlencoded; charset=utf-8", .form),
        ("text/plain", .other),
        ("application/jsonx", .other),
        ("", .other),
    ])
    func classifiesContentTypes(value: String, kind: ContentTypeKind) throws {
        let r = try #require(request("POST / HTTP/1.1\r\nHost: h\r\nContent-Type: \(value)\r\n\r\n"))
        #expect(r.contentType == kind)
    }

    @Test(arguments: [
        "GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n",  // space in the name
        "GET / HTTP/1.1\r\nHost: h\r\nBad(: x\r\n\r\n",  // separator in the name
        "GET / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n",  // empty name
        "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nNa\u{E9}me: x\r\n\r\n",  // non-ASCII name
    ])
    func rejectsInvalidHeaderNames(_ s: String) {
        #expect(failure(s)?.kind == .malformedRequest)
    }

    @Test func rejectsWhitespaceBeforeTheColon() throws {
        let e = try #require(failure("GET / HTTP/1.1\r\nHost : h\r\n\r\n"))
        #expect(e.kind == .malformedRequest)
        #expect(e.detail.contains("RFC 9112 §5.1"))
    }

    @Test func rejectsObsoleteLineFolding() throws {
        let e = try #require(failure("GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n"))
        #expect(e.kind == .malformedRequest)
        #expect(e.detail.contains("§5.2"))
        #expect(failure("GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n\ttwo\r\n\r\n")?.kind == .malformedRequest)
    }

    @Test(arguments: ["\u{0}", "\u{1}", "\u{7F}", "\u{1B}"])
    func rejectsControlBytesInValues(_ c: String) {
        #expect(failure("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\(c)b\r\n\r\n")?.kind == .malformedRequest)
    }

    @Test func acceptsObsTextAndTabsInValues() throws {
        let r = try #require(request("GET / HTTP/1.1\r\nHost: h\r\nX-A: caf\u{E9}\tbar\r\n\r\n"))
        #expect(r.header("x-a") == "caf\u{E9}\tbar")
    }

    @Test func rejectsBareLF() {
        #expect(failure("GET / HTTP/1.1\nHost: h\r\n\r\n")?.kind == .malformedRequest)
        #expect(failure("GET / HTTP/1.1\r\nHost: h\n\r\n")?.kind == .malformedRequest)
        #expect(failure("GET / HTTP/1.1\r\nHost: h\r\n\n")?.kind == .malformedRequest)
    }

    @Test func rejectsBareCR() {
        #expect(failure("GET / HTTP/1.1\rHost: h\r\n\r\n")?.kind == .malformedRequest)
        #expect(failure("GET / HTTP/1.1\r\nX: a\rb\r\nHost: h\r\n\r\n")?.kind == .malformedRequest)
    }

    @Test func waitsForTheLFAfterACR() {
        #expect(Parsed(parseOne("GET / HTTP/1.1\r\nHost: h\r\n\r")) == .needMore)
    }

    // MARK: header limits

    /// A head whose field lines total exactly `n` bytes (with their CRLFs).
    func head(fieldBytes n: Int) -> String {
        let host = "Host: h\r\n"
        let filler = n - host.utf8.count - "X: \r\n".utf8.count
        return "GET / HTTP/1.1\r\n" + host + "X: " + String(repeating: "v", count: filler) + "\r\n\r\n"
    }

    @Test func acceptsHeaderBytesAtTheLimit() {
        let limits = HTTPLimits(maxHeaderBytes: 256)
        #expect(request(head(fieldBytes: 256), limits: limits) != nil)
    }

    @Test func rejectsHeaderBytesOneOverTheLimitWith431() throws {
        let limits = HTTPLimits(maxHeaderBytes: 256)
        let e = try #require(failure(head(fieldBytes: 257), limits: limits))
        #expect(e.kind == .headersTooLarge)
    }

    @Test func rejectsAnEndlessHeaderBeforeItEnds() {
        let limits = HTTPLimits(maxHeaderBytes: 256)
        let s = "GET / HTTP/1.1\r\nX: " + String(repeating: "v", count: 300)
        #expect(Parsed(parseOne(s, limits: limits)) == .failure(.headersTooLarge))
    }

    @Test func enforcesTheDefaultHeaderByteLimitOf16KiB() {
        #expect(HTTPLimits().maxHeaderBytes == 16_384)
        #expect(request(head(fieldBytes: 16_384)) != nil)
        #expect(failure(head(fieldBytes: 16_385))?.kind == .headersTooLarge)
    }

    /// A head with exactly `n` field lines (Host included).
    func head(fields n: Int) -> String {
        "GET / HTTP/1.1\r\nHost: h\r\n" + (1..<n).map { "X-\($0): v\r\n" }.joined() + "\r\n"
    }

    @Test func acceptsHeaderCountAtTheLimit() {
        #expect(HTTPLimits().maxHeaderCount == 100)
        #expect(request(head(fields: 100)) != nil)
    }

    @Test func rejectsHeaderCountOneOverTheLimitWith431() throws {
        let e = try #require(failure(head(fields: 101)))
        #expect(e.kind == .headersTooLarge)
        #expect(e.detail.contains("100"))
    }

    // MARK: keep-alive

    @Test(arguments: [
        ("HTTP/1.1", "", true),
        ("HTTP/1.1", "Connection: close\r\n", false),
        ("HTTP/1.1", "Connection: CLOSE\r\n", false),
        ("HTTP/1.1", "Connection: keep-alive, close\r\n", false),
        ("HTTP/1.1", "Connection: keep-alive\r\n", true),
        ("HTTP/1.1", "Connection: upgrade\r\n", true),
        ("HTTP/1.0", "", false),
        ("HTTP/1.0", "Connection: keep-alive\r\n", true),
        ("HTTP/1.0", "Connection: Keep-Alive\r\n", true),
        ("HTTP/1.0", "Connection: te, keep-alive\r\n", true),
        ("HTTP/1.0", "Connection: keep-alive\r\nConnection: close\r\n", false),
    ])
    func decidesKeepAlive(version: String, connection: String, keepAlive: Bool) throws {
        let r = try #require(request("GET / \(version)\r\nHost: h\r\n\(connection)\r\n"))
        #expect(r.keepAlive == keepAlive)
        #expect(r.isHTTP10 == (version == "HTTP/1.0"))
    }

    // MARK: building requests for tests of the layers above

    @Test func buildsRequestsWithoutParsing() {
        let r = HTTPRequest(
            method: .post, target: "/sessions/a/fault?page=1",
            headers: [("Content-Type", "application/json"), ("X-Request-ID", "r1"), ("Connection", "close")],
            body: bytes("{}"))
        #expect(r.path == "/sessions/a/fault")
        #expect(r.query == "page=1")
        #expect(r.contentType == .json)
        #expect(r.requestID == "r1")
        #expect(!r.keepAlive)
        #expect(r.header("connection") == "close")
        #expect(HTTPRequest(method: .get, target: "/", isHTTP10: true).keepAlive == false)
    }
}

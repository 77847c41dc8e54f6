import Testing

@testable import PrepageHTTP

@Suite struct LimitsTests {
    @Test func documentsEveryDefault() {
        let d = HTTPLimits()
        #expect(d.maxRequestLineBytes == 8_192)
        #expect(d.maxHeaderBytes == 16_384)
        #expect(d.maxHeaderCount == 100)
        #expect(d.maxBodyBytes == 4_194_304)
        #expect(d.maxChunkLineBytes == 1_024)
        #expect(d.keepAliveIdleTimeout == .seconds(60))
        #expect(d.requestDeadline == .seconds(10))
        #expect(d.maxConnections == 10_000)
        #expect(d == HTTPLimits.default)
        #expect(HTTPParser().limits == d)
    }

    @Test func answersEachLimitWithItsOwnStatus() {
        let small = HTTPLimits(maxRequestLineBytes: 32, maxHeaderBytes: 64, maxHeaderCount: 2, maxBodyBytes: 8)
        #expect(
            failure("GET /" + String(repeating: "a", count: 40) + " HTTP/1.1\r\n\r\n", limits: small)?.kind
                == .requestLineTooLong)
        #expect(failure("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", limits: small)?.kind == .headersTooLarge)
        #expect(
            failure("GET / HTTP/1.1\r\nHost: h\r\nA: " + String(repeating: "v", count: 64) + "\r\n\r\n", limits: small)?
                .kind == .headersTooLarge)
        #expect(
            failure("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n", limits: small)?.kind == .bodyTooLarge)
    }
}

@Suite struct ParserStateTests {
    @Test func resetForgetsAPartialRequest() {
        var parser = HTTPParser()
        #expect(Parsed(parser.parse(bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab"))) == .needMore)
        parser.reset()
        guard case .request(let r, let consumed) = parser.parse(bytes("GET /x HTTP/1.1\r\nHost: h\r\n\r\n")) else {
            Issue.record("expected a fresh request after reset")
            return
        }
        #expect(r.path == "/x")
        #expect(consumed == "GET /x HTTP/1.1\r\nHost: h\r\n\r\n".utf8.count)
    }

    @Test func answersAnExpectRequestWhoseBodyIsHereWithoutContinue() {
        let first = "PUT /sessions/a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}"
        let results = driveWhole(first + "GET /livez HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(results.count == 2)
        #expect(!results.contains(.sendContinue))
    }

    @Test func asksForContinueAgainForTheNextRequest() {
        let one = "PUT /sessions/a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
        var parser = HTTPParser()
        var buffer = bytes(one)
        #expect(Parsed(parser.parse(buffer)) == .sendContinue)
        buffer += bytes("{}")
        guard case .request(_, let consumed) = parser.parse(buffer) else {
            Issue.record("expected the first request")
            return
        }
        buffer.removeFirst(consumed)
        #expect(buffer.isEmpty)
        #expect(Parsed(parser.parse(bytes(one))) == .sendContinue)
    }

    @Test func keepsColonsAndInnerSpacesOfValues() throws {
        let r = try #require(request("GET / HTTP/1.1\r\nHost: 127.0.0.1:7070\r\nX-A:no-space\r\nX-B: a  b\r\n\r\n"))
        #expect(r.header("host") == "127.0.0.1:7070")
        #expect(r.header("x-a") == "no-space")
        #expect(r.header("x-b") == "a  b")
    }

    @Test func acceptsAnEmptyHeaderValue() throws {
        let r = try #require(request("GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Spaces:   \r\n\r\n"))
        #expect(r.header("x-empty") == "")
        #expect(r.header("x-spaces") == "")
    }

    @Test func readsAnHTTP10BodyByContentLength() throws {
        let r = try #require(
            request(
                "POST /sessions/a/fault HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 8\r\n\r\npage=123"
            ))
        #expect(r.isHTTP10 && !r.keepAlive)
        #expect(r.contentType == .form)
        #expect(try FormFields(parsing: r.body).value("page") == "123")
    }

    @Test func treatsARequestWithoutLengthAsBodiless() {
        // RFC 9112 §6.3: neither Content-Length nor Transfer-Encoding: no body; the rest is the next request.
        let results = driveWhole("POST /x HTTP/1.1\r\nHost: h\r\n\r\nGET /y HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(results.count == 2)
    }
}

import Testing

@testable import PrepageHTTP

/// A whole response as the server writes one: the head from
/// ``HTTPResponseWriter/appendHead(status:contentType:contentLength:extraHeaders:keepAlive:isHTTP10:date:into:)``
/// for a body of `body.count` bytes, then the body, unless answering HEAD or the status has none.
private func appendResponse(
    status: Int, contentType: String?, extraHeaders: [(String, String)] = [], body: [UInt8], headOnly: Bool = false,
    keepAlive: Bool, isHTTP10: Bool = false, date: [UInt8], into out: inout [UInt8]
) {
    HTTPResponseWriter.appendHead(
        status: status, contentType: contentType, contentLength: body.count, extraHeaders: extraHeaders,
        keepAlive: keepAlive, isHTTP10: isHTTP10, date: date, into: &out)
    if !headOnly && HTTPResponseWriter.hasBody(status) { out.append(contentsOf: body) }
}

@Suite struct ResponseWriterTests {
    let date = HTTPDate.imfFixdate(epochSeconds: 784_111_777)

    func text(_ out: [UInt8]) -> String { String(decoding: out, as: UTF8.self) }

    @Test func writesAWholeResponseInOneBuffer() {
        var out: [UInt8] = []
        appendResponse(
            status: 200, contentType: "application/json", extraHeaders: [("X-Request-ID", "r1")],
            body: bytes("{\"ok\":true}"), keepAlive: true, date: date, into: &out)
        #expect(
            text(out) == """
                HTTP/1.1 200 OK\r
                Date: Sun, 06 Nov 1994 08:49:37 GMT\r
                Content-Type: application/json\r
                Content-Length: 11\r
                X-Request-ID: r1\r
                \r
                {"ok":true}
                """)
    }

    @Test func appendsToWhatIsAlreadyThere() {
        var out = bytes("previous")
        appendResponse(status: 404, contentType: nil, body: [], keepAlive: true, date: [], into: &out)
        #expect(text(out) == "previousHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    }

    @Test func keepsContentLengthAndOmitsTheBodyForHead() {
        var out: [UInt8] = []
        appendResponse(
            status: 200, contentType: "text/plain", body: bytes("hello"), headOnly: true,
            keepAlive: true, date: [], into: &out)
        #expect(text(out) == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n")
    }

    @Test func saysCloseWhenNotKeepingAlive() {
        var out: [UInt8] = []
        appendResponse(status: 400, contentType: nil, body: [], keepAlive: false, date: [], into: &out)
        #expect(text(out).contains("\r\nConnection: close\r\n"))
    }

    @Test func confirmsKeepAliveToHTTP10Only() {
        var ten: [UInt8] = []
        appendResponse(status: 200, contentType: nil, body: [], keepAlive: true, isHTTP10: true, date: [], into: &ten)
        #expect(text(ten).contains("\r\nConnection: keep-alive\r\n"))
        var eleven: [UInt8] = []
        appendResponse(status: 200, contentType: nil, body: [], keepAlive: true, date: [], into: &eleven)
        #expect(!text(eleven).contains("Connection"))
        #expect(text(ten).hasPrefix("HTTP/1.1 200 OK\r\n"))
    }

    @Test func dropsLineBreaksFromHeaderValues() {
        var out: [UInt8] = []
        appendResponse(
            status: 200, contentType: nil, extraHeaders: [("X-Request-ID", "a\r\nSet-Cookie: x=1")],
            body: [], keepAlive: true, date: [], into: &out)
        #expect(text(out).contains("X-Request-ID: aSet-Cookie: x=1\r\n"))
        #expect(!text(out).contains("\r\nSet-Cookie"))
    }

    @Test func writesNoLengthOrBodyFor204() {
        var out: [UInt8] = []
        appendResponse(status: 204, contentType: nil, body: bytes("x"), keepAlive: true, date: [], into: &out)
        #expect(text(out) == "HTTP/1.1 204 No Content\r\n\r\n")
    }

    @Test func writesTheHeadAloneForCallersThatAppendTheBody() {
        var out: [UInt8] = []
        HTTPResponseWriter.appendHead(
            status: 201, contentType: "application/json", contentLength: 123_456, keepAlive: true, date: [], into: &out)
        #expect(text(out) == "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 123456\r\n\r\n")
    }

    @Test func hasTheContinueResponse() {
        #expect(text(HTTPResponseWriter.continueResponse) == "HTTP/1.1 100 Continue\r\n\r\n")
    }

    @Test(arguments: [
        (100, "Continue"), (200, "OK"), (201, "Created"), (400, "Bad Request"), (401, "Unauthorized"),
        (404, "Not Found"), (405, "Method Not Allowed"), (409, "Conflict"), (413, "Content Too Large"),
        (415, "Unsupported Media Type"), (422, "Unprocessable Content"), (429, "Too Many Requests"),
        (431, "Request Header Fields Too Large"), (500, "Internal Server Error"), (501, "Not Implemented"),
        (503, "Service Unavailable"), (505, "HTTP Version Not Supported"), (507, "Insufficient Storage"),
    ])
    func namesEveryStatusOfTheAPI(status: Int, phrase: String) {
        #expect(HTTPStatus.reasonPhrase(status) == phrase)
        var out: [UInt8] = []
        appendResponse(status: status, contentType: nil, body: [], keepAlive: true, date: [], into: &out)
        #expect(text(out).hasPrefix("HTTP/1.1 \(status) \(phrase)\r\n"))
    }
}

@Suite struct HTTPDateTests {
    @Test(arguments: [
        (Int64(0), "Thu, 01 Jan 1970 00:00:00 GMT"),
        (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),  // the example of RFC 9110 §5.6.7
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),  // leap day of a 400-year leap year
        (4_107_542_399, "Sun, 28 Feb 2100 23:59:59 GMT"),  // 2100 is not a leap year
        (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
        (1_795_909_754, "Sat, 28 Nov 2026 23:49:14 GMT"),
        (-1, "Wed, 31 Dec 1969 23:59:59 GMT"),
    ])
    func formatsIMFFixdate(seconds: Int64, expected: String) {
        #expect(HTTPDate.imfFixdateString(epochSeconds: seconds) == expected)
        #expect(HTTPDate.imfFixdate(epochSeconds: seconds).count == 29)
    }

    @Test func formatsRFC3339() {
        #expect(HTTPDate.rfc3339(epochSeconds: 0) == "1970-01-01T00:00:00Z")
        #expect(HTTPDate.rfc3339(epochSeconds: 1_795_909_754) == "2026-11-28T23:49:14Z")
    }
}

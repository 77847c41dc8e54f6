import Testing

@testable import PrepageHTTP

@Suite struct BodyTests {
    let post = "POST /sessions/a/fault HTTP/1.1\r\nHost: h\r\n"

    // MARK: Content-Length

    @Test func readsAContentLengthBody() throws {
        let r = try #require(
            request(post + "Content-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"page\": 1}"))
        #expect(r.body == bytes("{\"page\": 1}"))
        #expect(r.contentType == .json)
    }

    @Test func waitsForTheWholeBody() {
        #expect(Parsed(parseOne(post + "Content-Length: 11\r\n\r\n{\"page\"")) == .needMore)
    }

    @Test func leavesBytesAfterTheBodyForTheNextRequest() {
        let first = post + "Content-Length: 2\r\n\r\n{}"
        guard case .request(_, let consumed) = parseOne(first + "GET / HTTP/1.1\r\n") else {
            Issue.record("expected a request")
            return
        }
        #expect(consumed == first.utf8.count)
    }

    @Test(arguments: [
        "Content-Length: 2\r\nContent-Length: 2\r\n",  // duplicate, even if equal
        "Content-Length: 2\r\nContent-Length: 3\r\n",  // conflicting
        "Content-Length: 2, 2\r\n",  // a list
        "Content-Length: -1\r\n",
        "Content-Length: +2\r\n",
        "Content-Length: 0x2\r\n",
        "Content-Length: 2 2\r\n",
        "Content-Length: \r\n",
    ])
    func rejectsBadContentLength(_ field: String) {
        #expect(failure(post + field + "\r\n{}")?.kind == .malformedRequest)
    }

    @Test func rejectsContentLengthWithTransferEncodingCitingRFC9112() throws {
        let e = try #require(failure(post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
        #expect(e.kind == .malformedRequest)
        #expect(e.detail.contains("RFC 9112 §6.1"))
        // The order does not matter.
        #expect(
            failure(post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n")?.kind
                == .malformedRequest)
    }

    @Test func acceptsABodyAtTheLimit() throws {
        let limits = HTTPLimits(maxBodyBytes: 16)
        let r = try #require(
            request(post + "Content-Length: 16\r\n\r\n" + String(repeating: "x", count: 16), limits: limits))
        #expect(r.body.count == 16)
    }

    @Test func rejectsContentLengthOverTheLimitBeforeTheBody() throws {
        let limits = HTTPLimits(maxBodyBytes: 16)
        // Only the head has arrived: the answer does not wait for the body.
        let e = try #require(failure(post + "Content-Length: 17\r\n\r\n", limits: limits))
        #expect(e.kind == .bodyTooLarge)
        #expect(e.detail.contains("16"))
    }

    @Test func rejectsAHugeContentLengthWithoutOverflow() {
        #expect(failure(post + "Content-Length: 99999999999999999999999999999\r\n\r\n")?.kind == .bodyTooLarge)
    }

    @Test func enforcesTheDefaultBodyLimitOf4MiB() {
        #expect(HTTPLimits().maxBodyBytes == 4_194_304)
        #expect(Parsed(parseOne(post + "Content-Length: 4194304\r\n\r\n")) == .needMore)
        #expect(failure(post + "Content-Length: 4194305\r\n\r\n")?.kind == .bodyTooLarge)
    }

    // MARK: chunked

    func chunked(_ chunks: String) -> String {
        post + "Transfer-Encoding: chunked\r\n\r\n" + chunks
    }

    @Test func decodesChunks() throws {
        let r = try #require(request(chunked("5\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\n\r\n")))
        #expect(r.body == bytes("hello 0123456789"))
    }

    @Test func decodesUpperAndLowerHexAndLeadingZeros() throws {
        let r = try #require(request(chunked("00a\r\n0123456789\r\n0B\r\nabcdefghijk\r\n000\r\n\r\n")))
        #expect(r.body.count == 21)
    }

    @Test func acceptsAnEmptyChunkedBody() throws {
        let r = try #require(request(chunked("0\r\n\r\n")))
        #expect(r.body.isEmpty)
    }

    @Test func acceptsChunkExtensions() throws {
        let r = try #require(
            request(chunked("3;name=value\r\nabc\r\n2 ; flag ;q=\"a \\\"b\\\"\"\r\nde\r\n0;last\r\n\r\n")))
        #expect(r.body == bytes("abcde"))
    }

    @Test(arguments: [
        "3;\r\nabc\r\n0\r\n\r\n",  // no name
        "3;a=\r\nabc\r\n0\r\n\r\n",  // no value
        "3;a=\"open\r\nabc\r\n0\r\n\r\n",  // unterminated quote
        "3 \r\nabc\r\n0\r\n\r\n",  // whitespace without extension
        "3x\r\nabc\r\n0\r\n\r\n",
        "3;a b\r\nabc\r\n0\r\n\r\n",
    ])
    func rejectsMalformedChunkExtensions(_ chunks: String) {
        #expect(failure(chunked(chunks))?.kind == .malformedRequest)
    }

    @Test func acceptsAndDropsTrailers() throws {
        let r = try #require(request(chunked("2\r\nhi\r\n0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n")))
        #expect(r.body == bytes("hi"))
        #expect(r.header("x-checksum") == nil)
    }

    @Test(arguments: [
        "2\r\nhi\r\n0\r\nBad Trailer: 1\r\n\r\n",
        "2\r\nhi\r\n0\r\nX: 1\r\n folded\r\n\r\n",
        "2\r\nhi\r\n0\r\nX: \u{1}\r\n\r\n",
    ])
    func rejectsMalformedTrailers(_ chunks: String) {
        #expect(failure(chunked(chunks))?.kind == .malformedRequest)
    }

    @Test(arguments: [
        "\r\nhi\r\n0\r\n\r\n",  // empty size
        "g\r\nhi\r\n0\r\n\r\n",  // not hex
        "-2\r\nhi\r\n0\r\n\r\n",
        "2\r\nhiX\r\n0\r\n\r\n",  // data longer than its size
        "3\r\nhi\r\n0\r\n\r\n",  // data shorter than its size
        "2\nhi\r\n0\r\n\r\n",  // bare LF after the size
        "2\r\nhi\n0\r\n\r\n",  // bare LF after the data
        "2\r\nhi\r\n0\r\n\n",  // bare LF at the end
        "2\rhi\r\n0\r\n\r\n",  // bare CR
    ])
    func rejectsMalformedChunks(_ chunks: String) {
        #expect(failure(chunked(chunks))?.kind == .malformedRequest)
    }

    @Test func waitsForTheLastChunkAndTheTrailerSection() {
        #expect(Parsed(parseOne(chunked("2\r\nhi\r\n"))) == .needMore)
        #expect(Parsed(parseOne(chunked("2\r\nhi\r\n0\r\n"))) == .needMore)
        #expect(Parsed(parseOne(chunked("2\r\nhi\r\n0\r\nX: 1\r\n"))) == .needMore)
        #expect(Parsed(parseOne(chunked("2\r\nh"))) == .needMore)
        #expect(Parsed(parseOne(chunked("2\r\nhi\r"))) == .needMore)
    }

    @Test func acceptsAChunkedBodyAtTheLimit() throws {
        let limits = HTTPLimits(maxBodyBytes: 16)
        let r = try #require(request(chunked("8\r\n01234567\r\n8\r\n89abcdef\r\n0\r\n\r\n"), limits: limits))
        #expect(r.body.count == 16)
    }

    @Test func rejectsAChunkedBodyOverTheLimitAtTheSizeLine() {
        let limits = HTTPLimits(maxBodyBytes: 16)
        // The second size line alone settles it: no need to wait for its data.
        #expect(failure(chunked("8\r\n01234567\r\n9\r\n"), limits: limits)?.kind == .bodyTooLarge)
        #expect(failure(chunked("11\r\n"), limits: limits)?.kind == .bodyTooLarge)
    }

    @Test func rejectsAHugeChunkSizeWithoutOverflow() {
        #expect(failure(chunked("FFFFFFFFFFFFFFFFFFFFFFFF\r\n"))?.kind == .bodyTooLarge)
    }

    @Test func limitsTheChunkSizeLine() {
        let limits = HTTPLimits(maxChunkLineBytes: 16)
        let atLimit = "1;" + String(repeating: "e", count: 14)  // 16 bytes
        #expect(request(chunked(atLimit + "\r\nx\r\n0\r\n\r\n"), limits: limits)?.body == [0x78])
        let over = "1;" + String(repeating: "e", count: 15)  // 17 bytes
        #expect(failure(chunked(over + "\r\nx\r\n0\r\n\r\n"), limits: limits)?.kind == .malformedRequest)
        // Detected before the line ends.
        #expect(failure(chunked(over), limits: limits)?.kind == .malformedRequest)
    }

    @Test func limitsTrailerCount() {
        let limits = HTTPLimits(maxHeaderCount: 3)
        let three = (1...3).map { "T\($0): v\r\n" }.joined()
        #expect(request(chunked("0\r\n" + three + "\r\n"), limits: limits) != nil)
        let four = (1...4).map { "T\($0): v\r\n" }.joined()
        #expect(failure(chunked("0\r\n" + four + "\r\n"), limits: limits)?.kind == .headersTooLarge)
    }

    @Test func limitsTrailerBytes() {
        let limits = HTTPLimits(maxHeaderBytes: 64)
        let host = "Host: h\r\n".utf8.count + "Transfer-Encoding: chunked\r\n".utf8.count
        _ = host
        let at = "T: " + String(repeating: "v", count: 64 - 5) + "\r\n"  // 64 bytes
        let big = HTTPLimits(maxHeaderBytes: 64)
        #expect(at.utf8.count == 64)
        // The head itself must fit too: use a small head.
        let head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        #expect(request(head + "0\r\n" + at + "\r\n", limits: big) != nil)
        let over = "T: " + String(repeating: "v", count: 64 - 4) + "\r\n"  // 65 bytes
        #expect(failure(head + "0\r\n" + over + "\r\n", limits: limits)?.kind == .headersTooLarge)
        #expect(
            failure(head + "0\r\nT: " + String(repeating: "v", count: 100), limits: limits)?.kind
                == .headersTooLarge)
    }

    // MARK: Transfer-Encoding

    @Test func acceptsChunkedInAnyCase() {
        #expect(request(post + "Transfer-Encoding: Chunked\r\n\r\n0\r\n\r\n") != nil)
    }

    @Test func rejectsOtherCodingsBeforeChunkedWith501() throws {
        let e = try #require(failure(post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"))
        #expect(e.kind == .unsupportedTransferCoding)
        #expect(
            failure(post + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")?.kind
                == .unsupportedTransferCoding)
    }

    @Test func rejectsCodingsNotEndingInChunkedWith400() {
        #expect(failure(post + "Transfer-Encoding: gzip\r\n\r\n")?.kind == .malformedRequest)
        #expect(failure(post + "Transfer-Encoding: chunked, gzip\r\n\r\n")?.kind == .malformedRequest)
        #expect(failure(post + "Transfer-Encoding: chunked, chunked\r\n\r\n")?.kind == .malformedRequest)
    }

    @Test func rejectsTransferEncodingInHTTP10() {
        #expect(failure("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")?.kind == .malformedRequest)
    }

    // MARK: Expect: 100-continue

    @Test func asksForTheBodyOnceWithExpectContinue() {
        var parser = HTTPParser()
        var buffer = bytes(post + "Expect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        #expect(Parsed(parser.parse(buffer)) == .sendContinue)
        #expect(Parsed(parser.parse(buffer)) == .needMore)  // reported once
        buffer += bytes("{")
        #expect(Parsed(parser.parse(buffer)) == .needMore)
        buffer += bytes("}")
        guard case .request(let r, let consumed) = parser.parse(buffer) else {
            Issue.record("expected the request")
            return
        }
        #expect(r.body == bytes("{}"))
        #expect(consumed == buffer.count)
    }

    @Test func asksForAChunkedBody() {
        var parser = HTTPParser()
        let head = bytes(post + "expect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(Parsed(parser.parse(head)) == .sendContinue)
        #expect(request(String(decoding: head, as: UTF8.self) + "0\r\n\r\n")?.body == [])
    }

    @Test func doesNotAskWhenTheBodyIsAlreadyHere() {
        #expect(request(post + "Expect: 100-continue\r\nContent-Length: 2\r\n\r\n{}")?.body == bytes("{}"))
        #expect(request(post + "Expect: 100-continue\r\n\r\n") != nil)  // no body at all
    }

    @Test func ignoresExpectContinueInHTTP10() {
        let s = "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
        #expect(Parsed(parseOne(s)) == .needMore)
    }

    @Test func refusesAnOversizedBodyInsteadOfAskingForIt() {
        let limits = HTTPLimits(maxBodyBytes: 16)
        #expect(
            failure(post + "Expect: 100-continue\r\nContent-Length: 17\r\n\r\n", limits: limits)?.kind
                == .bodyTooLarge)
    }
}

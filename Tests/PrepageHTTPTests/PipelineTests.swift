import Testing

@testable import PrepageHTTP

@Suite struct PipelineTests {
    static let get = "GET /livez HTTP/1.1\r\nHost: h\r\n\r\n"
    static let post =
        "POST /sessions/a/fault HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"page\": 7}"
    static let chunked =
        "POST /sessions/a/faults HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\n{\"pa\r\n8\r\nges\": []\r\n1\r\n}\r\n0\r\nT: 1\r\n\r\n"
    static let head10 = "HEAD /version HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    static let close = "DELETE /sessions/a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    static let continued = "PUT /sessions/b HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}"

    @Test func parsesPipelinedRequestsOneAtATimeInOrder() {
        let all = Self.get + Self.post + Self.chunked + Self.head10 + Self.close
        let results = driveWhole(all)
        #expect(results.count == 5)
        let paths: [String] = results.compactMap {
            if case .request(let s, _) = $0 { return s.path }
            return nil
        }
        #expect(paths == ["/livez", "/sessions/a/fault", "/sessions/a/faults", "/version", "/sessions/a"])
        let consumed: [Int] = results.compactMap {
            if case .request(_, let c) = $0 { return c }
            return nil
        }
        #expect(consumed == [Self.get, Self.post, Self.chunked, Self.head10, Self.close].map { $0.utf8.count })
        if case .request(let s, _) = results[2] {
            #expect(s.body == bytes("{\"pages\": []}"))
        }
        if case .request(let s, _) = results[3] {
            #expect(s.method == .head && s.isHTTP10 && s.keepAlive)
        }
        if case .request(let s, _) = results[4] {
            #expect(!s.keepAlive)
        }
    }

    @Test(arguments: [get, post, chunked, head10, close, get + post + chunked + head10 + close])
    func givesTheSameResultsWhenBytesArriveOneByOne(_ input: String) {
        let whole = driveWhole(input)
        let byByte = drive(bytes(input), pieces: [1])
        #expect(byByte == whole)
        #expect(!whole.isEmpty && !whole.contains(.needMore))
    }

    @Test func givesTheSameResultsForAnySplit() {
        let input = bytes(Self.get + Self.post + Self.chunked + Self.head10 + Self.get)
        let whole = drive(input, pieces: [Int.max])
        for size in 2...17 {
            #expect(drive(input, pieces: [size]) == whole, "pieces of \(size)")
        }
        #expect(drive(input, pieces: [3, 1, 7, 2, 30, 1]) == whole)
    }

    @Test func reportsContinueOnceWhenSplitAfterTheHead() {
        let input = bytes(Self.continued)
        let headLength = Self.continued.utf8.count - 2
        let results = drive(input, pieces: [headLength, 1, 1])
        #expect(results.count == 2)
        #expect(results.first == .sendContinue)
        if case .request(let s, _) = results.last {
            #expect(s.body == bytes("{}"))
        } else {
            Issue.record("expected the request after continue")
        }
    }

    @Test func stopsAtTheFirstBadRequestInAPipeline() {
        let results = driveWhole(Self.get + "BAD\r\n\r\n" + Self.get)
        #expect(results.count == 2)
        #expect(results.last == .failure(.malformedRequest))
    }

    @Test func startsAfreshAfterAFailure() {
        var parser = HTTPParser()
        #expect(Parsed(parser.parse(bytes("GET / HTTP/9.9\r\n\r\n"))) == .failure(.unsupportedVersion))
        guard case .request = parser.parse(bytes(Self.get)) else {
            Issue.record("the parser must reset after a failure")
            return
        }
    }
}

@Suite struct LargeBodyTests {
    /// A body of `n` bytes in chunks of varying size, deterministic content.
    static func chunkedBody(_ n: Int) -> (wire: String, body: [UInt8]) {
        var body: [UInt8] = []
        var wire = ""
        var size = 1
        while body.count < n {
            let take = min(size, n - body.count)
            let piece = (0..<take).map { UInt8(0x61 + (body.count + $0) % 26) }
            wire += String(take, radix: 16) + "\r\n" + String(decoding: piece, as: UTF8.self) + "\r\n"
            body += piece
            size = size * 3 % 1_021 + 1
        }
        return (wire + "0\r\n\r\n", body)
    }

    @Test func decodesALargeChunkedBodyArrivingInSmallPieces() {
        let (wire, body) = Self.chunkedBody(200_000)
        let input = bytes("POST /sessions/a/faults HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + wire)
        let results = drive(input, pieces: [7, 13, 1, 4_096])
        #expect(results.count == 1)
        if case .request(let s, let consumed)? = results.first {
            #expect(s.body == body)
            #expect(consumed == input.count)
        } else {
            Issue.record("expected one request, got \(results)")
        }
    }

    @Test func readsAFullBatchBodyAtTheDefaultLimit() {
        let body = [UInt8](repeating: 0x20, count: 4_194_304)
        let head = bytes("POST /sessions/a/faults HTTP/1.1\r\nHost: h\r\nContent-Length: 4194304\r\n\r\n")
        let results = drive(head + body, pieces: [65_536])
        if case .request(let s, _)? = results.first {
            #expect(s.body.count == 4_194_304)
        } else {
            Issue.record("expected the request")
        }
    }
}

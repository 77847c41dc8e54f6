import PrepageTestSupport
import Testing

@testable import PrepageHTTP

/// The parser against hostile input (issue 12): what a connection holds stays
/// bounded whatever the framing, the admission check runs before the body, and
/// no number a client or a configuration gives makes the arithmetic overflow.
@Suite struct HostileParserTests {
    /// Feeds `input` in pieces of `piece` bytes as the server does (dropping what
    /// the parser no longer needs) and returns the results and the most bytes held.
    static func feed(_ input: [UInt8], piece: Int, limits: HTTPLimits) -> (results: [Parsed], held: Int) {
        var parser = HTTPParser(limits: limits)
        var buffer: [UInt8] = []
        var results: [Parsed] = []
        var held = 0
        var sent = 0
        outer: while sent < input.count {
            let n = min(piece, input.count - sent)
            buffer += input[sent..<(sent + n)]
            sent += n
            held = max(held, buffer.count)
            while true {
                let r = parser.parse(buffer)
                switch r {
                case .needMore, .sendContinue:
                    buffer.removeFirst(parser.discardConsumed())
                    continue outer
                case .request(_, let consumed):
                    results.append(Parsed(r))
                    buffer.removeFirst(consumed)
                case .failure:
                    results.append(Parsed(r))
                    break outer
                }
            }
        }
        return (results, held)
    }

    static let head = "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    static let ext = ";" + String(repeating: "e", count: 500) + "=" + String(repeating: "v", count: 500)

    /// 4,000 one-byte chunks under 1 KiB extensions (4 MB on the wire): the raw bytes are
    /// dropped as decoded; what is held stays within a chunk line and one read.
    @Test func chunkFramingIsNotKept() {
        var limits = HTTPLimits()
        limits.maxChunkOverheadBytes = 1 << 40  // the raw-byte bound alone
        let body = String(repeating: "1\(Self.ext)\r\na\r\n", count: 4_000)
        let input = Array((Self.head + body + "0\r\n\r\n").utf8)
        let (results, held) = Self.feed(input, piece: 65_536, limits: limits)
        guard case .request(let summary, _)? = results.first else {
            Issue.record("no request: \(results)")
            return
        }
        #expect(summary.body == Array(repeating: UInt8(ascii: "a"), count: 4_000))
        #expect(held <= 65_536 + limits.maxChunkLineBytes + 2, "held \(held) bytes of a 4 MB chunked body")
    }

    /// A Content-Length body is copied out as it arrives: a connection holds the body once.
    @Test func lengthBodyIsNotKeptTwice() {
        let n = 1 << 20
        let input =
            Array("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: \(n)\r\n\r\n".utf8) + Array(repeating: 0x61, count: n)
        let (results, held) = Self.feed(input, piece: 16_384, limits: .default)
        guard case .request(let summary, let consumed)? = results.first else {
            Issue.record("no request")
            return
        }
        #expect(summary.body.count == n)
        #expect(consumed <= 16_384)
        #expect(held <= 16_384 + 64)
    }

    /// Framing past ``HTTPLimits/maxChunkOverheadBytes`` is a 413, however small the data.
    @Test func chunkFramingPastItsLimitIs413() {
        let body = String(repeating: "1\(Self.ext)\r\na\r\n", count: 300)  // ~300 KB of framing
        let results = driveWhole(Self.head + body + "0\r\n\r\n")
        #expect(results == [.failure(.bodyTooLarge)])
        // Within the limit, the same shape is accepted.
        let fine = String(repeating: "1\(Self.ext)\r\na\r\n", count: 200)
        guard case .request(let s, _)? = driveWhole(Self.head + fine + "0\r\n\r\n").first else {
            Issue.record("200 chunks refused")
            return
        }
        #expect(s.body.count == 200)
    }

    // MARK: Admission

    static let refuseAll: @Sendable (HTTPRequest) -> Bool = { _ in false }

    @Test func refusedHeadIsReportedBeforeItsBodyAndWithoutContinue() {
        var parser = HTTPParser(admit: Self.refuseAll)
        let head = "PUT /s HTTP/1.1\r\nHost: h\r\nContent-Length: 4194304\r\nExpect: 100-continue\r\n\r\n"
        guard case .request(let r, let consumed) = parser.parse(bytes(head + "abc")) else {
            Issue.record("not reported at the head")
            return
        }
        #expect(!r.admitted)
        #expect(r.body.isEmpty)
        #expect(!r.keepAlive)  // the body is not all here: the connection closes
        #expect(consumed == head.utf8.count + 3)
    }

    @Test func refusedRequestWithItsWholeBodyKeepsTheConnection() {
        var parser = HTTPParser(admit: Self.refuseAll)
        let one = "PUT /s HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}"
        let next = "GET /livez HTTP/1.1\r\nHost: h\r\n\r\n"
        guard case .request(let r, let consumed) = parser.parse(bytes(one + next)) else {
            Issue.record("not reported")
            return
        }
        #expect(!r.admitted && r.keepAlive && r.body.isEmpty)
        #expect(consumed == one.utf8.count)
        // A chunked body is never read for a refused request.
        var p2 = HTTPParser(admit: Self.refuseAll)
        guard case .request(let c, _) = p2.parse(bytes(Self.head + "2\r\nhi\r\n0\r\n\r\n")) else {
            Issue.record("not reported")
            return
        }
        #expect(!c.admitted && !c.keepAlive)
    }

    @Test func admittedRequestIsParsedAsBefore() {
        var parser = HTTPParser(admit: { $0.authorization == "Bearer t" })
        let req =
            "PUT /s HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        #expect(Parsed(parser.parse(bytes(req))) == .sendContinue)
        guard case .request(let r, _) = parser.parse(bytes(req + "{}")) else {
            Issue.record("not parsed")
            return
        }
        #expect(r.admitted && r.body == bytes("{}"))
    }

    // MARK: Extremes

    static let extremeLimits = [
        Int.min, -1, 0, 1, 2, 15, 16, 1_023, 1_024, 65_536, 1 << 31, 1 << 48, (1 << 48) + 1, 1 << 62,
        Int.max - 1, Int.max,
    ]
    static let extremeNumbers = [
        "0", "1", "00000000000000000000000001", "1024", "4194304", "9223372036854775807", "9223372036854775808",
        "18446744073709551615", "18446744073709551616", "99999999999999999999", "1000000000000000000",
        String(repeating: "9", count: 200),
    ]
    static let extremeHex = [
        "0", "1", "7fffffffffffffff", "8000000000000000", "ffffffffffffffff", "10000000000000000",
        "ffffffffffffffffffff", String(repeating: "f", count: 200), "400000", "3fffff",
    ]

    /// Property: for limits anywhere in `Int` and lengths and chunk sizes of any size,
    /// the parser never traps, and its verdict follows the clamped limit.
    @Test func extremeLimitsAndNumbersNeverOverflow() {
        var rng = SplitMix64(seed: 0x1234_5678)
        for _ in 0..<3_000 {
            var limits = HTTPLimits()
            limits.maxBodyBytes = Self.extremeLimits.randomElement(using: &rng)!
            limits.maxHeaderBytes = Self.extremeLimits.randomElement(using: &rng)!
            limits.maxHeaderCount = Self.extremeLimits.randomElement(using: &rng)!
            limits.maxRequestLineBytes = Self.extremeLimits.randomElement(using: &rng)!
            limits.maxChunkLineBytes = Self.extremeLimits.randomElement(using: &rng)!
            limits.maxChunkOverheadBytes = Self.extremeLimits.randomElement(using: &rng)!
            let clamped = limits.clamped
            let input: String
            let declared: String
            if Bool.random(using: &rng) {
                declared = Self.extremeNumbers.randomElement(using: &rng)!
                input = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: \(declared)\r\n\r\nabc"
            } else {
                declared = Self.extremeHex.randomElement(using: &rng)!
                input = Self.head + "\(declared)\r\nabc"
            }
            let results = drive(bytes(input), pieces: [Int.random(in: 1...64, using: &rng)], limits: limits)
            // The size as a number (saturated), to compare with the limit.
            let radix = input.contains("chunked") ? 16 : 10
            var size = 0
            for c in declared.utf8 {
                size =
                    radix == 16
                    ? Bytes.saturatingHexStep(size, Bytes.hexValue(c)!)
                    : Bytes.saturatingDecimalStep(size, Int(c - 0x30))
            }
            let last = results.last
            if size > clamped.maxBodyBytes, case .failure(let kind)? = last {
                // Over the body limit, unless an earlier limit (line, headers, framing) spoke first.
                let expected: [HTTPError.Kind] = [
                    .bodyTooLarge, .requestLineTooLong, .headersTooLarge, .malformedRequest,
                ]
                #expect(expected.contains(kind), "\(input.prefix(80)): \(kind)")
            } else if size > clamped.maxBodyBytes {
                Issue.record("\(declared) over \(clamped.maxBodyBytes) not refused: \(results)")
            }
        }
    }

    @Test func clampedLimitsKeepEveryValueInItsDocumentedRange() {
        for v in Self.extremeLimits {
            let c = HTTPLimits(
                maxRequestLineBytes: v, maxHeaderBytes: v, maxHeaderCount: v, maxBodyBytes: v, maxChunkLineBytes: v,
                maxChunkOverheadBytes: v, keepAliveIdleTimeout: .seconds(Int64(clamping: v)),
                requestDeadline: .nanoseconds(Int64(clamping: v)), maxConnections: v
            ).clamped
            for x in [c.maxHeaderBytes, c.maxHeaderCount, c.maxBodyBytes, c.maxChunkOverheadBytes] {
                #expect((0...HTTPLimits.largestByteLimit).contains(x))
            }
            #expect((16...HTTPLimits.largestByteLimit).contains(c.maxRequestLineBytes))
            #expect((1...HTTPLimits.largestByteLimit).contains(c.maxChunkLineBytes))
            #expect((1...HTTPLimits.largestByteLimit).contains(c.maxConnections))
            #expect(c.requestDeadline >= .milliseconds(1) && c.requestDeadline <= .seconds(31_536_000))
            #expect(c.keepAliveIdleTimeout >= .milliseconds(1) && c.keepAliveIdleTimeout <= .seconds(31_536_000))
        }
    }
}

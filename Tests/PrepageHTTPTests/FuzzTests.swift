import PrepageTestSupport
import Testing

@testable import PrepageHTTP

/// Seeded mutations of valid requests: the parser must never crash, and must
/// answer every input with requests, a wish for more bytes, or a 4xx/5xx —
/// the same answers however the bytes are split.
@Suite struct FuzzTests {
    static let seed: UInt64 = 0x5EED_0003
    static let iterations = 20_000

    static let corpus: [String] = [
        "GET /sessions?limit=10&after=vm-1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer t\r\n\r\n",
        "POST /sessions/vm-1/fault HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 26\r\n\r\n{\"page\": 123, \"stream\": 4}",
        "POST /sessions/vm-1/fault?page=0x10 HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 8\r\n\r\npage=123",
        "PUT /sessions/vm-2 HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\nX-Request-ID: abc\r\n\r\n{}",
        "POST /sessions/vm-1/faults HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6;ext=\"v\"\r\n{\"page\r\n9\r\ns\": [1,2]\r\n1\r\n}\r\n0\r\nX-Trailer: 1\r\n\r\n",
        "HEAD /livez HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "DELETE /sessions/vm-1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        "\r\nOPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    ]

    /// Small limits, so that mutations also cross them.
    static let limits = HTTPLimits(
        maxRequestLineBytes: 80, maxHeaderBytes: 200, maxHeaderCount: 8, maxBodyBytes: 64, maxChunkLineBytes: 24)

    static let interesting: [[UInt8]] = [
        [0x0D], [0x0A], [0x0D, 0x0A], [0x0D, 0x0A, 0x0D, 0x0A], [0x20], [0x09], [0x3A], [0x3B], [0x22], [0x00],
        [0x7F], [0xFF], [0x25], Array("0".utf8), Array("FFFFFFFFFFFFFFFFFFFF".utf8),
        Array("Content-Length: 5\r\n".utf8),
        Array("Transfer-Encoding: chunked\r\n".utf8), Array("Expect: 100-continue\r\n".utf8),
        Array("HTTP/1.0".utf8), Array("HTTP/2.0".utf8), Array(" folded\r\n".utf8),
    ]

    static func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = input
        let rounds = Int.random(in: 1...4, using: &rng)
        for _ in 0..<rounds {
            let at = b.isEmpty ? 0 : Int.random(in: 0..<b.count, using: &rng)
            switch Int.random(in: 0..<8, using: &rng) {
            case 0 where !b.isEmpty:  // flip a byte
                b[at] = UInt8.random(in: 0...255, using: &rng)
            case 1:  // insert a random byte
                b.insert(UInt8.random(in: 0...255, using: &rng), at: at)
            case 2 where !b.isEmpty:  // delete a run
                b.removeSubrange(at..<min(b.count, at + Int.random(in: 1...8, using: &rng)))
            case 3:  // insert something meaningful
                b.insert(contentsOf: interesting.randomElement(using: &rng)!, at: at)
            case 4 where !b.isEmpty:  // duplicate a run
                let run = b[at..<min(b.count, at + Int.random(in: 1...40, using: &rng))]
                b.insert(contentsOf: run, at: at)
            case 5:  // truncate
                b.removeSubrange(at...)
            case 6:  // pipeline another request after it
                b += Array(corpus.randomElement(using: &rng)!.utf8)
            default:  // swap the case of a letter
                if !b.isEmpty, (0x41...0x5A).contains(b[at] & 0xDF) { b[at] ^= 0x20 }
            }
        }
        return b
    }

    @Test func neverCrashesAndAlwaysGivesAnAcceptableAnswer() {
        var rng = SplitMix64(seed: Self.seed)
        var counts = (requests: 0, failures: 0, needMore: 0)
        for iteration in 0..<Self.iterations {
            let base = Array(Self.corpus.randomElement(using: &rng)!.utf8)
            let input = Self.mutate(base, &rng)
            let whole = drive(input, pieces: [Int.max], limits: Self.limits)
            for result in whole {
                switch result {
                case .failure:
                    // Which status a kind is answered with is ProblemKind's (PrepageServerTests/ProblemTests).
                    counts.failures += 1
                case .request: counts.requests += 1
                case .needMore: counts.needMore += 1
                case .sendContinue: break
                }
            }
            if case .failure? = whole.dropLast().first(where: { if case .failure = $0 { true } else { false } }) {
                Issue.record("iteration \(iteration): a failure that is not the last answer")
            }
            // The same bytes in random pieces give the same requests and the same verdict.
            let sizes = (0..<6).map { _ in Int.random(in: 1...20, using: &rng) }
            let split = drive(input, pieces: sizes, limits: Self.limits).filter { $0 != .sendContinue }
            let expected = whole.filter { $0 != .sendContinue }
            #expect(
                split == expected, "iteration \(iteration): \(String(decoding: input, as: UTF8.self).debugDescription)")
        }
        // The mutations reach every kind of answer (the fuzzer is not stuck on one path).
        #expect(counts.requests > 0 && counts.failures > 0 && counts.needMore > 0)
    }

    @Test func survivesRandomBytes() {
        var rng = SplitMix64(seed: Self.seed ^ 0xFF)
        for _ in 0..<1_000 {
            let n = Int.random(in: 0...300, using: &rng)
            let input = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            // It returns (no trap), and a failure is its last answer.
            let results = drive(input, pieces: [Int.max], limits: Self.limits)
            #expect(!results.dropLast().contains { if case .failure = $0 { true } else { false } })
        }
    }
}

import PrepageCore
import PrepageTestSupport
import Testing

@testable import PrepageServer

/// The strict scanner and the inputs built on it: bodies as string literals.
@Suite struct JSONScannerTests {
    func fault(_ body: String) throws(APIProblem) -> FaultInput {
        try Array(body.utf8).withBytes { raw throws(APIProblem) in try Inputs.fault(json: raw) }
    }

    func problem(_ body: String) -> APIProblem? {
        do {
            _ = try fault(body)
            return nil
        } catch {
            return error
        }
    }

    @Test func readsPageAsIntegerDecimalStringAndHexString() throws {
        #expect(try fault(#"{"page": 123}"#) == FaultInput(location: .page(123), stream: 0))
        #expect(try fault(#"{"page":"123"}"#) == FaultInput(location: .page(123), stream: 0))
        #expect(try fault(#"{"page":"0x7b","stream":3}"#) == FaultInput(location: .page(123), stream: 3))
        #expect(
            try fault(#" { "stream" : "0XFF" , "addr" : 18446744073709551615 } "#)
                == FaultInput(location: .addr(UInt64.max), stream: 255))
        #expect(try fault(#"{"addr":"0xffffffffffffffff"}"#) == FaultInput(location: .addr(UInt64.max), stream: 0))
    }

    @Test func readsEscapedKeys() throws {
        #expect(try fault(#"{"p\u0061ge": 5}"#) == FaultInput(location: .page(5), stream: 0))
    }

    @Test(arguments: [
        "", "{", "}", "[]", "{\"page\":1,}", "{\"page\":01}", "{\"page\":1 \"stream\":2}", "{'page':1}",
        "{\"page\":1}x", "{\"page\":-}", "{\"page\":1.}", "{\"page\":1e}", "{\"page\"1}", "{page:1}",
        "{\"page\":tru}", "{\"page\":\"\\x\"}", "{\"page\":\"\\ud800\"}", "{\"page\":\"\\udc00\"}",
        "{\"page\":\"a\u{01}\"}", "{\"page\":1}}", "{\"page\":nul}", "{\"page\":[1,]}", "/*c*/{\"page\":1}",
    ])
    func rejectsMalformedJSON(_ body: String) {
        #expect(problem(body)?.kind == .malformedJSON, "\(body)")
    }

    @Test func rejectsInvalidUTF8() {
        var bytes = Array(#"{"page":"x"}"#.utf8)
        bytes[9] = 0xC0
        let p: APIProblem? = {
            do {
                _ = try bytes.withBytes { raw throws(APIProblem) in try Inputs.fault(json: raw) }
                return nil
            } catch { return error as? APIProblem }
        }()
        #expect(p?.kind == .malformedJSON)
    }

    @Test(arguments: [
        #"{"page":1.5}"#, #"{"page":1e3}"#, #"{"page":-1}"#, #"{"page":true}"#, #"{"page":null}"#,
        #"{"page":"12a"}"#, #"{"page":"0x"}"#, #"{"page":" 1"}"#, #"{"page":"-1"}"#,
        #"{"page":18446744073709551616}"#, #"{"page":"0x1ffffffffffffffff"}"#, #"{"page":{}}"#,
        #"{"stream":4294967296,"page":1}"#, #"{}"#, #"{"stream":1}"#, #"{"page":1,"addr":2}"#,
        #"{"page":1,"page":2}"#, #"{"page":1,"stream":1,"stream":2}"#, #"{"page":1,"vcpu":2}"#,
    ])
    func rejectsWrongValuesAndFieldsAsInvalidField(_ body: String) {
        #expect(problem(body)?.kind == .invalidField, "\(body)")
    }

    @Test func namesTheFieldAndTheRangeInTheDetail() {
        let p = problem(#"{"page":1,"stream":4294967296}"#)
        #expect(p?.detail.contains("stream") == true)
        #expect(p?.detail.contains("4294967295") == true)
    }

    @Test func rejectsDeepNestingWithoutCrashing() {
        let deep = #"{"page":"# + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}"
        #expect(problem(deep)?.kind == .malformedJSON)
    }

    @Test func readsBatches() throws {
        let b = try Array(#"{"pages":[1,"2","0x3"],"streams":[0,1,2]}"#.utf8).withBytes {
            raw throws(APIProblem) in try Inputs.batch(json: raw)
        }
        #expect(b.values == [1, 2, 3])
        #expect(b.streams == [0, 1, 2])
        #expect(!b.addresses)
    }

    @Test(arguments: [
        #"{"pages":[1,2],"streams":[0]}"#, #"{"pages":1}"#, #"{"streams":[1]}"#, #"{"pages":[1],"addrs":[2]}"#,
        #"{"pages":[-1]}"#, #"{"pages":[1],"extra":1}"#,
    ])
    func rejectsBadBatches(_ body: String) {
        let p: APIProblem? = {
            do {
                _ = try Array(body.utf8).withBytes { raw throws(APIProblem) in try Inputs.batch(json: raw) }
                return nil
            } catch { return error as? APIProblem }
        }()
        #expect(p?.kind == .invalidField, "\(body)")
    }

    @Test func readsFormAndQueryEncodings() throws {
        func form(_ s: String) throws(APIProblem) -> FaultInput {
            try Array(s.utf8).withBytes { raw throws(APIProblem) in try Inputs.fault(form: raw) }
        }
        #expect(try form("page=123") == FaultInput(location: .page(123), stream: 0))
        #expect(try form("addr=0x1000&stream=2") == FaultInput(location: .addr(4_096), stream: 2))
        #expect(try form("stream=%32&page=%30x10") == FaultInput(location: .page(16), stream: 2))
        #expect(throws: APIProblem.self) { try form("page=1&page=2") }
        #expect(throws: APIProblem.self) { try form("page=abc") }
        #expect(throws: APIProblem.self) { try form("pages=1") }
    }

    @Test func readsConfigurationsStrictly() throws {
        func config(_ s: String) throws(APIProblem) -> SessionConfig {
            try Array(s.utf8).withBytes { raw throws(APIProblem) in try Inputs.config(json: raw) }
        }
        let c = try config(
            #"{"policy":"dp-literal","max_pages":"64","k":3,"page_size":"0x10000","labels":{"vm":"a b","x":"\u00e9"}}"#)
        #expect(c.prepage.policy == .dpLiteral)
        #expect(c.prepage.maxPages == 64)
        #expect(c.prepage.k == 3)
        #expect(c.pageSize == 65_536)
        #expect(c.labels == ["vm": "a b", "x": "é"])
        #expect(try config("") == SessionConfig(prepage: try PrepageCoreDefaults.validated()))
        for bad in [
            #"{"max_pages":0}"#, #"{"page_size":1000}"#, #"{"page_size":256}"#, #"{"page_size":2147483648}"#,
            #"{"policy":"lru"}"#, #"{"policy":1}"#, #"{"bogus":1}"#, #"{"k":65}"#, #"{"k":1,"k":2}"#,
            #"{"labels":{"a":1}}"#, #"{"labels":[]}"#, #"{"labels":{"":"x"}}"#,
            "{\"labels\":{" + (0..<17).map { "\"k\($0)\":\"v\"" }.joined(separator: ",") + "}}",
        ] {
            #expect(throws: APIProblem.self, "\(bad)") { try config(bad) }
        }
    }

    /// Seeded fuzz: mutated bodies never crash the scanner, and valid bodies built at
    /// random always read back as the values written.
    @Test func fuzzedBodiesNeverCrashAndRoundTrip() throws {
        var rng = SplitMix64(seed: 1)
        let seeds = [
            #"{"page":123,"stream":4}"#, #"{"addr":"0xdeadbeef"}"#, #"{"pages":[1,2,3],"streams":[0,0,1]}"#,
            #"{"max_pages":64,"labels":{"a":"b\n\u00e9"},"policy":"dp"}"#,
        ]
        for _ in 0..<20_000 {
            var bytes = Array(seeds.randomElement(using: &rng)!.utf8)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[i] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.remove(at: i)
                default: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: i)
                }
                if bytes.isEmpty { bytes = [0x7B] }
            }
            _ = try? bytes.withBytes { raw throws(APIProblem) in try Inputs.fault(json: raw) }
            _ = try? bytes.withBytes { raw throws(APIProblem) in try Inputs.batch(json: raw) }
            _ = try? bytes.withBytes { raw throws(APIProblem) in try Inputs.config(json: raw) }
        }
        for _ in 0..<5_000 {
            let page = UInt64.random(in: 0...UInt64.max, using: &rng)
            let stream = UInt32.random(in: 0...UInt32.max, using: &rng)
            let pageText: String
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: pageText = "\(page)"
            case 1: pageText = "\"\(page)\""
            default: pageText = "\"0x\(String(page, radix: 16))\""
            }
            let body =
                Bool.random(using: &rng)
                ? "{\"page\":\(pageText),\"stream\":\(stream)}"
                : " {\n\"stream\" : \"\(stream)\" ,\t\"page\":\(pageText)}"
            #expect(try fault(body) == FaultInput(location: .page(page), stream: stream))
        }
    }
}

enum PrepageCoreDefaults {
    static func validated() throws -> PrepageConfig { try PrepageConfig().validated() }
}

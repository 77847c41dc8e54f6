import PrepageCore
import PrepageSimulator
import Testing

/// `--config` accepts and refuses what `PUT /sessions/{id}` does; each case below
/// is one place where the simulator used to differ from the server.
@Suite struct ConfigJSONTests {
    @Test func refusesADuplicateKey() {
        #expect(throws: ConfigJSONError("duplicate config key \"max_pages\"; give each key once")) {
            try ConfigJSON.parse(#"{"policy":"dp","max_pages":64,"max_pages":32}"#)
        }
        #expect(throws: ConfigJSONError.self) { try ConfigJSON.parse(#"{"labels":{"a":"1","a":"2"}}"#) }
    }

    @Test func refusesADuplicateKeyWrittenWithAnEscape() {
        #expect(throws: ConfigJSONError.self) { try ConfigJSON.parse(#"{"gap":1,"g\u0061p":2}"#) }
    }

    @Test func takesIntegersAsDecimalOrHexadecimalStrings() throws {
        let c = try ConfigJSON.parse(#"{"policy":"dp","max_pages":"0x40","gap":"3","memory_pages":"0XFF"}"#)
        #expect(c.maxPages == 64 && c.gap == 3 && c.memoryPages == 255)
    }

    @Test(arguments: [
        #"{"gap":"-3"}"#, #"{"gap":"0x"}"#, #"{"gap":"0xg1"}"#, #"{"gap":""}"#, #"{"gap":"\u0033"}"#,
        #"{"gap":1.0}"#, #"{"gap":1e2}"#, #"{"gap":true}"#, #"{"gap":null}"#, #"{"gap":[1]}"#,
        #"{"gap":"99999999999999999999"}"#, #"{"gap":99999999999999999999}"#, #"{"fault_fee":"1"}"#,
    ])
    func refusesWhatTheServerRefusesAsAnInteger(_ text: String) {
        #expect(throws: ConfigJSONError.self) { try ConfigJSON.parse(text) }
    }

    @Test func takesAnyJSONNumberForARealField() throws {
        let c = try ConfigJSON.parse(#"{"fault_fee":2,"min_evidence":1e-2,"rtt_us":150.5}"#)
        #expect(c.faultFee == 2 && c.minEvidence == 0.01 && c.rttMicroseconds == 150.5)
    }

    @Test func readsAndChecksThePageSize() throws {
        #expect(try ConfigJSON.parseSession(#"{"page_size":65536}"#).pageSize == 65_536)
        #expect(try ConfigJSON.parseSession(#"{"page_size":"0x200"}"#).pageSize == 512)
        #expect(try ConfigJSON.parseSession("{}").pageSize == 4_096)
        for bad in [#"{"page_size":1000}"#, #"{"page_size":256}"#, #"{"page_size":2147483648}"#] {
            #expect(throws: ConfigJSONError.self) { try ConfigJSON.parse(bad) }
        }
    }

    @Test func readsAndChecksTheLabels() throws {
        #expect(
            try ConfigJSON.parseSession(#"{"labels":{"vm":"web-1","zone":"b"}}"#).labels == [
                "vm": "web-1", "zone": "b",
            ])
        let seventeen = (0..<17).map { "\"k\($0)\":\"v\"" }.joined(separator: ",")
        let long = String(repeating: "x", count: 1_025)
        for bad in [
            #"{"labels":[]}"#, #"{"labels":{"a":1}}"#, #"{"labels":{"":"v"}}"#, "{\"labels\":{\(seventeen)}}",
            "{\"labels\":{\"a\":\"\(long)\"}}",
        ] {
            #expect(throws: ConfigJSONError.self, "\(bad.prefix(60))") { try ConfigJSON.parse(bad) }
        }
    }

    @Test func aBlankTextIsTheDefaultConfiguration() throws {
        #expect(try ConfigJSON.parse(" \n") == PrepageConfig().validated())
    }

    @Test(arguments: ["[", "[]", "{", #"{"gap":1,}"#, #"{"gap":01}"#, "{} {}", "nul"])
    func refusesWhatIsNotOneJSONObject(_ text: String) {
        #expect(throws: ConfigJSONError("config must be a JSON object such as {\"max_pages\": 64}")) {
            try ConfigJSON.parse(text)
        }
    }
}

import Foundation
import PrepageCore
import PrepageSimulator
import Testing

/// The simulator's `--config` (ConfigJSON) and the real server's `PUT /sessions/{id}`
/// accept and refuse the same texts, and read the accepted ones the same way.
@Suite struct ConfigJSONParityTests {
    let server: LiveServer
    init() throws { server = try LiveServer() }

    static let seventeenLabels = "{\"labels\":{" + (0..<17).map { "\"k\($0)\":\"v\"" }.joined(separator: ",") + "}}"

    static let texts: [String] = [
        // Accepted by both.
        "", " \n", "{}", #"{"policy":"dp","max_pages":"0x40","k":"5"}"#, #"{"gap":"3","memory_pages":"0XFF"}"#,
        #"{"fault_fee":2,"rtt_us":1e2,"min_evidence":0.5}"#, #"{"page_size":"0x2000"}"#, #"{"page_size":65536}"#,
        #"{"labels":{"vm":"web-1","zone":"b"}}"#, #"{"labels":{}}"#, #"{"g\u0061p":2}"#,
        #"{"policy":"forward","forward_pages":3,"backward_pages":1}"#, #"{"policy":"dp","initial_pages":100000}"#,
        // Refused by both.
        #"{"gap":1,"gap":2}"#, #"{"gap":1,"g\u0061p":2}"#, #"{"labels":{"a":"1","a":"2"}}"#,
        #"{"gap":1.0}"#, #"{"gap":1e2}"#, #"{"gap":"-3"}"#, #"{"gap":"0x"}"#, #"{"gap":"\u0033"}"#, #"{"gap":true}"#,
        #"{"gap":null}"#, #"{"gap":99999999999999999999}"#, #"{"fault_fee":"1"}"#, #"{"page_size":1000}"#,
        #"{"labels":[]}"#, #"{"labels":{"a":1}}"#, #"{"labels":{"":"v"}}"#, seventeenLabels,
        "{\"labels\":{\"a\":\"\(String(repeating: "x", count: 1_025))\"}}", "[", "[]", "{", #"{"gap":1,}"#,
        #"{"gap":01}"#, "{} {}", #"{"k":3}"#, #"{"policy":"magic"}"#, #"{"kk":1}"#, #"{"policy":"dp","max_pages":0}"#,
    ]

    @Test(arguments: texts.indices)
    func theSimulatorAcceptsWhatTheServerAccepts(_ index: Int) throws {
        let text = Self.texts[index]
        let answer = try http("PUT", port: server.port, "/sessions/parity-\(index)", body: text)
        let parsed = try? ConfigJSON.parseSession(text)
        #expect((answer.status == 201) == (parsed != nil), "\(text.prefix(80)): server \(answer.status) \(answer.body)")
        guard answer.status == 201, let parsed else { return }
        let config = jsonObject(answer.body)["config"] as? [String: Any] ?? [:]
        for field in PrepageConfig.fields {
            guard let served = config[field.name] else { continue }
            let same: Bool =
                switch field.value(in: parsed.config) {
                case .policy(let p): (served as? String) == p.rawValue
                case .integer(let i): (served as? Int) == i
                case .real(let d): (served as? Double) == d
                }
            #expect(same, "\(text): \(field.name) is \(served) on the server, \(field.value(in: parsed.config)) here")
        }
        #expect(config["page_size"] as? Int == parsed.pageSize)
        #expect(config["labels"] as? [String: String] ?? [:] == parsed.labels)
    }
}

import Foundation
import PrepageCore
import PrepageServer
import PrepageTestSupport
import Testing

/// The shared vectors replayed through the HTTP API: every decision equal to the vector's.
@Suite struct VectorReplayTests {
    static let vectors = (try? Vector.all()) ?? []

    @Test func vectorsAreAllPresent() {
        #expect(Self.vectors.count == 20)
    }

    @Test(arguments: vectors)
    func replayThroughBatchFaults(_ v: Vector) throws {
        let s = try TestServer()
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/\(v.name)", body: v.configJSON).status == 201)
        let body =
            "{\"pages\":[" + v.faults.map(String.init).joined(separator: ",") + "],\"streams\":["
            + v.streams.map(String.init).joined(separator: ",") + "]}"
        let r = try c.request("POST", "/sessions/\(v.name)/faults", body: body)
        #expect(r.status == 200)
        let got = r.json["decisions"] as? [[String: Any]] ?? []
        #expect(got.count == v.expected.count)
        for (i, d) in zip(got, v.expected).enumerated() {
            try #require(d.1.matches(json: d.0), "\(v.name) fault #\(i): got \(d.0), expected \(d.1)")
        }
    }

    /// The ways one fault can be written; each must give the vector's decisions.
    enum Encoding: String, CaseIterable, Sendable {
        case jsonInteger, jsonDecimalString, jsonHexString, jsonAddr, form, query

        func request(page: Int, stream: UInt32, id: String) -> String {
            let path = "/sessions/\(id)/fault"
            switch self {
            case .jsonInteger:
                return RawClient.format("POST", path, body: "{\"page\":\(page),\"stream\":\(stream)}")
            case .jsonDecimalString:
                return RawClient.format("POST", path, body: "{\"stream\":\"\(stream)\",\"page\":\"\(page)\"}")
            case .jsonHexString:
                return RawClient.format(
                    "POST", path,
                    body: "{\"page\":\"0x\(String(page, radix: 16))\",\"stream\":\"0x\(String(stream, radix: 16))\"}")
            case .jsonAddr:
                // Any byte inside the page names the page: addr / page_size.
                return RawClient.format("POST", path, body: "{\"addr\":\(page * 4_096 + 4_095),\"stream\":\(stream)}")
            case .form:
                return RawClient.format(
                    "POST", path, body: "page=\(page)&stream=\(stream)",
                    contentType: "application/x-www-form-urlencoded")
            case .query:
                return RawClient.format("POST", path + "?page=\(page)&stream=\(stream)")
            }
        }
    }

    @Test(arguments: Encoding.allCases)
    func replayThroughSingleFaults(_ encoding: Encoding) throws {
        let s = try TestServer()
        let c = try s.client()
        for v in Self.vectors {
            let id = "\(v.name)-\(encoding.rawValue)"
            #expect(try c.request("PUT", "/sessions/\(id)", body: v.configJSON).status == 201)
            // Pipelined 64 at a time: the order of answers is the order of faults.
            var i = 0
            while i < v.faults.count {
                let end = min(i + 64, v.faults.count)
                try c.send(
                    (i..<end).map { encoding.request(page: v.faults[$0], stream: v.streams[$0], id: id) }.joined())
                for j in i..<end {
                    let r = try c.readResponse()
                    try #require(v.expected[j].matches(json: r.json), "\(v.name) fault #\(j) via \(encoding)")
                    #expect(r.json["addr"] as? Int == v.expected[j].start * 4_096)
                    #expect(r.json["bytes"] as? Int == v.expected[j].count * 4_096)
                }
                i = end
            }
        }
    }
}

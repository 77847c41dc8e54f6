import Foundation
import PrepageCore
import PrepageTestSupport
import Testing

/// `GET /sessions/{id}/state` and `PUT /sessions/{id}` with `{"state": …}`:
/// a session moved between two real servers decides what it would have decided
/// where it was, at every fault of every vector.
@Suite struct StateRouteTests {
    static let vectors = (try? Vector.all()) ?? []

    static func faultBody(_ page: Int, _ stream: UInt32) -> String { "{\"page\":\(page),\"stream\":\(stream)}" }

    /// Moves the session from `from` to `to`: export, import, delete the original.
    static func move(_ id: String, from: RawClient, to: RawClient) throws -> String {
        let exported = try from.request("GET", "/sessions/\(id)/state")
        try #require(exported.status == 200, "export: \(exported.text)")
        let put = try to.request("PUT", "/sessions/\(id)", body: "{\"state\":\(exported.text)}")
        try #require(put.status == 201, "import: \(put.status) \(put.text)")
        try #require(try from.request("DELETE", "/sessions/\(id)").status == 200)
        return exported.text
    }

    @Test(arguments: vectors)
    func aVectorMovedBetweenTwoServersAtEveryFaultDecidesAsUndisturbed(_ v: Vector) throws {
        let servers = [try TestServer(), try TestServer()]
        let clients = [try servers[0].client(), try servers[1].client()]
        #expect(try clients[0].request("PUT", "/sessions/\(v.name)", body: v.configJSON).status == 201)
        for i in v.faults.indices {
            let here = clients[i % 2]
            let r = try here.request(
                "POST", "/sessions/\(v.name)/fault", body: Self.faultBody(v.faults[i], v.streams[i]))
            try #require(r.status == 200, "fault #\(i): \(r.text)")
            try #require(
                v.expected[i].matches(json: r.json),
                "\(v.name) fault #\(i) after \(i) moves: got \(r.text), expected \(v.expected[i])")
            let exported = try Self.move(v.name, from: here, to: clients[(i + 1) % 2])
            // The state arrives whole: the new server exports exactly what the old one did.
            if i % 10 == 0 {
                let again = try clients[(i + 1) % 2].request("GET", "/sessions/\(v.name)/state")
                try #require(again.text == exported, "fault #\(i): the state document changed in the move")
            }
        }
    }

    /// The first part of the vector on one server, the rest on another, at every
    /// position: the next 8 decisions checked everywhere, all the rest at every 100th
    /// (the in-process test of the core checks every split to the end).
    @Test(arguments: vectors)
    func aVectorSplitAtEveryPositionAcrossTwoServersDecidesAsUndisturbed(_ v: Vector) throws {
        let a = try TestServer()
        let b = try TestServer()
        let ca = try a.client()
        let cb = try b.client()
        #expect(try ca.request("PUT", "/sessions/v", body: v.configJSON).status == 201)
        for split in 0...v.faults.count {
            let exported = try ca.request("GET", "/sessions/v/state")
            let id = "split-\(split)"
            try #require(try cb.request("PUT", "/sessions/\(id)", body: "{\"state\":\(exported.text)}").status == 201)
            let end = split % 100 == 0 ? v.faults.count : min(v.faults.count, split + 8)
            if end > split {
                let body =
                    "{\"pages\":[" + v.faults[split..<end].map(String.init).joined(separator: ",") + "],\"streams\":["
                    + v.streams[split..<end].map(String.init).joined(separator: ",") + "]}"
                let r = try cb.request("POST", "/sessions/\(id)/faults", body: body)
                let got = r.json["decisions"] as? [[String: Any]] ?? []
                try #require(got.count == end - split, "\(r.text)")
                for (k, d) in got.enumerated() {
                    try #require(
                        v.expected[split + k].matches(json: d),
                        "\(v.name) split at \(split), fault #\(split + k): got \(d), expected \(v.expected[split + k])")
                }
            }
            #expect(try cb.request("DELETE", "/sessions/\(id)").status == 200)
            if split < v.faults.count {
                #expect(
                    try ca.request("POST", "/sessions/v/fault", body: Self.faultBody(v.faults[split], v.streams[split]))
                        .status == 200)
            }
        }
    }

    @Test func theMovedSessionKeepsItsCountersTimesAndConfiguration() throws {
        let a = try TestServer()
        let b = try TestServer()
        let ca = try a.client()
        let cb = try b.client()
        let config = #"{"policy":"dp","max_pages":128,"k":3,"labels":{"vm":"one"},"page_size":8192}"#
        #expect(try ca.request("PUT", "/sessions/m", body: config).status == 201)
        for p in [10, 11, 12, 400, 401, 9_000, 11] {
            #expect(try ca.request("POST", "/sessions/m/fault", body: Self.faultBody(p, 1)).status == 200)
        }
        let before = try ca.request("GET", "/sessions/m").text
        _ = try Self.move("m", from: ca, to: cb)
        #expect(try cb.request("GET", "/sessions/m").text == before)
    }

    @Test func putStateCreatesOrReplaces() throws {
        let s = try TestServer()
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/x", body: "{}").status == 201)
        for p in [5, 6, 7, 8] { _ = try c.request("POST", "/sessions/x/fault", body: Self.faultBody(p, 0)) }
        let learned = try c.request("GET", "/sessions/x/state").text
        let created = try c.request("PUT", "/sessions/y", body: "{\"state\":\(learned)}")
        #expect(created.status == 201)
        #expect(created.header("Location") == "/sessions/y")
        // The path names the session: the document's id is where it came from.
        #expect((try c.request("GET", "/sessions/y/state").json["id"] as? String) == "y")
        #expect(try c.request("POST", "/sessions/x/reset").status == 200)
        let replaced = try c.request("PUT", "/sessions/x", body: "{\"state\":\(learned)}")
        #expect(replaced.status == 200)
        #expect(try c.request("GET", "/sessions/x/state").text == learned)
    }

    @Test func aMissingSessionHasNoState() throws {
        let s = try TestServer()
        let r = try s.client().request("GET", "/sessions/nobody/state")
        #expect(r.status == 404)
        #expect(r.problemType == "urn:prepage:problem:session-not-found")
    }

    /// A document that is not a whole, valid state is a 400 naming the field, and changes nothing.
    @Test func aBadStateIsRefusedWithTheFieldNamed() throws {
        let s = try TestServer()
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/x", body: "{}").status == 201)
        for p in [5, 6, 7, 8, 100, 101, 900] {
            _ = try c.request("POST", "/sessions/x/fault", body: Self.faultBody(p, 0))
        }
        let good = try c.request("GET", "/sessions/x/state").text
        var object = try JSONSerialization.jsonObject(with: Data(good.utf8)) as! [String: Any]
        func attempt(
            _ change: (inout [String: Any]) -> Void, _ field: String, sourceLocation: SourceLocation = #_sourceLocation
        ) throws {
            var doc = object
            change(&doc)
            let body =
                "{\"state\":" + String(decoding: try JSONSerialization.data(withJSONObject: doc), as: UTF8.self) + "}"
            let r = try c.request("PUT", "/sessions/x", body: body)
            #expect(r.status == 400, "\(r.text)", sourceLocation: sourceLocation)
            #expect(r.problemType == "urn:prepage:problem:invalid-field", sourceLocation: sourceLocation)
            #expect(
                (r.json["detail"] as? String ?? "").contains(field), "\(r.text) should name \(field)",
                sourceLocation: sourceLocation)
        }
        try attempt({ $0["version"] = 2 }, "state.version")
        try attempt({ $0["format"] = "other" }, "state.format")
        try attempt({ $0["extra"] = 1 }, "state.extra")
        try attempt({ $0["stats"] = nil }, "state.stats")
        try attempt(
            { d in
                var learned = d["learned"] as! [String: Any]
                var order = learned["order"] as! [Int]
                order[1] = order[0]
                learned["order"] = order
                d["learned"] = learned
            }, "state.learned.order[1]")
        try attempt(
            { d in
                var learned = d["learned"] as! [String: Any]
                learned["near_rate"] = 2.5
                d["learned"] = learned
            }, "state.learned.near_rate")
        try attempt(
            { d in
                var config = d["config"] as! [String: Any]
                config["max_pages"] = 0
                d["config"] = config
            }, "state.config")
        // dp's learned state under a dp-plus configuration.
        try attempt(
            { d in d["learned"] = ["nmin": 1, "nmax": 2, "min_record": [], "max_record": [], "tick": 0, "streams": []]
            }, "state.learned.")
        object["id"] = "x"
        #expect(try c.request("GET", "/sessions/x/state").text == good)
        let both = try c.request("PUT", "/sessions/x", body: "{\"state\":\(good),\"max_pages\":3}")
        #expect(both.status == 400)
    }

    /// Doubles travel as their shortest decimal form and read back bit for bit.
    @Test func doublesTravelBitForBit() throws {
        let s = try TestServer()
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/x", body: #"{"rtt_us":123.456789,"page_us":0.1}"#).status == 201)
        var page = 0
        var rng = SplitMix64(seed: 4)
        for _ in 0..<300 {
            page = Int.random(in: 0..<3, using: &rng) == 0 ? Int.random(in: 0..<1_000_000, using: &rng) : page + 1
            _ = try c.request("POST", "/sessions/x/fault", body: Self.faultBody(page, 0))
        }
        let learned = try c.request("GET", "/sessions/x/state").text
        #expect(try c.request("PUT", "/sessions/y", body: "{\"state\":\(learned)}").status == 201)
        let again = try c.request("GET", "/sessions/y/state").text
        #expect(again.replacingOccurrences(of: "\"id\":\"y\"", with: "\"id\":\"x\"") == learned)
    }
}

import Foundation
import PrepageCore
import PrepageServer
import Testing

/// dp-plus through the API: its configuration keys, the keys it refuses, and what its
/// session document shows.
@Suite struct DPPlusRouteTests {
    @Test func createsADPPlusSessionWithItsLinkFigures() throws {
        let s = try TestServer()
        let c = try s.client()
        let created = try c.request(
            "PUT", "/sessions/vm-plus",
            body:
                #"{"policy":"dp-plus","rtt_us":250.5,"page_us":8.192,"max_slots":"0x10","transitions":32,"half_life":30,"probe_staleness":500,"fault_fee":1.25,"near_window":4,"min_evidence":0.02}"#
        )
        #expect(created.status == 201)
        let config = try #require(created.json["config"] as? [String: Any])
        #expect(config["policy"] as? String == "dp-plus")
        #expect(config["rtt_us"] as? Double == 250.5)
        #expect(config["page_us"] as? Double == 8.192)
        #expect(config["max_slots"] as? Int == 16)
        #expect(config["transitions"] as? Int == 32)
        #expect(config["half_life"] as? Int == 30)
        #expect(config["probe_staleness"] as? Double == 500)
        #expect(config["fault_fee"] as? Double == 1.25)
        #expect(config["near_window"] as? Int == 4)
        #expect(config["min_evidence"] as? Double == 0.02)
        // DP's own keys are not part of a dp-plus session.
        for key in ["min_pages", "k", "max_streams"] { #expect(config[key] == nil, "\(key)") }
        // Every key of the field table that applies to dp-plus is in the document, and no other.
        let expected = Set(
            PrepageConfig.fields.filter { $0.applies(to: .dpPlus) }.map(\.name) + ["page_size", "labels"])
        #expect(Set(config.keys) == expected)
        // The same document is an identical PUT: 200.
        let again = try c.request(
            "PUT", "/sessions/vm-plus",
            body:
                #"{"policy":"dp-plus","rtt_us":250.5,"page_us":8.192,"max_slots":16,"transitions":32,"half_life":30,"probe_staleness":500.0,"fault_fee":1.25,"near_window":4,"min_evidence":0.02}"#
        )
        #expect(again.status == 200)
    }

    @Test func theDocumentShowsWhatDPPlusLearned() throws {
        let s = try TestServer()
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/learn", body: #"{"policy":"dp-plus"}"#).status == 201)
        // Ten cases of 16 pages, touched one page at a time as a closed loop would.
        for k in 0..<10 {
            var page = 10_000 * (k + 1)
            while page < 10_000 * (k + 1) + 16 {
                let d = try c.request("POST", "/sessions/learn/fault", body: "{\"page\":\(page)}")
                #expect(d.status == 200)
                page = (d.json["start"] as! Int) + (d.json["count"] as! Int)
            }
        }
        let doc = try c.request("GET", "/sessions/learn")
        let state = try #require(doc.json["state"] as? [String: Any])
        let plan = try #require(state["plan"] as? [[String: Any]])
        #expect(!plan.isEmpty)
        #expect(plan.allSatisfy { $0["threshold"] is Int })
        #expect(state["nmin"] as? Int == plan.first?["threshold"] as? Int)
        #expect(state["nmax"] as? Int == plan.last?["threshold"] as? Int)
        #expect(!(state["estimate"] as? [Any] ?? []).isEmpty)
        #expect(state["cases"] as? Int == 10)
        #expect(state["learned_gap"] as? Int == 0)
        #expect(state["downward_share"] as? Double == 0)
        #expect((state["slots"] as? [[String: Any]])?.count == 10)
        #expect((state["transitions"] as? Int ?? 0) > 0)
        // A reset forgets it.
        let reset = try c.request("POST", "/sessions/learn/reset")
        let after = try #require(reset.json["state"] as? [String: Any])
        #expect(after["cases"] as? Int == 0 && (after["slots"] as? [Any])?.isEmpty == true)
        #expect(after["downward_share"] is NSNull)
    }

    @Test(arguments: [
        (#"{"policy":"dp-plus","k":5}"#, "k applies to policy"),
        (#"{"policy":"dp-plus","min_pages":2}"#, "min_pages applies to policy"),
        (#"{"policy":"dp-plus","max_streams":8}"#, "max_streams applies to policy"),
        (#"{"policy":"dp","rtt_us":100}"#, "rtt_us applies to policy dp-plus only"),
        (#"{"policy":"readahead","rtt_us":100}"#, "rtt_us applies to policy dp-plus only"),
        (#"{"k":5}"#, "this session's policy is dp-plus"),
        (#"{"policy":"dp-plus","rtt_us":0}"#, "rtt_us = 0.0 is out of range; allowed: 0.001 … 10000000"),
        (#"{"policy":"dp-plus","page_us":"32"}"#, "page_us must be a JSON number"),
        (#"{"policy":"dp-plus","fault_fee":1e400}"#, "fault_fee is out of range"),
        (#"{"policy":"dp-plus","transitions":257}"#, "transitions = 257 is out of range; allowed: 1 … 256"),
        (#"{"policy":"dp-plus","half_life":1.5}"#, "half_life is not an integer"),
    ])
    func refusesABadKeyWithWhatIsAccepted(body: String, message: String) throws {
        let s = try TestServer()
        let c = try s.client()
        let r = try c.request("PUT", "/sessions/bad", body: body)
        #expect(r.status == 400)
        #expect((r.json["detail"] as? String)?.contains(message) == true, "\(r.json["detail"] ?? "")")
        #expect(try c.request("GET", "/sessions/bad").status == 404)
    }
}

import Foundation
import PrepageHTTP
import PrepageServer
import Testing

/// Every route and error of docs/api.md, over real sockets against a server on port 0.
@Suite struct RouteTests {
    @Test func probesVersionAndOpenAPI() throws {
        let s = try TestServer()
        let c = try s.client()
        for path in ["/livez", "/healthz"] {
            let r = try c.request("GET", path)
            #expect(r.status == 200)
            #expect(r.json["status"] as? String == "ok")
        }
        let ready = try c.request("GET", "/readyz")
        #expect(ready.status == 200)
        #expect(ready.json["status"] as? String == "ready")
        let version = try c.request("GET", "/version")
        #expect(version.json["version"] as? String == "0.1.0")
        #expect(version.json["api"] as? String == "1")
        let spec = try c.request("GET", "/openapi.yaml")
        #expect(spec.status == 200)
        #expect(spec.header("content-type") == "application/yaml")
        #expect(spec.text.hasPrefix("openapi: 3.1"))
    }

    @Test func headAnswersGetHeadersWithoutBody() throws {
        let s = try TestServer()
        let c = try s.client()
        try c.send(RawClient.format("HEAD", "/version"))
        let r = try c.readResponse(head: true)
        #expect(r.status == 200)
        #expect(r.body.isEmpty)
        #expect(Int(r.header("content-length") ?? "") ?? 0 > 0)
        // The connection is still in step: the next response is the next request's.
        #expect(try c.request("GET", "/livez").status == 200)
    }

    @Test func createReadListResetDeleteSession() throws {
        let s = try TestServer()
        let c = try s.client()
        let created = try c.request(
            "PUT", "/sessions/vm-1", body: #"{"policy":"dp","max_pages":64,"labels":{"owner":"ops"}}"#)
        #expect(created.status == 201)
        #expect(created.header("location") == "/sessions/vm-1")
        let config = created.json["config"] as? [String: Any]
        #expect(config?["max_pages"] as? Int == 64)
        #expect(config?["page_size"] as? Int == 4_096)
        #expect(config?["initial_pages"] as? Int == 1)
        #expect((config?["labels"] as? [String: String]) == ["owner": "ops"])
        let state = created.json["state"] as? [String: Any]
        #expect((state?["streams"] as? [Any])?.isEmpty == true)
        let stats = created.json["stats"] as? [String: Any]
        #expect(stats?["last_fault_at"] is NSNull)
        #expect((stats?["created_at"] as? String)?.hasSuffix("Z") == true)

        // Identical config: 200; another config: 409.
        #expect(
            try c.request(
                "PUT", "/sessions/vm-1", body: #"{"labels":{"owner":"ops"},"max_pages":"0x40","policy":"dp"}"#
            ).status
                == 200)
        let conflict = try c.request("PUT", "/sessions/vm-1", body: #"{"max_pages":65}"#)
        #expect(conflict.status == 409)
        #expect(conflict.problemType == "urn:prepage:problem:session-conflict")
        #expect(conflict.header("content-type") == "application/problem+json")

        #expect(try c.request("POST", "/sessions/vm-1/fault", body: #"{"page":10}"#).status == 200)
        #expect(
            try c.request("POST", "/sessions/vm-1/fault", body: #"{"page":11}"#).json["outcome"] as? String == "smaller"
        )
        let read = try c.request("GET", "/sessions/vm-1")
        #expect((read.json["stats"] as? [String: Any])?["faults"] as? Int == 2)
        let streams = (read.json["state"] as? [String: Any])?["streams"] as? [[String: Any]]
        #expect(streams?.count == 1)
        #expect(streams?.first?["direction"] as? String == "up")

        let reset = try c.request("POST", "/sessions/vm-1/reset")
        #expect(reset.status == 200)
        #expect(((reset.json["state"] as? [String: Any])?["streams"] as? [Any])?.isEmpty == true)
        #expect((reset.json["stats"] as? [String: Any])?["faults"] as? Int == 2)
        #expect(
            try c.request("POST", "/sessions/vm-1/fault", body: #"{"page":11}"#).json["outcome"] as? String == "first")

        let deleted = try c.request("DELETE", "/sessions/vm-1")
        #expect(deleted.status == 200)
        #expect((deleted.json["stats"] as? [String: Any])?["faults"] as? Int == 3)
        #expect(try c.request("GET", "/sessions/vm-1").status == 404)
        #expect(try c.request("DELETE", "/sessions/vm-1").status == 404)
        #expect(try c.request("POST", "/sessions/vm-1/reset").status == 404)
        let missing = try c.request("POST", "/sessions/vm-1/fault", body: #"{"page":1}"#)
        #expect(missing.status == 404)
        #expect(missing.problemType == "urn:prepage:problem:session-not-found")
    }

    @Test func emptyBodyCreatesTheDefaultSession() throws {
        let s = try TestServer()
        let c = try s.client()
        let r = try c.request("PUT", "/sessions/a", body: "", contentType: nil)
        #expect(r.status == 201)
        let config = r.json["config"] as? [String: Any]
        // The default policy is dp-plus, with its defaults; DP's own keys are not there.
        #expect(config?["policy"] as? String == "dp-plus")
        #expect(config?["max_pages"] as? Int == 512)
        #expect(config?["max_slots"] as? Int == 64)
        #expect(config?["transitions"] as? Int == 64)
        #expect(config?["half_life"] as? Int == 22)
        #expect(config?["rtt_us"] as? Double == 100)
        #expect(config?["page_us"] as? Double == 32.768)
        #expect(config?["k"] == nil && config?["max_streams"] == nil && config?["min_pages"] == nil)
    }

    @Test(arguments: [
        (#"{"bogus":1}"#, "invalid-field"), (#"{"max_pages":0}"#, "invalid-field"),
        (#"{"page_size":1000}"#, "invalid-field"), (#"{"page_size":256}"#, "invalid-field"),
        (#"{"policy":"lru"}"#, "invalid-field"), (#"{"max_pages":64"#, "malformed-json"),
        (#"{"k":0}"#, "invalid-field"), (#"{"labels":{"a":1}}"#, "invalid-field"),
    ])
    func rejectsBadConfigurations(_ body: String, _ kind: String) throws {
        let s = try TestServer()
        let c = try s.client()
        let r = try c.request("PUT", "/sessions/x", body: body)
        #expect(r.status == 400)
        #expect(r.problemType == "urn:prepage:problem:\(kind)")
        #expect((r.json["detail"] as? String)?.isEmpty == false)
        #expect(r.json["status"] as? Int == 400)
        #expect(r.json["title"] is String)
        // A bad request changes nothing.
        #expect(try c.request("GET", "/sessions/x").status == 404)
    }

    @Test func baselinePoliciesTakeTheirOwnFieldsOnly() throws {
        let s = try TestServer()
        let c = try s.client()
        let fwd = try c.request(
            "PUT", "/sessions/fw", body: #"{"policy":"forward","forward_pages":3,"backward_pages":1}"#)
        #expect(fwd.status == 201)
        #expect((fwd.json["config"] as? [String: Any])?["forward_pages"] as? Int == 3)
        let d = try c.request("POST", "/sessions/fw/fault", body: #"{"page":100}"#)
        #expect(d.json["start"] as? Int == 99)
        #expect(d.json["count"] as? Int == 5)
        let ra = try c.request("PUT", "/sessions/ra", body: #"{"policy":"readahead","ra_max":64}"#)
        #expect((ra.json["config"] as? [String: Any])?["ra_max"] as? Int == 64)
        #expect((ra.json["config"] as? [String: Any])?["ra_initial"] as? Int == 4)
        #expect(try c.request("PUT", "/sessions/none", body: #"{"policy":"none"}"#).status == 201)
        for bad in [
            #"{"forward_pages":3}"#, #"{"policy":"readahead","forward_pages":3}"#, #"{"policy":"forward","ra_max":8}"#,
            #"{"policy":"readahead","ra_initial":9,"ra_max":8}"#,
        ] {
            let r = try c.request("PUT", "/sessions/bad", body: bad)
            #expect(r.status == 400, "\(bad)")
            #expect(r.problemType == "urn:prepage:problem:invalid-field")
        }
        // dp documents carry no baseline fields.
        let dp = try c.request("PUT", "/sessions/dp", body: "{}")
        #expect((dp.json["config"] as? [String: Any])?["forward_pages"] == nil)
    }

    @Test func validatesSessionIDs() throws {
        let s = try TestServer()
        let c = try s.client()
        for id in ["bad%20id", "a%2Fb", String(repeating: "x", count: 129), "%C3%A9"] {
            let r = try c.request("PUT", "/sessions/\(id)", body: "{}")
            #expect(r.status == 400, "\(id)")
            #expect(r.problemType == "urn:prepage:problem:invalid-session-id")
        }
        for id in ["A-z.0_9:x", "123e4567-e89b-12d3-a456-426614174000", String(repeating: "y", count: 128), "vm%3A1"] {
            #expect(try c.request("PUT", "/sessions/\(id)", body: "{}").status == 201, "\(id)")
        }
        #expect(try c.request("GET", "/sessions/vm:1").status == 200)
    }

    @Test func listsSessionsInIDOrderWithPaging() throws {
        let s = try TestServer()
        let c = try s.client()
        let ids = (0..<25).map { String(format: "s%02d", $0) }.shuffled()
        for id in ids { #expect(try c.request("PUT", "/sessions/\(id)", body: "{}").status == 201) }
        var seen: [String] = []
        var after: String? = nil
        repeat {
            let r = try c.request("GET", "/sessions?limit=10" + (after.map { "&after=\($0)" } ?? ""))
            #expect(r.status == 200)
            let page = (r.json["sessions"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            #expect(page.count <= 10)
            seen += page
            after = r.json["next"] as? String
            if after == nil { #expect(r.json["next"] is NSNull) }
        } while after != nil
        #expect(seen == ids.sorted())
        let all = try c.request("GET", "/sessions")
        #expect((all.json["sessions"] as? [Any])?.count == 25)
        for bad in ["limit=0", "limit=1001", "limit=x", "bogus=1"] {
            let r = try c.request("GET", "/sessions?\(bad)")
            #expect(r.status == 400, "\(bad)")
            #expect(r.problemType == "urn:prepage:problem:invalid-query")
        }
    }

    @Test func acceptsFaultsInEveryEncoding() throws {
        let s = try TestServer()
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/e", body: #"{"page_size":8192}"#).status == 201)
        let encodings: [(String, String, String?, String?)] = [
            ("/sessions/e/fault", #"{"page":100}"#, "application/json", nil),
            ("/sessions/e/fault", #"{"page":"100"}"#, "application/json", nil),
            ("/sessions/e/fault", #"{"page":"0x64"}"#, "application/json; charset=utf-8", nil),
            ("/sessions/e/fault", #"{"addr":819200}"#, "application/json", nil),
            ("/sessions/e/fault", #"{"addr":"0xc8000"}"#, "application/json", nil),
            ("/sessions/e/fault", "page=100", "application/x-www-form-urlencoded", nil),
            ("/sessions/e/fault", "addr=0xc8000&stream=0", "application/x-www-form-urlencoded", nil),
            ("/sessions/e/fault?page=100", "", nil, nil),
            ("/sessions/e/fault?addr=819205&stream=0", "", nil, nil),
            ("/sessions/e/fault", #"{"page":100}"#, nil, nil),
        ]
        var first: [String: Any]? = nil
        for (target, body, type, _) in encodings {
            let r = try c.request("POST", target, body: body, contentType: type)
            #expect(r.status == 200, "\(target) \(body)")
            if first == nil {
                first = r.json
                #expect(r.json["outcome"] as? String == "first")
                #expect(r.json["addr"] as? Int == 819_200)
                #expect(r.json["bytes"] as? Int == 8_192)
            } else {
                // The same page again is a repeat of the same window.
                #expect(r.json["outcome"] as? String == "repeat", "\(target) \(body)")
                #expect(r.json["start"] as? Int == first?["start"] as? Int)
            }
        }
    }

    @Test func rejectsBadFaults() throws {
        let s = try TestServer()
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/f", body: #"{"memory_pages":1000}"#).status == 201)
        let cases: [(String, String, String?, Int, String)] = [
            ("/sessions/f/fault", #"{"page":1000}"#, "application/json", 422, "fault-beyond-memory"),
            ("/sessions/f/fault", #"{"page":-1}"#, "application/json", 400, "invalid-field"),
            ("/sessions/f/fault", #"{"page":1.5}"#, "application/json", 400, "invalid-field"),
            ("/sessions/f/fault", #"{"page":1,"x":1}"#, "application/json", 400, "invalid-field"),
            ("/sessions/f/fault", #"{"stream":1}"#, "application/json", 400, "invalid-field"),
            ("/sessions/f/fault", #"{"page":1"#, "application/json", 400, "malformed-json"),
            ("/sessions/f/fault", "<page>1</page>", "application/xml", 415, "unsupported-media-type"),
            ("/sessions/f/fault", "page=x", "application/x-www-form-urlencoded", 400, "invalid-field"),
            ("/sessions/f/fault?page=1", #"{"page":1}"#, "application/json", 400, "invalid-query"),
            ("/sessions/f/fault", "", nil, 400, "invalid-field"),
            ("/sessions/f/faults", #"{"pages":[1,1000]}"#, "application/json", 422, "fault-beyond-memory"),
            ("/sessions/f/faults", #"{"pages":[1,2],"streams":[1]}"#, "application/json", 400, "invalid-field"),
            ("/sessions/f/faults", "pages=1", "application/x-www-form-urlencoded", 415, "unsupported-media-type"),
            ("/sessions/f/faults", "", nil, 400, "invalid-field"),
        ]
        for (target, body, type, status, kind) in cases {
            let r = try c.request("POST", target, body: body, contentType: type)
            #expect(r.status == status, "\(target) \(body)")
            #expect(r.problemType == "urn:prepage:problem:\(kind)", "\(target) \(body)")
        }
        // None of them changed anything.
        let doc = try c.request("GET", "/sessions/f")
        #expect((doc.json["stats"] as? [String: Any])?["faults"] as? Int == 0)
        #expect(((doc.json["state"] as? [String: Any])?["streams"] as? [Any])?.isEmpty == true)
    }

    @Test func batchOfMoreThan65536IsRejected() throws {
        let s = try TestServer()
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/b", body: "{}").status == 201)
        let body = "{\"pages\":[" + Array(repeating: "1", count: 65_537).joined(separator: ",") + "]}"
        let r = try c.request("POST", "/sessions/b/faults", body: body)
        #expect(r.status == 400)
        let ok = "{\"pages\":[" + (0..<65_536).map(String.init).joined(separator: ",") + "]}"
        let answer = try c.request("POST", "/sessions/b/faults", body: ok)
        #expect(answer.status == 200)
        #expect((answer.json["decisions"] as? [Any])?.count == 65_536)
    }

    @Test func unknownRouteIs404AndWrongMethodIs405WithAllow() throws {
        let s = try TestServer()
        let c = try s.client()
        for path in ["/", "/nope", "/sessions/", "/sessions/a/b", "/sessions/a/fault/x", "/livez/"] {
            let r = try c.request("GET", path)
            #expect(r.status == 404, "\(path)")
            #expect(r.problemType == "urn:prepage:problem:route-not-found")
        }
        let cases: [(String, String, String)] = [
            ("POST", "/livez", "GET, HEAD"), ("DELETE", "/sessions", "GET, HEAD"),
            ("POST", "/sessions/a", "GET, HEAD, PUT, DELETE"), ("GET", "/sessions/a/fault", "POST"),
            ("PUT", "/sessions/a/faults", "POST"), ("GET", "/sessions/a/reset", "POST"),
            ("PATCH", "/metrics", "GET, HEAD"), ("OPTIONS", "/version", "GET, HEAD"),
        ]
        for (method, path, allow) in cases {
            let r = try c.request(method, path)
            #expect(r.status == 405, "\(method) \(path)")
            #expect(r.header("allow") == allow)
            #expect(r.problemType == "urn:prepage:problem:method-not-allowed")
        }
    }

    @Test func tokenIsRequiredExceptOnProbes() throws {
        let s = try TestServer(token: "s3cret")
        let c = try s.client()
        for path in ["/livez", "/healthz", "/readyz"] { #expect(try c.request("GET", path).status == 200) }
        for path in ["/version", "/metrics", "/sessions", "/openapi.yaml", "/nope"] {
            let r = try c.request("GET", path)
            #expect(r.status == 401, "\(path)")
            #expect(r.header("www-authenticate")?.hasPrefix("Bearer") == true)
            #expect(r.problemType == "urn:prepage:problem:unauthorized")
        }
        #expect(try c.request("GET", "/version", headers: [("Authorization", "Bearer wrong")]).status == 401)
        #expect(try c.request("GET", "/version", headers: [("Authorization", "Basic czNjcmV0")]).status == 401)
        #expect(try c.request("GET", "/version", headers: [("Authorization", "Bearer s3cret")]).status == 200)
        #expect(
            try c.request("PUT", "/sessions/t", body: "{}", headers: [("Authorization", "bearer s3cret")]).status == 201
        )
        // Unauthorized requests change nothing.
        #expect(try c.request("DELETE", "/sessions/t").status == 401)
        #expect(try c.request("GET", "/sessions/t", headers: [("Authorization", "Bearer s3cret")]).status == 200)
    }

    @Test func sessionLimitIs429() throws {
        let s = try TestServer(maxSessions: 2)
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/a", body: "{}").status == 201)
        #expect(try c.request("PUT", "/sessions/b", body: "{}").status == 201)
        let r = try c.request("PUT", "/sessions/c", body: "{}")
        #expect(r.status == 429)
        #expect(r.problemType == "urn:prepage:problem:too-many-sessions")
        #expect(try c.request("PUT", "/sessions/a", body: "{}").status == 200)
        #expect(try c.request("DELETE", "/sessions/a").status == 200)
        #expect(try c.request("PUT", "/sessions/c", body: "{}").status == 201)
    }

    @Test func unsupportedContentTypeIs415() throws {
        let s = try TestServer()
        let c = try s.client()
        let r = try c.request("PUT", "/sessions/x", body: "max_pages=4", contentType: "text/plain")
        #expect(r.status == 415)
        #expect(r.problemType == "urn:prepage:problem:unsupported-media-type")
    }

    @Test func requestIDIsEchoedOrGenerated() throws {
        let s = try TestServer()
        let c = try s.client()
        #expect(
            try c.request("GET", "/livez", headers: [("X-Request-ID", "abc-123")]).header("x-request-id") == "abc-123")
        let a = try c.request("GET", "/livez").header("x-request-id")
        let b = try c.request("GET", "/nope").header("x-request-id")
        #expect(a != nil && b != nil && a != b)
        // An id with spaces is not echoed: a fresh one is generated.
        #expect(try c.request("GET", "/livez", headers: [("X-Request-ID", "a b")]).header("x-request-id") != "a b")
    }

    @Test func metricsCountRequestsFaultsAndSessions() throws {
        let s = try TestServer()
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/m", body: "{}").status == 201)
        #expect(try c.request("POST", "/sessions/m/fault", body: #"{"page":5}"#).status == 200)
        #expect(try c.request("POST", "/sessions/m/fault", body: #"{"page":6}"#).status == 200)
        #expect(try c.request("GET", "/nope").status == 404)
        let r = try c.request("GET", "/metrics")
        #expect(r.status == 200)
        #expect(r.header("content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let text = r.text
        #expect(text.contains(#"prepage_requests_total{route="/sessions/{id}/fault",status="200"} 2"#))
        #expect(text.contains(#"prepage_requests_total{route="/sessions/{id}",status="201"} 1"#))
        #expect(text.contains(#"prepage_requests_total{route="unmatched",status="404"} 1"#))
        #expect(text.contains(#"prepage_faults_total{outcome="first"} 1"#))
        #expect(text.contains(#"prepage_faults_total{outcome="smaller"} 1"#))
        #expect(text.contains("prepage_sessions_live 1\n"))
        #expect(text.contains("prepage_sessions_created_total 1\n"))
        #expect(text.contains("prepage_sessions_expired_total 0\n"))
        // The duration histogram by route: faults apart from the rest.
        #expect(text.contains(#"prepage_request_duration_seconds_count{route="/sessions/{id}/fault"} 2"#))
        #expect(text.contains(#"prepage_request_duration_seconds_count{route="/sessions/{id}"} 1"#))
        #expect(text.contains(#"prepage_request_duration_seconds_bucket{route="/sessions/{id}/fault",le="+Inf"} 2"#))
        #expect(text.contains(#"prepage_request_duration_seconds_count{route="unmatched"} 1"#))
        #expect(!text.contains(#"route="/livez""#), "a route never requested has no series")
        #expect(!text.contains("\"m\""), "no per-session labels")
        #expect(text.contains("prepage_resident_memory_bytes "))
        #expect(text.contains(#"prepage_build_info{version="0.1.0",api="1"} 1"#))
        // The standard process metrics, with plausible values.
        func value(_ name: String) -> Double? {
            text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap {
                Double($0.split(separator: " ")[1])
            }
        }
        #expect((value("process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect((value("process_virtual_memory_bytes") ?? 0) >= (value("process_resident_memory_bytes") ?? 1))
        #expect((value("process_open_fds") ?? 0) >= 3, "stdio and at least the listener")
        #expect((value("process_max_fds") ?? 0) >= (value("process_open_fds") ?? 1))
        #expect((value("process_cpu_seconds_total") ?? -1) >= 0)
        let started = try #require(value("process_start_time_seconds"))
        let now = Date().timeIntervalSince1970
        #expect(started > now - 86_400 * 7 && started <= now + 1, "the test process started recently: \(started)")
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            #expect(line.hasPrefix("prepage_") || line.hasPrefix("process_"), "\(line)")
        }
    }

    @Test func jsonAnswersAndProblemsEndWithANewline() throws {
        let s = try TestServer()
        let c = try s.client()
        let created = try c.request("PUT", "/sessions/nl", body: "{}")
        #expect(created.status == 201)
        #expect(created.text.hasSuffix("}\n"))
        let fault = try c.request("POST", "/sessions/nl/fault", body: #"{"page":5}"#)
        #expect(fault.text.hasSuffix("}\n"))
        #expect(fault.header("content-length") == String(fault.text.utf8.count))
        let problem = try c.request("GET", "/sessions/none")
        #expect(problem.status == 404)
        #expect(problem.text.hasSuffix("}\n"))
        #expect(try c.request("GET", "/livez").text == "{\"status\":\"ok\"}\n")
        #expect(try c.request("GET", "/metrics").text.hasSuffix("\n"))
    }

    /// openapi.yaml's operations, parsed simply: (path, METHOD) → operationId, and every
    /// operationId a response's `links` name.
    static func openAPIOperations() throws -> (operations: [String: String], linked: Set<String>) {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("openapi.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        var operations: [String: String] = [:]
        var linked: Set<String> = []
        var inPaths = false
        var path: String?
        var method: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("paths:") { inPaths = true; continue }
            if inPaths, let first = line.first, first != " ", first != "#" { break }
            guard inPaths else { continue }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("  /"), line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
                method = nil
            } else if line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                method = String(trimmed.dropLast()).uppercased()
            } else if trimmed.hasPrefix("operationId: ") {
                let id = String(trimmed.dropFirst("operationId: ".count))
                if line.hasPrefix("      "), !line.hasPrefix("       "), let path, let method {
                    operations["\(method) \(path)"] = id
                } else {
                    linked.insert(id)
                }
            }
        }
        return (operations, linked)
    }

    @Test func everyOperationOfOpenAPIIsServedUnderItsOperationId() throws {
        let spec = try Self.openAPIOperations()
        #expect(spec.operations.count >= 15)
        var served: [String: String] = [:]
        for route in Server.routes {
            for method in route.methods where method != .head {
                served["\(method.name) \(route.template)"] = route.operation(for: method)?.operationId
            }
        }
        #expect(served == spec.operations)
        // Each operation is served on one path and method, and the table names no other.
        #expect(Set(APIOperation.allCases.map(\.operationId)) == Set(spec.operations.values))
        #expect(Set(spec.operations.values).count == spec.operations.count)
        // HEAD is GET's operation wherever GET is served.
        for route in Server.routes where route.methods.contains(.get) {
            #expect(route.operation(for: .head) == route.operation(for: .get))
        }
        // A method the table does not serve names no operation (the 405 path).
        #expect(Route.fault.operation(for: .get) == nil)
        #expect(Route.session.operation(for: .post) == nil)
        #expect(spec.linked.isSubset(of: Set(spec.operations.values)), "links name \(spec.linked.sorted())")
    }
}

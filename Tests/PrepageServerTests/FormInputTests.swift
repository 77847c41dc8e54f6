import PrepageTestSupport
import Testing

@testable import PrepageServer

/// Form bodies and query strings are decoded strictly: a malformed `%` escape
/// is malformed input, answered 400 with the field and the escape named, and
/// it changes nothing (docs/api.md, "Faults"; openapi.yaml, FaultForm).
@Suite struct FormInputTests {
    func formProblem(_ s: String) -> APIProblem? {
        do {
            _ = try Array(s.utf8).withBytes { raw throws(APIProblem) in try Inputs.fault(form: raw) }
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [
        ("page=1%zz", "\"%zz\""), ("page=1%", "\"%\""), ("page=%4", "\"%4\""), ("pa%G1ge=1", "\"%G1\""),
        ("page=1&stream=%2", "\"%2\""),
    ])
    func refusesAFormFieldWithAMalformedEscape(form: String, escape: String) throws {
        let p = try #require(formProblem(form), "\(form)")
        #expect(p.kind == .invalidField)
        #expect(p.detail.contains("malformed escape \(escape)"), "\(p.detail)")
        #expect(p.detail.contains("two hex digits"), "\(p.detail)")
    }

    @Test func refusesAFormFieldThatIsNotUTF8() throws {
        let p = try #require(formProblem("page=%FF"))
        #expect(p.kind == .invalidField)
        #expect(p.detail.contains("UTF-8"), "\(p.detail)")
    }

    @Test func refusesAListQueryWithAMalformedEscape() throws {
        for query in ["after=%zz", "after=%FF", "limit=1%"] {
            var kind: ProblemKind?
            do {
                _ = try Inputs.listQuery(query)
            } catch {
                kind = error.kind
            }
            #expect(kind == .invalidQuery, "\(query)")
        }
        #expect(try Inputs.listQuery("after=a%2Bb+c&limit=%35").after == "a+b c")
        #expect(try Inputs.listQuery("after=a%2Bb+c&limit=%35").limit == 5)
    }

    /// Over a real socket: the answers, and nothing changed by them.
    @Test func answersMalformedEscapesWithAProblemAndChangesNothing() throws {
        let s = try TestServer()
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/pct", body: "{}").status == 201)
        let form = "application/x-www-form-urlencoded"
        let cases: [(String, String, String, String?, String)] = [
            ("POST", "/sessions/pct/fault", "page=1%zz", form, "invalid-field"),
            ("POST", "/sessions/pct/fault", "page=%FF", form, "invalid-field"),
            ("POST", "/sessions/pct/fault?page=%4", "", nil, "invalid-field"),
            // Kept as "%zz" by the lenient decoder this replaces, which answered 200.
            ("GET", "/sessions?after=%zz", "", nil, "invalid-query"),
            ("GET", "/sessions?after=%FF", "", nil, "invalid-query"),
        ]
        for (method, target, body, type, kind) in cases {
            let r = try c.request(method, target, body: method == "GET" ? nil : body, contentType: type)
            #expect(r.status == 400, "\(method) \(target) \(body)")
            #expect(r.problemType == "urn:prepage:problem:\(kind)", "\(method) \(target) \(body)")
            #expect((r.json["detail"] as? String)?.contains("form field") == true, "\(r.text)")
        }
        let doc = try c.request("GET", "/sessions/pct")
        #expect((doc.json["stats"] as? [String: Any])?["faults"] as? Int == 0)
        // A well-formed escape still decodes: %31 is "1".
        let ok = try c.request("POST", "/sessions/pct/fault", body: "page=%31", contentType: form)
        #expect(ok.status == 200)
        #expect(ok.json["outcome"] as? String == "first")
        #expect(ok.json["start"] as? Int == 1)
    }
}

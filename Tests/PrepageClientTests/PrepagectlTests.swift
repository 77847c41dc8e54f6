import Foundation
import Testing

/// The built prepagectl executable against the real server on port 0.
@Suite struct PrepagectlTests {
    let server: LiveServer
    init() throws { server = try LiveServer() }

    /// `prepagectl COMMAND --url URL REST`: the options sit on every subcommand.
    func ctl(_ command: [String], _ rest: [String], stdin: String? = nil) throws -> Run {
        try prepagectl(command + ["--url", server.url] + rest, stdin: stdin)
    }

    @Test func managesSessions() throws {
        let create = try ctl(["session", "create"], ["vm-1", "--max-pages", "256", "--label", "owner=ops", "--json"])
        #expect(create.status == 0, "\(create.stderr)")
        let doc = jsonObject(create.stdout)
        #expect(doc["id"] as? String == "vm-1")
        #expect((doc["stats"] as? [String: Any])?["last_fault_at"] is NSNull)
        let config = doc["config"] as? [String: Any]
        #expect(config?["max_pages"] as? Int == 256)
        #expect((config?["labels"] as? [String: String]) == ["owner": "ops"])

        let text = try ctl(["session", "get"], ["vm-1"])
        #expect(text.status == 0 && text.stdout.contains("max_pages=256") && text.stdout.contains("owner=ops"))

        _ = try ctl(["session", "create"], ["vm-2"])
        let list = try ctl(["session", "list"], ["--limit", "1", "--all", "--json"])
        let ids = (jsonObject(list.stdout)["sessions"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
        #expect(ids == ["vm-1", "vm-2"])

        let reset = try ctl(["session", "reset"], ["vm-1"])
        #expect(reset.status == 0 && reset.stdout.hasPrefix("reset session vm-1"))
        let delete = try ctl(["session", "delete"], ["vm-1", "--json"])
        #expect(delete.status == 0 && jsonObject(delete.stdout)["id"] as? String == "vm-1")
        let gone = try ctl(["session", "get"], ["vm-1"])
        #expect(gone.status == 1)
        #expect(gone.stderr.contains("404") && gone.stderr.contains("vm-1"))
    }

    /// `session move`, `export` and `import`: the session arrives with what it learned.
    @Test func movesExportsAndImportsSessions() throws {
        let other = try LiveServer()
        #expect(try ctl(["session", "create"], ["vm-m", "--policy", "dp", "--max-pages", "64"]).status == 0)
        for page in [100, 101, 102, 103, 500, 501, 900] {
            #expect(try ctl(["fault"], ["vm-m", "\(page)"]).status == 0)
        }
        let exported = try ctl(["session", "export"], ["vm-m"])
        #expect(exported.status == 0 && jsonObject(exported.stdout)["format"] as? String == "prepage-session-state")
        let move = try ctl(["session", "move"], ["vm-m", "--to", other.url, "--json"])
        #expect(move.status == 0, "\(move.stderr)")
        #expect((jsonObject(move.stdout)["stats"] as? [String: Any])?["faults"] as? Int == 7)
        #expect(try ctl(["session", "get"], ["vm-m"]).status == 1)
        let there = try prepagectl(["session", "export", "--url", other.url, "vm-m"])
        #expect(there.stdout == exported.stdout)
        // Back through a file, under another id.
        let file = NSTemporaryDirectory() + "prepagectl-state-\(UUID().uuidString.prefix(6)).json"
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(try prepagectl(["session", "export", "--url", other.url, "vm-m", "-o", file]).status == 0)
        let imported = try ctl(["session", "import"], ["vm-n", file])
        #expect(imported.status == 0 && imported.stdout.hasPrefix("imported session vm-n"), "\(imported.stderr)")
        let fromStdin = try ctl(["session", "import"], ["vm-n", "-"], stdin: there.stdout)
        #expect(fromStdin.status == 0 && fromStdin.stdout.hasPrefix("replaced session vm-n"))
        let refused = try ctl(["session", "import"], ["vm-x", "-"], stdin: #"{"config":{},"format":"other"}"#)
        #expect(refused.status == 1 && refused.stderr.contains("400") && refused.stderr.contains("state.format"))
        #expect(try ctl(["session", "import"], ["vm-x", "-"], stdin: "{}").status == 64)
    }

    @Test func createsABaselineSessionWithItsFields() throws {
        let run = try ctl(
            ["session", "create"], ["ra-1", "--policy", "readahead", "--ra-initial", "4", "--ra-max", "32"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("policy=readahead") && run.stdout.contains("ra_initial=4 ra_max=32"))
    }

    @Test func printsAFallbackDecisionOnlyWhenAsked() throws {
        let closed = "http://127.0.0.1:\(closedPort())"
        let strict = try prepagectl(["fault", "--url", closed, "x", "42", "--json"])
        #expect(strict.status == 1 && strict.stderr.contains("io error"))
        let agent = try prepagectl(["fault", "--url", closed, "x", "42", "--json", "--fallback"])
        #expect(agent.status == 0, "\(agent.stderr)")
        let d = jsonObject(agent.stdout)
        #expect(d["outcome"] as? String == "fallback" && d["start"] as? Int == 42 && d["count"] as? Int == 1)
        #expect(agent.stderr.contains("fallback decision"))
    }

    @Test func sendsTheDpPlusFields() throws {
        // This server refuses them for policy dp, naming the field: they reach it.
        let run = try ctl(["session", "create"], ["p-1", "--policy", "dp", "--rtt-us", "250.5"])
        #expect(run.status == 1 && run.stderr.contains("rtt_us"))
    }

    @Test func printsOneDecision() throws {
        _ = try ctl(["session", "create"], ["f-1", "--page-size", "4096"])
        let page = try ctl(["fault"], ["f-1", "0x10", "--json"])
        #expect(page.status == 0, "\(page.stderr)")
        let d = jsonObject(page.stdout)
        #expect(d["outcome"] as? String == "first" && d["start"] as? Int == 16)

        let addr = try ctl(["fault"], ["f-1", "0x7f0000001000", "--addr", "--stream", "2"])
        #expect(addr.status == 0 && addr.stdout.contains("pages [\(0x7f00_0000_1000 / 4_096),"))
        #expect(addr.stdout.contains("first"))
    }

    @Test func replaysATraceFromStdinAndFromAFile() throws {
        _ = try ctl(["session", "create"], ["r-1"])
        _ = try ctl(["session", "create"], ["r-2"])
        let trace = """
            # a scan with a repeat
            100
            101   # inside the first window or the next
            0x66 1
            100

            """
        let fromStdin = try ctl(["replay"], ["r-1", "-", "--json"], stdin: trace)
        #expect(fromStdin.status == 0, "\(fromStdin.stderr)")
        let decisions = fromStdin.stdout.split(separator: "\n").map { jsonObject(String($0)) }
        #expect(decisions.count == 4)
        #expect(decisions.first?["outcome"] as? String == "first")

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("trace-\(server.port).txt")
        try trace.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let fromFile = try ctl(["replay"], ["r-2", file.path, "--json", "--batch", "1"])
        #expect(fromFile.stdout == fromStdin.stdout)

        // Addresses, divided here by --page-size.
        _ = try ctl(["session", "create"], ["r-3"])
        let addrs = try ctl(
            ["replay"], ["r-3", "-", "--addr", "--page-size", "4096", "--json"], stdin: "409600\n0x64000\n")
        let pages = addrs.stdout.split(separator: "\n").map { jsonObject(String($0))["start"] as? Int }
        #expect(addrs.status == 0 && pages.first == 100)
    }

    @Test func rejectsABadTraceLineWithItsNumber() throws {
        _ = try ctl(["session", "create"], ["bad-1"])
        let run = try ctl(["replay"], ["bad-1", "-"], stdin: "1\n2\nzz9\n")
        #expect(run.status == 65)
        #expect(run.stderr.contains("<stdin>:3"), "\(run.stderr)")
        // Nothing was sent.
        let session = try ctl(["session", "get"], ["bad-1", "--json"])
        #expect((jsonObject(session.stdout)["stats"] as? [String: Any])?["faults"] as? Int == 0)
    }

    @Test func printsTheServerDetailAndFails() throws {
        let run = try ctl(["session", "create"], ["x", "--max-pages", "99999999"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("400") && run.stderr.contains("max_pages"))
        let invalid = try ctl(["fault"], ["bad id", "1"])
        #expect(invalid.status == 64 && invalid.stderr.contains("bad id"))
        let notANumber = try ctl(["fault"], ["x", "12q"])
        #expect(notANumber.status != 0)
    }

    @Test func readsURLAndTokenFromTheEnvironment() throws {
        let guarded = try LiveServer(token: "tok")
        let env = ["PREPAGE_URL": guarded.url, "PREPAGE_TOKEN": "tok"]
        let ok = try prepagectl(["session", "create", "e-1"], environment: env)
        #expect(ok.status == 0, "\(ok.stderr)")
        let denied = try prepagectl(["session", "create", "e-2"], environment: ["PREPAGE_URL": guarded.url])
        #expect(denied.status == 1 && denied.stderr.contains("401"))
        let flag = try prepagectl(["session", "get", "e-1", "--url", guarded.url, "--token", "tok"])
        #expect(flag.status == 0)
    }

    @Test func reportsARefusedConnection() throws {
        let run = try prepagectl(["session", "list", "--url", "http://127.0.0.1:\(closedPort())"])
        #expect(run.status == 1 && run.stderr.contains("io error"))
    }
}

import Foundation
import Testing

/// `prepage-sim --server`: the agent policies driven through the real server
/// with the client library give the decisions the simulator makes in-process.
@Suite struct SimulatorServerTests {
    let server: LiveServer
    init() throws { server = try LiveServer() }

    func sim(_ arguments: [String], stdin: String? = nil) throws -> Run {
        try run(builtExecutable("prepage-sim"), arguments, stdin: stdin)
    }

    @Test func compareThroughTheServerEqualsInProcess() throws {
        let args = [
            "compare", "--only", "noise-around", "--seeds", "2", "--scale", "0.05",
            "--policies", "none,forward,readahead,dp,dp-literal,dp-plus,oracle",
        ]
        let local = try sim(args)
        let remote = try sim(args + ["--server", server.url])
        #expect(local.status == 0 && remote.status == 0, "\(remote.stderr)")
        #expect(local.stdout.contains("dp-literal") && local.stdout.contains("dp-plus"))
        #expect(remote.stdout == local.stdout)
    }

    @Test func replayThroughTheServerEqualsInProcess() throws {
        let trace = (0..<400).map { i in String(10_000 + (i % 50) * 7 + (i / 50) * 1_000) }.joined(separator: "\n")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("sim-\(getpid()).trace")
        try trace.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        for policy in ["dp", "readahead", "dp-plus"] {
            let local = try sim(["replay", "--trace", file.path, "--policy", policy])
            let remote = try sim(["replay", "--trace", file.path, "--policy", policy, "--server", server.url])
            #expect(local.status == 0 && remote.status == 0, "\(remote.stderr)")
            #expect(remote.stdout == local.stdout)
        }
    }

    @Test func leavesNoSessionBehind() throws {
        let compare = try sim([
            "compare", "--only", "fsd-clean", "--seeds", "1", "--scale", "0.02", "--policies", "dp,dp-plus",
            "--server", server.url,
        ])
        #expect(compare.status == 0, "\(compare.stderr)")
        let list = try prepagectl(["session", "list", "--url", server.url, "--json"])
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout.contains("\"sessions\""))
        #expect(!list.stdout.contains("prepage-sim-"))
    }

    @Test func reportsAnUnreachableServer() throws {
        let r = try sim([
            "compare", "--only", "fsd-clean", "--seeds", "1", "--policies", "dp", "--server",
            "http://127.0.0.1:\(closedPort())",
        ])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--server"))
    }
}

import Foundation
import Testing

/// The `prepaged` executable: flags, environment, exit codes, SIGTERM.
/// `swift build --build-tests` (what `make test` runs) builds it beside the test bundle.
@Suite struct CLITests {
    static var binary: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/prepaged")
    }

    struct Run {
        var status: Int32
        var output: String
    }

    /// A prepaged started in the background, its stderr log read up to the listening line.
    final class Launched {
        let process = Process()
        let reader: FileHandle
        var log = ""
        var port: Int?

        /// - Parameter address: the pattern of the address in the listening line (the port is after its last `:`).
        init(_ arguments: [String], environment: [String: String]? = nil, address: String = #"127\.0\.0\.1:[0-9]+"#)
            throws
        {
            process.executableURL = CLITests.binary
            process.arguments = arguments
            if let environment { process.environment = environment }
            let pipe = Pipe()
            process.standardError = pipe
            process.standardOutput = FileHandle.nullDevice
            reader = pipe.fileHandleForReading
            try process.run()
            let deadline = Date().addingTimeInterval(10)
            while port == nil && Date() < deadline {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                log += String(decoding: chunk, as: UTF8.self)
                if let range = log.range(of: address, options: .regularExpression) {
                    port = Int(log[range].split(separator: ":").last!)
                }
            }
        }

        /// Reads the rest of the log (until the process closes stderr).
        func readRest() {
            log += String(decoding: reader.readDataToEndOfFile(), as: UTF8.self)
        }

        deinit { if process.isRunning { process.terminate() } }
    }

    /// Runs prepaged to completion with `arguments` and `environment` (added to a clean one).
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Run {
        let p = Process()
        p.executableURL = binary
        p.arguments = arguments
        p.environment = environment.merging(["PATH": "/usr/bin:/bin"]) { a, _ in a }
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    @Test func helpDocumentsEveryFlagWithItsDefault() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path), "build prepaged first")
        let r = try Self.run(["--help"])
        #expect(r.status == 0)
        for text in [
            "--host", "127.0.0.1", "--port", "7070", "--threads", "--token-file", "--max-sessions", "1000000",
            "--session-idle-timeout", "24h", "--max-body-bytes", "4194304", "--log-level", "info", "--log-format",
            "text", "--shutdown-delay", "5s", "PREPAGE_",
        ] {
            #expect(r.output.contains(text), "\(text) missing from --help")
        }
    }

    /// The host message's list of what is accepted.
    static let hostAccepted =
        "is not a numeric IPv4 or IPv6 address; accepted: e.g. 127.0.0.1, 0.0.0.0, ::1, :: (no brackets), "
        + "or localhost (127.0.0.1)"

    @Test(arguments: [
        (["--port", "70000"], "Error: --port must be 0 … 65535, got 70000"),
        (["--port", "x"], "Error: The value 'x' is invalid for '--port <port>'"),
        (["--host", "[::1]"], "Error: --host \"[::1]\" \(hostAccepted)"),
        (["--host", "256.0.0.1"], "Error: --host \"256.0.0.1\" \(hostAccepted)"),
        (["--host", "example.com"], "Error: --host \"example.com\" \(hostAccepted)"),
        (["--host", "::g"], "Error: --host \"::g\" \(hostAccepted)"),
        (["--threads", "0"], "Error: --threads must be 1 … 1024, got 0"),
        (
            ["--session-idle-timeout", "5x"],
            "Error: --session-idle-timeout \"5x\" is not a duration in 0 … 3650d; "
                + "give seconds, or 30s, 15m, 24h, 2d; 0 never"
        ),
        (
            ["--shutdown-delay", "5x"],
            "Error: --shutdown-delay \"5x\" is not a duration up to 1h; give seconds, or 5s, 1m; 0 closes at once"
        ),
        (
            ["--shutdown-delay", "2h"],
            "Error: --shutdown-delay \"2h\" is not a duration up to 1h; give seconds, or 5s, 1m; 0 closes at once"
        ),
        (
            ["--log-level", "loud"],
            "Error: --log-level \"loud\" is unknown; accepted: trace, debug, info, notice, warning, error, critical"
        ),
        (["--log-format", "xml"], "Error: --log-format \"xml\" is unknown; accepted: text, json"),
        (["--max-sessions", "0"], "Error: --max-sessions must be 1 … 100000000, got 0"),
        (["--bogus"], "Error: Unknown option '--bogus'"),
        (["--token-file", "/nonexistent/token"], "Error: --token-file /nonexistent/token: cannot read it"),
    ])
    func badFlagValueExits2WithAClearMessage(_ arguments: [String], _ message: String) throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        let r = try Self.run(arguments)
        #expect(r.status == 2, "\(arguments): \(r.output)")
        // The message is the first line, then the usage.
        #expect(r.output.split(separator: "\n").first.map(String.init) == message, "\(r.output)")
        #expect(r.output.contains("Usage: prepaged <options>"), "\(r.output)")
    }

    @Test func badEnvironmentValueExits2() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        let r = try Self.run([], environment: ["PREPAGE_LOG_FORMAT": "xml"])
        #expect(r.status == 2)
        #expect(r.output.contains("xml"))
    }

    /// A session refused for a limit is told which flag raises it (the server library's
    /// own advice names no flags; prepaged gives its command line's).
    @Test func aSessionRefusedForALimitIsToldTheFlagThatRaisesIt() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        let few = try Launched(["--port", "0", "--threads", "1", "--shutdown-delay", "0", "--max-sessions", "1"])
        let c = try RawClient(port: try #require(few.port, "no listening line in: \(few.log)"))
        #expect(try c.request("PUT", "/sessions/a", body: "{}").status == 201)
        let r = try c.request("PUT", "/sessions/b", body: "{}")
        #expect(r.status == 429)
        #expect(
            r.json["detail"] as? String
                == "the server holds its limit of 1 sessions; delete some or raise --max-sessions")

        let small = try Launched(["--port", "0", "--threads", "1", "--shutdown-delay", "0", "--memory-limit", "1M"])
        let m = try RawClient(port: try #require(small.port, "no listening line in: \(small.log)"))
        let labels = (0..<16).map {
            "\"k\($0)\(String(repeating: "x", count: 120))\":\"\(String(repeating: "v", count: 1_024))\""
        }
        let body = "{\"labels\":{\(labels.joined(separator: ","))}}"
        var refused: Response?
        for i in 0..<200 {
            let r = try m.request("PUT", "/sessions/m\(i)", body: body)
            if r.status != 201 {
                refused = r
                break
            }
        }
        let full = try #require(refused, "1 MiB held 200 sessions of 16 large labels")
        #expect(full.status == 507)
        let detail = try #require(full.json["detail"] as? String)
        #expect(detail.hasPrefix("the sessions' memory budget is spent: "))
        #expect(detail.hasSuffix("; delete sessions or raise --memory-limit"))
    }

    /// Starts the binary on port 0, reads the port from its log, serves a request,
    /// then SIGTERM: it drains and exits 0.
    @Test func servesThenExitsZeroOnSIGTERM() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        // Environment gives the port and format; the command line wins for threads.
        let server = try Launched(
            ["--threads", "1"],
            environment: [
                "PREPAGE_PORT": "0", "PREPAGE_LOG_FORMAT": "json", "PREPAGE_THREADS": "bogus",
                "PREPAGE_SHUTDOWN_DELAY": "0",
            ])
        let p = server.process
        let bound = try #require(server.port, "no listening line in: \(server.log)")
        let c = try RawClient(port: bound)
        let r = try c.request("GET", "/livez", headers: [("X-Request-ID", "cli-test-1")])
        #expect(r.status == 200)
        kill(p.processIdentifier, SIGTERM)
        let start = Date()
        server.readRest()
        p.waitUntilExit()
        let log = server.log
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(p.terminationReason == .exit)
        #expect(p.terminationStatus == 0)
        #expect(c.isClosedByServer())
        // One JSON log line per request, with method, route, status, microseconds and request
        // id; numbers are JSON numbers, strings stay strings.
        let line = try #require(log.split(separator: "\n").first { $0.contains("cli-test-1") })
        #expect(line.contains(#""status":200,"#), "\(line)")
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        #expect(object?["message"] as? String == "request")
        #expect(object?["method"] as? String == "GET")
        #expect(object?["route"] as? String == "/livez")
        #expect(object?["status"] as? Int == 200)
        #expect((object?["us"] as? Int).map { $0 >= 0 } == true)
        #expect(object?["loop"] as? Int == 0)
        #expect(object?["request_id"] as? String == "cli-test-1")
        let listening = try #require(log.split(separator: "\n").first { $0.contains("\"listening\"") })
        #expect(listening.contains(#""threads":1"#), "\(listening)")
        #expect(log.contains("draining"))
    }

    @Test func textLogLineCarriesTheProblemDetail() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        let server = try Launched(["--port", "0", "--threads", "1", "--log-format", "text", "--shutdown-delay", "0"])
        let p = server.process
        let c = try RawClient(port: try #require(server.port))
        #expect(try c.request("GET", "/sessions/x%20y", headers: [("X-Request-ID", "bad-id-1")]).status == 400)
        kill(p.processIdentifier, SIGTERM)
        server.readRest()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let line = try #require(server.log.split(separator: "\n").first { $0.contains("bad-id-1") })
        #expect(
            line.range(of: #"^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z info request "#, options: .regularExpression)
                != nil)
        for field in ["method=GET", "route=/sessions/{id}", "status=400", "request_id=bad-id-1", "detail=\"session id"]
        {
            #expect(line.contains(field), "\(field) missing from \(line)")
        }
        #expect(line.contains(" us="))
    }

    /// A second prepaged on a port in use must not start: SO_REUSEPORT would let it
    /// join the first one's listener group and take part of its connections.
    @Test func aPortInUseExits2NamingTheAddress() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        let first = try Launched(["--port", "0", "--threads", "2", "--shutdown-delay", "0"])
        let port = try #require(first.port, "no listening line in: \(first.log)")
        for host in ["127.0.0.1", "0.0.0.0", "localhost"] {
            let second = try Self.run(["--host", host, "--port", "\(port)", "--threads", "2"])
            #expect(second.status == 2, "\(host): \(second.output)")
            let named = host == "localhost" ? "127.0.0.1" : host
            #expect(second.output.contains("address in use: \(named):\(port)"), "\(second.output)")
        }
        // The first one never shared its port: every new connection reaches it.
        for _ in 0..<20 {
            #expect(try RawClient(port: port).request("GET", "/livez").status == 200)
        }
        kill(first.process.processIdentifier, SIGTERM)
        first.process.waitUntilExit()
        #expect(first.process.terminationStatus == 0)
    }

    @Test func listensOnIPv6Loopback() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        let server = try Launched(
            ["--host", "::1", "--port", "0", "--threads", "1", "--shutdown-delay", "0"], address: #"\[::1\]:[0-9]+"#)
        let port = try #require(server.port, "no [::1]:PORT in: \(server.log)")
        let r = try RawClient(port: port, host: "::1").request("GET", "/version")
        #expect(r.status == 200)
        #expect(r.json["version"] as? String == "0.1.0")
        // ::1 is IPv6 only: nothing answers on 127.0.0.1 at that port.
        #expect(throws: (any Error).self) { try RawClient(port: port, host: "127.0.0.1") }
        kill(server.process.processIdentifier, SIGTERM)
        server.process.waitUntilExit()
        #expect(server.process.terminationStatus == 0)
    }

    @Test func theWildcardIPv6AddressTakesIPv4Too() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        let server = try Launched(
            ["--host", "::", "--port", "0", "--threads", "1", "--shutdown-delay", "0"], address: #"\[::\]:[0-9]+"#)
        let port = try #require(server.port, "no [::]:PORT in: \(server.log)")
        #expect(try RawClient(port: port, host: "::1").request("GET", "/livez").status == 200)
        #expect(try RawClient(port: port, host: "127.0.0.1").request("GET", "/livez").status == 200)
        kill(server.process.processIdentifier, SIGTERM)
        server.process.waitUntilExit()
    }

    /// SIGTERM: readiness turns 503 first while every route keeps serving, new
    /// connections included, for the shutdown delay; then the listeners close and the
    /// process exits 0.
    @Test func sigtermKeepsServingWithReadinessDownForTheDelay() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        let server = try Launched(["--port", "0", "--threads", "2", "--shutdown-delay", "3s", "--log-format", "json"])
        let port = try #require(server.port)
        let kept = try RawClient(port: port)
        #expect(try kept.request("PUT", "/sessions/drain", body: "{}").status == 201)
        #expect(try RawClient(port: port).request("GET", "/readyz").status == 200)
        kill(server.process.processIdentifier, SIGTERM)
        var readiness = 200
        for _ in 0..<200 where readiness == 200 {
            readiness = try RawClient(port: port).request("GET", "/readyz").status
            if readiness == 200 { Thread.sleep(forTimeInterval: 0.01) }
        }
        #expect(readiness == 503)
        // Still serving: on a connection opened before the signal and on new ones.
        #expect(try kept.request("POST", "/sessions/drain/fault", body: #"{"page":1}"#).status == 200)
        let fresh = try RawClient(port: port)
        #expect(try fresh.request("POST", "/sessions/drain/fault", body: #"{"page":2}"#).status == 200)
        #expect(try fresh.request("GET", "/livez").status == 200)
        server.readRest()
        server.process.waitUntilExit()
        #expect(server.process.terminationStatus == 0)
        #expect(throws: (any Error).self) { try RawClient(port: port).request("GET", "/livez") }
        let log = server.log
        let shutting = try #require(log.range(of: "shutting down"))
        let draining = try #require(log.range(of: "\"draining\""))
        #expect(shutting.lowerBound < draining.lowerBound)
        #expect(log.contains(#""delay_ms":3000"#))
    }

    @Test func versionFlagsNameTheProjectVersion() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        let spec = try String(
            contentsOf: Self.binary.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("openapi.yaml"), encoding: .utf8)
        let line = try #require(spec.split(separator: "\n").first { $0.hasPrefix("  version: ") })
        let version = line.dropFirst("  version: ".count)
        let prepaged = try Self.run(["--version"])
        #expect(prepaged.status == 0)
        #expect(prepaged.output == "prepaged \(version)\n")
        let ctl = Self.binary.deletingLastPathComponent().appendingPathComponent("prepagectl")
        try #require(FileManager.default.isExecutableFile(atPath: ctl.path), "build prepagectl first")
        let p = Process()
        p.executableURL = ctl
        p.arguments = ["--version"]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(out.hasPrefix("prepagectl \(version) (libprepage 1."), "\(out)")
    }
}

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

        init(_ arguments: [String], environment: [String: String]? = nil) throws {
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
                if let range = log.range(of: #"127\.0\.0\.1:[0-9]+"#, options: .regularExpression) {
                    port = Int(log[range].split(separator: ":")[1])
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
            "text", "PREPAGE_",
        ] {
            #expect(r.output.contains(text), "\(text) missing from --help")
        }
    }

    @Test(arguments: [
        ["--port", "70000"], ["--port", "x"], ["--host", "::1"], ["--host", "256.0.0.1"], ["--threads", "0"],
        ["--session-idle-timeout", "5x"],
        ["--log-level", "loud"], ["--log-format", "xml"], ["--max-sessions", "0"], ["--bogus"],
        ["--token-file", "/nonexistent/token"],
    ])
    func badFlagValueExits2WithAClearMessage(_ arguments: [String]) throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        let r = try Self.run(arguments)
        #expect(r.status == 2, "\(arguments): \(r.output)")
        #expect(r.output.contains("Error") || r.output.contains("error"), "\(r.output)")
    }

    @Test func badEnvironmentValueExits2() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        let r = try Self.run([], environment: ["PREPAGE_LOG_FORMAT": "xml"])
        #expect(r.status == 2)
        #expect(r.output.contains("xml"))
    }

    /// Starts the binary on port 0, reads the port from its log, serves a request,
    /// then SIGTERM: it drains and exits 0.
    @Test func servesThenExitsZeroOnSIGTERM() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        // Environment gives the port and format; the command line wins for threads.
        let server = try Launched(
            ["--threads", "1"],
            environment: ["PREPAGE_PORT": "0", "PREPAGE_LOG_FORMAT": "json", "PREPAGE_THREADS": "bogus"])
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
        // One JSON log line per request, with method, route, status, microseconds and request id.
        let line = try #require(log.split(separator: "\n").first { $0.contains("cli-test-1") })
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        #expect(object?["message"] as? String == "request")
        #expect(object?["method"] as? String == "GET")
        #expect(object?["route"] as? String == "/livez")
        #expect(object?["status"] as? String == "200")
        #expect(Int(object?["us"] as? String ?? "") != nil)
        #expect(log.contains("draining"))
    }

    @Test func textLogLineCarriesTheProblemDetail() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path))
        let server = try Launched(["--port", "0", "--threads", "1", "--log-format", "text"])
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
}

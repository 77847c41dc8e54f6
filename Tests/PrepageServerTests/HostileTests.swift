import Foundation
import Glibc
import PrepageSockets
import Testing

/// The `prepaged` executable attacked as a hostile client would (issue 12).
///
/// Each test starts the real binary (`PREPAGED_BINARY`, default `.build/debug/prepaged`),
/// so the same tests run against an older build to show what they catch:
/// `PREPAGED_BINARY=/tmp/old/prepaged swift test --skip-build --filter HostileBinaryTests`.
@Suite(.serialized) struct HostileBinaryTests {
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["PREPAGED_BINARY"] { return path }
        return CLITests.binary.path
    }

    /// A free loopback port (bound, read, released).
    static func freePort() throws -> Int {
        let fd = try Socket.listen(host: "127.0.0.1", port: 0, reusePort: false)
        defer { Socket.close(fd) }
        return try Socket.localPort(fd)
    }

    /// prepaged on a port chosen here, its stderr into `stderr` (a pipe the test may never read).
    final class Daemon: @unchecked Sendable {
        let process = Process()
        let port: Int
        let stderr = Pipe()

        /// - Parameter readStderr: read the log as it comes (else nobody reads it).
        init(_ arguments: [String], readStderr: Bool = true) throws {
            port = try HostileBinaryTests.freePort()
            if readStderr {
                let reader = stderr.fileHandleForReading
                Thread { while !reader.availableData.isEmpty {} }.start()
            }
            process.executableURL = URL(fileURLWithPath: HostileBinaryTests.binary)
            // No shutdown delay: these tests are about the drain itself, which then begins at SIGTERM.
            process.arguments = ["--port", "\(port)", "--threads", "2", "--shutdown-delay", "0"] + arguments
            process.standardError = stderr
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                if let fd = try? Socket.connect(host: "127.0.0.1", port: port) {
                    Socket.close(fd)
                    return
                }
                guard process.isRunning else { throw TestError.closed }
                usleep(20_000)
            }
            throw TestError.timeout
        }

        /// Peak resident memory (VmHWM) in bytes.
        var peakResidentBytes: Int {
            let status =
                (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
            for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
                return (Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0) * 1_024
            }
            return 0
        }

        func client() throws -> RawClient { try RawClient(port: port) }

        /// SIGTERM, then waits up to `seconds` for the exit; `false` if it did not end (then killed).
        @discardableResult
        func terminate(within seconds: Double = 15) -> Bool {
            guard process.isRunning else { return true }
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                return false
            }
            return true
        }

        deinit { if process.isRunning { terminate(within: 2) } }
    }

    /// Runs the binary to completion; one that starts serving instead of refusing its
    /// flags is stopped after 3 s and reported with status -1.
    static func run(_ arguments: [String]) throws -> CLITests.Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = arguments
        p.environment = ["PATH": "/usr/bin:/bin"]
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("prepaged-run-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        let handle = try FileHandle(forWritingTo: out)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        let deadline = Date().addingTimeInterval(3)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        var status = Int32(-1)
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        } else {
            status = p.terminationStatus
        }
        try handle.close()
        let output = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        return CLITests.Run(status: status, output: output)
    }

    static func tokenFile(_ contents: String) throws -> String {
        let path = NSTemporaryDirectory() + "prepage-token-\(UUID().uuidString)"
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // MARK: 1. Chunk extensions

    /// One-byte chunks under 1 KiB extensions: the framing limit answers 413 long before
    /// memory grows (the old server kept every raw byte until the request deadline).
    @Test func chunkExtensionsNeitherBufferNorRunOn() throws {
        let d = try Daemon([])
        let before = d.peakResidentBytes
        let c = try d.client()
        try c.send("POST /sessions/x/faults HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        let ext = ";" + String(repeating: "e", count: 500) + "=" + String(repeating: "v", count: 500)
        let block = Array(String(repeating: "1\(ext)\r\na\r\n", count: 256).utf8)
        // Up to 48 MiB; a server that answers stops reading, and the send fails or the answer is there.
        var sent = 0
        while sent < 48 << 20 {
            do { try c.send(block) } catch { break }
            sent += block.count
            if Socket.hasUnreadInput(c.fd) { break }
        }
        let r = try c.readResponse(timeout: 15)
        #expect(r.status == 413)
        #expect(r.problemType == "urn:prepage:problem:body-too-large")
        let grown = d.peakResidentBytes - before
        #expect(grown < 16 << 20, "peak RSS grew by \(grown) bytes after \(sent) bytes of chunk framing")
    }

    // MARK: 2. Credentials before the body

    @Test func unauthenticatedRequestIsRefusedAtItsHead() throws {
        let token = try Self.tokenFile("s3cret\n")
        defer { try? FileManager.default.removeItem(atPath: token) }
        let d = try Daemon(["--token-file", token])

        // Expect: 100-continue without a token: 401 at once, never 100, then the connection closes.
        let a = try d.client()
        try a.send(
            "POST /sessions/a/faults HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 4194304\r\nExpect: 100-continue\r\n\r\n"
        )
        let first = try a.readResponse(timeout: 5, interim: true)
        #expect(first.status == 401)
        #expect(first.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
        #expect(a.isClosedByServer())

        // A large body on its way: answered 401 before it is complete, and closed.
        let b = try d.client()
        try b.send(
            "PUT /sessions/b HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 4194304\r\n\r\n")
        try b.send([UInt8](repeating: 0x20, count: 65_536))
        #expect(try b.readResponse(timeout: 5).status == 401)
        #expect(b.isClosedByServer())

        // A small body already sent in full is skipped: the connection stays usable.
        let c = try d.client()
        #expect(try c.request("PUT", "/sessions/c", body: "{}").status == 401)
        #expect(try c.request("GET", "/livez").status == 200)

        // With the token: 100 Continue, then the request is served.
        let e = try d.client()
        let body = "{}"
        try e.send(
            "PUT /sessions/e HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer s3cret\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nExpect: 100-continue\r\n\r\n"
        )
        #expect(try e.readResponse(timeout: 5, interim: true).status == 100)
        try e.send(body)
        #expect(try e.readResponse(timeout: 5).status == 201)
    }

    // MARK: 3. Numeric flags

    @Test(arguments: [
        (["--max-body-bytes", "9223372036854775807"], "--max-body-bytes", "1024 … 1073741824"),
        (["--max-body-bytes", "1000000000000000000"], "--max-body-bytes", "1024 … 1073741824"),
        (["--max-body-bytes", "1023"], "--max-body-bytes", "1024 … 1073741824"),
        (["--max-sessions", "9223372036854775807"], "--max-sessions", "1 … 100000000"),
        (["--max-sessions", "0"], "--max-sessions", "1 … 100000000"),
        (["--session-idle-timeout", "9223372036854775807"], "--session-idle-timeout", "0 … 3650d"),
        (["--session-idle-timeout", "3651d"], "--session-idle-timeout", "0 … 3650d"),
        (["--memory-limit", "1000"], "--memory-limit", "1048576 … 1125899906842624"),
        (["--memory-limit", "99999999999999999999"], "--memory-limit", "1048576 … 1125899906842624"),
        (["--memory-limit", "2P"], "--memory-limit", "1048576 … 1125899906842624"),
        (["--threads", "1025"], "--threads", "1 … 1024"),
        (["--port", "65536"], "--port", "0 … 65535"),
    ])
    func numericFlagOutsideItsRangeExits2NamingIt(_ arguments: [String], _ flag: String, _ range: String) throws {
        let r = try Self.run(["--port", "0"] + arguments)
        #expect(r.status == 2, "\(arguments): \(r.output)")
        #expect(r.output.contains(flag) && r.output.contains(range), "\(arguments): \(r.output)")
    }

    // MARK: 4. A stderr nobody reads

    /// stderr into a pipe nobody reads: 10,000 requests answered, the drops counted,
    /// one line saying how many once stderr drains, and SIGTERM still ends it.
    @Test func unreadStderrNeitherBlocksTheLoopsNorSIGTERM() throws {
        let d = try Daemon(["--log-format", "text"], readStderr: false)
        let c = try d.client()
        let request = Array(RawClient.format("GET", "/livez").utf8)
        var answered = 0
        for _ in 0..<100 {
            try c.send(Array([[UInt8]](repeating: request, count: 100).joined()))
            for _ in 0..<100 where try c.readResponse(timeout: 10).status == 200 { answered += 1 }
        }
        #expect(answered == 10_000)
        let metrics = try c.request("GET", "/metrics").text
        let dropped = metrics.split(separator: "\n").first { $0.hasPrefix("prepage_log_lines_dropped_total ") }
        let count = dropped.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
        #expect(count > 0, "no drop counted: \(dropped ?? "metric missing")")
        // Read stderr now: once the queue drains, one line says how many were dropped.
        let reader = d.stderr.fileHandleForReading
        var log = ""
        let deadline = Date().addingTimeInterval(10)
        while !log.contains("log lines dropped") && Date() < deadline {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            log += String(decoding: chunk, as: UTF8.self)
        }
        #expect(log.contains("log lines dropped count="), "no report line in \(log.suffix(300))")
        #expect(d.terminate(within: 15), "prepaged did not end on SIGTERM")
    }

    @Test func sigtermEndsTheServerWhileStderrStaysBlocked() throws {
        let d = try Daemon([], readStderr: false)
        let c = try d.client()
        let request = Array(RawClient.format("GET", "/livez").utf8)
        for _ in 0..<20 {
            try c.send(Array([[UInt8]](repeating: request, count: 100).joined()))
            for _ in 0..<100 { _ = try c.readResponse(timeout: 10) }
        }
        #expect(d.terminate(within: 15), "prepaged did not end on SIGTERM with its stderr blocked")
    }

    // MARK: 7. A fault racing DELETE

    /// Four connections fault while a fifth deletes and re-creates the session: every
    /// fault answered 200 is in the final document of the session that decided it.
    @Test func noFaultIsLostToARacingDelete() throws {
        let d = try Daemon([])
        #expect(try d.client().request("PUT", "/sessions/r", body: "{}").status == 201)
        let total = 100_000
        let threads = 4
        let answered = Mutex2()
        let counted = Mutex2()
        let stop = Mutex2()
        let faulters = (0..<threads).map { _ in
            Thread {
                guard let c = try? d.client() else { return }
                let one = Array(RawClient.format("POST", "/sessions/r/fault", body: "{\"page\": 77}").utf8)
                var done = 0
                while done < total / threads {
                    let n = min(50, total / threads - done)
                    try? c.send(Array([[UInt8]](repeating: one, count: n).joined()))
                    for _ in 0..<n where (try? c.readResponse(timeout: 20))?.status == 200 { answered.add(1) }
                    done += n
                }
            }
        }
        let churner = Thread {
            guard let c = try? d.client() else { return }
            // DELETE and PUT back to back, pipelined: as many races per second as can be.
            let pair = Array(
                (RawClient.format("DELETE", "/sessions/r") + RawClient.format("PUT", "/sessions/r", body: "{}")).utf8)
            while stop.value == 0 {
                guard (try? c.send(pair)) != nil, let r = try? c.readResponse(timeout: 20),
                    (try? c.readResponse(timeout: 20)) != nil
                else { break }
                if r.status == 200 { counted.add(((r.json["stats"] as? [String: Any])?["faults"] as? Int) ?? 0) }
            }
        }
        for t in faulters + [churner] { t.start() }
        while faulters.contains(where: { !$0.isFinished }) { usleep(10_000) }
        stop.add(1)
        while !churner.isFinished { usleep(10_000) }
        let last = try d.client().request("DELETE", "/sessions/r")
        if last.status == 200 { counted.add(((last.json["stats"] as? [String: Any])?["faults"] as? Int) ?? 0) }
        #expect(answered.value > 0)
        #expect(
            answered.value == counted.value,
            "\(answered.value - counted.value) faults answered 200 were counted nowhere")
    }

    // MARK: 8. Drain

    /// Three large batches pipelined on one connection whose reader is slow, then
    /// SIGTERM: all three are answered (the old server answered two).
    @Test func drainAnswersEveryPipelinedRequestAlreadyReceived() throws {
        let d = try Daemon([])
        #expect(
            try d.client().request("PUT", "/sessions/d", body: "{\"policy\": \"dp\", \"max_streams\": 1}").status == 201
        )
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(fd) }
        var small: Int32 = 65_536
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(d.port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        try #require(connected == 0)
        // Answers of ~4.4 MB each: more than the socket buffers hold, so the first blocks.
        let pages = (0..<40_000).map { String($0 * 100) }.joined(separator: ",")
        let one = RawClient.format("POST", "/sessions/d/faults", body: "{\"pages\": [\(pages)]}")
        let all = Array((one + one + one).utf8)
        try all.withUnsafeBytes { try Socket.sendAll(fd, $0) }
        usleep(500_000)  // the first answer fills the socket; the others wait in the server
        kill(d.process.processIdentifier, SIGTERM)
        // Read every answer.
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        // Until the server closes (a loaded machine may take seconds per answer in a debug build).
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let n = try chunk.withUnsafeMutableBytes { try Socket.read(fd, into: $0, timeoutMilliseconds: 20_000) }
            guard let n, n > 0 else { break }
            buffer.append(contentsOf: chunk[0..<n])
        }
        let text = String(decoding: buffer, as: UTF8.self)
        let statuses = text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
        #expect(statuses == ["200", "200", "200"], "answers after SIGTERM: \(statuses)")
        #expect(d.terminate(within: 15))
    }

    // MARK: 9. Token file

    @Test func tokenFileWithAnInnerNewlineIsRefused() throws {
        for contents in ["abc\ndef\n", "abc\ndef", "abc def\n", "abc\n\n", "\n"] {
            let path = try Self.tokenFile(contents)
            defer { try? FileManager.default.removeItem(atPath: path) }
            let r = try Self.run(["--port", "0", "--token-file", path])
            #expect(r.status == 2, "\(contents.debugDescription): \(r.output)")
            #expect(r.output.contains("--token-file"), "\(r.output)")
        }
        let inner = try Self.tokenFile("abc\ndef\n")
        defer { try? FileManager.default.removeItem(atPath: inner) }
        #expect(try Self.run(["--port", "0", "--token-file", inner]).output.contains("newline at byte 3"))
    }

    @Test func tokenFileWithOneTrailingNewlineAuthenticates() throws {
        let path = try Self.tokenFile("tok-123\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let d = try Daemon(["--token-file", path])
        let c = try d.client()
        #expect(
            try c.request("PUT", "/sessions/t", body: "{}", headers: [("Authorization", "Bearer tok-123")]).status
                == 201)
        #expect(try c.request("GET", "/sessions/t", headers: [("Authorization", "Bearer tok-12")]).status == 401)
    }
}

/// A counter shared by test threads.
final class Mutex2: @unchecked Sendable {
    private let lock = NSLock()
    private var v = 0
    func add(_ n: Int) { lock.lock(); v += n; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return v }
}

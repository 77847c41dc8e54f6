import Foundation
import Logging
import PrepageCore
import PrepageHTTP
import PrepageServer
import PrepageSockets
import PrepageTestSupport
import Testing

/// A real server on 127.0.0.1, port 0, for one test.
final class TestServer: @unchecked Sendable {
    let server: Server
    var port: Int { server.port }
    private var stopped = false

    init(
        threads: Int = 2, token: String? = nil, maxSessions: Int = 1_000, limits: HTTPLimits = .default,
        idleTimeout: Duration = .seconds(86_400), clock: any WallClock = SystemClock(),
        drainTimeout: Duration = .seconds(8), memoryLimit: Int? = nil, logger: Logger? = nil,
        stateDirectory: String? = nil, snapshotInterval: Duration = .seconds(1), port: Int = 0,
        peers: [String] = [], peerStateDirectories: [String] = []
    ) throws {
        let config = ServerConfiguration(
            host: "127.0.0.1", port: port, threads: threads, token: token, maxSessions: maxSessions,
            memoryLimit: memoryLimit, sessionIdleTimeout: idleTimeout, limits: limits, drainTimeout: drainTimeout,
            clock: clock, stateDirectory: stateDirectory, snapshotInterval: snapshotInterval, peers: peers,
            peerStateDirectories: peerStateDirectories)
        server = Server(
            configuration: config,
            logger: logger ?? Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try server.start()
    }

    func client() throws -> RawClient { try RawClient(port: port) }

    func stop() {
        guard !stopped else { return }
        stopped = true
        server.shutdown()
        server.wait()
    }

    deinit { stop() }
}

/// A parsed HTTP response.
struct Response {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as a JSON object.
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])) as? [String: Any] ?? [:]
    }

    /// `type` of a problem body.
    var problemType: String? { json["type"] as? String }
}

/// A blocking HTTP/1.1 client over a raw socket, so tests can pipeline, stall and send garbage.
final class RawClient {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int, host: String = "127.0.0.1") throws {
        fd = try Socket.connect(host: host, port: port)
    }

    deinit { Socket.close(fd) }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try Socket.sendAll(fd, $0) }
    }

    /// Sends a request with the headers a client normally sends.
    func request(
        _ method: String, _ target: String, body: String? = nil, contentType: String? = "application/json",
        headers: [(String, String)] = []
    ) throws -> Response {
        try send(Self.format(method, target, body: body, contentType: contentType, headers: headers))
        return try readResponse()
    }

    static func format(
        _ method: String, _ target: String, body: String? = nil, contentType: String? = "application/json",
        headers: [(String, String)] = []
    ) -> String {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: localhost\r\n"
        for (n, v) in headers { text += "\(n): \(v)\r\n" }
        if let body {
            if let contentType { text += "Content-Type: \(contentType)\r\n" }
            text += "Content-Length: \(body.utf8.count)\r\n"
        }
        text += "\r\n" + (body ?? "")
        return text
    }

    /// Reads bytes until `until` holds, or fails after `timeout` seconds.
    private func fill(timeout: Double, until done: ([UInt8]) -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while !done(buffer) {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw TestError.timeout }
            let n = try chunk.withUnsafeMutableBytes {
                try Socket.read(fd, into: $0, timeoutMilliseconds: Int32(left * 1_000) + 1)
            }
            guard let n else { throw TestError.timeout }
            guard n > 0 else { throw TestError.closed }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    /// Reads one response (skipping interim 1xx unless `interim`).
    func readResponse(timeout: Double = 10, interim: Bool = false, head: Bool = false) throws -> Response {
        while true {
            try fill(timeout: timeout) { Self.headEnd($0) != nil }
            let end = Self.headEnd(buffer)!
            let headText = String(decoding: buffer[0..<end], as: UTF8.self)
            var lines = headText.components(separatedBy: "\r\n")
            let statusLine = lines.removeFirst().split(separator: " ")
            let status = Int(statusLine[1])!
            let headers = lines.filter { !$0.isEmpty }.map { line -> (String, String) in
                let colon = line.firstIndex(of: ":")!
                return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
            let length = head ? 0 : Int(headers.first { $0.0.lowercased() == "content-length" }?.1 ?? "0")!
            try fill(timeout: timeout) { $0.count >= end + 4 + length }
            let body = Array(buffer[(end + 4)..<(end + 4 + length)])
            buffer.removeFirst(end + 4 + length)
            if status < 200 && !interim { continue }
            return Response(status: status, headers: headers, body: body)
        }
    }

    /// `true` when the server closed the connection (read returns end of file) within `timeout`.
    func isClosedByServer(timeout: Double = 5) -> Bool {
        do {
            try fill(timeout: timeout) { _ in false }
            return false
        } catch TestError.closed {
            return true
        } catch is SocketError {
            return true  // reset by the server
        } catch {
            return false
        }
    }

    private static func headEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 {
            return i
        }
        return nil
    }
}

enum TestError: Error { case timeout, closed }

extension Socket {
    /// A blocking client connection to a test server on loopback (the server's own
    /// client calls, in Peers, go through the timed connect this wraps).
    static func connect(host: String, port: Int) throws(SocketError) -> Int32 {
        try connect(host: host, port: port, timeoutMilliseconds: 30_000)
    }
}

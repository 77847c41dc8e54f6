import Foundation
import Logging
import PrepageServer

/// The real server, in this process, on 127.0.0.1 and a port of its own
/// (0 the first time; the same port again for a restart).
final class LiveServer: @unchecked Sendable {
    private(set) var server: Server
    let token: String?
    var port: Int { server.port }
    var url: String { "http://127.0.0.1:\(port)" }

    init(port: Int = 0, token: String? = nil) throws {
        self.token = token
        server = try Self.start(port: port, token: token)
    }

    private static func start(port: Int, token: String?) throws -> Server {
        let config = ServerConfiguration(host: "127.0.0.1", port: port, threads: 1, token: token, maxSessions: 1_000)
        let server = Server(
            configuration: config, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try server.start()
        return server
    }

    /// Stops the server and starts a new one, without sessions, on the same port.
    func restart() throws {
        let port = self.port
        stop()
        server = try Self.start(port: port, token: token)
        stopped = false
    }

    private var stopped = false
    func stop() {
        guard !stopped else { return }
        stopped = true
        server.shutdown()
        server.wait()
    }

    deinit { stop() }
}

/// A listening socket that never accepts: connects succeed, answers never come.
final class SilentServer {
    let fd: Int32
    let port: Int

    init() {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                _ = bind(fd, $0, len)
                _ = listen(fd, 16)
                _ = getsockname(fd, $0, &len)
            }
        }
        port = Int(UInt16(bigEndian: addr.sin_port))
    }

    deinit { close(fd) }
}

/// A port nobody listens on: bound, read back, closed.
func closedPort() -> Int {
    let s = SilentServer()
    return s.port  // closed when `s` goes
}

/// The result of running prepagectl.
struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs the prepagectl built beside this test bundle (or $PREPAGECTL).
func prepagectl(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]) throws -> Run {
    try run(prepagectlURL(), arguments, stdin: stdin, environment: environment)
}

/// Runs an executable with the client's environment variables cleared.
func run(_ executable: URL, _ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]) throws
    -> Run
{
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env["PREPAGE_URL"] = nil
    env["PREPAGE_TOKEN"] = nil
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let out = Pipe(), err = Pipe(), input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try input.fileHandleForWriting.close()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Run(
        status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
        stderr: String(decoding: e, as: UTF8.self))
}

func prepagectlURL() -> URL {
    if let path = ProcessInfo.processInfo.environment["PREPAGECTL"] { return URL(fileURLWithPath: path) }
    return builtExecutable("prepagectl")
}

/// An executable of the package: the test bundle sits in the build directory, beside them.
func builtExecutable(_ name: String) -> URL {
    var dir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    while dir.path != "/" {
        let candidate = dir.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        dir.deleteLastPathComponent()
    }
    return URL(fileURLWithPath: ".build/debug/\(name)")
}

/// A JSON object from prepagectl --json output.
func jsonObject(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}

// prepaged: the prepage HTTP service. Parses flags (each also from the
// environment as PREPAGE_<NAME>), bootstraps logging once, runs the server
// until SIGTERM or SIGINT, then drains and exits 0.
import ArgumentParser
import Logging
import PrepageHTTP
import PrepageServer
import PrepageSockets

struct Prepaged: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepaged",
        abstract: "The prepage service: a DP (Dynamic Prepage) oracle for post-copy live migration, over HTTP.",
        discussion: """
            Every option can also be given in the environment as PREPAGE_<NAME>, \
            e.g. PREPAGE_PORT=8080 or PREPAGE_SESSION_IDLE_TIMEOUT=15m; a flag on the \
            command line wins over the environment. SIGTERM or SIGINT drains: /readyz \
            turns 503, listeners close, requests in flight finish, exit 0 within 10 s.
            """)

    @Option(help: "Address to listen on (numeric IPv4).")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on; 0 lets the kernel choose.")
    var port = 7_070

    @Option(help: "Event loops, one thread each (default: one per core, here \(System.processorCount)).")
    var threads: Int?

    @Option(
        help: "File holding the bearer token every route but /livez, /healthz and /readyz requires (default: none).")
    var tokenFile: String?

    @Option(help: "Most sessions held at once; one more is answered 429.")
    var maxSessions = 1_000_000

    @Option(help: "Remove a session without faults for this long: seconds, or 30s, 15m, 24h, 2d; 0 never.")
    var sessionIdleTimeout = "24h"

    @Option(help: "Largest request body in bytes (a full batch of 65,536 faults fits in the default).")
    var maxBodyBytes = 4_194_304

    @Option(
        help:
            "Directory where session lifecycles are journaled and what sessions learned is snapshotted, restored at start (default: none, sessions live in memory only)."
    )
    var stateDir: String?

    @Option(help: "With --state-dir: how often changed sessions are snapshotted: 1s, 250ms, 2m.")
    var snapshotInterval = "1s"

    @Option(help: "Lowest level logged: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @Option(help: "Log line format: text or json.")
    var logFormat = "text"

    func validate() throws {
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        guard host == "localhost" || (octets.count == 4 && octets.allSatisfy { UInt8($0) != nil }) else {
            throw ValidationError("--host \"\(host)\" is not a numeric IPv4 address (e.g. 127.0.0.1 or 0.0.0.0)")
        }
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be 0 … 65535, got \(port)") }
        if let threads, !(1...1_024).contains(threads) {
            throw ValidationError("--threads must be 1 … 1024, got \(threads)")
        }
        guard maxSessions >= 1 else { throw ValidationError("--max-sessions must be at least 1, got \(maxSessions)") }
        guard maxBodyBytes >= 1_024 else {
            throw ValidationError("--max-body-bytes must be at least 1024, got \(maxBodyBytes)")
        }
        guard Self.parseDuration(sessionIdleTimeout) != nil else {
            throw ValidationError(
                "--session-idle-timeout \"\(sessionIdleTimeout)\" is not a duration; give seconds, or 30s, 15m, 24h, 2d; 0 never"
            )
        }
        guard let interval = Self.parseInterval(snapshotInterval),
            interval >= .milliseconds(10), interval <= .seconds(3_600)
        else {
            throw ValidationError(
                "--snapshot-interval \"\(snapshotInterval)\" is not accepted; give 10ms … 1h, e.g. 1s, 250ms, 2m")
        }
        if let stateDir, stateDir.isEmpty {
            throw ValidationError("--state-dir is empty; give a directory (it is created if missing)")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError(
                "--log-level \"\(logLevel)\" is unknown; accepted: \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        guard PrepageLogHandler.Format(rawValue: logFormat) != nil else {
            throw ValidationError("--log-format \"\(logFormat)\" is unknown; accepted: text, json")
        }
        if let tokenFile {
            guard let token = Self.readToken(tokenFile) else {
                throw ValidationError("--token-file \(tokenFile): cannot read it, or it holds no token")
            }
            _ = token
        }
    }

    /// `86400`, `30s`, `15m`, `24h`, `2d`; 0 means never.
    static func parseDuration(_ text: String) -> Duration? {
        let unit = text.last.map { $0.isLetter ? $0 : "s" } ?? "s"
        let digits = text.last?.isLetter == true ? String(text.dropLast()) : text
        guard let value = Int64(digits), value >= 0 else { return nil }
        let scale: Int64
        switch unit {
        case "s": scale = 1
        case "m": scale = 60
        case "h": scale = 3_600
        case "d": scale = 86_400
        default: return nil
        }
        let (seconds, overflow) = value.multipliedReportingOverflow(by: scale)
        return overflow ? nil : .seconds(seconds)
    }

    /// `250ms`, `1s`, `2m`, or seconds.
    static func parseInterval(_ text: String) -> Duration? {
        if text.hasSuffix("ms"), let ms = Int64(text.dropLast(2)), ms >= 0 { return .milliseconds(ms) }
        return parseDuration(text)
    }

    static func readToken(_ path: String) -> String? {
        guard let bytes = System.readFile(path) else { return nil }
        let token = String(decoding: bytes, as: UTF8.self).trimmingWhitespace
        return token.isEmpty ? nil : token
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel)!
        let format = PrepageLogHandler.Format(rawValue: logFormat)!
        LoggingSystem.bootstrap { label in PrepageLogHandler(label: label, level: level, format: format) }
        let logger = Logger(label: "prepaged")

        var limits = HTTPLimits()
        limits.maxBodyBytes = maxBodyBytes
        let configuration = ServerConfiguration(
            host: host, port: port, threads: threads, token: tokenFile.flatMap(Self.readToken),
            maxSessions: maxSessions, sessionIdleTimeout: Self.parseDuration(sessionIdleTimeout)!,
            limits: limits, stateDirectory: stateDir, snapshotInterval: Self.parseInterval(snapshotInterval)!)
        let server = Server(configuration: configuration, logger: logger)
        do {
            try server.start()
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        let signal = System.waitForTerminationSignal()
        logger.info("draining", metadata: ["signal": "\(signal)"])
        server.shutdown()
        server.wait()
        logger.info("stopped")
    }
}

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}

/// The `PREPAGE_<NAME>=value` settings used, for error messages.
nonisolated(unsafe) var environmentOptions: [String] = []

/// Command-line arguments preceded by those taken from `PREPAGE_<NAME>` variables
/// for the options the command line does not give (the command line wins).
func argumentsWithEnvironment() -> [String] {
    let options = [
        "host", "port", "threads", "token-file", "max-sessions", "session-idle-timeout",
        "max-body-bytes", "state-dir", "snapshot-interval", "log-level", "log-format",
    ]
    let given = CommandLine.arguments.dropFirst()
    var fromEnvironment: [String] = []
    for name in options where !given.contains(where: { $0 == "--\(name)" || $0.hasPrefix("--\(name)=") }) {
        let variable = "PREPAGE_" + name.uppercased().replacingDashes
        if let value = System.environment(variable) {
            fromEnvironment += ["--\(name)", value]
            environmentOptions.append("\(variable)=\(value)")
        }
    }
    return fromEnvironment + CommandLine.arguments.dropFirst()
}

extension String {
    var replacingDashes: String { String(map { $0 == "-" ? "_" : $0 }) }
}

// Block SIGTERM/SIGINT before any thread starts, so the main thread takes them with sigwait.
System.blockTerminationSignals()
do {
    var command = try Prepaged.parseAsRoot(argumentsWithEnvironment())
    try command.run()
} catch {
    let code = Prepaged.exitCode(for: error)
    if code == .success {
        print(Prepaged.fullMessage(for: error))
        Prepaged.exit()
    }
    if code == .validationFailure {
        // A bad flag value: a clear message and exit 2 (usage), as the issue asks.
        System.writeStandardError(Array((Prepaged.fullMessage(for: error) + "\n").utf8))
        if !environmentOptions.isEmpty {
            System.writeStandardError(
                Array("(options taken from the environment: \(environmentOptions.joined(separator: ", ")))\n".utf8))
        }
        System.exit(2)
    }
    Prepaged.exit(withError: error)
}
System.exit(0)

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
            command line wins over the environment. SIGTERM or SIGINT: /readyz turns 503 \
            and every route keeps serving for --shutdown-delay (a second signal cuts it \
            short), then the listeners close, requests in flight finish (at most 8 s), exit 0. \
            A port another process holds is an error at start: "address in use", exit 2. \
            Under systemd (Type=notify) it reports READY=1 once listening and STOPPING=1 on SIGTERM.
            """,
        version: "prepaged \(Server.version)")

    @Option(
        help: "Address to listen on: numeric IPv4 or IPv6 (0.0.0.0, ::1; :: takes IPv4 too); localhost is 127.0.0.1.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on; 0 lets the kernel choose.")
    var port = 7_070

    @Option(
        help:
            "Event loops, one thread each (default: the CPUs this process may use, the smaller of its CPU affinity and its cgroup's CPU quota; here \(CPULimits.current().usable))."
    )
    var threads: Int?

    @Option(
        help: "File holding the bearer token every route but /livez, /healthz and /readyz requires (default: none).")
    var tokenFile: String?

    @Option(help: "Most sessions held at once, 1 … 100000000; one more is answered 429.")
    var maxSessions = 1_000_000

    @Option(
        help: """
            Bytes sessions may hold in total (ids, labels, learned state), 1048576 … 1125899906842624, \
            or with a suffix: 512M, 4G (powers of 1024). Past it a new session is answered 507 and a new \
            stream reuses its least recently used slot. Default: a quarter of the cgroup's memory limit or \
            of the machine's memory, whichever is smaller (here \(Self.defaultMemoryLimit)).
            """)
    var memoryLimit: String?

    @Option(help: "Remove a session without faults for this long: seconds, or 30s, 15m, 24h, 2d, up to 3650d; 0 never.")
    var sessionIdleTimeout = "24h"

    @Option(
        help: "Largest request body in bytes, 1024 … 1073741824 (a full batch of 65,536 faults fits in the default).")
    var maxBodyBytes = 4_194_304

    @Option(
        help:
            "Directory where session lifecycles are journaled and what sessions learned is snapshotted, restored at start (default: none, sessions live in memory only)."
    )
    var stateDir: String?

    @Option(help: "With --state-dir: how often changed sessions are snapshotted: 1s, 250ms, 2m.")
    var snapshotInterval = "1s"

    @Option(
        help:
            "The other instances of a sharded deployment, comma-separated http://host:port: a session created here that one of them holds moves here with what it learned (default: none)."
    )
    var peers: String?

    @Option(
        help:
            "Their state directories on shared storage, comma-separated, one per --peers entry in the same order: read when that peer does not answer (default: none)."
    )
    var peerStateDirs: String?

    /// Every numeric flag's accepted range: refused outside it at start (exit 2).
    static let threadsRange = 1...1_024
    static let maxSessionsRange = 1...100_000_000
    static let maxBodyBytesRange = 1_024...(1 << 30)
    static let memoryLimitRange = (1 << 20)...(1 << 50)
    /// 3650 days: any duration in range is nanoseconds that fit 64 bits with room to add.
    static let longestIdleTimeoutSeconds: Int64 = 3_650 * 86_400

    static var defaultMemoryLimit: Int { ServerConfiguration().effectiveMemoryLimit }

    /// What a client refused for a limit is told to do: the flags that raise it.
    static let limitAdvice = LimitAdvice(
        sessions: "delete some or raise --max-sessions", memory: "delete sessions or raise --memory-limit")

    @Option(help: "Lowest level logged: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @Option(help: "Log line format: text or json.")
    var logFormat = "text"

    @Option(
        help:
            "On SIGTERM, serve this long with /readyz at 503 before closing the listeners, so load balancers stop sending first: seconds, or 5s, 1m; 0 closes at once."
    )
    var shutdownDelay = "5s"

    func validate() throws {
        guard Socket.isNumericAddress(host) else {
            throw ValidationError(
                "--host \"\(host)\" is not a numeric IPv4 or IPv6 address; accepted: e.g. 127.0.0.1, 0.0.0.0, ::1, :: (no brackets), or localhost (127.0.0.1)"
            )
        }
        guard let delay = Self.parseDuration(shutdownDelay), delay <= .seconds(3_600) else {
            throw ValidationError(
                "--shutdown-delay \"\(shutdownDelay)\" is not a duration up to 1h; give seconds, or 5s, 1m; 0 closes at once"
            )
        }
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be 0 … 65535, got \(port)") }
        if let threads, !Self.threadsRange.contains(threads) {
            throw ValidationError("--threads must be 1 … 1024, got \(threads)")
        }
        guard Self.maxSessionsRange.contains(maxSessions) else {
            throw ValidationError("--max-sessions must be 1 … 100000000, got \(maxSessions)")
        }
        guard Self.maxBodyBytesRange.contains(maxBodyBytes) else {
            throw ValidationError("--max-body-bytes must be 1024 … 1073741824 (1 GiB), got \(maxBodyBytes)")
        }
        if let memoryLimit {
            guard let bytes = Self.parseBytes(memoryLimit), Self.memoryLimitRange.contains(bytes) else {
                throw ValidationError(
                    "--memory-limit must be 1048576 … 1125899906842624 bytes (1 MiB … 1 PiB; suffixes K, M, G, T accepted), got \"\(memoryLimit)\""
                )
            }
        }
        guard let idle = Self.parseDuration(sessionIdleTimeout),
            idle <= .seconds(Self.longestIdleTimeoutSeconds)
        else {
            throw ValidationError(
                "--session-idle-timeout \"\(sessionIdleTimeout)\" is not a duration in 0 … 3650d; give seconds, or 30s, 15m, 24h, 2d; 0 never"
            )
        }
        guard let interval = Self.parseInterval(snapshotInterval),
            interval >= .milliseconds(10), interval <= .seconds(3_600)
        else {
            throw ValidationError(
                "--snapshot-interval \"\(snapshotInterval)\" is not accepted; give 10ms … 1h, e.g. 1s, 250ms, 2m")
        }
        for url in Self.list(peers) {
            let rest = url.hasSuffix("/") ? String(url.dropLast()) : url
            guard url.hasPrefix("http://"), let colon = rest.lastIndex(of: ":"),
                rest.distance(from: rest.startIndex, to: colon) > "http://".count,
                let port = Int(rest[rest.index(after: colon)...]), (1...65_535).contains(port)
            else {
                throw ValidationError("--peers: \"\(url)\" is not http://host:port")
            }
        }
        let dirs = Self.list(peerStateDirs)
        guard dirs.isEmpty || dirs.count == Self.list(peers).count else {
            throw ValidationError(
                "--peer-state-dirs names \(dirs.count) directories for \(Self.list(peers).count) --peers; give one per peer, in the same order"
            )
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
            switch Self.readToken(tokenFile) {
            case .success: break
            case .failure(let problem): throw ValidationError("--token-file \(tokenFile): \(problem.reason)")
            }
        }
    }

    /// `1073741824`, or with a suffix of powers of 1024: `512K`, `512M`, `4G`, `1T` (`KiB`, `MiB`… too).
    static func parseBytes(_ text: String) -> Int? {
        var digits = Substring(text)
        var scale = 1
        for (suffixes, s) in [
            (["KiB", "K", "k"], 1 << 10), (["MiB", "M", "m"], 1 << 20), (["GiB", "G", "g"], 1 << 30),
            (["TiB", "T", "t"], 1 << 40),
        ] {
            if let suffix = suffixes.first(where: { text.hasSuffix($0) }) {
                digits = digits.dropLast(suffix.count)
                scale = s
                break
            }
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(digits) else {
            return nil
        }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: scale)
        return overflow ? nil : bytes
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

    /// A comma-separated list, without empty entries.
    static func list(_ text: String?) -> [String] {
        (text ?? "").split(separator: ",").map { String($0.filter { $0 != " " }) }.filter { !$0.isEmpty }
    }

    /// `250ms`, `1s`, `2m`, or seconds.
    static func parseInterval(_ text: String) -> Duration? {
        if text.hasSuffix("ms"), let ms = Int64(text.dropLast(2)), ms >= 0 { return .milliseconds(ms) }
        return parseDuration(text)
    }

    struct TokenProblem: Error {
        var reason: String
    }

    /// The token in a file: its bytes, less one trailing newline (LF or CRLF).
    /// Anything else that is not a visible ASCII character — an inner newline, a
    /// space, a tab, a control byte — is refused: no client could send it in
    /// `Authorization: Bearer`, so nobody could authenticate.
    static func readToken(_ path: String) -> Result<String, TokenProblem> {
        guard var bytes = System.readFile(path, limit: 65_536) else {
            return .failure(TokenProblem(reason: "cannot read it"))
        }
        if bytes.last == 0x0A { bytes.removeLast() }
        if bytes.last == 0x0D { bytes.removeLast() }
        guard !bytes.isEmpty else {
            return .failure(TokenProblem(reason: "it holds no token (the file is empty)"))
        }
        guard bytes.count <= 4_096 else {
            return .failure(TokenProblem(reason: "the token is \(bytes.count) bytes; at most 4096 are accepted"))
        }
        if let i = bytes.firstIndex(where: { $0 <= 0x20 || $0 >= 0x7F }) {
            let what: String
            switch bytes[i] {
            case 0x0A: what = "a newline"
            case 0x0D: what = "a carriage return"
            case 0x20: what = "a space"
            case 0x09: what = "a tab"
            default: what = "the byte 0x\(String(bytes[i], radix: 16))"
            }
            return .failure(
                TokenProblem(
                    reason:
                        "the token holds \(what) at byte \(i); it must be one line of visible ASCII characters (only one trailing newline is trimmed)"
                ))
        }
        return .success(String(decoding: bytes, as: UTF8.self))
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel)!
        let format = PrepageLogHandler.Format(rawValue: logFormat)!
        LoggingSystem.bootstrap { label in PrepageLogHandler(label: label, level: level, format: format) }
        let logger = Logger(label: "prepaged")

        // `localhost` is 127.0.0.1, and every message says so.
        let host = self.host == "localhost" ? "127.0.0.1" : self.host
        var limits = HTTPLimits()
        limits.maxBodyBytes = maxBodyBytes
        let configuration = ServerConfiguration(
            host: host, port: port, threads: threads, token: tokenFile.flatMap { try? Self.readToken($0).get() },
            maxSessions: maxSessions, memoryLimit: memoryLimit.flatMap(Self.parseBytes),
            sessionIdleTimeout: Self.parseDuration(sessionIdleTimeout)!, limits: limits, stateDirectory: stateDir,
            snapshotInterval: Self.parseInterval(snapshotInterval)!, peers: Self.list(peers),
            peerStateDirectories: Self.list(peerStateDirs), limitAdvice: Self.limitAdvice)
        let server = Server(configuration: configuration, logger: logger)
        do {
            try server.start()
        } catch {
            if error.isAddressInUse {
                // Another process listens there (or a socket of an earlier run is bound): a
                // usage error, not a crash, and a message that names the address.
                let address = Server.hostPort(host, port)
                logger.critical("cannot start: address in use", metadata: ["address": "\(address)"])
                LogQueue.shared.flush(timeoutMilliseconds: 2_000)
                System.writeStandardError(
                    Array("prepaged: address in use: \(address) (another process listens there)\n".utf8))
                throw ExitCode(2)
            }
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            LogQueue.shared.flush(timeoutMilliseconds: 2_000)
            throw ExitCode(1)
        }
        ServiceNotify.send("READY=1\nSTATUS=listening on \(Server.hostPort(host, server.port))")
        let signal = System.waitForTerminationSignal()
        ServiceNotify.send("STOPPING=1")
        let delay = Self.parseDuration(shutdownDelay)!
        let delayMilliseconds = Int(delay.components.seconds) * 1_000
        server.withdraw()
        logger.info(
            "shutting down: /readyz answers 503, serving until the delay ends",
            metadata: ["signal": .stringConvertible(signal), "delay_ms": .stringConvertible(delayMilliseconds)])
        if delayMilliseconds > 0, let second = System.waitForTerminationSignal(milliseconds: delayMilliseconds) {
            logger.info("second signal: the delay is cut short", metadata: ["signal": .stringConvertible(second)])
        }
        logger.info("draining")
        server.shutdown()
        server.wait()
        logger.info("stopped")
        // The log queue's last lines, unless stderr is stuck: exit regardless after a while.
        LogQueue.shared.flush(timeoutMilliseconds: 1_000)
    }
}

/// The `PREPAGE_<NAME>=value` settings used, for error messages.
nonisolated(unsafe) var environmentOptions: [String] = []

/// Command-line arguments preceded by those taken from `PREPAGE_<NAME>` variables
/// for the options the command line does not give (the command line wins).
func argumentsWithEnvironment() -> [String] {
    let options = [
        "host", "port", "threads", "token-file", "max-sessions", "memory-limit", "session-idle-timeout",
        "max-body-bytes", "state-dir", "snapshot-interval", "peers", "peer-state-dirs", "log-level", "log-format",
        "shutdown-delay",
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
        // A bad flag value: the message names the flag and what it accepts, and the exit
        // status is 2, the shells' and getopt tools' status for a usage error (not
        // ArgumentParser's 64), so a service manager or script tells a mistake in the
        // configuration, which a restart will not fix, from a failure at run time (1).
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

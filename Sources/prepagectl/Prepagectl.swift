// prepagectl: the operator's and script's command line over PrepageClient.
//
//   prepagectl session create vm-1 --max-pages 256 --label owner=ops
//   prepagectl fault vm-1 0x7f0000001000 --addr --stream 3
//   prepagectl replay vm-1 trace.txt --addr --json
//
// --url / --token default to PREPAGE_URL / PREPAGE_TOKEN. A server error
// prints the problem detail and exits 1; a bad argument exits 64; a bad
// trace line exits 65.
import ArgumentParser
import Foundation
import PrepageClient

@main
struct Prepagectl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepagectl",
        abstract: "Talk to prepaged, the Dynamic Prepage oracle: sessions, faults, trace replay.",
        version: "prepagectl \(prepageVersion) (libprepage \(PrepageConnection.libraryVersion))",
        subcommands: [SessionCommand.self, FaultCommand.self, ReplayCommand.self])
}

/// The project's version, as `prepaged --version` and `GET /version` give it.
let prepageVersion = "0.1.0"

/// Options every command shares.
struct Connection: ParsableArguments {
    @Option(help: "Server URL (env PREPAGE_URL; default http://127.0.0.1:7070).")
    var url: String?

    @Option(help: "Bearer token (env PREPAGE_TOKEN).")
    var token: String?

    @Option(help: "Request timeout in milliseconds.")
    var timeoutMs = 5_000

    @Option(help: "A fault's deadline in milliseconds, retries included (default: the --timeout-ms).")
    var faultDeadlineMs: Int?

    @Flag(
        help:
            "When the oracle is away (no answer by the deadline, refused, 5xx), print a fallback decision (the faulting page alone) and exit 0, as an agent does, instead of failing."
    )
    var fallback = false

    @Flag(help: "Print JSON, in the shapes of docs/api.md.")
    var json = false

    func client() throws -> PrepageConnection {
        let env = ProcessInfo.processInfo.environment
        let options = PrepageClientOptions(
            baseURL: url ?? env["PREPAGE_URL"] ?? "http://127.0.0.1:7070",
            token: token ?? env["PREPAGE_TOKEN"].flatMap { $0.isEmpty ? nil : $0 },
            requestTimeoutMilliseconds: timeoutMs,
            faultDeadlineMilliseconds: faultDeadlineMs ?? timeoutMs, faultFallback: fallback)
        return try calling { () throws(PrepageClientError) in try PrepageConnection(options: options) }
    }

    /// Prints a value as JSON (one line) or as text.
    func emit<T: Encodable>(_ value: T, text: () -> String) {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            // Encoding these plain value types cannot fail.
            print(String(decoding: try! encoder.encode(value), as: UTF8.self))
        } else {
            print(text())
        }
    }
}

/// Turns a client error into a message on stderr and exit status 1.
func calling<T>(_ body: () throws(PrepageClientError) -> T) throws -> T {
    do {
        return try body()
    } catch {
        var message = "prepagectl: "
        switch error.kind {
        case .http: message += "server answered \(error.status ?? 0): \(error.detail)"
        case .invalid: message += "invalid argument: \(error.detail)"
        default: message += "\(error.kind.rawValue) error: \(error.detail)"
        }
        FileHandle.standardError.write(Data((message + "\n").utf8))
        // A bad argument exits 64 (EX_USAGE) like a bad flag; every other failure 1.
        throw error.kind == .invalid ? ExitCode.validationFailure : ExitCode.failure
    }
}

/// A number as docs/api.md accepts it: decimal or 0x hexadecimal.
func parseNumber(_ text: String) -> UInt64? {
    let t = text.trimmingCharacters(in: .whitespaces)
    if t.hasPrefix("0x") || t.hasPrefix("0X") { return UInt64(t.dropFirst(2), radix: 16) }
    return UInt64(t, radix: 10)
}

struct Number: ExpressibleByArgument {
    var value: UInt64
    init?(argument: String) {
        guard let v = parseNumber(argument) else { return nil }
        value = v
    }
    static var defaultCompletionKind: CompletionKind { .default }
}

func describe(_ d: RemoteDecision) -> String {
    "pages [\(d.start), \(d.start + d.count)) bytes [0x\(String(d.addr, radix: 16)), 0x\(String(d.addr + d.bytes, radix: 16))) \(d.outcome.rawValue) ntest=\(d.ntest) nmin=\(d.nmin) nmax=\(d.nmax)"
}

func describe(_ s: RemoteSession) -> String {
    let c = s.config
    var lines = [
        "session \(s.id)",
        "  config: policy=\(c.policy ?? "-") min_pages=\(c.minPages ?? 0) max_pages=\(c.maxPages ?? 0) k=\(c.k ?? 0) initial_pages=\(c.initialPages ?? 0) gap=\(c.gap ?? 0) memory_pages=\(c.memoryPages ?? 0) max_streams=\(c.maxStreams ?? 0) page_size=\(c.pageSize ?? 0)",
        "  state: nmin=\(s.state.nmin) nmax=\(s.state.nmax) min_record=\(s.state.minRecord) max_record=\(s.state.maxRecord) streams=\(s.state.streams.count)",
        "  stats: faults=\(s.stats.faults) first=\(s.stats.first) smaller=\(s.stats.smaller) larger=\(s.stats.larger) reverse=\(s.stats.reverse) repeat=\(s.stats.repeat) pages_advised=\(s.stats.pagesAdvised) created_at=\(s.stats.createdAt ?? "-") last_fault_at=\(s.stats.lastFaultAt ?? "-")",
    ]
    let own =
        [
            ("forward_pages", c.forwardPages), ("backward_pages", c.backwardPages), ("ra_initial", c.raInitial),
            ("ra_max", c.raMax), ("max_slots", c.maxSlots), ("transitions", c.transitions),
            ("half_life", c.halfLife), ("near_window", c.nearWindow),
        ].compactMap { name, value in value.map { "\(name)=\($0)" } }
        + [
            ("probe_staleness", c.probeStaleness), ("fault_fee", c.faultFee), ("min_evidence", c.minEvidence),
            ("rtt_us", c.rttMicroseconds), ("page_us", c.pageMicroseconds),
        ].compactMap { name, value in value.map { "\(name)=\($0)" } }
    if !own.isEmpty { lines[1] += " " + own.joined(separator: " ") }
    if !c.labels.isEmpty {
        lines.insert(
            "  labels: " + c.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "),
            at: 2)
    }
    return lines.joined(separator: "\n")
}

// MARK: session

struct SessionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session", abstract: "Create, read, list, delete, reset, export, import or move sessions.",
        subcommands: [
            Create.self, Get.self, List.self, Delete.self, Reset.self, Export.self, Import.self, Move.self,
        ])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a session (PUT /sessions/{id}).")
        @OptionGroup var connection: Connection
        @Argument(help: "Session id, [A-Za-z0-9._:-]{1,128}.") var id: String
        @Option(help: "dp, dp-literal, dp-plus, none, forward, readahead (default: the server's).")
        var policy: String?
        @Option var minPages: Int?
        @Option var maxPages: Int?
        @Option var k: Int?
        @Option var initialPages: Int?
        @Option var gap: Int?
        @Option(help: "Guest memory in pages; 0 unbounded.") var memoryPages: Int?
        @Option var maxStreams: Int?
        @Option(help: "Bytes per page (power of two, 512 … 1 GiB).") var pageSize: Int?
        @Option(help: "A label KEY=VALUE; repeat for more.") var label: [String] = []
        @Option(help: "Policy forward: pages after the faulting one.") var forwardPages: Int?
        @Option(help: "Policy forward: pages before the faulting one.") var backwardPages: Int?
        @Option(help: "Policy readahead: the first window.") var raInitial: Int?
        @Option(help: "Policy readahead: the largest window.") var raMax: Int?
        @Option(help: "Policy dp-plus: 1 … 1024.") var maxSlots: Int?
        @Option(help: "Policy dp-plus: 1 … 256.") var transitions: Int?
        @Option(help: "Policy dp-plus: in cases, 1 … 1000000.") var halfLife: Int?
        @Option(help: "Policy dp-plus: 0 … 1048576.") var nearWindow: Int?
        @Option(help: "Policy dp-plus: 0 … 1e9.") var probeStaleness: Double?
        @Option(help: "Policy dp-plus: 0 … 1000.") var faultFee: Double?
        @Option(help: "Policy dp-plus: 0 … 1e6.") var minEvidence: Double?
        @Option(help: "Policy dp-plus: the link's round trip in µs.") var rttUs: Double?
        @Option(help: "Policy dp-plus: one page's transfer time on the link in µs.") var pageUs: Double?

        func run() throws {
            var labels: [String: String] = [:]
            for l in label {
                guard let eq = l.firstIndex(of: "="), eq != l.startIndex else {
                    throw ValidationError("--label \"\(l)\" is not KEY=VALUE")
                }
                labels[String(l[..<eq])] = String(l[l.index(after: eq)...])
            }
            let config = RemoteSessionConfig(
                policy: policy, minPages: minPages, maxPages: maxPages, k: k, initialPages: initialPages,
                gap: gap, memoryPages: memoryPages, maxStreams: maxStreams, pageSize: pageSize, labels: labels,
                forwardPages: forwardPages, backwardPages: backwardPages, raInitial: raInitial, raMax: raMax,
                maxSlots: maxSlots, transitions: transitions, halfLife: halfLife, nearWindow: nearWindow,
                probeStaleness: probeStaleness, faultFee: faultFee, minEvidence: minEvidence, rttMicroseconds: rttUs,
                pageMicroseconds: pageUs)
            let client = try connection.client()
            let (session, created) = try calling { () throws(PrepageClientError) in
                try client.createSession(id, config: config)
            }
            connection.emit(session) { (created ? "created " : "exists ") + describe(session) }
        }
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a session (GET /sessions/{id}).")
        @OptionGroup var connection: Connection
        @Argument var id: String
        func run() throws {
            let client = try connection.client()
            let s = try calling { () throws(PrepageClientError) in try client.getSession(id) }
            connection.emit(s) { describe(s) }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List sessions by id (GET /sessions).")
        @OptionGroup var connection: Connection
        @Option(help: "Sessions per page, 1 … 1000.") var limit: Int?
        @Option(help: "Start after this id.") var after: String?
        @Flag(help: "Follow `next` to the end.") var all = false
        func run() throws {
            let client = try connection.client()
            var page = try calling { () throws(PrepageClientError) in
                try client.listSessions(limit: limit, after: after)
            }
            while all, let next = page.next {
                let more = try calling { () throws(PrepageClientError) in
                    try client.listSessions(limit: limit, after: next)
                }
                page.sessions += more.sessions
                page.next = more.next
            }
            connection.emit(page) {
                var lines = page.sessions.map {
                    "\($0.id)\tfaults=\($0.stats.faults)\tpolicy=\($0.config.policy ?? "-")"
                }
                if let next = page.next { lines.append("next: \(next)") }
                return lines.joined(separator: "\n")
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End a session (DELETE /sessions/{id}).")
        @OptionGroup var connection: Connection
        @Argument var id: String
        func run() throws {
            let client = try connection.client()
            let s = try calling { () throws(PrepageClientError) in try client.deleteSession(id) }
            if let s {
                connection.emit(s) { "deleted " + describe(s) }
            } else if !connection.json {
                print("deleted \(id)")
            }
        }
    }

    struct Reset: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forget what a session learned, keep config and counters (POST /sessions/{id}/reset).")
        @OptionGroup var connection: Connection
        @Argument var id: String
        func run() throws {
            let client = try connection.client()
            let s = try calling { () throws(PrepageClientError) in try client.resetSession(id) }
            connection.emit(s) { "reset " + describe(s) }
        }
    }
}

extension SessionCommand {
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a session's whole state, the document import takes (GET /sessions/{id}/state).")
        @OptionGroup var connection: Connection
        @Argument var id: String
        @Option(name: .shortAndLong, help: "Write it to this file instead of standard output.") var output: String?
        func run() throws {
            let client = try connection.client()
            let state = try calling { () throws(PrepageClientError) in try client.exportSession(id) }
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: Data(state.utf8)) else {
                    throw ValidationError("cannot write \(output)")
                }
            } else {
                print(state)
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Make a session exactly the one an exported state describes, new or in place of the session of that id (PUT /sessions/{id} {\"state\": …})."
        )
        @OptionGroup var connection: Connection
        @Argument var id: String
        @Argument(help: "The file export wrote; - for standard input.") var file: String
        func run() throws {
            let data: Data
            if file == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let d = FileManager.default.contents(atPath: file) else {
                    throw ValidationError("cannot read \(file)")
                }
                data = d
            }
            let state = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let client = try connection.client()
            let created = try calling { () throws(PrepageClientError) in try client.importSession(id, state: state) }
            let s = try calling { () throws(PrepageClientError) in try client.getSession(id) }
            connection.emit(s) { (created ? "imported " : "replaced ") + describe(s) }
        }
    }

    struct Move: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a session with everything it learned from one server to another: export, import, delete.",
            discussion: """
                The destination decides the session's next fault exactly as the source would have. \
                Faults that reach the source after the export are answered 404 there once it is deleted \
                (a client that knows the session's config re-creates it where its balancer sends it).
                """)
        @OptionGroup var connection: Connection
        @Argument var id: String
        @Option(help: "The server the session is on (default: --url, PREPAGE_URL).") var from: String?
        @Option(help: "The server to move it to.") var to: String
        func run() throws {
            var source = connection
            if let from { source.url = from }
            var destination = connection
            destination.url = to
            let a = try source.client()
            let b = try destination.client()
            let state = try calling { () throws(PrepageClientError) in try a.exportSession(id) }
            try calling { () throws(PrepageClientError) in _ = try b.importSession(id, state: state) }
            try calling { () throws(PrepageClientError) in _ = try a.deleteSession(id) }
            let s = try calling { () throws(PrepageClientError) in try b.getSession(id) }
            connection.emit(s) { "moved to \(to): " + describe(s) }
        }
    }
}

// MARK: fault

struct FaultCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fault", abstract: "Ask for one decision (POST /sessions/{id}/fault).")
    @OptionGroup var connection: Connection
    @Argument(help: "Session id.") var id: String
    @Argument(help: "Page number (or byte address with --addr), decimal or 0x hex.") var value: Number
    @Flag(help: "The value is a byte address.") var addr = false
    @Option(help: "The vCPU or thread that faulted.") var stream: UInt32 = 0

    func run() throws {
        let client = try connection.client()
        let d = try calling { () throws(PrepageClientError) in
            addr
                ? try client.fault(id, addr: value.value, stream: stream)
                : try client.fault(id, page: value.value, stream: stream)
        }
        if d.outcome == .fallback, let why = client.lastError {
            FileHandle.standardError.write(Data("prepagectl: fallback decision: \(why)\n".utf8))
        }
        connection.emit(d) { describe(d) }
    }
}

// MARK: replay

/// A trace that cannot be replayed: the message on stderr, exit 65 (EX_DATAERR).
func badTrace(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("prepagectl: \(message)\n".utf8))
    return ExitCode(65)
}

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a trace of faults and print every decision.",
        discussion: """
            The trace holds one fault per line: a page number (or a byte address with \
            --addr), decimal or 0x hex, optionally followed by the stream. Blank lines \
            and text after # are ignored. The whole trace is read and checked first: a \
            bad line is reported with its number and nothing is sent. Faults go in \
            batches (POST /faults), decided exactly as if posted one by one.
            """)
    @OptionGroup var connection: Connection
    @Argument(help: "Session id.") var id: String
    @Argument(help: "Trace file, or - for standard input.") var file: String
    @Flag(help: "Lines are byte addresses.") var addr = false
    @Option(
        help:
            "With --addr: divide addresses by this page size here and send pages (default: send addresses, the session's page_size applies)."
    )
    var pageSize: UInt64?
    @Option(help: "Stream of lines that name none.") var stream: UInt32 = 0
    @Option(help: "Faults per request, 1 … 65536.") var batch = 1_024

    func validate() throws {
        guard (1...65_536).contains(batch) else { throw ValidationError("--batch must be 1 … 65536, got \(batch)") }
        if let pageSize {
            guard addr else { throw ValidationError("--page-size applies to addresses: add --addr") }
            guard pageSize > 0, pageSize & (pageSize - 1) == 0 else {
                throw ValidationError("--page-size must be a power of two, got \(pageSize)")
            }
        }
    }

    func run() throws {
        let text: String
        if file == "-" {
            var lines: [String] = []
            while let line = readLine(strippingNewline: true) { lines.append(line) }
            text = lines.joined(separator: "\n")
        } else {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw badTrace("cannot read \(file)")
            }
            text = String(decoding: data, as: UTF8.self)
        }
        let name = file == "-" ? "<stdin>" : file
        var values: [UInt64] = []
        var streams: [UInt32] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," || $0 == "\r" })
            if fields.isEmpty { continue }
            guard fields.count <= 2, var v = parseNumber(String(fields[0])) else {
                throw badTrace(
                    "\(name):\(index + 1): \"\(line.trimmingCharacters(in: .whitespaces))\" is not a \(addr ? "byte address" : "page number") (decimal or 0x hex, then an optional stream)"
                )
            }
            var s = stream
            if fields.count == 2 {
                guard let parsed = parseNumber(String(fields[1])), parsed <= UInt64(UInt32.max) else {
                    throw badTrace("\(name):\(index + 1): stream \"\(fields[1])\" is not 0 … 4294967295")
                }
                s = UInt32(parsed)
            }
            if let pageSize { v /= pageSize }
            values.append(v)
            streams.append(s)
        }
        let client = try connection.client()
        let byAddress = addr && pageSize == nil
        var start = 0
        var counts: [RemoteOutcome: Int] = [:]
        while start < values.count {
            let end = min(start + batch, values.count)
            let chunk = Array(values[start..<end]), chunkStreams = Array(streams[start..<end])
            let decisions = try calling { () throws(PrepageClientError) in
                byAddress
                    ? try client.faults(id, addrs: chunk, streams: chunkStreams)
                    : try client.faults(id, pages: chunk, streams: chunkStreams)
            }
            for (i, d) in decisions.enumerated() {
                counts[d.outcome, default: 0] += 1
                connection.emit(d) {
                    "\(byAddress ? "0x" + String(chunk[i], radix: 16) : String(chunk[i]))\t\(chunkStreams[i])\t\(describe(d))"
                }
            }
            start = end
        }
        if !connection.json {
            let summary = RemoteOutcome.allCases.map { "\($0.rawValue)=\(counts[$0, default: 0])" }.joined(
                separator: " ")
            FileHandle.standardError.write(Data("\(values.count) faults: \(summary)\n".utf8))
        }
    }
}

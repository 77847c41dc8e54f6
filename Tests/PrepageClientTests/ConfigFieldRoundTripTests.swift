import Foundation
import PrepageClient
import PrepageCore
import Testing

/// One field of a session config with a policy that reads it and a value other than
/// that policy's default, which the server accepts and keeps as given (not clamped).
struct FieldSample: Sendable {
    let name: String
    let policy: PolicyName
    let value: ConfigValue

    /// Every entry of ``PrepageConfig/fields``, then `page_size`: a field added to the
    /// table is sampled (and so round-tripped below) without a change here.
    static let all: [FieldSample] =
        PrepageConfig.fields.map(sample)
        + [FieldSample(name: SessionFields.pageSize, policy: .dp, value: .integer(SessionFields.defaultPageSize * 2))]

    private static func sample(_ field: ConfigField) -> FieldSample {
        if field.kind == .policy {
            let other = PolicyName.allCases.first { $0 != PrepageConfig().policy }!
            return FieldSample(name: field.name, policy: other, value: .policy(other))
        }
        // The server's default for the policy: PrepageConfig() with the policy named.
        let policy = field.policies[0]
        var base = PrepageConfig()
        base.policy = policy
        let defaultValue = field.value(in: try! base.validated())
        let candidates: [ConfigValue] =
            switch defaultValue {
            case .integer(let i): [i + 1, i - 1, i * 2, i / 2, 1, 2, 3].map(ConfigValue.integer)
            case .real(let x): [x * 2, x / 2, x + 1, 1, 0.5].map(ConfigValue.real)
            case .policy: []
            }
        for value in candidates where value != defaultValue {
            var config = base
            guard field.set(value, in: &config), let valid = try? config.validated(), field.value(in: valid) == value
            else { continue }
            return FieldSample(name: field.name, policy: policy, value: value)
        }
        preconditionFailure("no value other than the default found for \(field.name): add a candidate above")
    }

    /// The value as JSON.
    var json: String {
        switch value {
        case .policy(let p): "\"\(p.rawValue)\""
        case .integer(let i): String(i)
        case .real(let d): "\(d)"
        }
    }

    /// The value as the C test reads it (no quotes).
    var text: String {
        if case .policy(let p) = value { return p.rawValue }
        return json
    }

    /// The value as JSONSerialization reads it back.
    func matches(_ any: Any?) -> Bool {
        switch value {
        case .policy(let p): (any as? String) == p.rawValue
        case .integer(let i): (any as? Int) == i
        case .real(let d): (any as? Double) == d
        }
    }
}

/// Every field's round trip, through the real server: as JSON over HTTP, through the Swift
/// wrapper (libprepage underneath), and — in Tests/CClientTests — through the C library, whose
/// field list is generated from the same table (the last test keeps it current).
@Suite struct ConfigFieldRoundTripTests {
    let server: LiveServer
    init() throws { server = try LiveServer() }

    @Test(arguments: FieldSample.all.map(\.name))
    func everyFieldRoundTripsAsJSONOverHTTP(_ name: String) throws {
        let sample = FieldSample.all.first { $0.name == name }!
        let id = "json-\(name.replacingOccurrences(of: "_", with: "-"))"
        let body =
            name == "policy"
            ? #"{"policy":\#(sample.json)}"# : #"{"policy":"\#(sample.policy.rawValue)","\#(name)":\#(sample.json)}"#
        let created = try http("PUT", port: server.port, "/sessions/\(id)", body: body)
        #expect(created.status == 201, "\(created.body)")
        let got = try http("GET", port: server.port, "/sessions/\(id)")
        #expect(got.status == 200)
        let config = jsonObject(got.body)["config"] as? [String: Any]
        #expect(sample.matches(config?[name]), "\(name): sent \(sample.json), read back \(config?[name] ?? "nothing")")
    }

    @Test(arguments: FieldSample.all.map(\.name))
    func everyFieldRoundTripsThroughTheSwiftWrapper(_ name: String) throws {
        let sample = FieldSample.all.first { $0.name == name }!
        let client = try PrepageConnection(options: .init(baseURL: server.url, requestTimeoutMilliseconds: 5_000))
        var config = RemoteSessionConfig(policy: sample.policy.rawValue)
        if let field = PrepageConfig.field(named: name) {
            config[field] = sample.value
        } else {
            guard case .integer(let size) = sample.value else { Issue.record("page_size is an integer"); return }
            config.pageSize = size
        }
        let id = "swift-\(name.replacingOccurrences(of: "_", with: "-"))"
        let (session, created) = try client.createSession(id, config: config)
        #expect(created)
        for read in [session, try client.getSession(id)] {
            if let field = PrepageConfig.field(named: name) {
                #expect(read.config[field] == sample.value, "\(name): \(String(describing: read.config[field]))")
            } else {
                #expect(read.config.pageSize == SessionFields.defaultPageSize * 2)
            }
        }
        // The JSON form prepagectl --json prints carries it too, under the API's name.
        let encoded = jsonObject(String(decoding: try JSONEncoder().encode(session.config), as: UTF8.self))
        #expect(sample.matches(encoded[name]), "\(name) in \(encoded)")
    }

    @Test func labelsRoundTripThroughTheSwiftWrapper() throws {
        let client = try PrepageConnection(options: .init(baseURL: server.url, requestTimeoutMilliseconds: 5_000))
        let labels = ["vm": "guest-1", "zone": "b"]
        try client.createSession("swift-labels", config: RemoteSessionConfig(labels: labels))
        #expect(try client.getSession("swift-labels").config.labels == labels)
    }

    /// The C tests' list of fields (Tests/CClientTests/config_fields.h) is this table's.
    /// Regenerate with `PREPAGE_WRITE_CONFIG_FIELDS=1 swift test --filter theCTestsFieldListIsTheCoreTable`.
    @Test func theCTestsFieldListIsTheCoreTable() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("CClientTests/config_fields.h")
        var text = """
            /* config_fields.h — GENERATED from PrepageCore's PrepageConfig.fields and page_size by
             * Tests/PrepageClientTests/ConfigFieldRoundTripTests.swift; do not edit. Regenerate with
             *   PREPAGE_WRITE_CONFIG_FIELDS=1 swift test --filter theCTestsFieldListIsTheCoreTable
             * Each field, a policy that reads it, and a value other than that policy's default. */
            typedef struct core_field {
                const char *name;
                const char *policy;
                const char *value;
            } core_field;

            static const core_field core_fields[] = {

            """
        for s in FieldSample.all { text += "    {\"\(s.name)\", \"\(s.policy.rawValue)\", \"\(s.text)\"},\n" }
        text += "};\n"
        if ProcessInfo.processInfo.environment["PREPAGE_WRITE_CONFIG_FIELDS"] == "1" {
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        let committed = try? String(contentsOf: url, encoding: .utf8)
        #expect(
            committed == text,
            "\(url.path) is not the core table's: PREPAGE_WRITE_CONFIG_FIELDS=1 swift test --filter theCTestsFieldListIsTheCoreTable"
        )
    }
}

/// One HTTP/1.1 request on a new loopback connection: the status and the body.
func http(_ method: String, port: Int, _ path: String, body: String = "") throws -> (status: Int, body: String) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard rc == 0 else { throw POSIXError(.ECONNREFUSED) }
    let request = Array(
        ("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)").utf8)
    var sent = 0
    while sent < request.count {
        let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw POSIXError(.EPIPE) }
        sent += n
    }
    var answer: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        answer += buffer[..<n]
    }
    let text = String(decoding: answer, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { return (0, text) }
    let status = Int(text.split(separator: " ", maxSplits: 2).dropFirst().first ?? "") ?? 0
    return (status, String(text[split.upperBound...]))
}

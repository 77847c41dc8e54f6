import ArgumentParser
import Foundation
import PrepageClient
import PrepageCore
import PrepageSimulator

/// The agent policies driven through a running `prepaged` with the client
/// library, exactly as an agent would: one session per run, one request per fault.
/// The simulator-only policies (`oracle`, `swap-readahead`) stay in-process.
final class RemotePolicies {
    let client: PrepageConnection
    let pageSize: Int
    private var sessions: [String] = []
    private let prefix = "prepage-sim-\(getpid())"

    init(url: String, pageSize: Int) throws {
        do {
            // A simulation needs the oracle's every answer: no fallback, a generous deadline.
            client = try PrepageConnection(
                options: PrepageClientOptions(baseURL: url, faultDeadlineMilliseconds: 5_000, faultFallback: false))
        } catch {
            throw ValidationError("--server \(url): \(error)")
        }
        self.pageSize = pageSize
    }

    deinit {
        for id in sessions { _ = try? client.deleteSession(id) }
    }

    /// A fresh policy; agent policies get a new session on the server.
    func make(_ name: String, _ base: PrepageConfig) throws -> any SimulatedPolicy {
        guard let policy = PolicyName(rawValue: name) else { return try PolicyCatalog.make(name, base: base) }
        let id = "\(prefix)-\(sessions.count)-\(name)"
        var c = base
        c.policy = policy
        let config = Self.sessionConfig(c, pageSize: pageSize)
        do {
            try client.createSession(id, config: config)
        } catch {
            throw RuntimeError("--server: cannot create session \(id): \(error)")
        }
        sessions.append(id)
        return RemotePolicy(client: client, session: id, name: name)
    }

    var factory: (String, PrepageConfig) throws -> any SimulatedPolicy { { try self.make($0, $1) } }

    /// The client's session config for `config`: every field of the core's table that the
    /// policy reads (the server refuses the others), set through the same table. A field the
    /// client library cannot send fails the session's creation, naming the field.
    static func sessionConfig(_ config: PrepageConfig, pageSize: Int) -> RemoteSessionConfig {
        var session = RemoteSessionConfig(pageSize: pageSize)
        for field in PrepageConfig.fields where field.applies(to: config.policy) {
            session[field] = field.value(in: config)
        }
        return session
    }
}

/// One session on the server, asked once per fault.
struct RemotePolicy: SimulatedPolicy {
    let client: PrepageConnection
    let session: String
    let name: String

    mutating func fault(page: Int, stream: UInt32, context: FaultContext) -> (start: Int, count: Int) {
        do {
            let d = try client.fault(session, page: UInt64(page), stream: stream)
            return (Int(d.start), Int(d.count))
        } catch {
            // A simulation cannot go on without its answers: say why and stop.
            FileHandle.standardError.write(Data("prepage-sim: --server: fault on \(session): \(error)\n".utf8))
            exit(1)
        }
    }
}

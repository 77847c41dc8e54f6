import Foundation
import Logging
import PrepageCore
import PrepageHTTP
import PrepageServer
import PrepageSockets
import PrepageTestSupport
import Synchronization
import Testing

/// Issue 12 against an in-process server whose limits a test can shrink: the
/// connection cap and deadlines, the memory budget, the listing's size paging, drain.
@Suite struct HostileServerTests {
    // MARK: 5. Idle connections

    /// A connection that never sends a byte is closed at the request deadline, not
    /// kept for the 60 s keep-alive idle timeout.
    @Test func silentConnectionIsClosedAtTheRequestDeadline() throws {
        var limits = HTTPLimits()
        limits.requestDeadline = .milliseconds(300)
        limits.keepAliveIdleTimeout = .seconds(600)
        let s = try TestServer(threads: 1, limits: limits)
        let silent = try s.client()
        #expect(silent.isClosedByServer(timeout: 10))
        // One that completed a request is kept alive between requests (idle timeout applies).
        let kept = try s.client()
        #expect(try kept.request("GET", "/livez").status == 200)
        #expect(!kept.isClosedByServer(timeout: 1))
    }

    /// At the connection cap, a flood of silent sockets does not lock a real client
    /// out: the longest-idle connection makes room.
    @Test func floodOfIdleConnectionsAtTheCapDoesNotLockOut() throws {
        var limits = HTTPLimits()
        limits.maxConnections = 40
        let s = try TestServer(threads: 1, limits: limits)
        var flood: [RawClient] = []
        for _ in 0..<60 { flood.append(try s.client()) }
        // A real client still gets its answer, on a fresh connection, at once.
        let c = try s.client()
        #expect(try c.request("GET", "/livez").status == 200)
        #expect(try c.request("GET", "/version").status == 200)
        // The oldest silent connections were the ones closed.
        #expect(flood[0].isClosedByServer(timeout: 2))
    }

    // MARK: 6. Memory budget

    @Test func sessionPastTheMemoryBudgetIs507AndDeletingMakesRoom() throws {
        let labels = (0..<16).map {
            "\"k\($0)\(String(repeating: "x", count: 120))\":\"\(String(repeating: "v", count: 1_024))\""
        }
        let body = "{\"labels\":{\(labels.joined(separator: ","))}}"
        let s = try TestServer(memoryLimit: 200_000)
        let c = try s.client()
        var created = 0
        var refused: Response? = nil
        for i in 0..<100 {
            let r = try c.request("PUT", "/sessions/m\(i)", body: body)
            if r.status == 201 { created += 1 } else { refused = r; break }
        }
        let r = try #require(refused, "200,000 bytes held 100 sessions of 16 large labels")
        #expect(r.status == 507)
        #expect(r.problemType == "urn:prepage:problem:memory-limit")
        // The library's advice names no flag (prepaged's names --memory-limit: CLITests).
        #expect((r.json["detail"] as? String)?.hasSuffix("delete sessions or raise the server's memory limit") == true)
        #expect(created >= 5 && created <= 10, "\(created) sessions of ~20 KB each in 200,000 bytes")
        #expect(s.server.store.budget.usedBytes <= 200_000)
        // Refused changes nothing; deleting one makes room for one.
        #expect(try c.request("GET", "/sessions/m\(created)").status == 404)
        #expect(try c.request("DELETE", "/sessions/m0").status == 200)
        #expect(try c.request("PUT", "/sessions/m\(created)", body: body).status == 201)
        // Every byte comes back when every session is gone.
        for i in 1...created { #expect(try c.request("DELETE", "/sessions/m\(i)").status == 200) }
        #expect(s.server.store.budget.usedBytes == 0)
        #expect(try c.request("GET", "/metrics").text.contains("prepage_session_memory_bytes 0\n"))
    }

    /// A new stream past the budget takes the least recently used stream's slot: the
    /// fault is answered, the table stops growing.
    @Test func newStreamPastTheBudgetReusesTheLeastRecentlyUsedSlot() throws {
        let s = try TestServer(memoryLimit: 16_384)
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/st", body: #"{"policy":"dp","max_streams":1024}"#).status == 201)
        let pages = (0..<1_024).map { String($0 * 100_000) }.joined(separator: ",")
        let streams = (0..<1_024).map(String.init).joined(separator: ",")
        let r = try c.request("POST", "/sessions/st/faults", body: "{\"pages\":[\(pages)],\"streams\":[\(streams)]}")
        #expect(r.status == 200)
        #expect((r.json["decisions"] as? [Any])?.count == 1_024)
        let doc = try c.request("GET", "/sessions/st")
        let tracked = ((doc.json["state"] as? [String: Any])?["streams"] as? [Any])?.count ?? 0
        #expect(tracked > 0 && tracked < 1_024, "\(tracked) streams tracked within 16 KiB")
        #expect(s.server.store.budget.usedBytes <= 16_384)
        // Without the budget all 1,024 would be tracked.
        let free = try TestServer()
        let f = try free.client()
        #expect(try f.request("PUT", "/sessions/st", body: #"{"policy":"dp","max_streams":1024}"#).status == 201)
        #expect(
            try f.request("POST", "/sessions/st/faults", body: "{\"pages\":[\(pages)],\"streams\":[\(streams)]}").status
                == 200)
        let all = ((try f.request("GET", "/sessions/st").json["state"] as? [String: Any])?["streams"] as? [Any])?.count
        #expect(all == 1_024)
        // What the budget counts follows the core's figure, and comes back on reset.
        let used = free.server.store.budget.usedBytes
        #expect(used > 1_024 * 76, "\(used) bytes for 1,024 streams")
        #expect(try f.request("POST", "/sessions/st/reset").status == 200)
        #expect(free.server.store.budget.usedBytes < used - 1_024 * 76)
    }

    @Test func listingPagesBySizeAsWellAsCount() throws {
        let labels = (0..<16).map {
            "\"k\($0)\(String(repeating: "x", count: 120))\":\"\(String(repeating: "v", count: 1_024))\""
        }
        let body = "{\"labels\":{\(labels.joined(separator: ","))}}"
        let s = try TestServer()
        let c = try s.client()
        let total = 120  // ~2.4 MB of documents
        for i in 0..<total {
            #expect(try c.request("PUT", "/sessions/\(String(format: "p%04d", i))", body: body).status == 201)
        }
        var seen: [String] = []
        var after: String? = nil
        var pages = 0
        repeat {
            let r = try c.request("GET", "/sessions?limit=1000" + (after.map { "&after=\($0)" } ?? ""))
            #expect(r.status == 200)
            #expect(r.body.count <= 1 << 20, "a page of \(r.body.count) bytes")
            let ids = (r.json["sessions"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            #expect(!ids.isEmpty)
            seen += ids
            after = r.json["next"] as? String
            pages += 1
        } while after != nil && pages < 10
        #expect(pages >= 3)
        #expect(seen == (0..<total).map { String(format: "p%04d", $0) })
    }

    // MARK: 3. Numbers a client controls

    /// Every number a client sends at its extremes — pages, addresses, page sizes,
    /// window sizes, memory — is answered (200 or a 4xx), never a trap.
    @Test func extremeNumbersFromClientsAreAnsweredNeverTrap() throws {
        let s = try TestServer(threads: 1)
        let c = try s.client()
        let big = [
            "0", "1", "511", "512", "4294967295", "4294967296", "9223372036854775807", "9223372036854775808",
            "18446744073709551615", "\"0xffffffffffffffff\"", "18446744073709551616", "-1", "-9223372036854775808",
        ]
        var rng = SplitMix64(seed: 12)
        var statuses: Set<Int> = []
        for i in 0..<400 {
            // Every field of the table (and page_size), with every policy.
            let field = (PrepageConfig.fields.map(\.name).filter { $0 != "policy" } + ["page_size"])
                .randomElement(using: &rng)!
            let value = (big + ["1e308", "1e-320", "0.0005", "-0.0", "1.5"]).randomElement(using: &rng)!
            let policy = PolicyName.allCases.randomElement(using: &rng)!.rawValue
            let id = "x\(i)"
            let created = try c.request(
                "PUT", "/sessions/\(id)", body: "{\"policy\":\"\(policy)\",\"\(field)\":\(value)}")
            statuses.insert(created.status)
            #expect([201, 400].contains(created.status), "\(field)=\(value): \(created.status) \(created.text)")
            guard created.status == 201 else { continue }
            for key in ["page", "addr"] {
                let v = big.randomElement(using: &rng)!
                let r = try c.request(
                    "POST", "/sessions/\(id)/fault",
                    body: "{\"\(key)\":\(v),\"stream\":\(big.randomElement(using: &rng)!)}")
                statuses.insert(r.status)
                #expect([200, 400, 422].contains(r.status), "\(key)=\(v): \(r.status) \(r.text)")
                let batch = try c.request("POST", "/sessions/\(id)/faults", body: "{\"\(key)s\":[\(v),\(v)]}")
                #expect([200, 400, 422].contains(batch.status), "\(key)s=[\(v)]: \(batch.status) \(batch.text)")
            }
        }
        #expect(statuses.isSuperset(of: [200, 201, 400]))
        #expect(try c.request("GET", "/livez").status == 200)
    }

    // MARK: 8. Drain: an incomplete request is counted

    @Test func drainCountsARequestStillIncompleteInTheLog() throws {
        let lines = LogLines()
        let s = try TestServer(
            threads: 1, drainTimeout: .milliseconds(500),
            logger: Logger(label: "test", factory: { _ in lines.handler() }))
        let c = try s.client()
        // One complete request and the head of another, then the drain.
        try c.send(
            RawClient.format("GET", "/livez") + "PUT /sessions/late HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n{")
        #expect(try c.readResponse().status == 200)
        s.stop()
        #expect(c.isClosedByServer())
        let warning = lines.all.first { $0.contains("incomplete") }
        #expect(warning?.contains("incomplete=1") == true, "log: \(lines.all)")
    }
}

/// Log lines captured from a server under test.
final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return lines
    }

    func append(_ line: String) {
        lock.lock()
        lines.append(line)
        lock.unlock()
    }

    func handler() -> some LogHandler { Handler(sink: self) }

    struct Handler: LogHandler {
        let sink: LogLines
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let fields = (event.metadata ?? [:]).map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")
            sink.append("\(event.level) \(event.message) \(fields)")
        }
    }
}

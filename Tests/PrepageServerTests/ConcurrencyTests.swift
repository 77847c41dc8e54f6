import Foundation
import PrepageCore
import PrepageServer
import PrepageTestSupport
import Testing

/// Many connections at once: per-session results equal to a sequential replay.
@Suite struct ConcurrencyTests {
    @Test func manySessionsAtOnceEachEqualToItsVector() throws {
        let vectors = try Vector.all()
        let s = try TestServer(threads: 2)
        let copies = 4
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: vectors.count * copies) { n in
            let v = vectors[n % vectors.count]
            let id = "\(v.name)-\(n)"
            do {
                let c = try s.client()
                guard try c.request("PUT", "/sessions/\(id)", body: v.configJSON).status == 201 else {
                    return failures.add("\(id): create failed")
                }
                for (i, page) in v.faults.enumerated() {
                    let r = try c.request(
                        "POST", "/sessions/\(id)/fault", body: "{\"page\":\(page),\"stream\":\(v.streams[i])}")
                    if !v.expected[i].matches(json: r.json) { return failures.add("\(id) fault #\(i) differs") }
                }
            } catch {
                failures.add("\(id): \(error)")
            }
        }
        #expect(failures.all.isEmpty, "\(failures.all.prefix(5))")
    }

    /// Several clients fault on one session at once. Each fault is decided whole, one at a
    /// time: there must be an interleaving of the clients' faults (each client's in its own
    /// order) whose sequential replay gives exactly the answers the clients got.
    @Test func manyClientsOnOneSessionMatchASequentialReplay() throws {
        let s = try TestServer(threads: 2)
        let setup = try s.client()
        let configJSON = #"{"policy":"dp","max_pages":64,"k":3,"max_streams":4}"#
        #expect(try setup.request("PUT", "/sessions/shared", body: configJSON).status == 201)
        let clients = 4
        let perClient = 60
        // Each client scans its own region with cases of random length (seeded), on its own
        // stream (a vCPU); all of them teach the session's shared range (k = 3).
        var workloads: [[(page: Int, stream: UInt32)]] = []
        var rng = SplitMix64(seed: 42)
        for k in 0..<clients {
            var faults: [(page: Int, stream: UInt32)] = []
            var page = 1_000_000 * (k + 1)
            while faults.count < perClient {
                let run = Int.random(in: 1...6, using: &rng)
                for step in 0..<run where faults.count < perClient {
                    faults.append((page + step * Int.random(in: 1...40, using: &rng), UInt32(k)))
                }
                page += 50_000
            }
            workloads.append(faults)
        }
        let work = workloads
        let answers = Answers(clients: clients)
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: clients) { k in
            do {
                let c = try s.client()
                for f in work[k] {
                    let sent = DispatchTime.now().uptimeNanoseconds
                    let r = try c.request(
                        "POST", "/sessions/shared/fault", body: "{\"page\":\(f.page),\"stream\":\(f.stream)}")
                    let received = DispatchTime.now().uptimeNanoseconds
                    guard let d = Decision(json: r.json) else { return failures.add("client \(k): status \(r.status)") }
                    answers.add(d, client: k, sent: sent, received: received)
                }
            } catch {
                failures.add("client \(k): \(error)")
            }
        }
        #expect(failures.all.isEmpty, "\(failures.all)")
        let got = answers.all
        let config = try PrepageConfig(policy: .dp, maxPages: 64, k: 3, maxStreams: 4).validated()
        let order = Self.interleaving(
            workloads: workloads, answers: got, times: answers.times, start: try Prepager(config: config))
        #expect(order != nil, "no sequential order of the faults reproduces the answers")
        let doc = try setup.request("GET", "/sessions/shared")
        #expect((doc.json["stats"] as? [String: Any])?["faults"] as? Int == clients * perClient)
    }

    /// Depth-first search for an interleaving whose sequential replay gives `answers`
    /// and that respects real time (linearizability): a fault answered before another
    /// was sent comes first. Dead ends are remembered by (positions, learned state), so
    /// orders that commute are not explored twice.
    static func interleaving(
        workloads: [[(page: Int, stream: UInt32)]], answers: [[Decision]],
        times: [[(sent: UInt64, received: UInt64)]], start: Prepager
    ) -> [Int]? {
        // before[k][i][j]: how many of client j's faults were answered before client k sent its i-th.
        let before = times.indices.map { k in
            times[k].map { t in times.map { other in other.filter { $0.received < t.sent }.count } }
        }
        struct Key: Hashable {
            var positions: [Int]
            var state: PolicySnapshot
        }
        var budget = 5_000_000
        var deadEnds = Set<Key>()
        var positions = Array(repeating: 0, count: workloads.count)
        var order: [Int] = []
        let total = workloads.reduce(0) { $0 + $1.count }
        func search(_ state: Prepager) -> Bool {
            if order.count == total { return true }
            let key = Key(positions: positions, state: state.snapshot)
            if deadEnds.contains(key) { return false }
            for k in workloads.indices where positions[k] < workloads[k].count {
                // Real time: every fault answered before this one was sent must be placed already.
                guard workloads.indices.allSatisfy({ positions[$0] >= before[k][positions[k]][$0] }) else { continue }
                budget -= 1
                if budget < 0 { return false }
                let f = workloads[k][positions[k]]
                var next = state
                guard let d = try? next.decide(page: f.page, stream: f.stream), d == answers[k][positions[k]] else {
                    continue
                }
                positions[k] += 1
                order.append(k)
                if search(next) { return true }
                order.removeLast()
                positions[k] -= 1
            }
            deadEnds.insert(key)
            return false
        }
        return search(start) ? order : nil
    }
}

final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ s: String) { lock.withLock { list.append(s) } }
    var all: [String] { lock.withLock { list } }
}

final class Answers: @unchecked Sendable {
    private let lock = NSLock()
    private var lists: [[Decision]]
    private var stamps: [[(sent: UInt64, received: UInt64)]]
    init(clients: Int) {
        lists = Array(repeating: [], count: clients)
        stamps = Array(repeating: [], count: clients)
    }
    func add(_ d: Decision, client: Int, sent: UInt64, received: UInt64) {
        lock.withLock {
            lists[client].append(d)
            stamps[client].append((sent, received))
        }
    }
    var all: [[Decision]] { lock.withLock { lists } }
    /// When each fault was sent and its answer received (monotonic nanoseconds).
    var times: [[(sent: UInt64, received: UInt64)]] { lock.withLock { stamps } }
}

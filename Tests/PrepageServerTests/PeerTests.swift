import Foundation
import PrepageCore
import PrepageServer
import PrepageTestSupport
import Synchronization
import Testing

/// `--peers` and `--peer-state-dirs`: a session that moves to another instance
/// arrives there with what it learned — released by a live peer, adopted from a
/// stopped peer's directory, or taken back by an instance that comes back — and
/// no fault its old instance answered is lost on the way.
@Suite struct PeerTests {
    /// Three servers on port 0 that know each other; `directories` on (shared) disk.
    final class Cluster {
        var servers: [TestServer?]
        let directories: [String]
        let ports: [Int]

        init(count: Int = 3, snapshotInterval: Duration = .seconds(3_600)) throws {
            let base = NSTemporaryDirectory() + "prepage-peers-\(UUID().uuidString.prefix(8))"
            directories = (0..<count).map { "\(base)/\($0)" }
            // Ports first (the peers' URLs must be known at start): bind, read, close.
            ports = (0..<count).map { _ in Self.freePort() }
            servers = Array(repeating: nil, count: count)
            for i in 0..<count { try start(i, snapshotInterval: snapshotInterval) }
        }

        static func freePort() -> Int {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    _ = bind(fd, $0, len)
                    _ = getsockname(fd, $0, &len)
                }
            }
            return Int(UInt16(bigEndian: addr.sin_port))
        }

        func start(_ i: Int, snapshotInterval: Duration = .seconds(3_600)) throws {
            let others = ports.indices.filter { $0 != i }
            servers[i] = try TestServer(
                stateDirectory: directories[i], snapshotInterval: snapshotInterval, port: ports[i],
                peers: others.map { "http://127.0.0.1:\(ports[$0])" },
                peerStateDirectories: others.map { directories[$0] })
        }

        func client(_ i: Int) throws -> RawClient { try servers[i]!.client() }

        /// Stops server `i` as SIGTERM does (drained, last snapshot written).
        func stop(_ i: Int) {
            servers[i]?.stop()
            servers[i] = nil
        }
    }

    static func fault(_ c: RawClient, _ id: String, _ page: Int, stream: Int = 0) throws -> Response {
        try c.request("POST", "/sessions/\(id)/fault", body: "{\"page\":\(page),\"stream\":\(stream)}")
    }

    static func learn(_ c: RawClient, _ id: String, faults: Int, seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        var page = 0
        for _ in 0..<faults {
            page = Int.random(in: 0..<5, using: &rng) == 0 ? Int.random(in: 0..<1 << 30, using: &rng) : page + 1
            #expect(try fault(c, id, page).status == 200)
        }
    }

    /// The learned state and the counters of a state document.
    static func learned(_ text: String) -> String {
        let doc = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
        let parts: [Any] = [doc["learned"] ?? NSNull(), doc["stats"] ?? NSNull(), doc["config"] ?? NSNull()]
        return String(
            decoding: (try? JSONSerialization.data(withJSONObject: parts, options: .sortedKeys)) ?? Data(),
            as: UTF8.self)
    }

    @Test func aSessionCreatedWhereAPeerHoldsItMovesWithWhatItLearned() throws {
        let cluster = try Cluster()
        let b = try cluster.client(1)
        let c = try cluster.client(2)
        let config = #"{"max_pages":64}"#
        #expect(try b.request("PUT", "/sessions/x", body: config).status == 201)
        try Self.learn(b, "x", faults: 200, seed: 1)
        let there = try b.request("GET", "/sessions/x/state").text
        // The client's re-creation after the balancer moved it: created here with B's state.
        let created = try c.request("PUT", "/sessions/x", body: config)
        #expect(created.status == 201)
        #expect(Self.learned(try c.request("GET", "/sessions/x/state").text) == Self.learned(there))
        #expect(try b.request("GET", "/sessions/x").status == 404)
        // A session nobody holds is created fresh; one held with another configuration stays where it is.
        #expect(try c.request("PUT", "/sessions/new", body: config).status == 201)
        #expect(try b.request("PUT", "/sessions/z", body: config).status == 201)
        #expect(try c.request("PUT", "/sessions/z", body: #"{"max_pages":32}"#).status == 201)
        #expect(try b.request("GET", "/sessions/z").status == 200)
        let metrics = try c.request("GET", "/metrics").text
        #expect(metrics.contains("prepage_sessions_moved_total{how=\"pulled\"} 1"))
    }

    @Test func releaseAnswersTheStateOnceAndRefusesAnotherConfiguration() throws {
        let s = try TestServer()
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/r", body: "{}").status == 201)
        try Self.learn(c, "r", faults: 50, seed: 2)
        let state = try c.request("GET", "/sessions/r/state").text
        let refused = try c.request("POST", "/sessions/r/release", body: #"{"max_pages":8}"#)
        #expect(refused.status == 409)
        let released = try c.request("POST", "/sessions/r/release", body: "{}")
        #expect(released.status == 200 && released.text == state)
        #expect(try c.request("POST", "/sessions/r/release", body: "").status == 404)
        #expect(try Self.fault(c, "r", 5).status == 404)
    }

    /// Faults race the release from another thread: every fault the old instance
    /// answered is in the state the new one received, none after.
    @Test func noFaultAnsweredIsLostToARelease() throws {
        for round in 0..<5 {
            let s = try TestServer()
            let c = try s.client()
            let id = "race-\(round)"
            #expect(try c.request("PUT", "/sessions/\(id)", body: "{}").status == 201)
            let answered = Atomic<Int>(0)
            let done = Atomic<Bool>(false)
            let worker = Thread {
                guard let w = try? s.client() else { return }
                var page = 1_000
                while let r = try? Self.fault(w, id, page), r.status == 200 {
                    answered.add(1, ordering: .relaxed)
                    page += 1
                }
                done.store(true, ordering: .releasing)
            }
            worker.start()
            Thread.sleep(forTimeInterval: 0.05 + 0.02 * Double(round))
            let released = try c.request("POST", "/sessions/\(id)/release", body: "")
            #expect(released.status == 200)
            while !done.load(ordering: .acquiring) { Thread.sleep(forTimeInterval: 0.001) }
            let stats = released.json["stats"] as? [String: Any]
            #expect(stats?["faults"] as? Int == answered.load(ordering: .relaxed))
        }
    }

    /// A stopped (drained) instance's sessions are adopted from its directory with
    /// everything, and recorded there as moved: when it comes back it does not restore
    /// them, and their clients' re-creation there pulls them back with what they
    /// learned meanwhile; the sessions that never moved come back with it.
    @Test func aStoppedInstancesSessionsAreAdoptedAndComeBackWithTheirClients() throws {
        let cluster = try Cluster()
        let a = try cluster.client(0)
        let config = #"{"policy":"dp","max_pages":64}"#
        for k in 0..<4 {
            #expect(try a.request("PUT", "/sessions/s\(k)", body: config).status == 201)
            try Self.learn(a, "s\(k)", faults: 80, seed: UInt64(k))
        }
        let before = try (0..<4).map { try a.request("GET", "/sessions/s\($0)/state").text }
        cluster.stop(0)
        let b = try cluster.client(1)
        for k in 0..<2 {
            // Re-created on B: adopted from A's directory, exactly as A left it.
            #expect(try b.request("PUT", "/sessions/s\(k)", body: config).status == 201)
            #expect(Self.learned(try b.request("GET", "/sessions/s\(k)/state").text) == Self.learned(before[k]))
            try Self.learn(b, "s\(k)", faults: 30, seed: UInt64(100 + k))
        }
        let onB = try (0..<2).map { try b.request("GET", "/sessions/s\($0)/state").text }
        try cluster.start(0)
        let a2 = try cluster.client(0)
        for k in 0..<2 {
            // Not brought back: its client meets a 404 there and re-creates it, which pulls it from B.
            #expect(try a2.request("GET", "/sessions/s\(k)").status == 404)
            #expect(try a2.request("PUT", "/sessions/s\(k)", body: config).status == 201)
            #expect(Self.learned(try a2.request("GET", "/sessions/s\(k)/state").text) == Self.learned(onB[k]))
            #expect(try b.request("GET", "/sessions/s\(k)").status == 404)
        }
        for k in 2..<4 {
            #expect(Self.learned(try a2.request("GET", "/sessions/s\(k)/state").text) == Self.learned(before[k]))
        }
    }

    /// A killed instance's sessions move to both survivors at once (each gets the ones
    /// the ring gives it), their clients re-creating them from several threads: every
    /// one is adopted by exactly its survivor with what it learned, both survivors
    /// taking from the same directory meanwhile, and the instance, started again,
    /// brings back none of them.
    @Test func twoInstancesAdoptingFromOneDirectoryAtOnceTakeEachSessionOnceWithWhatItLearned() throws {
        let cluster = try Cluster()
        let a = try cluster.client(0)
        let config = #"{"policy":"dp","max_pages":64}"#
        let n = 24
        for k in 0..<n {
            #expect(try a.request("PUT", "/sessions/t\(k)", body: config).status == 201)
            try Self.learn(a, "t\(k)", faults: 40, seed: UInt64(200 + k))
        }
        let before = try (0..<n).map { Self.learned(try a.request("GET", "/sessions/t\($0)/state").text) }
        cluster.stop(0)
        // Survivor 1 + k % 2 re-creates session k; four clients per survivor, all at once.
        let statuses = Mutex([Int](repeating: 0, count: n))
        let ports = cluster.ports
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            guard let c = try? RawClient(port: ports[1 + worker % 2]) else { return }
            for k in stride(from: worker, to: n, by: 8) {
                let status = (try? c.request("PUT", "/sessions/t\(k)", body: config).status) ?? -1
                statuses.withLock { $0[k] = status }
            }
        }
        #expect(statuses.withLock { $0 } == [Int](repeating: 201, count: n))
        for k in 0..<n {
            let mine = try cluster.client(1 + k % 2)
            let other = try cluster.client(2 - k % 2)
            #expect(Self.learned(try mine.request("GET", "/sessions/t\(k)/state").text) == before[k])
            #expect(try other.request("GET", "/sessions/t\(k)").status == 404)
        }
        var adopted = 0
        for i in 1...2 {
            let metrics = try cluster.client(i).request("GET", "/metrics").text
            for line in metrics.split(separator: "\n")
            where line.hasPrefix("prepage_sessions_moved_total{how=\"adopted\"}") {
                adopted += Int(line.split(separator: " ").last ?? "") ?? 0
            }
        }
        #expect(adopted == n)
        try cluster.start(0)
        let a2 = try cluster.client(0)
        for k in 0..<n { #expect(try a2.request("GET", "/sessions/t\(k)").status == 404) }
    }

    /// Without shared storage: a session re-created on B while A is away starts fresh
    /// there; when A comes back with its restored copy, that copy is checked with the
    /// peers at its first use and B's — the one the client used meanwhile — replaces it.
    @Test func aRestoredSessionThatMovedMeanwhileIsTakenFromThePeerAtItsFirstUse() throws {
        let base = NSTemporaryDirectory() + "prepage-peers-\(UUID().uuidString.prefix(8))"
        let ports = [Cluster.freePort(), Cluster.freePort()]
        func start(_ i: Int) throws -> TestServer {
            try TestServer(
                stateDirectory: "\(base)/\(i)", snapshotInterval: .seconds(3_600), port: ports[i],
                peers: ["http://127.0.0.1:\(ports[1 - i])"])
        }
        var a: TestServer? = try start(0)
        let b = try start(1)
        let config = #"{"max_pages":64}"#
        #expect(try a!.client().request("PUT", "/sessions/m", body: config).status == 201)
        try Self.learn(try a!.client(), "m", faults: 60, seed: 7)
        a!.stop()
        a = nil
        let cb = try b.client()
        #expect(try cb.request("PUT", "/sessions/m", body: config).status == 201)  // A is away: fresh
        try Self.learn(cb, "m", faults: 40, seed: 8)
        let onB = try cb.request("GET", "/sessions/m/state").text
        a = try start(0)
        let ca = try a!.client()
        #expect(Self.learned(try ca.request("GET", "/sessions/m/state").text) == Self.learned(onB))
        #expect(try cb.request("GET", "/sessions/m").status == 404)
    }

    /// The next faults of a session, as (status, body) pairs: a seeded FSD-like load from `page`.
    static func next(_ c: RawClient, _ id: String, faults: Int, seed: UInt64, form: Bool = false) throws -> [String] {
        var rng = SplitMix64(seed: seed)
        var page = 1 << 20
        var answers: [String] = []
        for k in 0..<faults {
            page = Int.random(in: 0..<5, using: &rng) == 0 ? Int.random(in: 0..<1 << 30, using: &rng) : page + 1
            let r =
                form && k == 0
                ? try c.request(
                    "POST", "/sessions/\(id)/fault", body: "page=\(page)",
                    contentType: "application/x-www-form-urlencoded")
                : try fault(c, id, page)
            answers.append("\(r.status) \(r.text)")
        }
        return answers
    }

    static func moved(_ c: RawClient, _ how: String) throws -> Int {
        let metrics = try c.request("GET", "/metrics").text
        let line = metrics.split(separator: "\n").first { $0.hasPrefix("prepage_sessions_moved_total{how=\"\(how)\"}") }
        return Int(line?.split(separator: " ").last ?? "") ?? -1
    }

    /// The first fault a stopped instance's client sends to the survivor the balancer
    /// moved it to is answered there (one round trip: no 404, no re-creation): the
    /// session is adopted from the stopped instance's directory with the configuration it
    /// journaled, and every answer is the one the stopped instance would have given.
    /// Its directory gives it to no other instance afterwards; a third instance's fault for
    /// it pulls it from the survivor, which runs and releases it.
    @Test func aFaultForAStoppedPeersSessionAdoptsItAndIsAnsweredAsThePeerWould() throws {
        let cluster = try Cluster()
        let a = try cluster.client(0)
        let config = #"{"policy":"dp","max_pages":48}"#
        #expect(try a.request("PUT", "/sessions/f", body: config).status == 201)
        try Self.learn(a, "f", faults: 150, seed: 300)
        let before = try a.request("GET", "/sessions/f/state").text
        cluster.stop(0)
        // The undisturbed reference: the same state, faulted the same way.
        let reference = try TestServer()
        let r = try reference.client()
        #expect(try r.request("PUT", "/sessions/f", body: "{\"state\":\(before)}").status == 201)
        let expected = try Self.next(r, "f", faults: 40, seed: 301)
        let b = try cluster.client(1)
        let got = try Self.next(b, "f", faults: 40, seed: 301, form: true)
        #expect(got.allSatisfy { $0.hasPrefix("200 ") })
        #expect(got == expected)
        #expect(try b.request("GET", "/sessions/f").status == 200)
        // The same learned state and counters (the wall-clock time of the last fault aside).
        let onB = Self.learned(try b.request("GET", "/sessions/f/state").text)
        let onR = Self.learned(try r.request("GET", "/sessions/f/state").text)
        #expect(onB.replacing(/"last_fault_at_ns":\d+/, with: "") == onR.replacing(/"last_fault_at_ns":\d+/, with: ""))
        #expect(onB.contains(#""faults":190"#))
        #expect(try Self.moved(b, "adopted") == 1)
        // A's directory no longer has it: C's fault for it is answered with B's copy,
        // which B releases (B runs: its directory is not read).
        let c = try cluster.client(2)
        #expect(try Self.next(c, "f", faults: 10, seed: 302) == (try Self.next(r, "f", faults: 10, seed: 302)))
        #expect(try Self.moved(c, "adopted") == 0)
        #expect(try Self.moved(c, "pulled") == 1)
        #expect(try b.request("GET", "/sessions/f").status == 404)
        // A, started again, does not bring it back.
        try cluster.start(0)
        #expect(try cluster.client(0).request("GET", "/sessions/f").status == 404)
    }

    /// An instance's directory as its `kill -9` leaves it (`base/a`, copied: its last snapshot
    /// holds session `id` after `faults` seeded faults; no drain), and `base`.
    static func killedPeer(holding id: String, faults: Int, seed: UInt64) throws -> (base: String, directory: String) {
        let base = NSTemporaryDirectory() + "prepage-peers-\(UUID().uuidString.prefix(8))"
        let a = try TestServer(stateDirectory: base + "/a", snapshotInterval: .milliseconds(50))
        let ca = try a.client()
        #expect(try ca.request("PUT", "/sessions/\(id)", body: #"{"max_pages":64}"#).status == 201)
        try learn(ca, id, faults: faults, seed: seed)
        Thread.sleep(forTimeInterval: 0.3)  // a snapshot with what it learned
        let crashed = try DurabilityTests.crashImage(of: base + "/a")
        a.stop()
        return (base, crashed)
    }

    /// An instance (`base/b`) whose one peer is stopped and left `directory`.
    static func survivor(in base: String, of directory: String) throws -> TestServer {
        try TestServer(
            stateDirectory: base + "/b", peers: ["http://127.0.0.1:\(Cluster.freePort())"],
            peerStateDirectories: [directory])
    }

    /// Killed (its directory as a crash leaves it: no last snapshot, its lock free): the
    /// survivor's first fault for its session adopts what the directory holds and answers
    /// as an instance restored from that directory would.
    @Test func aFaultForAKilledPeersSessionIsAnsweredFromWhatItsDirectoryHolds() throws {
        let (base, crashed) = try Self.killedPeer(holding: "k", faults: 120, seed: 400)
        let reference = try TestServer(stateDirectory: try DurabilityTests.crashImage(of: crashed))
        let expected = try Self.next(try reference.client(), "k", faults: 30, seed: 401)
        let b = try Self.survivor(in: base, of: crashed)
        let cb = try b.client()
        let got = try Self.next(cb, "k", faults: 30, seed: 401)
        #expect(got.allSatisfy { $0.hasPrefix("200 ") })
        #expect(got == expected)
        #expect(try cb.request("GET", "/sessions/k").status == 200)
        // Recorded there as moved: a restart from that directory does not have it.
        b.stop()
        let again = try TestServer(stateDirectory: crashed)
        #expect(try again.client().request("GET", "/sessions/k").status == 404)
    }

    /// The move an adopting fault makes is in both directories as a crash would leave them
    /// just after the answer (which does not wait for the disks: the records are written
    /// before it, synced after it): the survivor's files restore the session as the killed
    /// peer last saved it, and the killed peer's files do not have it any more.
    @Test func aFaultThatAdoptsLeavesTheMoveInBothDirectories() throws {
        let (base, killed) = try Self.killedPeer(holding: "w", faults: 90, seed: 500)
        let reference = try TestServer(stateDirectory: try DurabilityTests.crashImage(of: killed))
        let saved = Self.learned(try reference.client().request("GET", "/sessions/w/state").text)
        let b = try Self.survivor(in: base, of: killed)
        #expect(try Self.fault(try b.client(), "w", 7).status == 200)
        let bCrashed = try DurabilityTests.crashImage(of: base + "/b")
        let killedNow = try DurabilityTests.crashImage(of: killed)
        b.stop()
        let bAgain = try TestServer(stateDirectory: bCrashed)
        let restored = try bAgain.client().request("GET", "/sessions/w/state")
        #expect(restored.status == 200)
        #expect(Self.learned(restored.text) == saved)
        let aAgain = try TestServer(stateDirectory: killedNow)
        #expect(try aAgain.client().request("GET", "/sessions/w").status == 404)
    }

    /// A fault for a session a running peer holds (the balancer sent its client here: its
    /// instance drains or came back, or the ring is changing) pulls it from that peer in one
    /// round trip, whatever its configuration, and is answered as the peer would have
    /// answered; the peer has it no more. A malformed fault takes nothing; a session no
    /// peer has is a 404, as without peers.
    @Test func aFaultForASessionHeldByALivePeerPullsItAndOneHeldByNoneIsNotFound() throws {
        let cluster = try Cluster()
        let a = try cluster.client(0)
        #expect(try a.request("PUT", "/sessions/l", body: #"{"policy":"dp","max_pages":40}"#).status == 201)
        try Self.learn(a, "l", faults: 30, seed: 500)
        let b = try cluster.client(1)
        #expect(try b.request("POST", "/sessions/l/fault", body: #"{"page":"x"}"#).status == 404)
        #expect((try a.request("GET", "/sessions/l").json["stats"] as? [String: Any])?["faults"] as? Int == 30)
        let reference = try TestServer()
        let r = try reference.client()
        let state = try a.request("GET", "/sessions/l/state").text
        #expect(try r.request("PUT", "/sessions/l", body: "{\"state\":\(state)}").status == 201)
        let expected = try Self.next(r, "l", faults: 20, seed: 501)
        let got = try Self.next(b, "l", faults: 20, seed: 501)
        #expect(got.allSatisfy { $0.hasPrefix("200 ") })
        #expect(got == expected)
        #expect(try Self.moved(b, "pulled") == 1)
        #expect(try Self.moved(a, "released") == 1)
        #expect(try a.request("GET", "/sessions/l").status == 404)
        let config = try b.request("GET", "/sessions/l").json["config"] as? [String: Any]
        #expect(config?["policy"] as? String == "dp" && config?["max_pages"] as? Int == 40)
        let refused = try Self.fault(b, "nobody", 3)
        #expect(refused.status == 404)
        #expect(refused.json["type"] as? String == "urn:prepage:problem:session-not-found")
        let alone = try TestServer()
        let none = try Self.fault(try alone.client(), "l", 3)
        #expect(none.status == 404)
        #expect(none.json["detail"] as? String == "no session \"l\"; create it with PUT /sessions/l")
    }
}

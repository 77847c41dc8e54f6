import CAllocationCounter
import Foundation
import PrepageCore
import PrepageHTTP
import Synchronization
import Testing

@testable import PrepageServer

/// The fault path — find the session, read the body, take its lock, decide, count,
/// format the answer into the loop's buffer — adds no allocation to the decision itself.
///
/// The comparison is with the same faults decided directly on a twin `Prepager`, so
/// the test holds in debug builds too, where unspecialized generics in the core may
/// allocate (in release the core's decision does not allocate either: `make bench-core`).
@Suite struct AllocationTests {
    @Test func faultPathAddsNoAllocationToTheDecision() throws {
        let store = SessionRegistry()
        let metrics = LoopMetrics()
        let api = API(
            store: store, clock: SystemClock(), token: nil, idleTimeout: .zero, openAPI: nil, metrics: [metrics])
        let context = LoopContext(metrics: metrics)
        let config = try Inputs.config(json: UnsafeRawBufferPointer(start: nil, count: 0))
        _ = try store.create(id: "vm-1", config: config, now: 1)
        var twin = try Prepager(config: config.prepage)
        // Faults in cases of 1 … 4 pages on 4 streams; requests are built before counting
        // (parsing them is the HTTP layer's work, not the decision's).
        var faults: [(page: Int, stream: UInt32)] = []
        for i in 0..<2_000 {
            let page: Int = 1_000_000 + (i / 4) * 1_000 + i % 4
            faults.append((page, UInt32(i % 4)))
        }
        let requests = faults.map { f in
            HTTPRequest(
                method: .post, target: "/sessions/vm-1/fault", headers: [("Content-Type", "application/json")],
                body: Array("{\"page\":\(f.page),\"stream\":\(f.stream)}".utf8))
        }
        let matches = requests.map { RouteMatch.match($0.path) }
        func serve(_ range: Range<Int>) -> Int {
            var ok = 0
            for i in range {
                var reply = api.handle(requests[i], route: matches[i], context)
                if reply.status == 200 { ok += 1 }
                swap(&reply.body, &context.body)  // as the event loop gives the buffer back
            }
            return ok
        }
        func decide(_ range: Range<Int>) throws {
            for i in range { _ = try twin.decide(page: faults[i].page, stream: faults[i].stream) }
        }
        // Warm up both: streams known, buffers grown.
        #expect(serve(0..<200) == 200)
        try decide(0..<200)

        var before = ac_thread_allocations()
        try decide(200..<2_000)
        let direct = ac_thread_allocations() - before
        before = ac_thread_allocations()
        let ok = serve(200..<2_000)
        let served = ac_thread_allocations() - before

        #expect(ok == 1_800)
        #expect(served == direct, "the server added \(Int(served) - Int(direct)) allocations to 1,800 decisions")
        let document = store.session("vm-1")!.state.withLock { $0.prepager.snapshot }
        #expect(document == twin.snapshot)
    }

    /// The same with a state directory, snapshots taken all along on another thread
    /// (each copies the session under its lock), and then on the session restored from
    /// that directory: the fault path adds nothing either.
    @Test func faultPathAddsNoAllocationWithAStateDirectory() throws {
        let directory = NSTemporaryDirectory() + "prepage-alloc-\(UInt32.random(in: 0...UInt32.max))"
        let config = try Inputs.config(json: UnsafeRawBufferPointer(start: nil, count: 0))
        var faults: [(page: Int, stream: UInt32)] = []
        for i in 0..<2_000 {
            faults.append((2_000_000 + (i / 4) * 1_000 + i % 4, UInt32(i % 4)))
        }
        let requests = faults.map { f in
            HTTPRequest(
                method: .post, target: "/sessions/vm-1/fault", headers: [("Content-Type", "application/json")],
                body: Array("{\"page\":\(f.page),\"stream\":\(f.stream)}".utf8))
        }
        let matches = requests.map { RouteMatch.match($0.path) }
        var twin = try Prepager(config: config.prepage)
        func decide(_ range: Range<Int>) throws {
            for i in range { _ = try twin.decide(page: faults[i].page, stream: faults[i].stream) }
        }
        for round in 0..<2 {
            let store = SessionRegistry()
            let (state, restored) = try DurableState.open(directory: directory)
            store.insert(restored: restored.sessions)
            store.attach(state.journal)
            let metrics = LoopMetrics()
            let api = API(
                store: store, clock: SystemClock(), token: nil, idleTimeout: .zero, openAPI: nil, metrics: [metrics])
            api.durable.state = state
            let context = LoopContext(metrics: metrics)
            if round == 0 { _ = try store.create(id: "vm-1", config: config, now: 1) }
            #expect(store.session("vm-1") != nil)
            let offset = round * 1_000
            func serve(_ range: Range<Int>) -> Int {
                var ok = 0
                for i in range {
                    var reply = api.handle(requests[i], route: matches[i], context)
                    if reply.status == 200 { ok += 1 }
                    swap(&reply.body, &context.body)
                }
                return ok
            }
            // Warm up (the restored session is made at its first fault).
            #expect(serve(offset..<(offset + 200)) == 200)
            try decide(offset..<(offset + 200))
            let stop = Atomic<Bool>(false)
            let snapshots = Atomic<Int>(0)
            let snapshotter = Thread {
                while !stop.load(ordering: .relaxed) {
                    if (try? state.snapshot(store)) != nil { snapshots.add(1, ordering: .relaxed) }
                }
            }
            snapshotter.start()
            var before = ac_thread_allocations()
            try decide((offset + 200)..<(offset + 1_000))
            let direct = ac_thread_allocations() - before
            before = ac_thread_allocations()
            let ok = serve((offset + 200)..<(offset + 1_000))
            let served = ac_thread_allocations() - before
            stop.store(true, ordering: .relaxed)
            while !snapshotter.isFinished { Thread.sleep(forTimeInterval: 0.001) }
            #expect(ok == 800)
            #expect(
                served == direct,
                "round \(round): the server added \(Int(served) - Int(direct)) allocations to 800 decisions")
            #expect(snapshots.load(ordering: .relaxed) > 0)
            #expect(store.session("vm-1")!.state.withLock { $0.prepager.snapshot } == twin.snapshot)
            try state.snapshot(store)
            state.close()
        }
    }

    @Test func counterSeesAllocations() {
        let before = ac_thread_allocations()
        let array = (0..<1_000).map { [$0] }
        #expect(array.count == 1_000)
        #expect(ac_thread_allocations() - before >= 1_000)
    }
}

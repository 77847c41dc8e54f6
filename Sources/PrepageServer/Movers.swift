import PrepageHTTP
import PrepageSockets
import Synchronization

/// The threads that serve requests which wait for other instances (a session
/// moving here: ``Peers``), so that no event loop waits: the loop parks the
/// connection, a mover makes the reply and hands it back to the loop.
final class Movers: Sendable {
    struct Job: @unchecked Sendable {
        let loop: EventLoop
        let fd: Int32
        let serial: UInt64
        let request: HTTPRequest
        let route: Route?
        let started: UInt64
        let work: @Sendable (LoopContext) -> Reply
    }

    private let queue = Mutex<[Job]>([])
    private let running = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let wake: EventFD?
    /// Each mover's counters, summed into `/metrics` with the loops'.
    let metrics: [LoopMetrics]
    private let threads = Mutex<[OSThread]>([])

    init(count: Int) {
        wake = try? EventFD()
        metrics = (0..<count).map { _ in LoopMetrics() }
    }

    /// Starts the threads (once).
    func start() throws(SocketError) {
        guard !running.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var started: [OSThread] = []
        for (i, m) in metrics.enumerated() {
            // Each mover makes its own scratch context, on its own thread.
            started.append(try OSThread(name: "prepaged-move\(i)") { [self] in run(LoopContext(metrics: m)) })
        }
        threads.withLock { $0 = started }
    }

    /// Queues a job; `false` when the movers are not running (or stopping).
    func submit(_ job: Job) -> Bool {
        guard running.load(ordering: .acquiring), !stopping.load(ordering: .acquiring) else { return false }
        queue.withLock { $0.append(job) }
        wake?.signal()
        return true
    }

    private func run(_ context: LoopContext) {
        while true {
            let job = queue.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            guard let job else {
                if stopping.load(ordering: .acquiring) {
                    // One signal wakes one poller (the others see the counter read and sleep on):
                    // each mover that ends wakes the next, so that none waits out its timeout.
                    wake?.signal()
                    return
                }
                _ = wake?.wait(timeoutMilliseconds: 100)
                continue
            }
            var reply = job.work(context)
            // Work off the loop may meet a step that is itself deferred (a restored session
            // checked with its peers, then a fault that adopts a stopped peer's session): it
            // is already off the loop, so it runs here rather than reaching the loop unmade.
            while let more = reply.deferred { reply = more(context) }
            let afterwards = reply.afterwards
            job.loop.deliver(
                EventLoop.Finished(
                    fd: job.fd, serial: job.serial, reply: reply, request: job.request, route: job.route,
                    started: job.started))
            afterwards?()
            // More may be queued: let another mover see the wake-up too.
            if queue.withLock({ !$0.isEmpty }) { wake?.signal() }
        }
    }

    /// Finishes what is queued, then ends the threads.
    func stop() {
        stopping.store(true, ordering: .releasing)
        wake?.signal()
        let list = threads.withLock { l -> [OSThread] in
            defer { l.removeAll() }
            return l
        }
        for t in list { t.join() }
    }
}

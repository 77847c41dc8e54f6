import Logging
import PrepageHTTP
import PrepageSockets
import Synchronization

/// One event loop: a thread, an epoll set, its own `SO_REUSEPORT` listener and
/// its connections. A request is parsed, decided and answered on the thread
/// that read it; the only shared state is the session store (short locks) and
/// a few atomics.
final class EventLoop: @unchecked Sendable {
    let index: Int
    let shared: ServerShared
    let epoll: Epoll
    var listener: Int32
    let wake: EventFD
    var connections: [Connection?] = []
    var openCount = 0
    let context: LoopContext
    var logger: Logger

    /// Read scratch: one `read` per readiness event, at most this many bytes.
    var readBuffer = [UInt8](repeating: 0, count: 65_536)
    /// `Date:` value, recomputed when the second changes.
    var date: [UInt8] = []
    var dateSecond: Int64 = -1
    /// Request ids: a per-loop random prefix and a counter.
    let idPrefix: [UInt8]
    var idCounter: UInt64 = 0
    var generatedID: [UInt8] = []
    static let hexDigits = Array("0123456789abcdef".utf8)

    /// The server's credentials check, run on each head before its body is read.
    let admit: @Sendable (HTTPRequest) -> Bool
    /// Idle connections closed to take a new one at the connection cap.
    var evictedIdle = 0

    /// Replies made off the loop (``Reply/deferred``), to send; the loop is woken for them.
    let finished = Mutex<[Finished]>([])
    var nextSerial: UInt64 = 0

    /// A deferred request's reply, back from a mover thread.
    struct Finished: @unchecked Sendable {
        var fd: Int32
        var serial: UInt64
        var reply: Reply
        var request: HTTPRequest
        var route: Route?
        var started: UInt64
    }

    var draining = false
    /// Accepting failed (out of descriptors): the listener is out of the epoll set until the next sweep.
    var acceptPaused = false
    var drainDeadline: UInt64 = 0
    var nextSweep: UInt64 = 0

    /// The connections' timeouts, from the server's limits.
    let timeouts: ConnectionMachine.Timeouts

    init(index: Int, listener: Int32, shared: ServerShared, metrics: LoopMetrics, logger: Logger) throws(SocketError) {
        self.index = index
        self.listener = listener
        self.shared = shared
        epoll = try Epoll(capacity: 512)
        wake = try EventFD()
        context = LoopContext(metrics: metrics)
        timeouts = ConnectionMachine.Timeouts(
            idle: UInt64(shared.limits.keepAliveIdleTimeout.nanoseconds),
            request: UInt64(shared.limits.requestDeadline.nanoseconds))
        let api = shared.api
        admit = { request in api.admits(request) }
        self.logger = logger
        self.logger[metadataKey: "loop"] = .stringConvertible(index)
        idPrefix = Array((String(UInt32.random(in: 0...UInt32.max) | 0x1000_0000, radix: 16) + "-").utf8)
        generatedID.reserveCapacity(32)
        try epoll.add(listener, .readable)
        try epoll.add(wake.fd, .readable)
    }

    // MARK: - Loop

    func run() {
        let sweepNanos = shared.sweepInterval
        nextSweep = System.monotonicNanoseconds() &+ sweepNanos
        while true {
            do {
                try epoll.wait(timeoutMilliseconds: Int32(sweepNanos / 1_000_000)) { event in
                    dispatch(event)
                }
            } catch {
                logger.error("epoll_wait failed; loop stops", metadata: ["error": "\(error)"])
                break
            }
            let now = System.monotonicNanoseconds()
            if now >= nextSweep {
                sweep(now)
                nextSweep = now &+ sweepNanos
            }
            if shared.draining.load(ordering: .acquiring) && !draining { beginDrain(now) }
            if draining && (openCount == 0 || now >= drainDeadline) { break }
        }
        endDrain()
    }

    func dispatch(_ event: Epoll.Event) {
        if event.fd == listener {
            acceptAll()
            return
        }
        if event.fd == wake.fd {
            wake.drain()
            resumeParked()
            return
        }
        guard Int(event.fd) < connections.count, let c = connections[Int(event.fd)] else { return }
        if event.events.contains(.readable) || event.events.contains(.hangup) || event.events.contains(.error) {
            onReadable(c)
        }
        if connections[Int(event.fd)] === c, event.events.contains(.writable) {
            onWritable(c)
        }
    }

    // MARK: - Closing

    func close(_ c: Connection) {
        guard Int(c.fd) < connections.count, connections[Int(c.fd)] === c else { return }
        c.machine.closed()
        epoll.remove(c.fd)
        Socket.close(c.fd)
        connections[Int(c.fd)] = nil
        openCount -= 1
        shared.api.connections.subtract(1, ordering: .relaxed)
    }
}

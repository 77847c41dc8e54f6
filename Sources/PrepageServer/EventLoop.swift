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
    private let shared: ServerShared
    private let epoll: Epoll
    private var listener: Int32
    let wake: EventFD
    private var connections: [Connection?] = []
    private var openCount = 0
    private let context: LoopContext
    private var logger: Logger

    /// Read scratch: one `read` per readiness event, at most this many bytes.
    private var readBuffer = [UInt8](repeating: 0, count: 65_536)
    /// `Date:` value, recomputed when the second changes.
    private var date: [UInt8] = []
    private var dateSecond: Int64 = -1
    /// Request ids: a per-loop random prefix and a counter.
    private let idPrefix: [UInt8]
    private var idCounter: UInt64 = 0
    private var generatedID: [UInt8] = []
    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// The server's credentials check, run on each head before its body is read.
    private let admit: @Sendable (HTTPRequest) -> Bool
    /// Idle connections closed to take a new one at the connection cap.
    private var evictedIdle = 0

    /// Replies made off the loop (``Reply/deferred``), to send; the loop is woken for them.
    private let finished = Mutex<[Finished]>([])
    private var nextSerial: UInt64 = 0

    /// A deferred request's reply, back from a mover thread.
    struct Finished: @unchecked Sendable {
        var fd: Int32
        var serial: UInt64
        var reply: Reply
        var request: HTTPRequest
        var route: Route?
        var started: UInt64
    }

    private var draining = false
    /// Accepting failed (out of descriptors): the listener is out of the epoll set until the next sweep.
    private var acceptPaused = false
    private var drainDeadline: UInt64 = 0
    private var nextSweep: UInt64 = 0

    /// Stop parsing a connection's input while this much output waits (a client that does not read).
    private static let outputHighWater = 1 << 20
    /// How long a closing connection's unread input is drained before closing.
    private static let lingerNanos: UInt64 = 2_000_000_000

    init(index: Int, listener: Int32, shared: ServerShared, metrics: LoopMetrics, logger: Logger) throws(SocketError) {
        self.index = index
        self.listener = listener
        self.shared = shared
        epoll = try Epoll(capacity: 512)
        wake = try EventFD()
        context = LoopContext(metrics: metrics)
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
        // Requests still incomplete when the drain ends get no answer; they are counted.
        var incomplete = 0
        for case let c? in connections {
            if !c.isLingering && c.hasPendingInput { incomplete += 1 }
            close(c)
        }
        if incomplete > 0 {
            logger.warning(
                "drain ended with requests incomplete; closed unanswered", metadata: ["incomplete": "\(incomplete)"])
        }
        if evictedIdle > 0 {
            logger.info("idle connections closed to admit new ones at the cap", metadata: ["count": "\(evictedIdle)"])
        }
    }

    private func dispatch(_ event: Epoll.Event) {
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

    // MARK: - Accept

    private func acceptAll() {
        while true {
            let fd: Int32
            do {
                guard let accepted = try Socket.accept(listener) else { return }
                fd = accepted
            } catch {
                // EMFILE and friends: the level-triggered listener would report the same
                // pending connection at once, forever. Stop watching it until the next sweep.
                logger.warning("accept failed; pausing accepts for a sweep", metadata: ["error": "\(error)"])
                epoll.remove(listener)
                acceptPaused = true
                return
            }
            let open = shared.api.connections.wrappingAdd(1, ordering: .relaxed).newValue
            if draining {
                shared.api.connections.subtract(1, ordering: .relaxed)
                Socket.close(fd)
                continue
            }
            if open > shared.limits.maxConnections {
                // At the cap, a new connection is still taken: the longest-idle one of
                // this loop makes room (as nginx reuses keep-alive connections), so a
                // flood of idle sockets cannot lock everyone out.
                guard let victim = longestIdle() else {
                    shared.api.connections.subtract(1, ordering: .relaxed)
                    Socket.close(fd)
                    continue
                }
                close(victim)
                evictedIdle += 1
            }
            do {
                try epoll.add(fd, .readable)
            } catch {
                shared.api.connections.subtract(1, ordering: .relaxed)
                Socket.close(fd)
                continue
            }
            let c = Connection(fd: fd, limits: shared.limits, now: System.monotonicNanoseconds(), admit: admit)
            nextSerial &+= 1
            c.serial = nextSerial
            if Int(fd) >= connections.count {
                connections.append(contentsOf: repeatElement(nil, count: Int(fd) + 1 - connections.count))
            }
            connections[Int(fd)] = c
            openCount += 1
        }
    }

    /// This loop's connection idle the longest: waiting for a request (a kept-alive one
    /// between requests, or a new one that has sent nothing), with nothing to send.
    private func longestIdle() -> Connection? {
        var best: Connection? = nil
        for case let c? in connections
        where !c.isLingering && !c.closeAfterWrite && !c.hasPendingInput && !c.hasPendingOutput {
            if best == nil || c.lastActivity < best!.lastActivity { best = c }
        }
        return best
    }

    // MARK: - Reading

    private func onReadable(_ c: Connection) {
        let result: IOResult
        do {
            result = try readBuffer.withUnsafeMutableBytes { raw throws(SocketError) in
                try Socket.read(c.fd, into: raw)
            }
        } catch {
            close(c)
            return
        }
        switch result {
        case .wouldBlock:
            return
        case .endOfFile:
            c.peerClosed = true
            if c.isLingering || !c.hasPendingOutput {
                close(c)
            } else {
                // Stop watching input; send what is queued, then close.
                c.closeAfterWrite = true
                flush(c)
            }
            return
        case .bytes(let n):
            c.lastActivity = System.monotonicNanoseconds()
            c.receivedAny = true
            if c.isLingering { return }  // draining a closing connection: discard
            c.input.append(contentsOf: readBuffer[0..<n])
            process(c)
        }
    }

    /// Parses and answers every complete request in the input, in order, then writes once.
    ///
    /// Parsing pauses while more than ``outputHighWater`` bytes of responses wait; when
    /// they all went out at once, it resumes on the requests still in the input.
    private func process(_ c: Connection) {
        while true {
            var paused = false
            parsing: while !c.closeAfterWrite && !c.parked {
                guard c.output.count - c.outputStart < Self.outputHighWater else {
                    paused = true
                    break parsing
                }
                let result = c.input.withUnsafeBytes { raw in
                    c.parser.parse(UnsafeRawBufferPointer(rebasing: raw[c.inputStart...]))
                }
                switch result {
                case .needMore:
                    // Keep the decoded body only: framing and body bytes already copied go.
                    c.inputStart += c.parser.discardConsumed()
                    break parsing
                case .sendContinue:
                    c.output.append(contentsOf: HTTPResponseWriter.continueResponse)
                    c.inputStart += c.parser.discardConsumed()
                    break parsing
                case .request(let request, let consumed):
                    c.inputStart += consumed
                    c.requestStarted = 0
                    answer(request, on: c, started: System.monotonicNanoseconds())
                case .failure(let error):
                    let reply = shared.api.problem(APIProblem(error), context)
                    finish(
                        reply, request: nil, route: nil, on: c, keepAlive: false,
                        started: System.monotonicNanoseconds(), method: "-")
                    c.closeAfterWrite = true
                    c.inputStart = c.input.count
                }
            }
            // Keep only unconsumed bytes; the parser resumes on the same bytes.
            if c.inputStart == c.input.count {
                // Keep a small buffer for the next request; give back what a large body grew.
                c.input.removeAll(keepingCapacity: c.input.capacity <= 65_536)
            } else if c.inputStart > 0 {
                c.input.removeFirst(c.inputStart)
            }
            c.inputStart = 0
            if c.hasPendingInput {
                if c.requestStarted == 0 { c.requestStarted = c.lastActivity }
            } else {
                c.requestStarted = 0
            }
            // Draining: a connection with nothing more to answer closes once its answers are
            // out; requests already received (here or still in the kernel) are answered first.
            if draining && !c.hasPendingInput && !Socket.hasUnreadInput(c.fd) { c.closeAfterWrite = true }
            flush(c)
            // Sent everything at once: no writable event will come to resume the parsing.
            guard paused, connections[Int(c.fd)] === c, !c.writeBlocked, !c.isLingering else { return }
        }
    }

    private func answer(_ request: HTTPRequest, on c: Connection, started: UInt64) {
        let match = RouteMatch.match(request.path)
        let reply = shared.api.handle(request, route: match, context)
        if let work = reply.deferred {
            // Waits for other instances: done by a mover thread; this connection waits,
            // the loop goes on with the others.
            c.parked = true
            let job = Movers.Job(
                loop: self, fd: c.fd, serial: c.serial, request: request, route: match?.route, started: started, work: work)
            if !shared.movers.submit(job) {
                c.parked = false
                let busy = shared.api.problem(
                    APIProblem(.unavailable, "the server is stopping; retry on another instance"), context)
                finish(busy, request: request, route: match?.route, on: c, keepAlive: false, started: started, method: nil)
                c.closeAfterWrite = true
            }
            return
        }
        send(reply, for: request, route: match?.route, on: c, started: started)
    }

    /// A deferred request's reply is ready (called on a mover thread).
    func deliver(_ done: Finished) {
        finished.withLock { $0.append(done) }
        wake.signal()
    }

    /// Sends the replies made off the loop and resumes their connections.
    private func resumeParked() {
        let ready = finished.withLock { list -> [Finished] in
            defer { list.removeAll() }
            return list
        }
        for done in ready {
            guard Int(done.fd) < connections.count, let c = connections[Int(done.fd)], c.serial == done.serial,
                c.parked
            else { continue }
            c.parked = false
            send(done.reply, for: done.request, route: done.route, on: c, started: done.started)
            process(c)
        }
    }

    private func send(_ reply: Reply, for request: HTTPRequest, route: Route?, on c: Connection, started: UInt64) {
        let match = route
        // While draining, the connection stays open only for requests already received:
        // bytes after this request, here or unread in the kernel.
        let keepAlive =
            request.keepAlive && (!draining || c.inputStart < c.input.count || Socket.hasUnreadInput(c.fd))
        finish(reply, request: request, route: match, on: c, keepAlive: keepAlive, started: started, method: nil)
        if !keepAlive { c.closeAfterWrite = true }
    }

    /// Frames a reply into the connection's output, counts it and logs it.
    private func finish(
        _ reply: Reply, request: HTTPRequest?, route: Route?, on c: Connection, keepAlive: Bool, started: UInt64,
        method: String?
    ) {
        var reply = reply
        let echoed = request?.requestID.flatMap(Self.acceptableRequestID)
        if echoed == nil { nextRequestID() }
        HTTPResponseWriter.appendHead(
            status: reply.status, contentType: reply.contentType, contentLength: reply.body.count,
            extraHeaders: reply.headers, keepAlive: keepAlive, isHTTP10: request?.isHTTP10 ?? false,
            date: date, into: &c.output)
        // The head ends with an empty line; X-Request-ID goes before it, written from bytes
        // (no String or array per response on the hot path).
        c.output.removeLast(2)
        c.output.append(contentsOf: Self.requestIDName)
        if let echoed { c.output.append(contentsOf: echoed.utf8) } else { c.output.append(contentsOf: generatedID) }
        c.output.append(contentsOf: Self.crlfcrlf)
        let hasBody = !(reply.status < 200 || reply.status == 204 || reply.status == 304)
        if request?.method != .head && hasBody { c.output.append(contentsOf: reply.body) }
        context.giveBack(&reply.body)
        let micros = (System.monotonicNanoseconds() &- started) / 1_000
        context.metrics.request(route: route, status: reply.status, micros: micros)
        // A 503 from /readyz is the server saying it is starting or leaving, not a failure.
        let level: Logger.Level = reply.status >= 500 && route != .readyz ? .error : .info
        if logger.logLevel <= level {
            var metadata: Logger.Metadata = [
                "method": .string(method ?? request?.methodName ?? "-"),
                "route": .string(route?.template ?? "-"),
                "status": .stringConvertible(reply.status),
                "us": .stringConvertible(micros),
                "request_id": .string(echoed ?? String(decoding: generatedID, as: UTF8.self)),
            ]
            if let detail = reply.problemDetail { metadata["detail"] = .string(detail) }
            logger.log(level: level, "request", metadata: metadata)
        }
    }

    private static let requestIDName = Array("X-Request-ID: ".utf8)
    private static let crlfcrlf = Array("\r\n\r\n".utf8)

    /// An `X-Request-ID` worth echoing: 1 … 200 visible ASCII characters.
    private static func acceptableRequestID(_ id: String) -> String? {
        guard (1...200).contains(id.utf8.count), id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        return id
    }

    /// Makes the next generated request id in ``generatedID``: the loop's random
    /// prefix, `-`, and a counter in hexadecimal.
    private func nextRequestID() {
        idCounter &+= 1
        generatedID.removeAll(keepingCapacity: true)
        generatedID.append(contentsOf: idPrefix)
        var shift = 60
        while shift > 0 && (idCounter >> UInt64(shift)) & 0xF == 0 { shift -= 4 }
        while shift >= 0 {
            generatedID.append(Self.hexDigits[Int((idCounter >> UInt64(shift)) & 0xF)])
            shift -= 4
        }
    }

    // MARK: - Writing

    private func onWritable(_ c: Connection) {
        flush(c)
        // Input that waited while the output was blocked.
        if let still = connections[Int(c.fd)], still === c, !c.writeBlocked, !c.isLingering, c.hasPendingInput {
            process(c)
        }
    }

    /// Sends queued output; turns `EPOLLOUT` on only while a write would block.
    private func flush(_ c: Connection) {
        while c.hasPendingOutput {
            let result: IOResult
            do {
                result = try c.output.withUnsafeBytes { raw throws(SocketError) in
                    try Socket.send(c.fd, UnsafeRawBufferPointer(rebasing: raw[c.outputStart...]))
                }
            } catch {
                close(c)
                return
            }
            switch result {
            case .bytes(let n):
                c.outputStart += n
                c.lastActivity = System.monotonicNanoseconds()
            case .wouldBlock, .endOfFile:
                if !c.writeBlocked {
                    c.writeBlocked = true
                    try? epoll.modify(c.fd, .writable)
                }
                return
            }
        }
        c.output.removeAll(keepingCapacity: c.output.capacity <= 65_536)
        c.outputStart = 0
        if c.writeBlocked {
            c.writeBlocked = false
            try? epoll.modify(c.fd, .readable)
        }
        if c.closeAfterWrite {
            if c.peerClosed {
                close(c)
            } else {
                // Lingering close: shut our side, drain what the peer still sends, so the
                // kernel does not answer it with a reset that could destroy our response.
                Socket.shutdownWrite(c.fd)
                c.lingerUntil = System.monotonicNanoseconds() &+ Self.lingerNanos
            }
        }
    }

    private func close(_ c: Connection) {
        guard Int(c.fd) < connections.count, connections[Int(c.fd)] === c else { return }
        epoll.remove(c.fd)
        Socket.close(c.fd)
        connections[Int(c.fd)] = nil
        openCount -= 1
        shared.api.connections.subtract(1, ordering: .relaxed)
    }

    // MARK: - Timers

    /// Closes idle keep-alive connections, times out slow requests, ends lingering closes.
    private func sweep(_ now: UInt64) {
        if acceptPaused && !draining {
            acceptPaused = false
            try? epoll.add(listener, .readable)
        }
        let second = shared.clockSeconds()
        if second != dateSecond {
            dateSecond = second
            date = HTTPDate.imfFixdate(epochSeconds: second)
        }
        let idle = UInt64(shared.limits.keepAliveIdleTimeout.nanoseconds)
        let deadline = UInt64(shared.limits.requestDeadline.nanoseconds)
        for case let c? in connections {
            if c.parked { continue }  // its reply is being made off the loop
            if c.isLingering {
                if now >= c.lingerUntil { close(c) }
            } else if c.requestStarted != 0 && now &- c.requestStarted >= deadline && !c.closeAfterWrite
                && !c.receivedAny
            {
                // A connection that sent nothing within the request deadline: closed, no answer.
                close(c)
            } else if c.requestStarted != 0 && now &- c.requestStarted >= deadline && !c.closeAfterWrite {
                // Slowloris: the whole request must arrive within the deadline (the first from accept).
                let reply = shared.api.problem(
                    APIProblem(.requestTimeout, "the request did not arrive within \(shared.limits.requestDeadline)"),
                    context)
                c.parser.reset()
                c.input.removeAll()
                c.inputStart = 0
                c.requestStarted = 0
                finish(reply, request: nil, route: nil, on: c, keepAlive: false, started: now, method: "-")
                c.closeAfterWrite = true
                flush(c)
            } else if !c.hasPendingInput && !c.hasPendingOutput && now &- c.lastActivity >= idle {
                close(c)
            } else if c.writeBlocked && now &- c.lastActivity >= idle {
                // A client that stopped reading its responses: nothing moved for the idle timeout.
                close(c)
            }
        }
    }

    /// Updates the cached `Date:` now (called once before the loop starts).
    func refreshDate() {
        dateSecond = shared.clockSeconds()
        date = HTTPDate.imfFixdate(epochSeconds: dateSecond)
    }

    private func beginDrain(_ now: UInt64) {
        draining = true
        drainDeadline = now &+ UInt64(shared.drainTimeout.nanoseconds)
        if !acceptPaused { epoll.remove(listener) }
        Socket.close(listener)
        listener = -1
        for case let c? in connections {
            if c.isLingering || c.parked { continue }
            // Bytes the kernel holds but this loop has not read yet (their event is
            // still to come) are a request in flight too: it finishes.
            let unread = Socket.hasUnreadInput(c.fd)
            if !c.hasPendingInput && !c.hasPendingOutput && !unread {
                close(c)
            } else if !c.hasPendingInput && !unread {
                c.closeAfterWrite = true
            }
        }
    }
}

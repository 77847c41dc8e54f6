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

    /// The connections' timeouts, from the server's limits.
    private let timeouts: ConnectionMachine.Timeouts

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
        // Requests still incomplete when the drain ends get no answer; they are counted.
        var incomplete = 0
        for case let c? in connections {
            if !c.machine.isLingering && c.hasPendingInput { incomplete += 1 }
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
        where c.machine.isIdle(hasPendingInput: c.hasPendingInput, hasPendingOutput: c.hasPendingOutput) {
            if best == nil || c.machine.lastActivity < best!.machine.lastActivity { best = c }
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
            switch c.machine.peerClosedInput(hasPendingOutput: c.hasPendingOutput) {
            case .close: close(c)
            case .flushThenClose: flush(c)
            }
        case .bytes(let n):
            switch c.machine.bytesRead(now: System.monotonicNanoseconds()) {
            case .discard: return  // draining a closing connection
            case .parse:
                c.input.append(contentsOf: readBuffer[0..<n])
                process(c)
            }
        }
    }

    /// Parses and answers every complete request in the input, in order, then writes once.
    ///
    /// Parsing pauses while ``ConnectionMachine/outputHighWater`` bytes of responses wait;
    /// when they all went out at once, it resumes on the requests still in the input.
    private func process(_ c: Connection) {
        repeat {
            parsing: while c.machine.nextParse(pendingOutput: c.output.count - c.outputStart) == .parse {
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
                    c.machine.requestParsed()
                    answer(request, on: c, started: System.monotonicNanoseconds())
                case .failure(let error):
                    let kind = Self.problemKind(error)
                    let reply = shared.api.problem(APIProblem(kind, error.detail), context)
                    finish(
                        reply, request: nil, route: nil, on: c, keepAlive: false,
                        started: System.monotonicNanoseconds(), method: "-")
                    c.machine.requestFailed()
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
            // Requests already received (here or still in the kernel) are answered before a drain closes.
            c.machine.inputParsed(hasPendingInput: c.hasPendingInput, unreadInKernel: { Socket.hasUnreadInput(c.fd) })
            flush(c)
        } while c.machine.resumesAfterFlush()
    }

    private func answer(_ request: HTTPRequest, on c: Connection, started: UInt64) {
        let match = RouteMatch.match(request.path)
        let reply = shared.api.handle(request, route: match, context)
        if let work = reply.deferred {
            // Waits for other instances: done by a mover thread; this connection waits,
            // the loop goes on with the others.
            c.machine.deferred()
            let job = Movers.Job(
                loop: self, fd: c.fd, serial: c.serial, request: request, route: match?.route, started: started, work: work)
            if !shared.movers.submit(job) {
                let busy = shared.api.problem(
                    APIProblem(.unavailable, "the server is stopping; retry on another instance"), context)
                finish(busy, request: request, route: match?.route, on: c, keepAlive: false, started: started, method: nil)
                c.machine.deferralRefused()
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
                c.machine.replyArrived()
            else { continue }
            send(done.reply, for: done.request, route: done.route, on: c, started: done.started)
            process(c)
        }
    }

    private func send(_ reply: Reply, for request: HTTPRequest, route: Route?, on c: Connection, started: UInt64) {
        // While draining, the connection stays open only for requests already received:
        // bytes after this request, here or unread in the kernel.
        let keepAlive = c.machine.keepsAlive(
            requested: request.keepAlive, moreInput: { c.inputStart < c.input.count || Socket.hasUnreadInput(c.fd) })
        finish(reply, request: request, route: route, on: c, keepAlive: keepAlive, started: started, method: nil)
        c.machine.answered(keepAlive: keepAlive)
    }

    /// Frames a reply into the connection's output, counts it and logs it.
    private func finish(
        _ reply: Reply, request: HTTPRequest?, route: Route?, on c: Connection, keepAlive: Bool, started: UInt64,
        method: String?
    ) {
        var reply = reply
        let echoed = request?.requestID.flatMap(Self.acceptableRequestID)
        if echoed == nil { nextRequestID() }
        // X-Request-ID is written from bytes (no String or array per response on the hot path).
        let isHTTP10 = request?.isHTTP10 ?? false
        if var echoed {
            echoed.withUTF8 { id in
                Self.appendHead(
                    reply, keepAlive: keepAlive, isHTTP10: isHTTP10, date: date, requestID: UnsafeRawBufferPointer(id),
                    into: &c.output)
            }
        } else {
            generatedID.withUnsafeBytes { id in
                Self.appendHead(
                    reply, keepAlive: keepAlive, isHTTP10: isHTTP10, date: date, requestID: id, into: &c.output)
            }
        }
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

    private static func appendHead(
        _ reply: Reply, keepAlive: Bool, isHTTP10: Bool, date: [UInt8], requestID: UnsafeRawBufferPointer,
        into out: inout [UInt8]
    ) {
        HTTPResponseWriter.appendHead(
            status: reply.status, contentType: reply.contentType, contentLength: reply.body.count,
            extraHeaders: reply.headers, keepAlive: keepAlive, isHTTP10: isHTTP10, date: date, requestID: requestID,
            into: &out)
    }

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

    private static func problemKind(_ error: HTTPError) -> ProblemKind {
        switch error.kind {
        case .malformedRequest: .malformedRequest
        case .bodyTooLarge: .bodyTooLarge
        case .requestLineTooLong: .uriTooLong
        case .headersTooLarge: .headersTooLarge
        case .unsupportedTransferCoding: .notImplemented
        case .unsupportedVersion: .httpVersionNotSupported
        }
    }

    // MARK: - Writing

    private func onWritable(_ c: Connection) {
        flush(c)
        // Input that waited while the output was blocked.
        if c.machine.parsesAfterWritable(hasPendingInput: c.hasPendingInput) { process(c) }
    }

    /// Sends queued output; turns `EPOLLOUT` on only while a write would block.
    private func flush(_ c: Connection) {
        var now: UInt64 = 0
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
                now = System.monotonicNanoseconds()
                c.machine.wrote(now: now)
            case .wouldBlock, .endOfFile:
                if c.machine.writeWouldBlock() { try? epoll.modify(c.fd, .writable) }
                return
            }
        }
        c.output.removeAll(keepingCapacity: c.output.capacity <= 65_536)
        c.outputStart = 0
        switch c.machine.writeFinished(now: now != 0 ? now : System.monotonicNanoseconds(), timeouts: timeouts) {
        case .none:
            break
        case .resumeReading:
            try? epoll.modify(c.fd, .readable)
        case .close:
            close(c)
        case .shutdownAndLinger(let resumeReading):
            // Lingering close: shut our side, drain what the peer still sends, so the
            // kernel does not answer it with a reset that could destroy our response.
            if resumeReading { try? epoll.modify(c.fd, .readable) }
            Socket.shutdownWrite(c.fd)
        }
    }

    private func close(_ c: Connection) {
        guard Int(c.fd) < connections.count, connections[Int(c.fd)] === c else { return }
        c.machine.closed()
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
        for case let c? in connections {
            switch c.machine.tick(
                now: now, timeouts: timeouts, hasPendingInput: c.hasPendingInput, hasPendingOutput: c.hasPendingOutput)
            {
            case .none:
                break
            case .close:
                close(c)
            case .requestTimeout:
                let reply = shared.api.problem(
                    APIProblem(.requestTimeout, "the request did not arrive within \(shared.limits.requestDeadline)"),
                    context)
                c.parser.reset()
                c.input.removeAll()
                c.inputStart = 0
                finish(reply, request: nil, route: nil, on: c, keepAlive: false, started: now, method: "-")
                flush(c)
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
            let action = c.machine.drain(
                hasPendingInput: c.hasPendingInput, hasPendingOutput: c.hasPendingOutput,
                unreadInKernel: { Socket.hasUnreadInput(c.fd) })
            if action == .close { close(c) }
        }
    }
}

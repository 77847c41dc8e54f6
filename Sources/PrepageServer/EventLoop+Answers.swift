import Logging
import PrepageHTTP
import PrepageSockets

/// Answering requests: routing, replies made off the loop, framing a reply into the
/// output with its request id, counting and logging it.
extension EventLoop {
    func answer(_ request: HTTPRequest, on c: Connection, started: UInt64) {
        let match = RouteMatch.match(request.path)
        let reply = shared.api.handle(request, route: match, context)
        if let work = reply.deferred {
            // Waits for other instances: done by a mover thread; this connection waits,
            // the loop goes on with the others.
            c.machine.deferred()
            let job = Movers.Job(
                loop: self, fd: c.fd, serial: c.serial, request: request, route: match?.route, started: started,
                work: work)
            if !shared.movers.submit(job) {
                let busy = shared.api.problem(
                    APIProblem(.unavailable, "the server is stopping; retry on another instance"), context)
                finish(
                    busy, request: request, route: match?.route, on: c, keepAlive: false, started: started, method: nil)
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
    func resumeParked() {
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

    func send(_ reply: Reply, for request: HTTPRequest, route: Route?, on c: Connection, started: UInt64) {
        // While draining, the connection stays open only for requests already received:
        // bytes after this request, here or unread in the kernel.
        let keepAlive = c.machine.keepsAlive(
            requested: request.keepAlive, moreInput: { c.inputStart < c.input.count || Socket.hasUnreadInput(c.fd) })
        finish(reply, request: request, route: route, on: c, keepAlive: keepAlive, started: started, method: nil)
        c.machine.answered(keepAlive: keepAlive)
    }

    /// Frames a reply into the connection's output, counts it and logs it.
    func finish(
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

    static func appendHead(
        _ reply: Reply, keepAlive: Bool, isHTTP10: Bool, date: [UInt8], requestID: UnsafeRawBufferPointer,
        into out: inout [UInt8]
    ) {
        HTTPResponseWriter.appendHead(
            status: reply.status, contentType: reply.contentType, contentLength: reply.body.count,
            extraHeaders: reply.headers, keepAlive: keepAlive, isHTTP10: isHTTP10, date: date, requestID: requestID,
            into: &out)
    }

    /// An `X-Request-ID` worth echoing: 1 … 200 visible ASCII characters.
    static func acceptableRequestID(_ id: String) -> String? {
        guard (1...200).contains(id.utf8.count), id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        return id
    }

    /// Makes the next generated request id in ``generatedID``: the loop's random
    /// prefix, `-`, and a counter in hexadecimal.
    func nextRequestID() {
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
}

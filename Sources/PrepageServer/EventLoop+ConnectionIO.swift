import PrepageHTTP
import PrepageSockets

/// Reading, parsing and writing one connection: the loop performs what its
/// ``ConnectionMachine`` answers to each event.
extension EventLoop {
    func onReadable(_ c: Connection) {
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
    func process(_ c: Connection) {
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
                    let reply = shared.api.problem(APIProblem(error), context)
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

    // MARK: - Writing

    func onWritable(_ c: Connection) {
        flush(c)
        // Input that waited while the output was blocked.
        if c.machine.parsesAfterWritable(hasPendingInput: c.hasPendingInput) { process(c) }
    }

    /// Sends queued output; turns `EPOLLOUT` on only while a write would block.
    func flush(_ c: Connection) {
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
}

/// The life of one connection, without its I/O: the event loop tells it what happened
/// (bytes read, a request parsed or answered, a write that would block or finished, the
/// peer's close, a sweep's tick, the server's drain) and does what it answers (parse,
/// pause, close, send a 408, linger). Time is a parameter (monotonic nanoseconds), so
/// every transition is tested without sockets or sleeps (ConnectionStateTests).
///
/// The connection's buffers stay with the loop: where a decision depends on them, the
/// event carries the fact (`hasPendingInput`, the output waiting, bytes still unread in
/// the kernel, asked only when the answer matters).
struct ConnectionMachine: Equatable {
    /// Where the connection is in its life.
    enum Phase: Equatable {
        /// Reading requests and answering them; between requests when nothing is pending.
        case open
        /// Answers still to send, then the end: after an error, `Connection: close`, a
        /// request timeout, the server's drain or the peer's close.
        case closing
        /// Our side is shut (everything was sent); what the peer still sends is discarded
        /// until `until`, so the kernel does not answer it with a reset that could destroy
        /// the response, then the connection closes.
        case lingering(until: UInt64)
        /// Closed: no event changes it any more.
        case closed
    }

    /// The timeouts of every connection of a server (monotonic nanoseconds).
    struct Timeouts: Equatable {
        /// A kept-alive connection with nothing to do, or one whose writes are blocked, closes after this.
        var idle: UInt64
        /// A request must arrive whole within this, from its first byte (a new connection's first from accept).
        var request: UInt64
        /// A closing connection's input is drained this long after its write side is shut.
        var linger: UInt64 = 2_000_000_000
    }

    /// Parsing pauses while this much output waits (a client that does not read).
    static let outputHighWater = 1 << 20

    private(set) var phase: Phase = .open
    /// Monotonic time of the last byte read or written.
    private(set) var lastActivity: UInt64
    /// Monotonic time the request now arriving began; 0 between requests. A new connection
    /// starts under the deadline at accept: until its first request is complete it is not
    /// an idle keep-alive connection.
    private(set) var requestStarted: UInt64
    /// A byte has been received.
    private(set) var receivedAny = false
    /// A write would block: the loop watches for writability (`EPOLLOUT`) instead of input.
    private(set) var writeBlocked = false
    /// The peer closed its side: a closing connection then closes without lingering.
    private(set) var peerClosed = false
    /// A request is answered off the loop (``Reply/deferred``): nothing more is parsed
    /// until its reply is back, and the sweep and the drain leave the connection alone.
    private(set) var awaitingReply = false
    /// The server is draining: a connection with nothing more to answer closes.
    private(set) var draining = false
    /// Parsing stopped at the high-water mark; it resumes once the output is all sent.
    private(set) var pausedForOutput = false

    init(now: UInt64) {
        lastActivity = now
        requestStarted = now
    }

    var isLingering: Bool {
        if case .lingering = phase { return true }
        return false
    }

    var isClosed: Bool { phase == .closed }

    // MARK: - Reading

    enum ReadAction: Equatable {
        /// Append the bytes to the input and parse.
        case parse
        /// Lingering: drop them.
        case discard
    }

    /// Bytes arrived.
    mutating func bytesRead(now: UInt64) -> ReadAction {
        lastActivity = now
        receivedAny = true
        return isLingering ? .discard : .parse
    }

    enum EndOfInputAction: Equatable {
        case close
        /// Send what is queued, then close.
        case flushThenClose
    }

    /// The peer closed its side (end of file).
    mutating func peerClosedInput(hasPendingOutput: Bool) -> EndOfInputAction {
        peerClosed = true
        if isLingering || !hasPendingOutput {
            phase = .closed
            return .close
        }
        phase = .closing
        return .flushThenClose
    }

    // MARK: - Parsing and answering

    enum ParseStep: Equatable {
        case parse
        /// Closing, or waiting for a reply made off the loop: leave the input where it is.
        case stop
        /// Too much output waits: stop until it is sent.
        case pause
    }

    /// Whether to parse the next request in the input, with `pendingOutput` bytes waiting to be sent.
    mutating func nextParse(pendingOutput: Int) -> ParseStep {
        pausedForOutput = false
        if phase != .open || awaitingReply { return .stop }
        if pendingOutput >= Self.outputHighWater {
            pausedForOutput = true
            return .pause
        }
        return .parse
    }

    /// A complete request came out of the parser.
    mutating func requestParsed() {
        requestStarted = 0
    }

    /// The parser failed; its error answer is queued: the connection closes after it.
    mutating func requestFailed() {
        phase = .closing
    }

    /// Whether the answer to a request keeps the connection open. While draining, it stays
    /// open only for requests already received: bytes after this one, here or unread in the kernel.
    func keepsAlive(requested: Bool, moreInput: () -> Bool) -> Bool {
        requested && (!draining || moreInput())
    }

    /// An answer is queued.
    mutating func answered(keepAlive: Bool) {
        if !keepAlive && phase == .open { phase = .closing }
    }

    /// The request is answered off the loop.
    mutating func deferred() {
        awaitingReply = true
    }

    /// The request could not be handed off the loop: its refusal is queued, the connection closes after it.
    mutating func deferralRefused() {
        awaitingReply = false
        if phase == .open { phase = .closing }
    }

    /// The reply made off the loop is back (or will never come): `false` when the
    /// connection was not waiting for one, and the reply must be dropped.
    mutating func replyArrived() -> Bool {
        defer { awaitingReply = false }
        return awaitingReply
    }

    /// The input was parsed as far as it goes (its rest compacted): a request begun and not
    /// complete starts, or keeps, its deadline; while draining, a connection with nothing
    /// more to answer closes once its answers are out. One waiting for a reply made off the
    /// loop has an answer still to come: its reply says `Connection: close` (``keepsAlive``).
    mutating func inputParsed(hasPendingInput: Bool, unreadInKernel: () -> Bool) {
        if hasPendingInput {
            if requestStarted == 0 { requestStarted = lastActivity }
        } else {
            requestStarted = 0
        }
        if draining && phase == .open && !awaitingReply && !hasPendingInput && !unreadInKernel() { phase = .closing }
    }

    /// After the answers were flushed: parse again when parsing paused at the high-water mark
    /// and everything went out at once (no writable event will come to resume it).
    mutating func resumesAfterFlush() -> Bool {
        defer { pausedForOutput = false }
        return pausedForOutput && !writeBlocked && (phase == .open || phase == .closing)
    }

    /// After a writable event: parse the input that waited while the output was blocked.
    func parsesAfterWritable(hasPendingInput: Bool) -> Bool {
        !writeBlocked && (phase == .open || phase == .closing) && hasPendingInput
    }

    // MARK: - Writing

    /// Bytes were sent.
    mutating func wrote(now: UInt64) {
        lastActivity = now
    }

    /// A write would block: `true` when the loop must start watching for writability.
    mutating func writeWouldBlock() -> Bool {
        defer { writeBlocked = true }
        return !writeBlocked
    }

    enum WriteDoneAction: Equatable {
        /// Nothing changes.
        case none
        /// Stop watching for writability; watch input again.
        case resumeReading
        case close
        /// Shut the write side and discard input until the linger ends (watching input
        /// again first when `resumeReading`).
        case shutdownAndLinger(resumeReading: Bool)
    }

    /// Every queued byte is sent. `now` is read only when the connection starts lingering.
    mutating func writeFinished(now: @autoclosure () -> UInt64, timeouts: Timeouts) -> WriteDoneAction {
        let resume = writeBlocked
        writeBlocked = false
        guard phase == .closing else { return resume ? .resumeReading : .none }
        if peerClosed {
            phase = .closed
            return .close
        }
        phase = .lingering(until: now() &+ timeouts.linger)
        return .shutdownAndLinger(resumeReading: resume)
    }

    /// The loop closed the connection (an I/O error, an eviction, an action above).
    mutating func closed() {
        phase = .closed
    }

    // MARK: - Timers and drain

    /// Waiting for a request, nothing to send: a connection that may be closed to make
    /// room for a new one at the connection cap.
    func isIdle(hasPendingInput: Bool, hasPendingOutput: Bool) -> Bool {
        phase == .open && !hasPendingInput && !hasPendingOutput
    }

    enum TickAction: Equatable {
        case none
        case close
        /// The request did not arrive in time: drop its input, answer 408 and close after it.
        case requestTimeout
    }

    /// The loop's periodic sweep, at monotonic time `now`.
    mutating func tick(now: UInt64, timeouts: Timeouts, hasPendingInput: Bool, hasPendingOutput: Bool) -> TickAction {
        if awaitingReply { return .none }  // its reply is being made off the loop
        switch phase {
        case .closed:
            return .none
        case .lingering(let until):
            guard now >= until else { return .none }
            phase = .closed
            return .close
        case .open, .closing:
            break
        }
        if requestStarted != 0 && now &- requestStarted >= timeouts.request && phase == .open {
            if !receivedAny {
                // A connection that sent nothing within the request deadline: closed, no answer.
                phase = .closed
                return .close
            }
            // Slowloris: the whole request must arrive within the deadline (the first from accept).
            requestStarted = 0
            phase = .closing
            return .requestTimeout
        }
        if !hasPendingInput && !hasPendingOutput && now &- lastActivity >= timeouts.idle {
            phase = .closed
            return .close
        }
        if writeBlocked && now &- lastActivity >= timeouts.idle {
            // A client that stopped reading its responses: nothing moved for the idle timeout.
            phase = .closed
            return .close
        }
        return .none
    }

    enum DrainAction: Equatable {
        /// Nothing in flight: close now.
        case close
        /// Finish what is in flight (answers to send, requests received), then close.
        case finish
    }

    /// The server begins draining.
    mutating func drain(hasPendingInput: Bool, hasPendingOutput: Bool, unreadInKernel: () -> Bool) -> DrainAction {
        draining = true
        if isLingering || awaitingReply || phase == .closed { return .finish }
        // Bytes the kernel holds but the loop has not read yet (their event is still to
        // come) are a request in flight too: it finishes.
        if hasPendingInput || unreadInKernel() { return .finish }
        if !hasPendingOutput {
            phase = .closed
            return .close
        }
        phase = .closing
        return .finish
    }
}

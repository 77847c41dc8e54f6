import PrepageHTTP

/// One client connection, owned by the event loop that accepted it.
final class Connection {
    let fd: Int32
    var parser: HTTPParser
    /// Bytes received and not yet consumed by the parser start at `inputStart`.
    var input: [UInt8] = []
    var inputStart = 0
    /// Responses not yet sent start at `outputStart`.
    var output: [UInt8] = []
    var outputStart = 0
    /// Monotonic time of the last byte read or written.
    var lastActivity: UInt64
    /// Monotonic time the request now arriving began; 0 when between requests.
    /// A new connection starts under the deadline at accept: until its first
    /// request is complete it is not an idle keep-alive connection.
    var requestStarted: UInt64
    /// A byte has been received on this connection.
    var receivedAny = false
    /// Close once the output is sent (an error, `Connection: close`, draining).
    var closeAfterWrite = false
    /// `EPOLLOUT` is on: a write would block.
    var writeBlocked = false
    /// The write side is shut; unread input is drained until this monotonic time, then closed.
    var lingerUntil: UInt64 = 0
    /// The peer closed its side.
    var peerClosed = false

    init(fd: Int32, limits: HTTPLimits, now: UInt64, admit: (@Sendable (HTTPRequest) -> Bool)? = nil) {
        self.fd = fd
        parser = HTTPParser(limits: limits, admit: admit)
        lastActivity = now
        requestStarted = now
        input.reserveCapacity(2_048)
        output.reserveCapacity(2_048)
    }

    /// Bytes not consumed yet, or a request begun and not complete (its bytes
    /// consumed into the parser's body).
    var hasPendingInput: Bool { inputStart < input.count || parser.hasPartialRequest }
    var hasPendingOutput: Bool { outputStart < output.count }
    var isLingering: Bool { lingerUntil != 0 }
}

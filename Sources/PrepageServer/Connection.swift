import PrepageHTTP

/// One client connection, owned by the event loop that accepted it: its descriptor,
/// buffers and parser. Where it is in its life is ``machine``.
final class Connection {
    let fd: Int32
    var parser: HTTPParser
    /// Bytes received and not yet consumed by the parser start at `inputStart`.
    var input: [UInt8] = []
    var inputStart = 0
    /// Responses not yet sent start at `outputStart`.
    var output: [UInt8] = []
    var outputStart = 0
    /// The lifecycle: what the loop does on each event.
    var machine: ConnectionMachine
    /// Tells this connection from a later one on the same descriptor.
    var serial: UInt64 = 0

    init(fd: Int32, limits: HTTPLimits, now: UInt64, admit: (@Sendable (HTTPRequest) -> Bool)? = nil) {
        self.fd = fd
        parser = HTTPParser(limits: limits, admit: admit)
        machine = ConnectionMachine(now: now)
        input.reserveCapacity(2_048)
        output.reserveCapacity(2_048)
    }

    /// Bytes not consumed yet, or a request begun and not complete (its bytes
    /// consumed into the parser's body).
    var hasPendingInput: Bool { inputStart < input.count || parser.hasPartialRequest }
    var hasPendingOutput: Bool { outputStart < output.count }
}

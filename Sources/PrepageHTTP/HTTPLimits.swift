/// Every limit of the HTTP layer, in one value.
///
/// The parser enforces the byte limits; the server enforces the timeouts and
/// the connection count (they are kept here so that one value documents them
/// all). Over a limit the parser answers a ``HTTPError`` of the limit's kind
/// (the server answers its status), and the connection is closed.
public struct HTTPLimits: Sendable, Hashable {
    /// Longest request line, in bytes, without its CRLF. Default: 8,192.
    /// Over it: 414. Empty lines before the request line (which RFC 9112 §2.2
    /// lets a server skip) may total at most this many bytes too.
    public var maxRequestLineBytes: Int
    /// Largest header section: the field lines after the request line, each
    /// counted with its CRLF, without the empty line that ends the head.
    /// Also the limit of a chunked body's trailer section. Default: 16,384.
    /// Over it: 431.
    public var maxHeaderBytes: Int
    /// Most field lines in the header section (and in a trailer section).
    /// Default: 100. Over it: 431.
    public var maxHeaderCount: Int
    /// Largest request body, decoded. Default: 4,194,304 (4 MiB, enough for a
    /// full batch of 65,536 faults). Over it: 413, decided from
    /// `Content-Length` before the body is read, and from each chunk size as
    /// chunks arrive.
    public var maxBodyBytes: Int
    /// Longest chunk-size line of a chunked body (size and chunk extensions),
    /// without its CRLF. Default: 1,024. Over it: 400. Only the decoded data
    /// is kept: a chunk line is dropped once read.
    public var maxChunkLineBytes: Int
    /// Most framing bytes in one chunked body: every chunk-size line with its
    /// extensions and CRLF, the CRLF after each chunk's data, the trailer
    /// section. Default: 262,144 (256 KiB: a 4 MiB body in chunks of 128
    /// bytes or more fits). Over it: 413.
    public var maxChunkOverheadBytes: Int
    /// How long a kept-alive connection may sit idle between requests.
    /// Default: 60 s. Enforced by the server.
    public var keepAliveIdleTimeout: Duration
    /// How long one request may take to arrive, from its first byte to its
    /// last, so that a slow client cannot hold a connection (slowloris).
    /// Default: 10 s. Enforced by the server.
    public var requestDeadline: Duration
    /// Most open client connections. Default: 10,000. Enforced by the server.
    public var maxConnections: Int

    public init(
        maxRequestLineBytes: Int = 8_192,
        maxHeaderBytes: Int = 16_384,
        maxHeaderCount: Int = 100,
        maxBodyBytes: Int = 4_194_304,
        maxChunkLineBytes: Int = 1_024,
        maxChunkOverheadBytes: Int = 262_144,
        keepAliveIdleTimeout: Duration = .seconds(60),
        requestDeadline: Duration = .seconds(10),
        maxConnections: Int = 10_000
    ) {
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
        self.maxChunkLineBytes = maxChunkLineBytes
        self.maxChunkOverheadBytes = maxChunkOverheadBytes
        self.keepAliveIdleTimeout = keepAliveIdleTimeout
        self.requestDeadline = requestDeadline
        self.maxConnections = maxConnections
    }

    /// The documented defaults.
    public static let `default` = HTTPLimits()

    /// The largest byte or count limit the parser uses as given: 2^48. Every
    /// sum and product it forms from a limit then fits 64 bits.
    public static let largestByteLimit = 1 << 48

    /// The limits as the parser and server apply them: every byte and count
    /// limit within 0 … ``largestByteLimit`` (a request line of at least 16
    /// bytes), every timeout within 1 ms … 1 year, at least one connection.
    /// Values outside are moved to the nearest end, so no setting, however
    /// large, makes the arithmetic on it overflow.
    public var clamped: HTTPLimits {
        func bytes(_ v: Int, least: Int = 0) -> Int { Swift.min(Swift.max(v, least), Self.largestByteLimit) }
        func time(_ d: Duration) -> Duration { Swift.min(Swift.max(d, .milliseconds(1)), .seconds(31_536_000)) }
        var c = self
        c.maxRequestLineBytes = bytes(maxRequestLineBytes, least: 16)
        c.maxHeaderBytes = bytes(maxHeaderBytes)
        c.maxHeaderCount = bytes(maxHeaderCount)
        c.maxBodyBytes = bytes(maxBodyBytes)
        c.maxChunkLineBytes = bytes(maxChunkLineBytes, least: 1)
        c.maxChunkOverheadBytes = bytes(maxChunkOverheadBytes)
        c.keepAliveIdleTimeout = time(keepAliveIdleTimeout)
        c.requestDeadline = time(requestDeadline)
        c.maxConnections = bytes(maxConnections, least: 1)
        return c
    }
}

/// What ``HTTPParser/parse(_:)`` found at the start of the buffer.
public enum HTTPParseResult: Sendable {
    /// The request is incomplete: call again when more bytes have arrived,
    /// with the same bytes at the start of the buffer.
    case needMore
    /// The head is complete, carries `Expect: 100-continue`, and the body is
    /// not all here: write ``HTTPResponseWriter/continueResponse`` now, then
    /// call again when more bytes arrive. Reported once per request.
    case sendContinue
    /// A complete request occupying the first `consumed` bytes. Drop them and
    /// call again: the rest of the buffer may hold the next (pipelined) request.
    case request(HTTPRequest, consumed: Int)
    /// The bytes are not an acceptable request: answer the problem of
    /// `error.kind` with a problem+json body and close the connection.
    case failure(HTTPError)
}

/// An incremental HTTP/1.1 request parser over the unconsumed bytes of one
/// connection (RFC 9112). It knows neither sockets nor sessions.
///
/// Call ``parse(_:)`` with the bytes received and not yet consumed. The parser
/// remembers how far it got, so a request arriving byte by byte is scanned
/// once, not once per byte.
///
/// > Important: between a ``HTTPParseResult/needMore`` or
/// > ``HTTPParseResult/sendContinue`` and the next call the buffer must start
/// > with the same bytes (only append to it). After a
/// > ``HTTPParseResult/request(_:consumed:)`` drop `consumed` bytes; after a
/// > ``HTTPParseResult/failure(_:)`` close the connection (or call ``reset()``).
public struct HTTPParser: Sendable {
    /// The limits enforced while parsing.
    public let limits: HTTPLimits

    /// Where the scan for the end of the head has got to.
    private var scan = HeadScan()
    /// The request whose head is complete and whose body is still arriving.
    private var pending: Pending? = nil
    /// Decides, once a head is complete, whether the request may send its body
    /// (the server's credentials check). `nil` admits every request.
    private let admit: (@Sendable (HTTPRequest) -> Bool)?

    /// - Parameters:
    ///   - admit: called once per request, as soon as its head is parsed and
    ///     before any of its body is kept or `100 Continue` is offered. When it
    ///     returns `false` the request is reported at once, without its body,
    ///     with ``HTTPRequest/admitted`` `false`: a body already wholly received
    ///     is skipped (the connection can stay open), otherwise the request has
    ///     `keepAlive` `false` and the caller closes the connection.
    public init(limits: HTTPLimits = .default, admit: (@Sendable (HTTPRequest) -> Bool)? = nil) {
        self.limits = limits.clamped
        self.admit = admit
    }

    /// Whether a request has begun (its head is parsed) and is not complete yet.
    public var hasPartialRequest: Bool { pending != nil }

    /// How many bytes at the start of the buffer the parser no longer needs:
    /// a head already parsed, body bytes already copied out, chunk framing
    /// already decoded. Drop exactly that many from the front of the buffer
    /// before the next call (the parser has moved its own offsets). Call it
    /// after ``HTTPParseResult/needMore`` or ``HTTPParseResult/sendContinue``,
    /// so that a connection holds the decoded body and not the raw bytes.
    public mutating func discardConsumed() -> Int {
        guard var p = pending else { return 0 }
        let n = p.offset
        guard n > 0 else { return 0 }
        p.offset = 0
        if case .chunked(var decoder) = p.framing {
            p.framing = .length(0)  // drop the reference while the decoder is rebased
            decoder.offset -= n
            decoder.trailerStart -= n
            p.framing = .chunked(decoder)
        }
        pending = p
        return n
    }

    /// Forgets any partly parsed request.
    public mutating func reset() {
        scan = HeadScan()
        pending = nil
    }

    /// Parses the next request from the start of `buffer`.
    public mutating func parse(_ buffer: UnsafeRawBufferPointer) -> HTTPParseResult {
        do {
            return try step(buffer)
        } catch {
            reset()
            return .failure(error)
        }
    }

    /// Parses the next request from the start of `bytes`.
    public mutating func parse(_ bytes: [UInt8]) -> HTTPParseResult {
        bytes.withUnsafeBytes { parse($0) }
    }

    private mutating func step(_ buf: UnsafeRawBufferPointer) throws(HTTPError) -> HTTPParseResult {
        var p: Pending
        if let waiting = pending {
            p = waiting
            pending = nil  // keep the body storage uniquely referenced while decoding
        } else {
            guard let headEnd = try scanHead(buf) else { return .needMore }
            p = try Self.parseHead(buf, scan: scan, headEnd: headEnd, limits: limits)
            scan = HeadScan()
            if let admit, !admit(p.request) {
                return refuse(p, buf)
            }
        }

        var end: Int? = nil
        switch p.framing {
        case .length(let n):
            // Copy what arrived of the body; the raw bytes can then be dropped.
            let wanted = n - p.request.body.count
            let have = min(wanted, buf.count - p.offset)
            if have > 0 {
                if p.request.body.isEmpty { p.request.body.reserveCapacity(n) }
                p.request.body.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[p.offset..<(p.offset + have)]))
                p.offset += have
            }
            if p.request.body.count == n { end = p.offset }
        case .chunked(var decoder):
            p.framing = .length(0)  // the decoder's body stays uniquely referenced
            end = try decoder.decode(buf, limits: limits)
            if end != nil {
                p.request.body = decoder.body
            } else {
                p.offset = decoder.offset
                p.framing = .chunked(decoder)
            }
        }
        if let end {
            return .request(p.request, consumed: end)
        }
        if p.expectContinue && !p.continueReported {
            p.continueReported = true
            pending = p
            return .sendContinue
        }
        pending = p
        return .needMore
    }

    /// A request the `admit` check refused: reported now, without its body. A
    /// body already here in full is skipped; otherwise the connection must close.
    private func refuse(_ p: Pending, _ buf: UnsafeRawBufferPointer) -> HTTPParseResult {
        var request = p.request
        request.admitted = false
        if case .length(let n) = p.framing, buf.count - p.offset >= n {
            return .request(request, consumed: p.offset + n)
        }
        request.keepAlive = false
        return .request(request, consumed: buf.count)
    }

    // MARK: - The head

    /// Scans for the empty line ending the head, checking line endings and the
    /// size limits on the way. Returns the index after the head, or `nil`.
    private mutating func scanHead(_ buf: UnsafeRawBufferPointer) throws(HTTPError) -> Int? {
        var i = scan.position
        let count = buf.count
        while i < count {
            let b = buf[i]
            if b == Bytes.cr {
                guard i + 1 < count else { break }
                // RFC 9112 §2.2: a CR must be followed by LF; a bare CR is invalid.
                guard buf[i + 1] == Bytes.lf else {
                    throw .malformed(
                        "A CR (\\r) not followed by LF was found at byte \(i); every line of the head must end in CRLF."
                    )
                }
                let next = i + 2
                if let headerStart = scan.headerStart {
                    if i == scan.lineStart {  // the empty line: end of the head
                        scan.position = next
                        return next
                    }
                    scan.fieldLines += 1
                    if scan.fieldLines > limits.maxHeaderCount {
                        throw HTTPError(
                            .headersTooLarge,
                            "The request has more than \(Bytes.grouped(limits.maxHeaderCount)) header fields; at most \(Bytes.grouped(limits.maxHeaderCount)) are accepted."
                        )
                    }
                    if next - headerStart > limits.maxHeaderBytes { throw headersTooLarge() }
                } else if i == scan.lineStart {
                    // RFC 9112 §2.2: ignore empty lines received before the request line
                    // (they count against the request line's limit).
                    if next > limits.maxRequestLineBytes { throw requestLineTooLong() }
                    scan.requestLineStart = next
                } else {
                    scan.headerStart = next
                }
                scan.lineStart = next
                i = next
                continue
            }
            if b == Bytes.lf {
                // A bare LF as line terminator is refused, not guessed at (RFC 9112 §2.2).
                throw .malformed("A bare LF (\\n) was found at byte \(i); every line of the head must end in CRLF.")
            }
            if let headerStart = scan.headerStart {
                // Field lines of `maxHeaderBytes` bytes end at most 2 bytes (the empty line) later.
                if i - headerStart >= limits.maxHeaderBytes + 2 { throw headersTooLarge() }
            } else if i - scan.requestLineStart >= limits.maxRequestLineBytes {
                throw requestLineTooLong()
            }
            i += 1
        }
        scan.position = i
        return nil
    }

    private func requestLineTooLong() -> HTTPError {
        HTTPError(
            .requestLineTooLong,
            "The request line is longer than \(Bytes.grouped(limits.maxRequestLineBytes)) bytes; at most \(Bytes.grouped(limits.maxRequestLineBytes)) are accepted (shorten the path or query)."
        )
    }

    private func headersTooLarge() -> HTTPError {
        HTTPError(
            .headersTooLarge,
            "The header section is larger than \(Bytes.grouped(limits.maxHeaderBytes)) bytes; at most \(Bytes.grouped(limits.maxHeaderBytes)) bytes of header fields are accepted."
        )
    }

    /// Parses a complete head and decides how the body is framed.
    private static func parseHead(
        _ buf: UnsafeRawBufferPointer, scan: HeadScan, headEnd: Int, limits: HTTPLimits
    ) throws(HTTPError) -> Pending {
        let lineStart = scan.requestLineStart
        guard let headerStart = scan.headerStart else {
            throw .malformed("The head has no request line.")
        }
        let line = RequestLine.parse(buf, lineStart..<(headerStart - 2))
        let rl = try line.get()

        // Field lines.
        var fields = HeadFields()
        var i = headerStart
        let fieldsEnd = headEnd - 2
        while i < fieldsEnd {
            var e = i
            while buf[e] != Bytes.cr { e += 1 }
            let (name, value) = try checkFieldLine(buf, i..<e, section: "header")
            fields.note(buf, name: name, value: value)
            i = e + 2
        }

        // RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request without exactly one Host.
        if !rl.isHTTP10 && fields.hostCount == 0 {
            throw .malformed("An HTTP/1.1 request must carry a Host header (RFC 9112 §3.2); none was sent.")
        }
        if fields.hostCount > 1 {
            throw .malformed(
                "The request carries \(fields.hostCount) Host headers; exactly one is accepted (RFC 9112 §3.2).")
        }

        let framing = try Self.framing(buf, fields: fields, isHTTP10: rl.isHTTP10, bodyStart: headEnd, limits: limits)

        let close = fields.connectionClose
        let keepAlive = rl.isHTTP10 ? fields.connectionKeepAlive && !close : !close
        let request = HTTPRequest(
            method: rl.method,
            path: rl.path.isEmpty ? "/" : Bytes.string(buf, rl.path),
            query: rl.query.map { Bytes.string(buf, $0) },
            isHTTP10: rl.isHTTP10,
            keepAlive: keepAlive,
            body: [],
            contentType: fields.contentType,
            requestID: fields.requestID.map { Bytes.string(buf, $0) },
            authorization: fields.authorization.map { Bytes.string(buf, $0) },
            head: Array(buf[lineStart..<fieldsEnd]))
        return Pending(
            request: request,
            offset: headEnd,
            framing: framing,
            // RFC 9110 §10.1.1: a 100-continue expectation in an HTTP/1.0 request MUST be ignored.
            expectContinue: fields.expectContinue && !rl.isHTTP10,
            continueReported: false)
    }

    /// How the body's length is determined (RFC 9112 §6.3).
    private static func framing(
        _ buf: UnsafeRawBufferPointer, fields: HeadFields, isHTTP10: Bool, bodyStart: Int, limits: HTTPLimits
    ) throws(HTTPError) -> Framing {
        if !fields.transferEncoding.isEmpty {
            // RFC 9112 §6.1 — reject simultaneous Content-Length and Transfer-Encoding.
            if fields.contentLengthCount > 0 {
                throw .malformed(
                    "The request has both Content-Length and Transfer-Encoding (RFC 9112 §6.1); send exactly one of them."
                )
            }
            // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing.
            if isHTTP10 {
                throw .malformed(
                    "Transfer-Encoding is not allowed in an HTTP/1.0 request (RFC 9112 §6.1); use Content-Length.")
            }
            var codings = 0
            var chunkedCount = 0
            var lastIsChunked = false
            for value in fields.transferEncoding {
                Bytes.forEachListElement(buf, value) { element in
                    codings += 1
                    lastIsChunked = Bytes.equalsLowercased(UnsafeRawBufferPointer(rebasing: buf[element]), "chunked")
                    if lastIsChunked { chunkedCount += 1 }
                }
            }
            // RFC 9112 §6.3: if chunked is not the final coding the length cannot be determined: 400.
            guard lastIsChunked else {
                throw .malformed(
                    "Transfer-Encoding must end with chunked (RFC 9112 §6.3); only \"chunked\" is accepted.")
            }
            // RFC 9112 §7: chunked must not be applied more than once.
            guard chunkedCount == 1 else {
                throw .malformed("Transfer-Encoding lists chunked \(chunkedCount) times (RFC 9112 §7); send it once.")
            }
            // RFC 9112 §6.1: a transfer coding the server does not understand is a 501.
            guard codings == 1 else {
                throw HTTPError(
                    .unsupportedTransferCoding,
                    "Transfer-Encoding applies a coding other than chunked; only \"chunked\" alone is supported.")
            }
            return .chunked(ChunkDecoder(offset: bodyStart))
        }
        if let range = fields.contentLength {
            // RFC 9110 §8.6: several Content-Length values are a framing error (we do not merge equal ones).
            guard fields.contentLengthCount == 1 else {
                throw .malformed(
                    "The request has \(fields.contentLengthCount) Content-Length headers; exactly one is accepted.")
            }
            var n = 0
            for i in range {
                let b = buf[i]
                guard b >= 0x30 && b <= 0x39 else {
                    throw .malformed(
                        "Content-Length \(Bytes.quoted(buf, range)) is not a decimal number of bytes (RFC 9110 §8.6).")
                }
                // Saturate past the limit: any number of digits, no overflow.
                if n <= limits.maxBodyBytes { n = Bytes.saturatingDecimalStep(n, Int(b - 0x30)) }
            }
            guard !range.isEmpty else {
                throw .malformed("Content-Length is empty; it must be a decimal number of bytes (RFC 9110 §8.6).")
            }
            guard n <= limits.maxBodyBytes else {
                throw HTTPError(
                    .bodyTooLarge,
                    "Content-Length \(Bytes.quoted(buf, range)) is over the limit; bodies of at most \(Bytes.grouped(limits.maxBodyBytes)) bytes are accepted."
                )
            }
            return .length(n)
        }
        // RFC 9112 §6.3: a request with neither has no body.
        return .length(0)
    }

    /// Checks one field line (`name: value`, without its CRLF) and returns the
    /// name and the trimmed value (RFC 9112 §5, RFC 9110 §5.5).
    static func checkFieldLine(
        _ buf: UnsafeRawBufferPointer, _ line: Range<Int>, section: String
    ) throws(HTTPError) -> (name: Range<Int>, value: Range<Int>) {
        let first = buf[line.lowerBound]
        // RFC 9112 §5.2: obs-fold (a line starting with whitespace) is rejected with 400.
        if Bytes.isOWS(first) {
            throw .malformed(
                "A \(section) line starts with whitespace (obsolete line folding, RFC 9112 §5.2); put each field on one line."
            )
        }
        var colon = line.lowerBound
        while colon < line.upperBound, Bytes.isTokenByte(buf[colon]) { colon += 1 }
        guard colon < line.upperBound, buf[colon] == Bytes.colon else {
            if colon < line.upperBound && Bytes.isOWS(buf[colon]) {
                // RFC 9112 §5.1: no whitespace is allowed between the field name and colon.
                throw .malformed(
                    "The \(section) field \(Bytes.quoted(buf, line.lowerBound..<colon)) has whitespace before its colon (RFC 9112 §5.1); write \"Name: value\"."
                )
            }
            throw .malformed(
                "The \(section) line \(Bytes.quoted(buf, line)) is not \"name: value\" with a token name (letters, digits and !#$%&'*+-.^_`|~)."
            )
        }
        guard colon > line.lowerBound else {
            throw .malformed("A \(section) line has an empty field name: \(Bytes.quoted(buf, line)).")
        }
        for i in (colon + 1)..<line.upperBound where !Bytes.isFieldValueByte(buf[i]) {
            throw .malformed(
                "The \(section) field \(Bytes.quoted(buf, line.lowerBound..<colon)) contains the control byte \\x\(Bytes.hex2(buf[i])); field values accept visible characters, spaces and tabs (RFC 9110 §5.5)."
            )
        }
        return (line.lowerBound..<colon, Bytes.trimmed(buf, (colon + 1)..<line.upperBound))
    }
}

/// Progress of the scan for the end of a head.
struct HeadScan: Sendable {
    /// Next byte to examine.
    var position = 0
    /// Start of the line being scanned.
    var lineStart = 0
    /// Start of the request line (after any empty lines before it).
    var requestLineStart = 0
    /// Start of the header section, once the request line is complete.
    var headerStart: Int? = nil
    /// Field lines completed so far.
    var fieldLines = 0
}

/// How a request's body is delimited.
enum Framing: Sendable {
    case length(Int)
    case chunked(ChunkDecoder)
}

/// A request whose head is parsed and whose body is still arriving.
struct Pending: Sendable {
    var request: HTTPRequest
    /// Index in the buffer of the next body byte (rebased by ``HTTPParser/discardConsumed()``).
    var offset: Int
    var framing: Framing
    var expectContinue: Bool
    var continueReported: Bool
}

/// The media type of a request body, by `type/subtype` only (parameters such
/// as `charset` are ignored, case does not matter).
public enum ContentTypeKind: Sendable, Hashable {
    /// No `Content-Type` header.
    case none
    /// `application/json`.
    case json
    /// `application/x-www-form-urlencoded`.
    case form
    /// Anything else (the server answers 415 where it needs a body).
    case other
}

/// One complete, well-formed request.
///
/// The fields the server needs on every request are extracted once by the
/// parser; any other header is looked up on demand with ``header(_:)``, which
/// scans the stored head and builds a `String` only for the value asked for.
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// The request target's path, raw (still percent-encoded), without the
    /// query. Always starts with `/`, except `*` for `OPTIONS *`. For an
    /// absolute-form target (`http://host/p`) it is the path part (`/p`).
    public var path: String
    /// The raw query after `?` (without it), or `nil` when the target has no `?`.
    public var query: String?
    /// The request said `HTTP/1.0`.
    public var isHTTP10: Bool
    /// Whether the connection stays open after the response: HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`
    /// (which the response must then confirm).
    public var keepAlive: Bool
    /// The body, de-chunked. Empty when there is none.
    public var body: [UInt8]
    /// The body's media type.
    public var contentType: ContentTypeKind
    /// The `X-Request-ID` value, if sent.
    public var requestID: String?
    /// The `Authorization` value, if sent.
    public var authorization: String?
    /// `false` when the parser's admission check refused the request as soon as
    /// its head was parsed: its body was not read (``body`` is empty), and the
    /// server must refuse it (401).
    public var admitted = true

    /// The head as received: request line and field lines, each ending in CRLF.
    private let head: [UInt8]

    init(
        method: HTTPMethod, path: String, query: String?, isHTTP10: Bool, keepAlive: Bool,
        body: [UInt8], contentType: ContentTypeKind, requestID: String?, authorization: String?,
        head: [UInt8]
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.isHTTP10 = isHTTP10
        self.keepAlive = keepAlive
        self.body = body
        self.contentType = contentType
        self.requestID = requestID
        self.authorization = authorization
        self.head = head
    }

    /// Builds a request without parsing, for tests of code above the parser.
    ///
    /// `contentType`, `requestID` and `authorization` are taken from `headers`
    /// the way the parser takes them; `keepAlive` defaults to the rule of the
    /// version and the `Connection` header.
    public init(
        method: HTTPMethod, target: String, isHTTP10: Bool = false,
        headers: [(String, String)] = [], body: [UInt8] = [], keepAlive: Bool? = nil
    ) {
        var head = Array("\(method.name) \(target) HTTP/1.\(isHTTP10 ? 0 : 1)\r\n".utf8)
        for (name, value) in headers {
            head += Array("\(name): \(value)\r\n".utf8)
        }
        if let q = target.firstIndex(of: "?") {
            self.path = String(target[..<q])
            self.query = String(target[target.index(after: q)...])
        } else {
            self.path = target
            self.query = nil
        }
        self.method = method
        self.isHTTP10 = isHTTP10
        self.body = body
        self.head = head
        self.contentType = .none
        self.requestID = nil
        self.authorization = nil
        self.keepAlive = !isHTTP10
        head.withUnsafeBytes { raw in
            var fields = HeadFields()
            for line in HTTPRequest.fieldLines(raw) {
                fields.note(raw, name: line.name, value: line.value)
            }
            self.contentType = fields.contentType
            self.requestID = fields.requestID.map { Bytes.string(raw, $0) }
            self.authorization = fields.authorization.map { Bytes.string(raw, $0) }
            let close = fields.connectionClose
            self.keepAlive = keepAlive ?? (isHTTP10 ? fields.connectionKeepAlive && !close : !close)
        }
    }

    /// The method token as sent (useful for ``HTTPMethod/other``).
    public var methodName: String {
        head.withUnsafeBytes { raw in
            var i = 0
            while i < raw.count, raw[i] != Bytes.space { i += 1 }
            return Bytes.string(raw, 0..<i)
        }
    }

    /// The first value of a header, matched case-insensitively, with
    /// surrounding whitespace removed; `nil` when absent.
    public func header(_ name: String) -> String? {
        head.withUnsafeBytes { raw in
            for line in HTTPRequest.fieldLines(raw)
            where Bytes.equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: raw[line.name]), name) {
                return Bytes.string(raw, line.value)
            }
            return nil
        }
    }

    /// Every value of a header, in order (one per field line).
    public func headerValues(_ name: String) -> [String] {
        head.withUnsafeBytes { raw in
            HTTPRequest.fieldLines(raw)
                .filter { Bytes.equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: raw[$0.name]), name) }
                .map { Bytes.string(raw, $0.value) }
        }
    }

    /// Every field line as (name as sent, trimmed value), in order. For logs and debugging.
    public var headers: [(name: String, value: String)] {
        head.withUnsafeBytes { raw in
            HTTPRequest.fieldLines(raw).map { (Bytes.string(raw, $0.name), Bytes.string(raw, $0.value)) }
        }
    }

    /// Splits a validated head into (name, trimmed value) ranges, skipping the request line.
    static func fieldLines(_ raw: UnsafeRawBufferPointer) -> [(name: Range<Int>, value: Range<Int>)] {
        var result: [(name: Range<Int>, value: Range<Int>)] = []
        var i = 0
        while i < raw.count, raw[i] != Bytes.lf { i += 1 }
        i += 1
        while i < raw.count {
            var end = i
            while end < raw.count, raw[end] != Bytes.lf { end += 1 }
            let lineEnd = end > i && raw[end - 1] == Bytes.cr ? end - 1 : end
            var colon = i
            while colon < lineEnd, raw[colon] != Bytes.colon { colon += 1 }
            if colon < lineEnd {
                result.append((i..<colon, Bytes.trimmed(raw, (colon + 1)..<lineEnd)))
            }
            i = end + 1
        }
        return result
    }
}

/// The few header fields the parser interprets, as byte ranges into the head.
struct HeadFields {
    var contentLength: Range<Int>? = nil
    var contentLengthCount = 0
    var transferEncoding: [Range<Int>] = []
    var connectionClose = false
    var connectionKeepAlive = false
    var expectContinue = false
    var hostCount = 0
    var contentType: ContentTypeKind = .none
    var contentTypeSeen = false
    var requestID: Range<Int>? = nil
    var authorization: Range<Int>? = nil

    /// Records one field line; names are compared case-insensitively on bytes.
    mutating func note(_ raw: UnsafeRawBufferPointer, name: Range<Int>, value: Range<Int>) {
        let n = UnsafeRawBufferPointer(rebasing: raw[name])
        switch n.count {
        case 4 where Bytes.equalsLowercased(n, "host"):
            hostCount += 1
        case 6 where Bytes.equalsLowercased(n, "expect"):
            let v = UnsafeRawBufferPointer(rebasing: raw[value])
            if Bytes.equalsLowercased(v, "100-continue") { expectContinue = true }
        case 10 where Bytes.equalsLowercased(n, "connection"):
            Bytes.forEachListElement(raw, value) { element in
                let token = UnsafeRawBufferPointer(rebasing: raw[element])
                if Bytes.equalsLowercased(token, "close") { connectionClose = true }
                if Bytes.equalsLowercased(token, "keep-alive") { connectionKeepAlive = true }
            }
        case 12 where Bytes.equalsLowercased(n, "content-type"):
            if !contentTypeSeen {
                contentTypeSeen = true
                contentType = HeadFields.mediaType(raw, value)
            }
        case 12 where Bytes.equalsLowercased(n, "x-request-id"):
            if requestID == nil { requestID = value }
        case 13 where Bytes.equalsLowercased(n, "authorization"):
            if authorization == nil { authorization = value }
        case 14 where Bytes.equalsLowercased(n, "content-length"):
            contentLengthCount += 1
            contentLength = value
        case 17 where Bytes.equalsLowercased(n, "transfer-encoding"):
            transferEncoding.append(value)
        default:
            break
        }
    }

    /// Classifies a `Content-Type` value by its `type/subtype` (RFC 9110 §8.3.1).
    static func mediaType(_ raw: UnsafeRawBufferPointer, _ value: Range<Int>) -> ContentTypeKind {
        var end = value.lowerBound
        while end < value.upperBound, raw[end] != 0x3B { end += 1 }  // ';' starts the parameters
        let t = UnsafeRawBufferPointer(rebasing: raw[Bytes.trimmed(raw, value.lowerBound..<end)])
        if Bytes.equalsLowercased(t, "application/json") { return .json }
        if Bytes.equalsLowercased(t, "application/x-www-form-urlencoded") { return .form }
        return .other
    }
}

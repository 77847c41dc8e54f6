import PrepageHTTP

/// Every kind of error the API answers, each with its status, title and a
/// stable `type` URI (RFC 9457): clients match on `type`, never on `detail`.
///
/// This is the one place errors become responses; see ``APIProblem``.
public enum ProblemKind: String, Sendable, CaseIterable {
    case malformedRequest = "malformed-request"
    case malformedJSON = "malformed-json"
    case invalidField = "invalid-field"
    case invalidSessionID = "invalid-session-id"
    case invalidQuery = "invalid-query"
    case unauthorized = "unauthorized"
    case routeNotFound = "route-not-found"
    case sessionNotFound = "session-not-found"
    case methodNotAllowed = "method-not-allowed"
    case requestTimeout = "request-timeout"
    case sessionConflict = "session-conflict"
    case bodyTooLarge = "body-too-large"
    case uriTooLong = "uri-too-long"
    case unsupportedMediaType = "unsupported-media-type"
    case faultBeyondMemory = "fault-beyond-memory"
    case tooManySessions = "too-many-sessions"
    case headersTooLarge = "headers-too-large"
    case internalError = "internal-error"
    case notImplemented = "not-implemented"
    case unavailable = "unavailable"
    case httpVersionNotSupported = "http-version-not-supported"
    case memoryLimit = "memory-limit"

    /// The stable URI clients match on: `urn:prepage:problem:<kind>`.
    public var type: String { "urn:prepage:problem:" + rawValue }

    public var status: Int {
        switch self {
        case .malformedRequest, .malformedJSON, .invalidField, .invalidSessionID, .invalidQuery: 400
        case .unauthorized: 401
        case .routeNotFound, .sessionNotFound: 404
        case .methodNotAllowed: 405
        case .requestTimeout: 408
        case .sessionConflict: 409
        case .bodyTooLarge: 413
        case .uriTooLong: 414
        case .unsupportedMediaType: 415
        case .faultBeyondMemory: 422
        case .tooManySessions: 429
        case .headersTooLarge: 431
        case .internalError: 500
        case .notImplemented: 501
        case .unavailable: 503
        case .httpVersionNotSupported: 505
        case .memoryLimit: 507
        }
    }

    public var title: String {
        switch self {
        case .malformedRequest: "Malformed HTTP request"
        case .malformedJSON: "Malformed JSON"
        case .invalidField: "Invalid field"
        case .invalidSessionID: "Invalid session id"
        case .invalidQuery: "Invalid query parameter"
        case .unauthorized: "Unauthorized"
        case .routeNotFound: "No such route"
        case .sessionNotFound: "No such session"
        case .methodNotAllowed: "Method not allowed"
        case .requestTimeout: "Request timeout"
        case .sessionConflict: "Session exists with another configuration"
        case .bodyTooLarge: "Body too large"
        case .uriTooLong: "Request line too long"
        case .unsupportedMediaType: "Unsupported content type"
        case .faultBeyondMemory: "Fault outside guest memory"
        case .tooManySessions: "Session limit reached"
        case .headersTooLarge: "Header block too large"
        case .internalError: "Internal error"
        case .notImplemented: "Not implemented"
        case .unavailable: "Service unavailable"
        case .httpVersionNotSupported: "HTTP version not supported"
        case .memoryLimit: "Memory budget spent"
        }
    }

    /// The problem of a request the parser refused: the one mapping from the
    /// HTTP layer's kinds to the API's.
    init(_ kind: HTTPError.Kind) {
        switch kind {
        case .malformedRequest: self = .malformedRequest
        case .bodyTooLarge: self = .bodyTooLarge
        case .requestLineTooLong: self = .uriTooLong
        case .headersTooLarge: self = .headersTooLarge
        case .unsupportedTransferCoding: self = .notImplemented
        case .unsupportedVersion: self = .httpVersionNotSupported
        }
    }
}

/// An error answer: a kind plus what exactly was wrong and what is accepted.
struct APIProblem: Error {
    var kind: ProblemKind
    var detail: String
    /// `Allow` for a 405, `WWW-Authenticate` for a 401.
    var headers: [(String, String)] = []
    /// Not a problem: a restored session to check with the peers before serving
    /// the request (see ``API/handle(_:route:_:)``).
    var unchecked: Session?

    init(_ kind: ProblemKind, _ detail: String, headers: [(String, String)] = []) {
        self.kind = kind
        self.detail = detail
        self.headers = headers
    }

    /// The answer to a request the parser refused: its kind's problem, with its detail.
    init(_ error: HTTPError) {
        self.init(ProblemKind(error.kind), error.detail)
    }

    /// `{"type","title","status","detail"}` as `application/problem+json` (RFC 9457 §3).
    func body() -> [UInt8] {
        var w = JSONWriter()
        w.raw("{")
        w.key("type")
        w.string(kind.type)
        w.raw(",")
        w.key("title")
        w.string(kind.title)
        w.raw(",")
        w.key("status")
        w.int(kind.status)
        w.raw(",")
        w.key("detail")
        w.string(detail)
        w.raw("}")
        return w.bytes
    }

    static let contentType = "application/problem+json"
}

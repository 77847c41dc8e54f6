/// Why a request could not be parsed: a closed set, each kind with one status.
///
/// The server answers ``status`` with a problem+json body built from
/// ``title`` and ``detail`` and then closes the connection (the framing of
/// anything after a bad request cannot be trusted).
public struct HTTPError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The closed set of protocol errors.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// Syntax error, bad framing, bad chunk: 400.
        case malformedRequest = "malformed-request"
        /// Body over ``HTTPLimits/maxBodyBytes``: 413.
        case bodyTooLarge = "body-too-large"
        /// Request line over ``HTTPLimits/maxRequestLineBytes``: 414.
        case requestLineTooLong = "request-line-too-long"
        /// Header section over ``HTTPLimits/maxHeaderBytes`` or ``HTTPLimits/maxHeaderCount``: 431.
        case headersTooLarge = "headers-too-large"
        /// A transfer coding other than `chunked`: 501.
        case unsupportedTransferCoding = "unsupported-transfer-coding"
        /// An HTTP version other than 1.0 and 1.1: 505.
        case unsupportedVersion = "unsupported-http-version"

        /// The response status for this kind.
        public var status: Int {
            switch self {
            case .malformedRequest: 400
            case .bodyTooLarge: 413
            case .requestLineTooLong: 414
            case .headersTooLarge: 431
            case .unsupportedTransferCoding: 501
            case .unsupportedVersion: 505
            }
        }
    }

    /// Which rule was broken; its raw value is a stable slug for a problem `type`.
    public let kind: Kind
    /// What was wrong and what is accepted, for the problem's `detail`.
    public let detail: String

    /// The response status: 400, 413, 414, 431, 501 or 505.
    public var status: Int { kind.status }
    /// The problem's `title`: the status's reason phrase.
    public var title: String { HTTPStatus.reasonPhrase(kind.status) }

    public var description: String { "\(status) \(title): \(detail)" }

    init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    static func malformed(_ detail: String) -> HTTPError { HTTPError(.malformedRequest, detail) }
}

/// Why a request could not be parsed: a closed set of kinds, each with what
/// exactly was wrong.
///
/// The parser says only which rule was broken. The server turns the kind into
/// its problem (status, title and `type` URI, see `ProblemKind` in
/// PrepageServer) with ``detail`` as the problem's `detail`, and then closes
/// the connection (the framing of anything after a bad request cannot be trusted).
public struct HTTPError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The closed set of protocol errors.
    public enum Kind: Sendable, Hashable, CaseIterable {
        /// Syntax error, bad framing, bad chunk.
        case malformedRequest
        /// Body over ``HTTPLimits/maxBodyBytes``.
        case bodyTooLarge
        /// Request line over ``HTTPLimits/maxRequestLineBytes``.
        case requestLineTooLong
        /// Header section over ``HTTPLimits/maxHeaderBytes`` or ``HTTPLimits/maxHeaderCount``.
        case headersTooLarge
        /// A transfer coding other than `chunked`.
        case unsupportedTransferCoding
        /// An HTTP version other than 1.0 and 1.1.
        case unsupportedVersion
    }

    /// Which rule was broken.
    public let kind: Kind
    /// What was wrong and what is accepted, for the problem's `detail`.
    public let detail: String

    public var description: String { "\(kind): \(detail)" }

    init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    static func malformed(_ detail: String) -> HTTPError { HTTPError(.malformedRequest, detail) }
}

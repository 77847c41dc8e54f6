/// A request method. Methods the API does not use are ``other``; the raw
/// token stays available as ``HTTPRequest/methodName``.
public enum HTTPMethod: Sendable, Hashable {
    case get, head, post, put, delete, options, patch, other

    /// The method's token as sent on the wire (`"OTHER"` for ``other``).
    public var name: String {
        switch self {
        case .get: "GET"
        case .head: "HEAD"
        case .post: "POST"
        case .put: "PUT"
        case .delete: "DELETE"
        case .options: "OPTIONS"
        case .patch: "PATCH"
        case .other: "OTHER"
        }
    }

    /// Recognises a method token; methods are case-sensitive (RFC 9110 §9.1).
    init(token: UnsafeRawBufferPointer) {
        let b = token
        switch b.count {
        case 3 where b[0] == 0x47 && b[1] == 0x45 && b[2] == 0x54: self = .get  // GET
        case 3 where b[0] == 0x50 && b[1] == 0x55 && b[2] == 0x54: self = .put  // PUT
        case 4 where Bytes.equals(b, "HEAD"): self = .head
        case 4 where Bytes.equals(b, "POST"): self = .post
        case 5 where Bytes.equals(b, "PATCH"): self = .patch
        case 6 where Bytes.equals(b, "DELETE"): self = .delete
        case 7 where Bytes.equals(b, "OPTIONS"): self = .options
        default: self = .other
        }
    }
}

/// Percent-decoding (RFC 3986 §2.1) and `application/x-www-form-urlencoded`
/// (WHATWG URL, "urlencoded parsing"), for `curl -d page=123` bodies and
/// `?page=123` queries.
public enum FormEncoding {
    /// Decodes `%XX` escapes; with `plusAsSpace`, `+` becomes a space (form data).
    ///
    /// - Returns: the decoded bytes, or `nil` when a `%` is not followed by two hex digits.
    public static func percentDecode(_ bytes: some Collection<UInt8>, plusAsSpace: Bool = false) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i != bytes.endIndex {
            let b = bytes[i]
            if b == 0x25 {  // '%'
                let h = bytes.index(after: i)
                guard h != bytes.endIndex, let hi = Bytes.hexValue(bytes[h]) else { return nil }
                let l = bytes.index(after: h)
                guard l != bytes.endIndex, let lo = Bytes.hexValue(bytes[l]) else { return nil }
                out.append(UInt8(hi * 16 + lo))
                i = bytes.index(after: l)
                continue
            }
            out.append(plusAsSpace && b == 0x2B ? Bytes.space : b)
            i = bytes.index(after: i)
        }
        return out
    }

    /// Percent-decodes a string; `nil` when an escape is malformed or the
    /// result is not UTF-8.
    public static func percentDecode(_ string: some StringProtocol, plusAsSpace: Bool = false) -> String? {
        guard let bytes = percentDecode(Array(string.utf8), plusAsSpace: plusAsSpace) else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }
}

/// The name/value pairs of a form body or a query string, decoded, in order.
public struct FormFields: Sendable {
    /// Every pair as sent (names may repeat).
    public var fields: [(name: String, value: String)]

    /// Parses `name=value&name=value` (bytes of a form body).
    ///
    /// Empty pieces (`a=1&&b=2`) are skipped; a piece without `=` is a name
    /// with an empty value; `+` is a space.
    /// - Throws: ``HTTPError`` (400) naming the piece with a bad `%` escape or
    ///   that does not decode to UTF-8.
    public init(parsing bytes: some Collection<UInt8>) throws(HTTPError) {
        fields = []
        var piece: [UInt8] = []
        var iterator = bytes.makeIterator()
        var more = true
        while more {
            let next = iterator.next()
            if let b = next, b != 0x26 {  // not '&'
                piece.append(b)
                continue
            }
            more = next != nil
            if piece.isEmpty { continue }
            let eq = piece.firstIndex(of: 0x3D) ?? piece.endIndex  // '='
            let name = try Self.decode(piece[..<eq], piece: piece)
            let value = eq == piece.endIndex ? "" : try Self.decode(piece[(eq + 1)...], piece: piece)
            fields.append((name, value))
            piece.removeAll(keepingCapacity: true)
        }
    }

    /// Parses a raw query string (what follows `?`).
    public init(query: String) throws(HTTPError) {
        try self.init(parsing: Array(query.utf8))
    }

    /// The first value of `name` (exact, case-sensitive match), or `nil`.
    public func value(_ name: String) -> String? {
        fields.first { $0.name == name }?.value
    }

    /// Every value of `name`, in order.
    public func values(_ name: String) -> [String] {
        fields.filter { $0.name == name }.map(\.value)
    }

    private static func decode(_ part: ArraySlice<UInt8>, piece: [UInt8]) throws(HTTPError) -> String {
        guard let bytes = FormEncoding.percentDecode(part, plusAsSpace: true),
            let s = String(validating: bytes, as: UTF8.self)
        else {
            let shown = piece.withUnsafeBytes { Bytes.quoted($0, 0..<piece.count) }
            throw .malformed("The form field \(shown) is not valid form encoding; a % must be followed by two hex digits and the decoded text must be UTF-8.")
        }
        return s
    }
}

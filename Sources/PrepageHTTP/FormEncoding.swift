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
    /// with an empty value; `+` is a space. Malformed input is refused, never
    /// guessed at: a `%` must start an escape of two hex digits, and the
    /// decoded bytes must be UTF-8.
    /// - Throws: ``HTTPError`` (``HTTPError/Kind/malformedRequest``) naming the
    ///   piece and its bad `%` escape, or the piece that does not decode to UTF-8.
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

    private static func decode(_ part: ArraySlice<UInt8>, piece: [UInt8]) throws(HTTPError) -> String {
        let shown = { piece.withUnsafeBytes { Bytes.quoted($0, 0..<piece.count) } }
        guard let bytes = FormEncoding.percentDecode(part, plusAsSpace: true) else {
            throw .malformed(
                "The form field \(shown()) has the malformed escape \(badEscape(part)); "
                    + "a % must be followed by two hex digits (%25 for % itself).")
        }
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw .malformed(
                "The form field \(shown()) does not decode to UTF-8; percent-encode the UTF-8 bytes of the text.")
        }
        return s
    }

    /// The first `%` of `part` not followed by two hex digits, with what follows it (at most two bytes), quoted.
    private static func badEscape(_ part: ArraySlice<UInt8>) -> String {
        var i = part.startIndex
        while i < part.endIndex {
            if part[i] == 0x25 {  // '%'
                let end = min(i + 3, part.endIndex)
                if end - i < 3 || Bytes.hexValue(part[i + 1]) == nil || Bytes.hexValue(part[i + 2]) == nil {
                    let escape = Array(part[i..<end])
                    return escape.withUnsafeBytes { Bytes.quoted($0, 0..<escape.count) }
                }
                i += 3
            } else {
                i += 1
            }
        }
        return "\"%\""
    }
}

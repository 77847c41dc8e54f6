/// The parts of a request line (RFC 9112 §3), as byte ranges.
struct RequestLine {
    var method: HTTPMethod
    var path: Range<Int>
    var query: Range<Int>?
    var isHTTP10: Bool

    static func parse(_ buf: UnsafeRawBufferPointer, _ line: Range<Int>) -> Result<RequestLine, HTTPError> {
        let shape = "expected \"METHOD /path HTTP/1.1\""
        var i = line.lowerBound
        while i < line.upperBound, Bytes.isTokenByte(buf[i]) { i += 1 }
        guard i > line.lowerBound, i < line.upperBound, buf[i] == Bytes.space else {
            return .failure(
                .malformed(
                    "The request line \(Bytes.quoted(buf, line)) does not start with a method token and one space; \(shape)."
                ))
        }
        let method = HTTPMethod(token: UnsafeRawBufferPointer(rebasing: buf[line.lowerBound..<i]))
        let targetStart = i + 1
        var j = targetStart
        while j < line.upperBound, buf[j] != Bytes.space {
            let b = buf[j]
            guard b > 0x20 && b < 0x7F else {
                return .failure(
                    .malformed(
                        "The request target contains the byte \\x\(Bytes.hex2(b)); only visible ASCII is accepted (percent-encode the rest, RFC 3986)."
                    ))
            }
            j += 1
        }
        guard j > targetStart else {
            return .failure(.malformed("The request line \(Bytes.quoted(buf, line)) has an empty target; \(shape)."))
        }
        guard j < line.upperBound else {
            return .failure(.malformed("The request line \(Bytes.quoted(buf, line)) has no HTTP version; \(shape)."))
        }
        let version = UnsafeRawBufferPointer(rebasing: buf[(j + 1)..<line.upperBound])
        let isHTTP10: Bool
        if Bytes.equals(version, "HTTP/1.1") {
            isHTTP10 = false
        } else if Bytes.equals(version, "HTTP/1.0") {
            isHTTP10 = true
        } else if version.count > 5, Bytes.equals(UnsafeRawBufferPointer(rebasing: version[0..<5]), "HTTP/"),
            version[5...].allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E })
        {
            return .failure(
                HTTPError(
                    .unsupportedVersion,
                    "The HTTP version \(Bytes.quoted(buf, (j + 1)..<line.upperBound)) is not supported; HTTP/1.1 and HTTP/1.0 are accepted."
                ))
        } else {
            return .failure(
                .malformed(
                    "The request line \(Bytes.quoted(buf, line)) does not end in a valid HTTP version; \(shape)."))
        }

        // The request target's form (RFC 9112 §3.2).
        var pathStart = targetStart
        let targetEnd = j
        if buf[targetStart] == 0x2F {  // origin-form: "/path?query"
        } else if targetEnd - targetStart == 1 && buf[targetStart] == 0x2A {  // asterisk-form: "*"
            guard method == .options else {
                return .failure(.malformed("The target \"*\" is only accepted with OPTIONS (RFC 9112 §3.2.4)."))
            }
        } else if let afterScheme = absoluteFormPathStart(buf, targetStart..<targetEnd) {
            // absolute-form: "http://host/path?query" — RFC 9112 §3.2.2 says a server MUST accept it.
            pathStart = afterScheme
        } else {
            return .failure(
                .malformed(
                    "The request target \(Bytes.quoted(buf, targetStart..<targetEnd)) is neither \"/path\" nor an absolute http URI (RFC 9112 §3.2)."
                ))
        }
        var q = pathStart
        while q < targetEnd, buf[q] != 0x3F { q += 1 }  // '?'
        // An empty path (only possible in absolute-form, "http://h?q") stands for "/".
        let path = pathStart..<q
        let query: Range<Int>? = q < targetEnd ? (q + 1)..<targetEnd : nil
        return .success(RequestLine(method: method, path: path, query: query, isHTTP10: isHTTP10))
    }

    /// For `http://host/p?q` (any case of scheme), the index of `/p?q`; `nil` if not absolute-form.
    private static func absoluteFormPathStart(_ buf: UnsafeRawBufferPointer, _ target: Range<Int>) -> Int? {
        let t = UnsafeRawBufferPointer(rebasing: buf[target])
        let schemeLength: Int
        if t.count >= 7, Bytes.equalsLowercased(UnsafeRawBufferPointer(rebasing: t[0..<7]), "http://") {
            schemeLength = 7
        } else if t.count >= 8, Bytes.equalsLowercased(UnsafeRawBufferPointer(rebasing: t[0..<8]), "https://") {
            schemeLength = 8
        } else {
            return nil
        }
        var i = target.lowerBound + schemeLength
        guard i < target.upperBound else { return nil }  // no authority
        while i < target.upperBound, buf[i] != 0x2F, buf[i] != 0x3F { i += 1 }
        return i
    }
}

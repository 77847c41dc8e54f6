/// Reason phrases for the statuses the API uses.
public enum HTTPStatus {
    /// The reason phrase of `status` (RFC 9110 §15); `"Unknown"` for codes the API never sends.
    public static func reasonPhrase(_ status: Int) -> String {
        String(describing: staticReasonPhrase(status))
    }

    static func staticReasonPhrase(_ status: Int) -> StaticString {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 204: "No Content"
        case 304: "Not Modified"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 417: "Expectation Failed"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        case 507: "Insufficient Storage"
        default: "Unknown"
        }
    }
}

/// Encodes whole responses into one byte buffer, so the server sends each
/// response with a single write (no Nagle / delayed-ACK stall between head and body).
///
/// The head is the status line (always `HTTP/1.1`, RFC 9110 §2.5), `Date`,
/// `Content-Type`, `Content-Length`, `Connection`, the extra headers and an
/// empty line; the caller appends the body after it (none for HEAD). CR, LF
/// and NUL are dropped from header names and values, so an echoed value cannot
/// split the response. For 1xx, 204 and 304 no `Content-Length` is written and
/// no body follows (RFC 9110 §8.6, §15.3.5).
public enum HTTPResponseWriter {
    /// The interim response to `Expect: 100-continue`.
    public static let continueResponse: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// Appends only the head (status line, headers, empty line) for a body of
    /// `contentLength` bytes, which the caller appends itself (or not, for HEAD).
    ///
    /// - Parameter requestID: the `X-Request-ID` value, written last, from bytes (no
    ///   String per response); CR, LF and NUL dropped. Empty: no `X-Request-ID`.
    public static func appendHead(
        status: Int,
        contentType: String?,
        contentLength: Int,
        extraHeaders: [(String, String)] = [],
        keepAlive: Bool,
        isHTTP10: Bool = false,
        date: [UInt8],
        requestID: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
        into out: inout [UInt8]
    ) {
        appendStatic(&out, "HTTP/1.1 ")
        appendDecimal(&out, status)
        out.append(Bytes.space)
        appendStatic(&out, HTTPStatus.staticReasonPhrase(status))
        appendStatic(&out, "\r\n")
        if !date.isEmpty {
            appendStatic(&out, "Date: ")
            out.append(contentsOf: date)
            appendStatic(&out, "\r\n")
        }
        if let contentType {
            appendStatic(&out, "Content-Type: ")
            appendClean(&out, contentType)
            appendStatic(&out, "\r\n")
        }
        if hasBody(status) {
            appendStatic(&out, "Content-Length: ")
            appendDecimal(&out, contentLength)
            appendStatic(&out, "\r\n")
        }
        if !keepAlive {
            appendStatic(&out, "Connection: close\r\n")
        } else if isHTTP10 {
            appendStatic(&out, "Connection: keep-alive\r\n")
        }
        for (name, value) in extraHeaders {
            appendClean(&out, name)
            appendStatic(&out, ": ")
            appendClean(&out, value)
            appendStatic(&out, "\r\n")
        }
        if !requestID.isEmpty {
            appendStatic(&out, "X-Request-ID: ")
            if !requestID.contains(where: { $0 == Bytes.cr || $0 == Bytes.lf || $0 == 0 }) {
                out.append(contentsOf: requestID)
            } else {
                for b in requestID where b != Bytes.cr && b != Bytes.lf && b != 0 { out.append(b) }
            }
            appendStatic(&out, "\r\n")
        }
        appendStatic(&out, "\r\n")
    }

    /// Whether a response with `status` carries Content-Length and a body.
    @inline(__always)
    static func hasBody(_ status: Int) -> Bool {
        !(status < 200 || status == 204 || status == 304)
    }

    @inline(__always)
    static func appendStatic(_ out: inout [UInt8], _ s: StaticString) {
        out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// Appends a non-negative decimal number without building a String.
    static func appendDecimal(_ out: inout [UInt8], _ value: Int) {
        var v = value < 0 ? 0 : value
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
            ) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[19 - n] = UInt8(truncatingIfNeeded: v % 10) + 0x30
                v /= 10
                n += 1
            } while v > 0
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: d[(20 - n)..<20]))
        }
    }

    /// Appends a header name or value, dropping CR, LF and NUL.
    static func appendClean(_ out: inout [UInt8], _ s: String) {
        var s = s
        s.withUTF8 { bytes in
            if !bytes.contains(where: { $0 == Bytes.cr || $0 == Bytes.lf || $0 == 0 }) {
                out.append(contentsOf: bytes)
            } else {
                for b in bytes where b != Bytes.cr && b != Bytes.lf && b != 0 { out.append(b) }
            }
        }
    }
}

/// Byte-level helpers shared by the parser and the encoders (ASCII only).
/// Public: ``hexValue(_:)``, the package's one hexadecimal-digit decoder.
public enum Bytes {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let space: UInt8 = 0x20
    static let tab: UInt8 = 0x09
    static let colon: UInt8 = 0x3A

    /// `tchar` of RFC 9110 §5.6.2: the bytes of a token (method, field name).
    @inline(__always)
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true  // DIGIT, ALPHA
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E:
            true  // ! # $ % & ' * + - . ^ _ ` | ~
        default: false
        }
    }

    /// A byte allowed inside a field value (RFC 9110 §5.5): VCHAR, obs-text, SP, HTAB.
    @inline(__always)
    static func isFieldValueByte(_ b: UInt8) -> Bool {
        b == tab || (b >= 0x20 && b != 0x7F)
    }

    @inline(__always)
    static func isOWS(_ b: UInt8) -> Bool { b == space || b == tab }

    /// ASCII lower case; other bytes unchanged.
    @inline(__always)
    static func lower(_ b: UInt8) -> UInt8 { (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b }

    /// `n * 10 + digit`, or `Int.max` when that does not fit.
    @inline(__always)
    static func saturatingDecimalStep(_ n: Int, _ digit: Int) -> Int {
        let (m, o1) = n.multipliedReportingOverflow(by: 10)
        let (r, o2) = m.addingReportingOverflow(digit)
        return o1 || o2 ? Int.max : r
    }

    /// `n * 16 + digit`, or `Int.max` when that does not fit.
    @inline(__always)
    static func saturatingHexStep(_ n: Int, _ digit: Int) -> Int {
        let (m, o1) = n.multipliedReportingOverflow(by: 16)
        let (r, o2) = m.addingReportingOverflow(digit)
        return o1 || o2 ? Int.max : r
    }

    /// The value of a hexadecimal digit (`0-9`, `a-f`, `A-F`), or `nil`: the one
    /// hex-digit decoder of the package (chunk sizes, `%` escapes, and the
    /// server's JSON `\u` escapes and `0x` numbers).
    @inlinable
    public static func hexValue(_ b: UInt8) -> Int? {
        switch b {
        case 0x30...0x39: Int(b - 0x30)
        case 0x41...0x46: Int(b - 0x41 + 10)
        case 0x61...0x66: Int(b - 0x61 + 10)
        default: nil
        }
    }

    /// Exact byte equality with an ASCII literal.
    @inline(__always)
    static func equals(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        guard bytes.count == literal.utf8CodeUnitCount else { return false }
        let p = literal.utf8Start
        for i in 0..<bytes.count where bytes[i] != p[i] { return false }
        return true
    }

    /// Case-insensitive equality with a lower-case ASCII literal.
    @inline(__always)
    static func equalsLowercased(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        guard bytes.count == literal.utf8CodeUnitCount else { return false }
        let p = literal.utf8Start
        for i in 0..<bytes.count where lower(bytes[i]) != p[i] { return false }
        return true
    }

    /// Case-insensitive equality with an ASCII string (either case).
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ name: String) -> Bool {
        var i = 0
        for c in name.utf8 {
            guard i < bytes.count, lower(bytes[i]) == lower(c) else { return false }
            i += 1
        }
        return i == bytes.count
    }

    /// `bytes[range]` with optional whitespace removed at both ends.
    @inline(__always)
    static func trimmed(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Range<Int> {
        var lo = range.lowerBound
        var hi = range.upperBound
        while lo < hi, isOWS(bytes[lo]) { lo += 1 }
        while hi > lo, isOWS(bytes[hi - 1]) { hi -= 1 }
        return lo..<hi
    }

    /// Calls `body` with each comma-separated element of a list value,
    /// trimmed, skipping empty elements (RFC 9110 §5.6.1).
    static func forEachListElement(
        _ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ body: (Range<Int>) -> Void
    ) {
        var start = range.lowerBound
        var i = range.lowerBound
        while i <= range.upperBound {
            if i == range.upperBound || bytes[i] == 0x2C {
                let element = trimmed(bytes, start..<i)
                if !element.isEmpty { body(element) }
                start = i + 1
            }
            i += 1
        }
    }

    /// A `String` from bytes that are known to be ASCII or are to be decoded leniently.
    @inline(__always)
    static func string(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    /// Shows a few bytes for an error detail: printable ASCII as is, others as `\xNN`.
    static func quoted(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, limit: Int = 40) -> String {
        var out = "\""
        for i in range.prefix(limit) {
            let b = bytes[i]
            if b >= 0x20 && b < 0x7F && b != 0x22 && b != 0x5C {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                out += "\\x" + hex2(b)
            }
        }
        if range.count > limit { out += "…" }
        return out + "\""
    }

    static func hex2(_ b: UInt8) -> String {
        let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "E", "F"]
        return String([digits[Int(b >> 4)], digits[Int(b & 0xF)]])
    }

    /// Digit-grouped decimal for messages: 16384 → "16,384".
    static func grouped(_ n: Int) -> String {
        let s = String(n)
        guard n >= 1_000 || n <= -1_000 else { return s }
        var out = ""
        for (i, c) in s.reversed().enumerated() {
            if i > 0 && i % 3 == 0 && c != "-" { out.append(",") }
            out.append(c)
        }
        return String(out.reversed())
    }
}

/// Hand-written JSON output, appended to a byte buffer.
///
/// The responses are small and of known shape; writing them directly is
/// several times cheaper than Foundation's encoders and does not allocate once
/// the buffer has grown to its working size.
struct JSONWriter {
    var bytes: [UInt8]

    /// Writes into `bytes`, emptied but with its capacity kept. Consuming: a buffer
    /// still shared with the caller would be copied on the first write.
    init(reusing bytes: consuming [UInt8] = []) {
        bytes.removeAll(keepingCapacity: true)
        self.bytes = bytes
    }

    @inline(__always)
    mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func byte(_ c: UInt8) {
        bytes.append(c)
    }

    /// `"key":`, for keys known to need no escaping.
    @inline(__always)
    mutating func key(_ k: StaticString) {
        bytes.append(UInt8(ascii: "\""))
        raw(k)
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    /// A signed integer in decimal.
    @inline(__always)
    mutating func int(_ v: Int) {
        if v < 0 {
            bytes.append(UInt8(ascii: "-"))
            uint(v.magnitude)
        } else {
            uint(UInt(v))
        }
    }

    /// An unsigned integer in decimal, without allocating.
    @inline(__always)
    mutating func uint<T: FixedWidthInteger & UnsignedInteger>(_ v: T) {
        var v = UInt64(v)
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes ≥ 20 digits
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[23 - n] = UInt8(truncatingIfNeeded: v % 10) &+ UInt8(ascii: "0")
                v /= 10
                n += 1
            } while v != 0
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: d[(24 - n)...]))
        }
    }

    /// `"key":` for a key that may need escaping.
    mutating func key(_ k: String) {
        string(k)
        bytes.append(UInt8(ascii: ":"))
    }

    /// A finite double in its shortest form that reads back to the same value
    /// (`32.768`, `1000.0`, `1e-05`). Not for the fault path: it builds a String.
    mutating func double(_ d: Double) {
        precondition(d.isFinite, "JSON has no infinities or NaN")
        bytes.append(contentsOf: "\(d)".utf8)
    }

    mutating func bool(_ b: Bool) {
        if b { raw("true") } else { raw("false") }
    }

    /// A JSON string with the escapes RFC 8259 §7 requires.
    mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { utf8 in
            for c in utf8 {
                switch c {
                case UInt8(ascii: "\""): raw("\\\"")
                case UInt8(ascii: "\\"): raw("\\\\")
                case 0x0A: raw("\\n")
                case 0x0D: raw("\\r")
                case 0x09: raw("\\t")
                case 0..<0x20:
                    raw("\\u00")
                    bytes.append(Self.hex[Int(c >> 4)])
                    bytes.append(Self.hex[Int(c & 0xF)])
                default: bytes.append(c)
                }
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// An RFC 3339 UTC timestamp with milliseconds (`2026-11-28T23:55:55.123Z`), or `null` for 0.
    mutating func timestamp(nanoseconds: Int64) {
        guard nanoseconds > 0 else { return raw("null") }
        bytes.append(UInt8(ascii: "\""))
        appendRFC3339(nanoseconds: nanoseconds, into: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }
}

/// Appends `YYYY-MM-DDThh:mm:ss.mmmZ` for a time since the Unix epoch.
func appendRFC3339(nanoseconds: Int64, into out: inout [UInt8]) {
    let seconds = nanoseconds / 1_000_000_000
    let millis = Int((nanoseconds % 1_000_000_000) / 1_000_000)
    let (year, month, day) = civilDate(daysSinceEpoch: Int(seconds / 86_400))
    let secondOfDay = Int(seconds % 86_400)
    func two(_ v: Int) {
        out.append(UInt8(ascii: "0") + UInt8(v / 10))
        out.append(UInt8(ascii: "0") + UInt8(v % 10))
    }
    two(year / 100)
    two(year % 100)
    out.append(UInt8(ascii: "-"))
    two(month)
    out.append(UInt8(ascii: "-"))
    two(day)
    out.append(UInt8(ascii: "T"))
    two(secondOfDay / 3_600)
    out.append(UInt8(ascii: ":"))
    two(secondOfDay / 60 % 60)
    out.append(UInt8(ascii: ":"))
    two(secondOfDay % 60)
    out.append(UInt8(ascii: "."))
    out.append(UInt8(ascii: "0") + UInt8(millis / 100))
    two(millis % 100)
    out.append(UInt8(ascii: "Z"))
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
func civilDate(daysSinceEpoch z0: Int) -> (year: Int, month: Int, day: Int) {
    let z = z0 + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
}

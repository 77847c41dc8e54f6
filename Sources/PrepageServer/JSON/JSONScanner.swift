import PrepageHTTP

/// A strict JSON scanner over bytes, for the small request bodies of the API.
///
/// It reads exactly RFC 8259 JSON and nothing more lenient: no comments, no
/// trailing commas, no single quotes, no leading zeros, no lone surrogates,
/// valid UTF-8 only. It does not build a tree: the caller asks for the shape it
/// expects (an object, then its keys one by one, then an integer, a string, an
/// array of integers…), so a fault body is read without allocating.
///
/// Numbers the API accepts are integers: a JSON integer, or a string holding a
/// decimal or `0x` hexadecimal integer (an address does not survive a trip
/// through a double). A JSON number with a fraction or exponent is a wrong type.
///
/// > Important: the scanner is given untrusted bytes. Every method checks bounds
/// > and throws a `malformed-json` ``APIProblem``; none traps. Nesting is limited to what the
/// > caller asks for, so depth cannot blow the stack.
struct JSONScanner: ~Copyable {
    private let bytes: UnsafeRawBufferPointer
    private(set) var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    // MARK: - Structure

    /// Consumes `{`.
    mutating func beginObject() throws(APIProblem) {
        try expect(UInt8(ascii: "{"), "an object '{'")
        afterOpen = true
    }

    /// Whether the next key is the first of its object (no comma expected).
    private var afterOpen = false

    /// Reads the next key of the current object and the `:` after it.
    ///
    /// - Returns: the key's raw bytes (between the quotes, escapes not decoded),
    ///   or `nil` at the closing `}`, which is consumed.
    mutating func nextKey() throws(APIProblem) -> JSONKey? {
        skipWhitespace()
        guard offset < bytes.count else { throw error("'}' or a key") }
        if bytes[offset] == UInt8(ascii: "}") {
            offset += 1
            afterOpen = false
            return nil
        }
        if !afterOpen {
            try expect(UInt8(ascii: ","), "',' or '}'")
            skipWhitespace()
        }
        afterOpen = false
        let start = offset
        let raw = try stringRange()
        let key = JSONKey(bytes: UnsafeRawBufferPointer(rebasing: bytes[raw]), escaped: hasEscape(raw), offset: start)
        try expect(UInt8(ascii: ":"), "':' after a key")
        return key
    }

    /// Consumes `[`; then call ``nextElement()`` before each element.
    mutating func beginArray() throws(APIProblem) {
        try expect(UInt8(ascii: "["), "an array '['")
        afterOpen = true
    }

    /// `true` when another element follows (its comma consumed), `false` at `]` (consumed).
    mutating func nextElement() throws(APIProblem) -> Bool {
        skipWhitespace()
        guard offset < bytes.count else { throw error("']' or a value") }
        if bytes[offset] == UInt8(ascii: "]") {
            offset += 1
            afterOpen = false
            return false
        }
        if !afterOpen {
            try expect(UInt8(ascii: ","), "',' or ']'")
        }
        afterOpen = false
        return true
    }

    /// Checks that only whitespace follows the value.
    mutating func end() throws(APIProblem) {
        skipWhitespace()
        guard offset == bytes.count else { throw error("the end of the body") }
    }

    // MARK: - Values

    /// Reads an integer: a JSON integer, or a string in decimal or `0x` hexadecimal.
    ///
    /// - Returns: the value, or a ``JSONValueProblem`` when the JSON is well formed but
    ///   the value is not an integer (the caller names the field in its error).
    mutating func integer() throws(APIProblem) -> Result<JSONInteger, JSONValueProblem> {
        skipWhitespace()
        guard offset < bytes.count else { throw error("a value") }
        let c = bytes[offset]
        if c == UInt8(ascii: "\"") {
            let raw = try stringRange()
            if hasEscape(raw) { return .failure(.notAnInteger) }
            return Self.parseIntegerString(UnsafeRawBufferPointer(rebasing: bytes[raw]))
        }
        if c == UInt8(ascii: "-") || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) {
            return try number()
        }
        try skipValue()
        return .failure(.wrongType)
    }

    /// Reads a JSON number (integer, fraction or exponent) as the nearest binary64.
    ///
    /// - Returns: the value, or ``JSONValueProblem/wrongType`` for another kind of value
    ///   (skipped), or ``JSONValueProblem/tooLarge`` for a number beyond the finite doubles.
    mutating func real() throws(APIProblem) -> Result<Double, JSONValueProblem> {
        skipWhitespace()
        guard offset < bytes.count else { throw error("a value") }
        let c = bytes[offset]
        guard c == UInt8(ascii: "-") || Self.isDigit(c) else {
            try skipValue()
            return .failure(.wrongType)
        }
        let start = offset
        _ = try number()  // validates the grammar; the text is converted below
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else { return .failure(.tooLarge) }
        return .success(value)
    }

    /// Reads `true` or `false`.
    ///
    /// - Returns: the value, or ``JSONValueProblem/wrongType`` for another kind of value (skipped).
    mutating func boolean() throws(APIProblem) -> Result<Bool, JSONValueProblem> {
        skipWhitespace()
        guard offset < bytes.count else { throw error("a value") }
        switch bytes[offset] {
        case UInt8(ascii: "t"):
            try literal("true")
            return .success(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .success(false)
        default:
            try skipValue()
            return .failure(.wrongType)
        }
    }

    /// Reads a string value and decodes its escapes.
    ///
    /// - Returns: the string, or ``JSONValueProblem/wrongType`` for another kind of value (skipped).
    mutating func string() throws(APIProblem) -> Result<String, JSONValueProblem> {
        skipWhitespace()
        guard offset < bytes.count else { throw error("a value") }
        guard bytes[offset] == UInt8(ascii: "\"") else {
            try skipValue()
            return .failure(.wrongType)
        }
        let raw = try stringRange()
        return .success(Self.decode(UnsafeRawBufferPointer(rebasing: bytes[raw])))
    }

    /// The kind of the next value, without consuming it.
    func peekKind() -> JSONKind {
        var i = offset
        while i < bytes.count, Self.isWhitespace(bytes[i]) { i += 1 }
        guard i < bytes.count else { return .none }
        switch bytes[i] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        default: return .scalar
        }
    }

    /// Skips one whole value of any kind (validating it), to at most 64 levels of nesting.
    mutating func skipValue(depth: Int = 0) throws(APIProblem) {
        guard depth < 64 else { throw error("nesting of at most 64 levels") }
        skipWhitespace()
        guard offset < bytes.count else { throw error("a value") }
        switch bytes[offset] {
        case UInt8(ascii: "\""):
            _ = try stringRange()
        case UInt8(ascii: "{"):
            let saved = afterOpen
            try beginObject()
            while try nextKey() != nil { try skipValue(depth: depth + 1) }
            afterOpen = saved
        case UInt8(ascii: "["):
            let saved = afterOpen
            try beginArray()
            while try nextElement() { try skipValue(depth: depth + 1) }
            afterOpen = saved
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: _ = try number()
        }
    }

    // MARK: - Lexing

    private mutating func literal(_ word: StaticString) throws(APIProblem) {
        let n = word.utf8CodeUnitCount
        guard offset + n <= bytes.count else { throw error("a value") }
        for i in 0..<n where bytes[offset + i] != word.utf8Start[i] { throw error("a value") }
        offset += n
    }

    /// RFC 8259 §6: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    private mutating func number() throws(APIProblem) -> Result<JSONInteger, JSONValueProblem> {
        var negative = false
        if bytes[offset] == UInt8(ascii: "-") {
            negative = true
            offset += 1
        }
        guard offset < bytes.count, Self.isDigit(bytes[offset]) else { throw error("a digit") }
        var magnitude: UInt64 = 0
        var overflow = false
        if bytes[offset] == UInt8(ascii: "0") {
            offset += 1
            // RFC 8259 §6: leading zeros are not allowed.
            if offset < bytes.count, Self.isDigit(bytes[offset]) { throw error("no leading zeros") }
        } else {
            while offset < bytes.count, Self.isDigit(bytes[offset]) {
                let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(UInt64(bytes[offset] &- UInt8(ascii: "0")))
                overflow = overflow || o1 || o2
                magnitude = a
                offset += 1
            }
        }
        var fractional = false
        if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
            offset += 1
            guard offset < bytes.count, Self.isDigit(bytes[offset]) else { throw error("a digit after '.'") }
            while offset < bytes.count, Self.isDigit(bytes[offset]) { offset += 1 }
            fractional = true
        }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E") {
            offset += 1
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") {
                offset += 1
            }
            guard offset < bytes.count, Self.isDigit(bytes[offset]) else { throw error("a digit in the exponent") }
            while offset < bytes.count, Self.isDigit(bytes[offset]) { offset += 1 }
            fractional = true
        }
        if fractional { return .failure(.notAnInteger) }
        if overflow { return .failure(.tooLarge) }
        return .success(JSONInteger(negative: negative && magnitude != 0, magnitude: magnitude))
    }

    /// A decimal or `0x` hexadecimal integer inside a string: digits only, no sign, no spaces.
    static func parseIntegerString(_ s: UnsafeRawBufferPointer) -> Result<JSONInteger, JSONValueProblem> {
        guard !s.isEmpty else { return .failure(.notAnInteger) }
        var magnitude: UInt64 = 0
        if s.count > 2, s[0] == UInt8(ascii: "0"), s[1] == UInt8(ascii: "x") || s[1] == UInt8(ascii: "X") {
            for i in 2..<s.count {
                guard let digit = Bytes.hexValue(s[i]) else { return .failure(.notAnInteger) }
                guard magnitude >> 60 == 0 else { return .failure(.tooLarge) }
                magnitude = magnitude << 4 | UInt64(digit)
            }
            return .success(JSONInteger(negative: false, magnitude: magnitude))
        }
        for i in 0..<s.count {
            let c = s[i]
            guard isDigit(c) else { return .failure(.notAnInteger) }
            let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(c - UInt8(ascii: "0")))
            if o1 || o2 { return .failure(.tooLarge) }
            magnitude = a
        }
        return .success(JSONInteger(negative: false, magnitude: magnitude))
    }

    /// Consumes a string (with its quotes), validating escapes and UTF-8.
    /// - Returns: the byte range between the quotes.
    private mutating func stringRange() throws(APIProblem) -> Range<Int> {
        guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else { throw error("a string") }
        offset += 1
        let start = offset
        while offset < bytes.count {
            let c = bytes[offset]
            switch c {
            case UInt8(ascii: "\""):
                offset += 1
                return start..<(offset - 1)
            case UInt8(ascii: "\\"):
                offset += 1
                guard offset < bytes.count else { throw error("an escape") }
                switch bytes[offset] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                    UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    offset += 1
                case UInt8(ascii: "u"):
                    offset += 1
                    let unit = try hex4()
                    if (0xD800...0xDBFF).contains(unit) {
                        // RFC 8259 §7: a high surrogate must be followed by an escaped low one.
                        guard offset + 2 <= bytes.count, bytes[offset] == UInt8(ascii: "\\"),
                            bytes[offset + 1] == UInt8(ascii: "u")
                        else { throw error("a low surrogate escape") }
                        offset += 2
                        guard (0xDC00...0xDFFF).contains(try hex4()) else { throw error("a low surrogate") }
                    } else if (0xDC00...0xDFFF).contains(unit) {
                        throw error("no lone low surrogate")
                    }
                default:
                    throw error("a valid escape")
                }
            case 0..<0x20:
                // RFC 8259 §7: control characters must be escaped.
                throw error("no control character in a string")
            case 0x80...:
                offset += try utf8Length(at: offset)
            default:
                offset += 1
            }
        }
        throw error("the closing '\"'")
    }

    private mutating func hex4() throws(APIProblem) -> Int {
        guard offset + 4 <= bytes.count else { throw error("four hex digits") }
        var value = 0
        for _ in 0..<4 {
            guard let d = Bytes.hexValue(bytes[offset]) else { throw error("four hex digits") }
            value = value << 4 | d
            offset += 1
        }
        return value
    }

    /// Length of the well-formed UTF-8 sequence at `i` (Unicode Table 3-7), or throws.
    private func utf8Length(at i: Int) throws(APIProblem) -> Int {
        let b0 = bytes[i]
        func cont(_ j: Int, _ lo: UInt8 = 0x80, _ hi: UInt8 = 0xBF) -> Bool {
            j < bytes.count && bytes[j] >= lo && bytes[j] <= hi
        }
        switch b0 {
        case 0xC2...0xDF where cont(i + 1): return 2
        case 0xE0 where cont(i + 1, 0xA0) && cont(i + 2): return 3
        case 0xE1...0xEC where cont(i + 1) && cont(i + 2): return 3
        case 0xED where cont(i + 1, 0x80, 0x9F) && cont(i + 2): return 3
        case 0xEE...0xEF where cont(i + 1) && cont(i + 2): return 3
        case 0xF0 where cont(i + 1, 0x90) && cont(i + 2) && cont(i + 3): return 4
        case 0xF1...0xF3 where cont(i + 1) && cont(i + 2) && cont(i + 3): return 4
        case 0xF4 where cont(i + 1, 0x80, 0x8F) && cont(i + 2) && cont(i + 3): return 4
        default: throw JSONError(offset: i, expected: "valid UTF-8").problem
        }
    }

    private func hasEscape(_ range: Range<Int>) -> Bool {
        for i in range where bytes[i] == UInt8(ascii: "\\") { return true }
        return false
    }

    /// Decodes an already validated string body.
    static func decode(_ raw: UnsafeRawBufferPointer) -> String {
        var plain = true
        for b in raw where b == UInt8(ascii: "\\") { plain = false; break }
        if plain { return String(decoding: raw, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        // Four hex digits, already checked by `stringRange()`.
        func hex(_ at: Int) -> UInt32 {
            var v: UInt32 = 0
            for j in at..<(at + 4) { v = v << 4 | UInt32(Bytes.hexValue(raw[j]) ?? 0) }
            return v
        }
        while i < raw.count {
            let c = raw[i]
            guard c == UInt8(ascii: "\\") else { out.append(c); i += 1; continue }
            let e = raw[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "b"): out.append(8)
            case UInt8(ascii: "f"): out.append(12)
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "u"):
                var scalar = hex(i)
                i += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    let low = hex(i + 2)
                    i += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                out.append(contentsOf: String(Unicode.Scalar(scalar)!).utf8)
            default: out.append(e)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Characters

    private mutating func expect(_ c: UInt8, _ what: String) throws(APIProblem) {
        skipWhitespace()
        guard offset < bytes.count, bytes[offset] == c else { throw error(what) }
        offset += 1
    }

    private mutating func skipWhitespace() {
        while offset < bytes.count, Self.isWhitespace(bytes[offset]) { offset += 1 }
    }

    @inline(__always)
    private static func isWhitespace(_ c: UInt8) -> Bool {
        c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09
    }

    @inline(__always)
    private static func isDigit(_ c: UInt8) -> Bool {
        c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")
    }

    private func error(_ expected: String) -> APIProblem {
        JSONError(offset: offset, expected: expected).problem
    }
}

/// An object key as found in the body.
struct JSONKey {
    /// The bytes between the quotes, escapes not decoded.
    var bytes: UnsafeRawBufferPointer
    /// Whether the key contains escapes (then compare ``decoded``).
    var escaped: Bool
    /// Byte offset of the key in the body, for error messages.
    var offset: Int

    /// Whether the key is `name` (ASCII field names).
    @inline(__always)
    func `is`(_ name: StaticString) -> Bool {
        if escaped { return decoded == name.description }
        guard bytes.count == name.utf8CodeUnitCount else { return false }
        return bytesEqual(bytes.baseAddress, name.utf8Start, bytes.count)
    }

    var decoded: String { JSONScanner.decode(bytes) }
}

@inline(__always)
private func bytesEqual(_ a: UnsafeRawPointer?, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    guard let a else { return n == 0 }
    for i in 0..<n where a.load(fromByteOffset: i, as: UInt8.self) != b[i] { return false }
    return true
}

/// A JSON integer: sign and magnitude, so `0 … 2^64−1` and negatives down to `−(2^64−1)` fit.
struct JSONInteger: Hashable {
    var negative: Bool
    var magnitude: UInt64

    /// The value when it lies in `range`.
    func value(in range: ClosedRange<Int>) -> Int? {
        if negative {
            guard magnitude <= UInt64(Int.max) + 1 else { return nil }
            let v = magnitude == UInt64(Int.max) + 1 ? Int.min : -Int(magnitude)
            return range.contains(v) ? v : nil
        }
        guard magnitude <= UInt64(Int.max) else { return nil }
        let v = Int(magnitude)
        return range.contains(v) ? v : nil
    }
}

/// What kind of value comes next.
enum JSONKind { case object, array, string, scalar, none }

/// A well-formed value of the wrong kind for its field.
enum JSONValueProblem: Error {
    /// Not an integer and not a string of digits (a boolean, an object…).
    case wrongType
    /// A number with a fraction or exponent, or a string that is not a decimal or `0x` integer.
    case notAnInteger
    /// Outside 64 bits.
    case tooLarge
}

/// Malformed JSON: where, and what was expected there.
struct JSONError: Error, Hashable, CustomStringConvertible {
    var offset: Int
    var expected: String

    var description: String { "malformed JSON at byte \(offset): expected \(expected)" }

    /// The 400 answer.
    var problem: APIProblem { APIProblem(.malformedJSON, description) }
}

import Foundation
import PrepageCore

/// Reads a session configuration from the JSON form the vectors and the API use
/// (`{"policy": "dp", "max_pages": 64, …}`), accepting and refusing what
/// `PUT /sessions/{id}` does: every key optional (a blank text is the default
/// configuration), unknown and duplicate keys refused, integers as JSON integers
/// or strings of decimal or `0x` hexadecimal digits, `page_size` and `labels`
/// checked as the server checks them. The keys are those of
/// ``PrepageConfig/fields`` and ``SessionFields``. Unlike the server, a policy's
/// own keys may be allowed for every policy (`anyPolicy`).
public enum ConfigJSON {
    /// A session's whole configuration: the policy's, the page size and the labels.
    public struct Session: Sendable, Hashable {
        /// Validated (initial pages clamped).
        public var config: PrepageConfig
        public var pageSize: Int
        public var labels: [String: String]
    }

    /// Parses and validates a configuration; `page_size` and `labels` are checked, then dropped.
    /// - Throws: ``ConfigJSONError`` naming the key and what is accepted, or the ``ConfigError`` of validation.
    /// - Parameters:
    ///   - defaultPolicy: the policy when the text names none (dp-plus, as a session's).
    ///   - anyPolicy: accept every policy's own keys (a base configuration for several policies).
    public static func parse(
        _ text: String, defaultPolicy: PolicyName = PrepageConfig().policy, anyPolicy: Bool = false
    ) throws -> PrepageConfig {
        try parseSession(text, defaultPolicy: defaultPolicy, anyPolicy: anyPolicy).config
    }

    /// Parses and validates a session's configuration, page size and labels included.
    public static func parseSession(
        _ text: String, defaultPolicy: PolicyName = PrepageConfig().policy, anyPolicy: Bool = false
    ) throws -> Session {
        let bytes = Array(text.utf8)
        var config = PrepageConfig(policy: defaultPolicy)
        var pageSize = SessionFields.defaultPageSize
        var labels: [String: String] = [:]
        var given: [ConfigField] = []
        if !bytes.allSatisfy(FlatJSON.isWhitespace) {
            let members: [(key: String, value: ArraySlice<UInt8>)]
            do {
                members = try FlatJSON.members(of: bytes[...])
            } catch {
                throw ConfigJSONError("config must be a JSON object such as {\"max_pages\": 64}")
            }
            var seen = Set<String>()
            for (key, raw) in members {
                guard seen.insert(key).inserted else {
                    throw ConfigJSONError("duplicate config key \"\(key)\"; give each key once")
                }
                switch key {
                case SessionFields.pageSize: pageSize = try integer(raw, key: key)
                case SessionFields.labels: labels = try self.labels(raw)
                default:
                    guard let field = PrepageConfig.field(named: key) else {
                        throw ConfigJSONError("unknown config key \"\(key)\"; accepted: \(SessionFields.acceptedKeys)")
                    }
                    _ = field.set(try value(raw, of: field), in: &config)
                    given.append(field)
                }
            }
        }
        for field in given where !anyPolicy && !field.applies(to: config.policy) {
            throw ConfigJSONError(
                "\(field.name) does not apply to policy \(config.policy.rawValue); it applies to: \(field.policies.map(\.rawValue).joined(separator: ", "))"
            )
        }
        let validated = try config.validated()
        guard SessionFields.isPageSize(pageSize) else {
            throw ConfigJSONError(
                "page_size = \(pageSize) is out of range; allowed: \(SessionFields.pageSizeAllowed)")
        }
        return Session(config: validated, pageSize: pageSize, labels: labels)
    }

    /// The value of a field of the table, of the field's kind.
    private static func value(_ raw: ArraySlice<UInt8>, of field: ConfigField) throws -> ConfigValue {
        switch field.kind {
        case .policy:
            guard case .string(let name) = FlatJSON.scalar(raw), let policy = PolicyName(rawValue: name) else {
                throw ConfigJSONError("policy must be one of: \(PolicyName.accepted)")
            }
            return .policy(policy)
        case .integer:
            return .integer(try integer(raw, key: field.name))
        case .real:
            guard case .number(let text) = FlatJSON.scalar(raw) else {
                throw ConfigJSONError("\(field.name) must be a number, got \(FlatJSON.text(raw))")
            }
            guard let d = Double(text), d.isFinite else {
                throw ConfigJSONError("\(field.name) is out of range; allowed: \(field.allowed)")
            }
            return .real(d)
        }
    }

    /// An integer as the API takes it: a JSON integer (no fraction, no exponent), or a
    /// string of decimal or `0x` hexadecimal digits without escapes, within 64 bits.
    private static func integer(_ raw: ArraySlice<UInt8>, key: String) throws -> Int {
        let parsed: Int?
        switch FlatJSON.scalar(raw) {
        case .number(let text) where !text.contains(where: { ".eE".contains($0) }):
            guard let i = Int(text) else { throw ConfigJSONError("\(key) is out of range for a 64-bit integer") }
            parsed = i
        case .string(let s) where !raw.contains(UInt8(ascii: "\\")):
            let hex = s.utf8.count > 2 && (s.hasPrefix("0x") || s.hasPrefix("0X"))
            let digits = hex ? s.dropFirst(2) : s[...]
            let valid =
                !digits.isEmpty
                && digits.utf8.allSatisfy { c in
                    (c >= 0x30 && c <= 0x39) || (hex && ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66))
                }
            guard valid else { parsed = nil; break }
            guard let i = Int(digits, radix: hex ? 16 : 10) else {
                throw ConfigJSONError("\(key) is out of range for a 64-bit integer")
            }
            parsed = i
        default:
            parsed = nil
        }
        guard let parsed else {
            throw ConfigJSONError(
                "\(key) must be an integer or a string of decimal or 0x hexadecimal digits, got \(FlatJSON.text(raw))")
        }
        return parsed
    }

    /// `labels`: an object of string → string, bounded as ``SessionFields`` says.
    private static func labels(_ raw: ArraySlice<UInt8>) throws -> [String: String] {
        guard let members = try? FlatJSON.members(of: raw) else {
            throw ConfigJSONError("labels must be an object of string → string")
        }
        var labels: [String: String] = [:]
        for (key, value) in members {
            guard labels[key] == nil else { throw ConfigJSONError("duplicate label \"\(key)\"; give each key once") }
            guard labels.count < SessionFields.maxLabels else {
                throw ConfigJSONError("labels: at most \(SessionFields.maxLabels) entries")
            }
            guard (1...SessionFields.maxLabelKeyBytes).contains(key.utf8.count) else {
                throw ConfigJSONError("labels: a key must be 1 … \(SessionFields.maxLabelKeyBytes) bytes")
            }
            guard case .string(let s) = FlatJSON.scalar(value) else {
                throw ConfigJSONError("labels.\(key) must be a string")
            }
            guard s.utf8.count <= SessionFields.maxLabelValueBytes else {
                throw ConfigJSONError(
                    "labels.\(key): a value must be at most \(SessionFields.maxLabelValueBytes) bytes")
            }
            labels[key] = s
        }
        return labels
    }
}

/// A configuration that could not be read.
public struct ConfigJSONError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The members of a JSON object in the order written, duplicates kept (Foundation's
/// decoders keep one of them silently), each value as its raw bytes. The text is
/// checked by `JSONSerialization` first, so the walk below only finds boundaries.
enum FlatJSON {
    struct Malformed: Error {}

    enum Scalar {
        case string(String)
        /// A JSON number, as written.
        case number(String)
        case other
    }

    static func isWhitespace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 }

    /// The members of the object `bytes` (well-formed JSON, or `Malformed`): keys decoded.
    static func members(of bytes: ArraySlice<UInt8>) throws -> [(key: String, value: ArraySlice<UInt8>)] {
        guard (try? JSONSerialization.jsonObject(with: Data(bytes))) is [String: Any] else { throw Malformed() }
        var i = skipSpace(bytes, bytes.startIndex) + 1  // past "{"
        var out: [(key: String, value: ArraySlice<UInt8>)] = []
        while true {
            i = skipSpace(bytes, i)
            if bytes[i] == UInt8(ascii: "}") { return out }
            if bytes[i] == UInt8(ascii: ",") { i = skipSpace(bytes, i + 1) }
            let keyEnd = skipValue(bytes, i)
            guard case .string(let key) = scalar(bytes[i..<keyEnd]) else { throw Malformed() }
            let start = skipSpace(bytes, skipSpace(bytes, keyEnd) + 1)  // past ":"
            i = skipValue(bytes, start)
            out.append((key, bytes[start..<i]))
        }
    }

    /// A scalar value's kind and text (strings decoded).
    static func scalar(_ raw: ArraySlice<UInt8>) -> Scalar {
        guard let first = raw.first else { return .other }
        if first == UInt8(ascii: "\"") {
            let s = try? JSONSerialization.jsonObject(with: Data(raw), options: .fragmentsAllowed) as? String
            return s.map(Scalar.string) ?? .other
        }
        if first == UInt8(ascii: "-") || (first >= 0x30 && first <= 0x39) {
            return .number(String(decoding: raw, as: UTF8.self))
        }
        return .other
    }

    /// The value as written, for messages.
    static func text(_ raw: ArraySlice<UInt8>) -> String {
        let s = String(decoding: raw, as: UTF8.self)
        return s.count > 40 ? String(s.prefix(40)) + "…" : s
    }

    private static func skipSpace(_ b: ArraySlice<UInt8>, _ i: Int) -> Int {
        var i = i
        while i < b.endIndex, isWhitespace(b[i]) { i += 1 }
        return i
    }

    /// The index past the well-formed value that starts at `i`.
    private static func skipValue(_ b: ArraySlice<UInt8>, _ i: Int) -> Int {
        var i = i
        var depth = 0
        repeat {
            switch b[i] {
            case UInt8(ascii: "\""):
                i += 1
                while b[i] != UInt8(ascii: "\"") { i += b[i] == UInt8(ascii: "\\") ? 2 : 1 }
                i += 1
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                i += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                i += 1
            default:
                if depth == 0 {  // a number or a literal: up to the next delimiter
                    while i < b.endIndex, !isWhitespace(b[i]), !",}]".utf8.contains(b[i]) { i += 1 }
                    return i
                }
                i += 1
            }
        } while depth > 0
        return i
    }
}

import Foundation
import PrepageCore

/// Reads a session configuration from the JSON form the vectors and the API use
/// (`{"policy": "dp", "max_pages": 64, …}`): every key optional, unknown keys
/// and a policy's own keys given for another policy rejected. The keys are
/// those of ``PrepageConfig/fields``.
public enum ConfigJSON {
    /// Parses and validates a configuration.
    /// - Throws: ``ConfigJSONError`` naming the key and what is accepted, or the ``ConfigError`` of validation.
    /// - Parameters:
    ///   - defaultPolicy: the policy when the text names none (dp-plus, as a session's).
    ///   - anyPolicy: accept every policy's own keys (a base configuration for several policies).
    public static func parse(
        _ text: String, defaultPolicy: PolicyName = PrepageConfig().policy, anyPolicy: Bool = false
    ) throws -> PrepageConfig {
        let fields: [String: JSONScalar]
        do {
            fields = try JSONDecoder().decode([String: JSONScalar].self, from: Data(text.utf8))
        } catch {
            throw ConfigJSONError("config must be a JSON object such as {\"max_pages\": 64}")
        }
        var config = PrepageConfig(policy: defaultPolicy)
        var given: [ConfigField] = []
        for (key, scalar) in fields.sorted(by: { $0.key < $1.key }) {
            guard let field = PrepageConfig.field(named: key) else {
                throw ConfigJSONError("unknown config key \"\(key)\"; accepted: \(PrepageConfig.acceptedKeys)")
            }
            let value: ConfigValue
            switch (field.kind, scalar) {
            case (.policy, .string(let name)):
                guard let policy = PolicyName(rawValue: name) else {
                    throw ConfigJSONError("policy must be one of: \(PolicyName.accepted)")
                }
                value = .policy(policy)
            case (.policy, _):
                throw ConfigJSONError("policy must be one of: \(PolicyName.accepted)")
            case (.integer, .int(let i)): value = .integer(i)
            case (.integer, _): throw ConfigJSONError("\(key) must be an integer, got \(scalar)")
            case (.real, .int(let i)): value = .real(Double(i))
            case (.real, .double(let d)): value = .real(d)
            case (.real, _): throw ConfigJSONError("\(key) must be a number, got \(scalar)")
            }
            _ = field.set(value, in: &config)
            given.append(field)
        }
        for field in given where !anyPolicy && !field.applies(to: config.policy) {
            throw ConfigJSONError(
                "\(field.name) does not apply to policy \(config.policy.rawValue); it applies to: \(field.policies.map(\.rawValue).joined(separator: ", "))"
            )
        }
        return try config.validated()
    }
}

/// A configuration that could not be read.
public struct ConfigJSONError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A JSON value as far as a configuration cares: integers, numbers and strings; anything else is "other".
enum JSONScalar: Decodable, CustomStringConvertible {
    case int(Int), double(Double), string(String), other(String)

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let i = try? c.decode(Int.self) {
            self = .int(i)
        } else if let d = try? c.decode(Double.self) {
            self = .double(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let b = try? c.decode(Bool.self) {
            self = .other(String(b))
        } else if c.decodeNil() {
            self = .other("null")
        } else {
            self = .other("a non-scalar value")
        }
    }

    var description: String {
        switch self {
        case .int(let i): String(i)
        case .double(let d): "\(d)"
        case .string(let s): "\"\(s)\""
        case .other(let o): o
        }
    }
}

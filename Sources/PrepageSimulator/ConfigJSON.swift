import Foundation
import PrepageCore

/// Reads a session configuration from the JSON form the vectors and the API use
/// (`{"policy": "dp", "max_pages": 64, …}`): every key optional, unknown keys rejected.
public enum ConfigJSON {
    /// The keys accepted, in the order of `dp.md`'s table.
    public static let keys = [
        "policy", "min_pages", "max_pages", "k", "initial_pages", "gap", "memory_pages", "max_streams",
        "forward_pages", "backward_pages", "ra_initial", "ra_max",
    ]

    /// Parses and validates a configuration.
    /// - Throws: ``ConfigJSONError`` naming the key and what is accepted, or the ``ConfigError`` of validation.
    public static func parse(_ text: String) throws -> PrepageConfig {
        let fields: [String: JSONScalar]
        do {
            fields = try JSONDecoder().decode([String: JSONScalar].self, from: Data(text.utf8))
        } catch {
            throw ConfigJSONError("config must be a JSON object such as {\"max_pages\": 64}")
        }
        var config = PrepageConfig()
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            if key == "policy" {
                guard case .string(let name) = value, let policy = PolicyName(rawValue: name) else {
                    throw ConfigJSONError("policy must be one of: \(PolicyName.accepted)")
                }
                config.policy = policy
                continue
            }
            guard keys.contains(key) else {
                throw ConfigJSONError("unknown config key \"\(key)\"; accepted: \(keys.joined(separator: ", "))")
            }
            guard case .int(let int) = value else {
                throw ConfigJSONError("\(key) must be an integer, got \(value)")
            }
            switch key {
            case "min_pages": config.minPages = int
            case "max_pages": config.maxPages = int
            case "k": config.k = int
            case "initial_pages": config.initialPages = int
            case "gap": config.gap = int
            case "memory_pages": config.memoryPages = int
            case "max_streams": config.maxStreams = int
            case "forward_pages": config.forwardPages = int
            case "backward_pages": config.backwardPages = int
            case "ra_initial": config.raInitial = int
            default: config.raMax = int
            }
        }
        return try config.validated()
    }
}

/// A configuration that could not be read.
public struct ConfigJSONError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A JSON value as far as a configuration cares: integers and strings; anything else is "other".
enum JSONScalar: Decodable, CustomStringConvertible {
    case int(Int), string(String), other(String)

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let i = try? c.decode(Int.self) {
            self = .int(i)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let b = try? c.decode(Bool.self) {
            self = .other(String(b))
        } else if c.decodeNil() {
            self = .other("null")
        } else if let d = try? c.decode(Double.self) {
            self = .other(String(d))
        } else {
            self = .other("a non-scalar value")
        }
    }

    var description: String {
        switch self {
        case .int(let i): String(i)
        case .string(let s): "\"\(s)\""
        case .other(let o): o
        }
    }
}

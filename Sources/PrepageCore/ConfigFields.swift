/// The one description of a session configuration's fields: their names as the
/// API, the simulator and the vectors spell them, their kind, their allowed
/// values and the policies that read them. The server's decoder and its
/// session document, the simulator's `--config` and the test vectors' loader
/// all go through this table, so a field is added in one place.

/// A configuration value as read from or written to JSON.
public enum ConfigValue: Sendable, Hashable, CustomStringConvertible {
    case policy(PolicyName)
    case integer(Int)
    /// An IEEE-754 binary64; JSON numbers parse to the nearest double.
    case real(Double)

    public var description: String {
        switch self {
        case .policy(let p): p.rawValue
        case .integer(let i): String(i)
        case .real(let d): "\(d)"
        }
    }
}

/// One field of ``PrepageConfig``.
public struct ConfigField: Sendable {
    public enum Kind: Sendable, Hashable {
        /// A policy name (a JSON string).
        case policy
        /// A JSON integer (or a string of decimal or `0x` digits, where the API allows it).
        case integer
        /// A JSON number.
        case real
    }

    /// The JSON key (`max_pages`).
    public let name: String
    public let kind: Kind
    /// The policies that read the field; giving it for another policy is an error.
    public let policies: [PolicyName]
    /// The allowed values, as messages and docs say them. Ranges that depend on
    /// another field name it (`min_pages … 1048576`).
    public let allowed: String
    /// The static bounds checked by ``PrepageConfig/validated()``; `nil` when the
    /// range depends on other fields (checked there one by one).
    let range: ClosedRange<Double>?
    private let read: @Sendable (PrepageConfig) -> ConfigValue
    private let write: @Sendable (inout PrepageConfig, ConfigValue) -> Bool

    /// Whether a session of `policy` reads this field.
    public func applies(to policy: PolicyName) -> Bool { policies.contains(policy) }

    /// The field's value in `config` (`initial_pages` as the session uses it, clamped).
    public func value(in config: PrepageConfig) -> ConfigValue { read(config) }

    /// Sets the field. An integer is accepted for a real field.
    /// - Returns: `false` when the value has the wrong kind (nothing changes).
    public func set(_ value: ConfigValue, in config: inout PrepageConfig) -> Bool { write(&config, value) }

    private init(
        _ name: String, _ kind: Kind, _ policies: [PolicyName], _ allowed: String, _ range: ClosedRange<Double>?,
        read: @escaping @Sendable (PrepageConfig) -> ConfigValue,
        write: @escaping @Sendable (inout PrepageConfig, ConfigValue) -> Bool
    ) {
        self.name = name
        self.kind = kind
        self.policies = policies
        self.allowed = allowed
        self.range = range
        self.read = read
        self.write = write
    }

    static func integer(
        _ name: String, _ path: WritableKeyPath<PrepageConfig, Int> & Sendable, _ policies: [PolicyName],
        _ allowed: String, _ range: ClosedRange<Double>? = nil
    ) -> ConfigField {
        ConfigField(
            name, .integer, policies, allowed, range, read: { .integer($0[keyPath: path]) },
            write: { config, value in
                guard case .integer(let i) = value else { return false }
                config[keyPath: path] = i
                return true
            })
    }

    static func real(
        _ name: String, _ path: WritableKeyPath<PrepageConfig, Double> & Sendable, _ policies: [PolicyName],
        _ range: ClosedRange<Double>
    ) -> ConfigField {
        ConfigField(
            name, .real, policies, "\(number(range.lowerBound)) … \(number(range.upperBound))", range,
            read: { .real($0[keyPath: path]) },
            write: { config, value in
                switch value {
                case .real(let d): config[keyPath: path] = d
                case .integer(let i): config[keyPath: path] = Double(i)
                case .policy: return false
                }
                return true
            })
    }

    static let policyField = ConfigField(
        "policy", .policy, PolicyName.allCases, PolicyName.accepted, nil, read: { .policy($0.policy) },
        write: { config, value in
            guard case .policy(let p) = value else { return false }
            config.policy = p
            return true
        })

    static let initialPages = ConfigField(
        "initial_pages", .integer, PolicyName.allCases, "any integer; clamped into min_pages … max_pages", nil,
        read: { .integer($0.effectiveInitialPages) },
        write: { config, value in
            guard case .integer(let i) = value else { return false }
            config.initialPages = i
            return true
        })

    private static func number(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : "\(x)"
    }
}

extension PrepageConfig {
    /// Every field, in the order of the docs' tables.
    public static let fields: [ConfigField] = {
        let all = PolicyName.allCases
        let dpFamily = all.filter { $0 != .dpPlus }
        let plus: [PolicyName] = [.dpPlus]
        return [
            .policyField,
            .integer("min_pages", \.minPages, dpFamily, ">= 1"),
            .integer("max_pages", \.maxPages, all, "min_pages … 1048576"),
            .integer("k", \.k, dpFamily, "1 … 64", 1...64),
            .initialPages,
            .integer("gap", \.gap, all, "0 … max_pages"),
            .integer("memory_pages", \.memoryPages, all, ">= 0 (0 = unbounded)"),
            .integer("max_streams", \.maxStreams, dpFamily, "1 … 1024", 1...1_024),
            .integer("forward_pages", \.forwardPages, [.forward], "0 … 1048575"),
            .integer("backward_pages", \.backwardPages, [.forward], "0 … 1048575 − forward_pages"),
            .integer("ra_initial", \.raInitial, [.readahead], "1 … ra_max"),
            .integer("ra_max", \.raMax, [.readahead], "1 … 1048576"),
            .integer("max_slots", \.maxSlots, plus, "1 … 1024", 1...1_024),
            .integer("transitions", \.transitions, plus, "1 … 256", 1...256),
            .integer("half_life", \.halfLife, plus, "1 … 1000000", 1...1_000_000),
            .real("probe_staleness", \.probeStaleness, plus, 0...1e9),
            .real("fault_fee", \.faultFee, plus, 0...1_000),
            .integer("near_window", \.nearWindow, plus, "0 … 1048576", 0...1_048_576),
            .real("min_evidence", \.minEvidence, plus, 0...1e6),
            .real("rtt_us", \.rttMicroseconds, plus, 0.001...1e7),
            .real("page_us", \.pageMicroseconds, plus, 0.001...1e7),
        ]
    }()

    /// The field named `name`, or `nil`.
    public static func field(named name: String) -> ConfigField? {
        fields.first { $0.name == name }
    }

    /// The accepted keys, with the policy of each policy's own fields, for messages.
    public static var acceptedKeys: String {
        var general: [String] = []
        var own: [(PolicyName, [String])] = []
        for field in fields {
            if field.policies.count == 1, let p = field.policies.first {
                if let k = own.firstIndex(where: { $0.0 == p }) {
                    own[k].1.append(field.name)
                } else {
                    own.append((p, [field.name]))
                }
            } else {
                general.append(field.name)
            }
        }
        return (general + own.map { "\($0.1.joined(separator: ", ")) (policy \($0.0.rawValue))" })
            .joined(separator: ", ")
    }
}

/// The two fields a session's configuration has beside its ``PrepageConfig``, as
/// the API names and bounds them: `page_size` and `labels`. The server's decoder
/// and the simulator's `--config` check them against these values.
public enum SessionFields {
    /// The JSON key of the page size.
    public static let pageSize = "page_size"
    /// Bytes per page when a config gives none.
    public static let defaultPageSize = 4_096
    /// The page sizes accepted: powers of two in this range.
    public static let pageSizeRange = 512...(1 << 30)
    /// The allowed page sizes, as messages say them.
    public static let pageSizeAllowed = "a power of two from 512 to 1073741824"

    /// Whether `size` is an accepted page size.
    public static func isPageSize(_ size: Int) -> Bool {
        pageSizeRange.contains(size) && size.nonzeroBitCount == 1
    }

    /// The JSON key of the labels: an object of string → string, for the orchestrator's own use.
    public static let labels = "labels"
    /// Most labels in one config.
    public static let maxLabels = 16
    /// Longest label key, in UTF-8 bytes (at least 1).
    public static let maxLabelKeyBytes = 128
    /// Longest label value, in UTF-8 bytes.
    public static let maxLabelValueBytes = 1_024

    /// Every key a session's configuration accepts, for messages.
    public static var acceptedKeys: String { "\(PrepageConfig.acceptedKeys), \(pageSize), \(labels)" }
}

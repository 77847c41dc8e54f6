import PrepageCore

/// A session's configuration as the API knows it: the DP configuration plus page size and labels.
public struct SessionConfig: Sendable, Hashable {
    /// Validated (initial pages clamped).
    public var prepage: PrepageConfig
    /// Bytes per page, a power of two from 512 to 1 GiB. Default 4,096.
    public var pageSize: Int
    /// At most 16 entries, for the orchestrator's own use.
    public var labels: [String: String]

    public init(
        prepage: PrepageConfig = PrepageConfig(), pageSize: Int = SessionFields.defaultPageSize,
        labels: [String: String] = [:]
    ) {
        self.prepage = prepage
        self.pageSize = pageSize
        self.labels = labels
    }

    /// log2 of the page size.
    var pageShift: Int { pageSize.trailingZeroBitCount }
}

extension Inputs {
    /// What a `PUT /sessions/{id}` body asks for.
    enum SessionBody {
        /// A session of this configuration.
        case config(SessionConfig)
        /// The session this state document describes (`{"state": …}`).
        case state(SessionImage)
    }

    /// The body of `PUT /sessions/{id}`: a configuration, or `{"state": <state document>}`.
    static func sessionBody(json body: UnsafeRawBufferPointer) throws(APIProblem) -> SessionBody {
        if !isBlank(body) {
            var s = JSONScanner(body)
            if s.peekKind() == .object {
                try s.beginObject()
                if let key = try s.nextKey(), key.is("state") {
                    let image = try StateDocument.read(&s, body: body)
                    guard try s.nextKey() == nil else {
                        throw APIProblem(
                            .invalidField,
                            "state must be the only field of the body; give a configuration or a state, not both")
                    }
                    try s.end()
                    return .state(image)
                }
            }
        }
        return .config(try config(json: body))
    }

    /// The body of `PUT /sessions/{id}`: every field optional, unknown fields rejected.
    /// An empty body is the default configuration.
    static func config(json body: UnsafeRawBufferPointer) throws(APIProblem) -> SessionConfig {
        var config = PrepageConfig()
        var pageSize = SessionFields.defaultPageSize
        var labels: [String: String] = [:]
        if isBlank(body) {
            return try finish(config, pageSize, labels)
        }
        var s = JSONScanner(body)
        var seen = Set<String>()
        var given: [ConfigField] = []
        do {
            try s.beginObject()
            while let key = try s.nextKey() {
                let name = key.decoded
                guard seen.insert(name).inserted else { throw duplicate(name) }
                switch name {
                case SessionFields.pageSize: pageSize = try signed(&s, field: name)
                case SessionFields.labels: labels = try self.labels(&s)
                default:
                    guard let field = PrepageConfig.field(named: name) else {
                        throw unknown(name, accepted: SessionFields.acceptedKeys)
                    }
                    _ = field.set(try value(&s, of: field), in: &config)
                    given.append(field)
                }
            }
            try s.end()
        }
        // A policy's own fields mean nothing to another policy: say so rather than ignore them.
        for field in given where !field.applies(to: config.policy) {
            throw APIProblem(
                .invalidField,
                "\(field.name) applies to policy \(field.policies.map(\.rawValue).joined(separator: ", ")) only; this session's policy is \(config.policy.rawValue)"
            )
        }
        return try finish(config, pageSize, labels)
    }

    /// Reads the value of a configuration field, of the field's kind.
    private static func value(_ s: inout JSONScanner, of field: ConfigField) throws(APIProblem) -> ConfigValue {
        switch field.kind {
        case .policy:
            guard case .success(let p) = try s.string() else {
                throw APIProblem(.invalidField, "policy must be a string; accepted: \(PolicyName.accepted)")
            }
            guard let policy = PolicyName(rawValue: p) else {
                throw APIProblem(.invalidField, "policy = \(quoted(p)) is unknown; accepted: \(PolicyName.accepted)")
            }
            return .policy(policy)
        case .integer:
            return .integer(try signed(&s, field: field.name))
        case .real:
            switch try s.real() {
            case .success(let v): return .real(v)
            case .failure(.tooLarge):
                throw APIProblem(.invalidField, "\(field.name) is out of range; allowed: \(field.allowed)")
            case .failure:
                throw APIProblem(.invalidField, "\(field.name) must be a JSON number; allowed: \(field.allowed)")
            }
        }
    }

    private static func finish(_ config: PrepageConfig, _ pageSize: Int, _ labels: [String: String]) throws(APIProblem)
        -> SessionConfig
    {
        let validated: PrepageConfig
        do {
            validated = try config.validated()
        } catch {
            throw APIProblem(.invalidField, error.description)
        }
        guard SessionFields.isPageSize(pageSize) else {
            throw APIProblem(
                .invalidField, "page_size = \(pageSize) is out of range; allowed: \(SessionFields.pageSizeAllowed)")
        }
        return SessionConfig(prepage: validated, pageSize: pageSize, labels: labels)
    }

    private static func labels(_ s: inout JSONScanner) throws(APIProblem) -> [String: String] {
        guard s.peekKind() == .object else {
            throw APIProblem(.invalidField, "labels must be an object of string → string")
        }
        var labels: [String: String] = [:]
        try s.beginObject()
        while let key = try s.nextKey() {
            let name = key.decoded
            guard labels[name] == nil else { throw duplicate("labels.\(name)") }
            guard labels.count < SessionFields.maxLabels else {
                throw APIProblem(.invalidField, "labels: at most \(SessionFields.maxLabels) entries")
            }
            guard (1...SessionFields.maxLabelKeyBytes).contains(name.utf8.count) else {
                throw APIProblem(.invalidField, "labels: a key must be 1 … \(SessionFields.maxLabelKeyBytes) bytes")
            }
            guard case .success(let value) = try s.string() else {
                throw APIProblem(.invalidField, "labels.\(name) must be a string")
            }
            guard value.utf8.count <= SessionFields.maxLabelValueBytes else {
                throw APIProblem(
                    .invalidField, "labels.\(name): a value must be at most \(SessionFields.maxLabelValueBytes) bytes")
            }
            labels[name] = value
        }
        return labels
    }
}

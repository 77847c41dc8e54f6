import PrepageCore
import PrepageHTTP

/// Where a fault is: a page number, or a byte address to divide by the page size.
enum FaultLocation: Hashable {
    case page(UInt64)
    case addr(UInt64)

    /// The page, checked against the session's page size so that `page × page_size`
    /// (the `addr` of the answer) fits 64 bits.
    func page(shift: Int) throws(APIProblem) -> Int {
        switch self {
        case .addr(let a):
            return Int(a >> UInt64(shift))
        case .page(let p):
            let limit = UInt64.max >> UInt64(shift)
            guard p <= limit else {
                throw APIProblem(
                    .invalidField,
                    "page = \(p) is out of range; accepted: 0 … \(limit) (page × page_size must fit 64 bits)")
            }
            return Int(p)
        }
    }
}

/// One fault as posted to `/sessions/{id}/fault`.
struct FaultInput: Hashable {
    var location: FaultLocation
    var stream: UInt32
}

/// Many faults as posted to `/sessions/{id}/faults`.
struct BatchInput {
    /// `true` for `addrs`, `false` for `pages`.
    var addresses: Bool
    var values: [UInt64]
    /// Empty when not given (every fault from stream 0).
    var streams: [UInt32]

    /// Most faults in one batch: 65,536.
    static let maxFaults = 65_536
}

/// A session's configuration as the API knows it: the DP configuration plus page size and labels.
public struct SessionConfig: Sendable, Hashable {
    /// Validated (initial pages clamped).
    public var prepage: PrepageConfig
    /// Bytes per page, a power of two from 512 to 1 GiB. Default 4,096.
    public var pageSize: Int
    /// At most 16 entries, for the orchestrator's own use.
    public var labels: [String: String]

    public init(prepage: PrepageConfig = PrepageConfig(), pageSize: Int = 4_096, labels: [String: String] = [:]) {
        self.prepage = prepage
        self.pageSize = pageSize
        self.labels = labels
    }

    static let pageSizeRange = 512...(1 << 30)
    static let maxLabels = 16
    static let maxLabelKeyBytes = 128
    static let maxLabelValueBytes = 1_024

    /// log2 of the page size.
    var pageShift: Int { pageSize.trailingZeroBitCount }
}

/// Reads request bodies and query strings into the inputs above.
///
/// Decisions documented here (and in openapi.yaml):
/// - A duplicate key in a JSON object or a form is a 400: its meaning would be ambiguous.
/// - `null` is a wrong type for every field (leave a field out to get its default).
/// - Unknown fields are a 400 everywhere, not only in the configuration.
enum Inputs {
    // MARK: JSON

    /// `{"page": P}` or `{"addr": A}`, optional `"stream": S`.
    static func fault(json body: UnsafeRawBufferPointer) throws(APIProblem) -> FaultInput {
        var s = JSONScanner(body)
        var location: FaultLocation?
        var stream: UInt32?
        do {
            try s.beginObject()
            while let key = try s.nextKey() {
                if key.is("page") || key.is("addr") {
                    let isPage = key.is("page")
                    guard location == nil else {
                        throw APIProblem(.invalidField, "give one of page or addr, once")
                    }
                    let v = try unsigned(&s, field: isPage ? "page" : "addr", max: UInt64.max)
                    location = isPage ? .page(v) : .addr(v)
                } else if key.is("stream") {
                    guard stream == nil else { throw duplicate("stream") }
                    stream = UInt32(try unsigned(&s, field: "stream", max: UInt64(UInt32.max)))
                } else {
                    throw unknown(key.decoded, accepted: "page, addr, stream")
                }
            }
            try s.end()
        }
        guard let location else { throw APIProblem(.invalidField, "missing field: give page or addr") }
        return FaultInput(location: location, stream: stream ?? 0)
    }

    /// `{"pages": [...]}` or `{"addrs": [...]}`, optional `"streams": [...]` of the same length.
    static func batch(json body: UnsafeRawBufferPointer, reusing values: [UInt64] = []) throws(APIProblem) -> BatchInput
    {
        var s = JSONScanner(body)
        var addresses: Bool?
        var values = values
        values.removeAll(keepingCapacity: true)
        var streams: [UInt32]?
        do {
            try s.beginObject()
            while let key = try s.nextKey() {
                if key.is("pages") || key.is("addrs") {
                    let field = key.is("pages") ? "pages" : "addrs"
                    guard addresses == nil else { throw APIProblem(.invalidField, "give one of pages or addrs, once") }
                    addresses = field == "addrs"
                    guard s.peekKind() == .array else {
                        throw APIProblem(.invalidField, "\(field) must be an array of integers")
                    }
                    try s.beginArray()
                    while try s.nextElement() {
                        guard values.count < BatchInput.maxFaults else {
                            throw APIProblem(
                                .invalidField, "\(field): at most \(BatchInput.maxFaults) faults per request")
                        }
                        values.append(try unsigned(&s, field: "\(field)[\(values.count)]", max: UInt64.max))
                    }
                } else if key.is("streams") {
                    guard streams == nil else { throw duplicate("streams") }
                    guard s.peekKind() == .array else {
                        throw APIProblem(.invalidField, "streams must be an array of integers")
                    }
                    var list: [UInt32] = []
                    try s.beginArray()
                    while try s.nextElement() {
                        guard list.count < BatchInput.maxFaults else {
                            throw APIProblem(.invalidField, "streams: at most \(BatchInput.maxFaults) entries")
                        }
                        list.append(UInt32(try unsigned(&s, field: "streams[\(list.count)]", max: UInt64(UInt32.max))))
                    }
                    streams = list
                } else {
                    throw unknown(key.decoded, accepted: "pages, addrs, streams")
                }
            }
            try s.end()
        }
        guard let addresses else { throw APIProblem(.invalidField, "missing field: give pages or addrs") }
        if let streams, streams.count != values.count {
            throw APIProblem(
                .invalidField,
                "streams has \(streams.count) entries but \(addresses ? "addrs" : "pages") has \(values.count); they must be the same length"
            )
        }
        return BatchInput(addresses: addresses, values: values, streams: streams ?? [])
    }

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
                        throw APIProblem(.invalidField, "state must be the only field of the body; give a configuration or a state, not both")
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
        var pageSize = 4_096
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
                case "page_size": pageSize = try signed(&s, field: name)
                case "labels": labels = try self.labels(&s)
                default:
                    guard let field = PrepageConfig.field(named: name) else {
                        throw unknown(name, accepted: "\(PrepageConfig.acceptedKeys), page_size, labels")
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
        guard SessionConfig.pageSizeRange.contains(pageSize), pageSize.nonzeroBitCount == 1 else {
            throw APIProblem(
                .invalidField, "page_size = \(pageSize) is out of range; allowed: a power of two from 512 to 1073741824"
            )
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
            guard labels.count < SessionConfig.maxLabels else {
                throw APIProblem(.invalidField, "labels: at most \(SessionConfig.maxLabels) entries")
            }
            guard (1...SessionConfig.maxLabelKeyBytes).contains(name.utf8.count) else {
                throw APIProblem(.invalidField, "labels: a key must be 1 … \(SessionConfig.maxLabelKeyBytes) bytes")
            }
            guard case .success(let value) = try s.string() else {
                throw APIProblem(.invalidField, "labels.\(name) must be a string")
            }
            guard value.utf8.count <= SessionConfig.maxLabelValueBytes else {
                throw APIProblem(
                    .invalidField, "labels.\(name): a value must be at most \(SessionConfig.maxLabelValueBytes) bytes")
            }
            labels[name] = value
        }
        return labels
    }

    // MARK: Form and query

    /// `page=P` or `addr=A`, optional `stream=S`, as `application/x-www-form-urlencoded`
    /// or a query string. Numbers in decimal or `0x` hexadecimal. A malformed `%`
    /// escape or text that is not UTF-8 is an invalid field.
    static func fault(form: UnsafeRawBufferPointer) throws(APIProblem) -> FaultInput {
        let fields: FormFields
        do {
            fields = try FormFields(parsing: form)
        } catch {
            throw APIProblem(.invalidField, error.detail)
        }
        var location: FaultLocation?
        var stream: UInt32?
        for (name, value) in fields.fields {
            switch name {
            case "page", "addr":
                guard location == nil else { throw APIProblem(.invalidField, "give one of page or addr, once") }
                let v = try formInteger(value, field: name, max: UInt64.max)
                location = name == "page" ? .page(v) : .addr(v)
            case "stream":
                guard stream == nil else { throw duplicate("stream") }
                stream = UInt32(try formInteger(value, field: name, max: UInt64(UInt32.max)))
            default:
                throw unknown(name, accepted: "page, addr, stream")
            }
        }
        guard let location else { throw APIProblem(.invalidField, "missing field: give page or addr") }
        return FaultInput(location: location, stream: stream ?? 0)
    }

    /// Query parameters of `GET /sessions`: `limit` (1 … 1000, default 100) and `after`.
    /// A malformed `%` escape or text that is not UTF-8 is an invalid query.
    static func listQuery(_ query: String?) throws(APIProblem) -> (limit: Int, after: String?) {
        var limit = 100
        var after: String?
        guard let query else { return (limit, nil) }
        let fields: FormFields
        do {
            fields = try FormFields(query: query)
        } catch {
            throw APIProblem(.invalidQuery, error.detail)
        }
        for (name, value) in fields.fields {
            switch name {
            case "limit":
                guard let v = Int(value), (1...1_000).contains(v) else {
                    throw APIProblem(.invalidQuery, "limit = \(quoted(value)) is out of range; accepted: 1 … 1000")
                }
                limit = v
            case "after":
                after = value
            default:
                throw APIProblem(.invalidQuery, "unknown query parameter \(quoted(name)); accepted: limit, after")
            }
        }
        return (limit, after)
    }

    /// Whether a body holds nothing but JSON whitespace.
    static func isBlank(_ body: [UInt8]) -> Bool {
        body.withUnsafeBytes { isBlank($0) }
    }

    /// A plain loop: no closure, which an unoptimized build would allocate a
    /// context for on every request.
    static func isBlank(_ body: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i < body.count {
            let c = body[i]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return false }
            i += 1
        }
        return true
    }

    /// Whether a query string carries any parameter.
    static func isEmpty(query: String?) -> Bool {
        query == nil || query!.isEmpty
    }

    // MARK: Helpers

    private static func unsigned(_ s: inout JSONScanner, field: String, max: UInt64) throws(APIProblem) -> UInt64 {
        switch try s.integer() {
        case .success(let v):
            guard !v.negative, v.magnitude <= max else {
                throw APIProblem(
                    .invalidField,
                    "\(field) = \(v.negative ? "-" : "")\(v.magnitude) is out of range; accepted: 0 … \(max)")
            }
            return v.magnitude
        case .failure(let problem):
            throw valueProblem(problem, field: field, accepted: "0 … \(max)")
        }
    }

    private static func signed(_ s: inout JSONScanner, field: String) throws(APIProblem) -> Int {
        switch try s.integer() {
        case .success(let v):
            guard let value = v.value(in: Int.min...Int.max) else {
                throw APIProblem(.invalidField, "\(field) is out of range for a 64-bit integer")
            }
            return value
        case .failure(let problem):
            throw valueProblem(problem, field: field, accepted: "an integer")
        }
    }

    private static func formInteger(_ value: String, field: String, max: UInt64) throws(APIProblem) -> UInt64 {
        var value = value
        let parsed = value.withUTF8 { JSONScanner.parseIntegerString(UnsafeRawBufferPointer($0)) }
        switch parsed {
        case .success(let v):
            guard v.magnitude <= max else {
                throw APIProblem(.invalidField, "\(field) = \(v.magnitude) is out of range; accepted: 0 … \(max)")
            }
            return v.magnitude
        case .failure(let problem):
            throw valueProblem(problem, field: field, accepted: "0 … \(max)")
        }
    }

    private static func valueProblem(_ problem: JSONValueProblem, field: String, accepted: String) -> APIProblem {
        switch problem {
        case .wrongType:
            APIProblem(
                .invalidField,
                "\(field) must be an integer or a string of decimal or 0x hexadecimal digits; accepted: \(accepted)")
        case .notAnInteger:
            APIProblem(
                .invalidField,
                "\(field) is not an integer; give decimal digits or 0x hexadecimal; accepted: \(accepted)")
        case .tooLarge:
            APIProblem(.invalidField, "\(field) does not fit 64 bits; accepted: \(accepted)")
        }
    }

    private static func duplicate(_ field: String) -> APIProblem {
        APIProblem(.invalidField, "duplicate field \(quoted(field)); give each field once")
    }

    private static func unknown(_ field: String, accepted: String) -> APIProblem {
        APIProblem(.invalidField, "unknown field \(quoted(field)); accepted: \(accepted)")
    }

    static func quoted(_ s: String) -> String {
        var w = JSONWriter()
        w.string(s.utf8.count > 200 ? String(s.prefix(200)) + "…" : s)
        return String(decoding: w.bytes, as: UTF8.self)
    }
}

import PrepageHTTP

/// Form bodies and query strings, decoded by PrepageHTTP's ``FormFields``.
extension Inputs {
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
}

/// Reads request bodies and query strings into ``FaultInput``, ``BatchInput`` and
/// ``SessionConfig``: faults (FaultInputs.swift), configurations (ConfigInputs.swift),
/// forms and queries (FormInputs.swift); the readers they share are here.
///
/// Decisions documented here (and in openapi.yaml):
/// - A duplicate key in a JSON object or a form is a 400: its meaning would be ambiguous.
/// - `null` is a wrong type for every field (leave a field out to get its default).
/// - Unknown fields are a 400 everywhere, not only in the configuration.
enum Inputs {
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

    // MARK: Field values, shared by the readers

    static func unsigned(_ s: inout JSONScanner, field: String, max: UInt64) throws(APIProblem) -> UInt64 {
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

    static func signed(_ s: inout JSONScanner, field: String) throws(APIProblem) -> Int {
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

    static func valueProblem(_ problem: JSONValueProblem, field: String, accepted: String) -> APIProblem {
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

    static func duplicate(_ field: String) -> APIProblem {
        APIProblem(.invalidField, "duplicate field \(quoted(field)); give each field once")
    }

    static func unknown(_ field: String, accepted: String) -> APIProblem {
        APIProblem(.invalidField, "unknown field \(quoted(field)); accepted: \(accepted)")
    }
}

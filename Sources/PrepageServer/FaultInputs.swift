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

extension Inputs {
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
}

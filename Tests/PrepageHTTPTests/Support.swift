@testable import PrepageHTTP

/// A parse result reduced to what tests compare.
enum Parsed: Equatable, CustomStringConvertible {
    case needMore
    case sendContinue
    case request(Summary, consumed: Int)
    case failure(HTTPError.Kind)

    var description: String {
        switch self {
        case .needMore: "needMore"
        case .sendContinue: "sendContinue"
        case .request(let s, let c): "request(\(s), consumed: \(c))"
        case .failure(let kind): "failure(\(kind))"
        }
    }
}

/// The parts of a request the tests look at.
struct Summary: Equatable, CustomStringConvertible {
    var method: HTTPMethod
    var path: String
    var query: String?
    var isHTTP10: Bool
    var keepAlive: Bool
    var body: [UInt8]

    init(_ r: HTTPRequest) {
        method = r.method
        path = r.path
        query = r.query
        isHTTP10 = r.isHTTP10
        keepAlive = r.keepAlive
        body = r.body
    }

    var description: String {
        "\(method.name) \(path)\(query.map { "?" + $0 } ?? "") 1.\(isHTTP10 ? 0 : 1) keepAlive=\(keepAlive) body=\(String(decoding: body, as: UTF8.self).debugDescription)"
    }
}

extension Parsed {
    init(_ r: HTTPParseResult) {
        switch r {
        case .needMore: self = .needMore
        case .sendContinue: self = .sendContinue
        case .request(let req, let consumed): self = .request(Summary(req), consumed: consumed)
        case .failure(let e): self = .failure(e.kind)
        }
    }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Parses one request from the whole of `s`.
func parseOne(_ s: String, limits: HTTPLimits = .default) -> HTTPParseResult {
    var parser = HTTPParser(limits: limits)
    return parser.parse(bytes(s))
}

/// The request parsed from the whole of `s`, or `nil` (recording nothing).
func request(_ s: String, limits: HTTPLimits = .default) -> HTTPRequest? {
    if case .request(let r, _) = parseOne(s, limits: limits) { return r }
    return nil
}

/// The error from parsing the whole of `s`, or `nil`.
func failure(_ s: String, limits: HTTPLimits = .default) -> HTTPError? {
    if case .failure(let e) = parseOne(s, limits: limits) { return e }
    return nil
}

/// Feeds `input` to one parser the way a server does: bytes arrive in pieces
/// of the given sizes (cycled); after each arrival every complete request is
/// consumed. Returns every result other than `needMore`, then a final
/// `needMore` if bytes are left over without a verdict.
///
/// After `needMore` and `sendContinue` it drops what the parser no longer needs
/// (``HTTPParser/discardConsumed()``), as the server does, unless `discard` is `false`.
func drive(_ input: [UInt8], pieces: [Int], limits: HTTPLimits = .default, discard: Bool = true) -> [Parsed] {
    var parser = HTTPParser(limits: limits)
    var buffer: [UInt8] = []
    var results: [Parsed] = []
    var sent = 0
    var piece = 0
    /// Bytes of the request in progress already dropped.
    var dropped = 0
    func drop(_ n: Int) -> Int {
        buffer.removeFirst(n)
        return n
    }
    while sent < input.count {
        let n = min(max(1, pieces[piece % pieces.count]), input.count - sent)
        piece += 1
        buffer += input[sent..<(sent + n)]
        sent += n
        loop: while true {
            let r = parser.parse(buffer)
            switch r {
            case .needMore:
                if discard { dropped += drop(parser.discardConsumed()) }
                break loop
            case .sendContinue:
                results.append(.sendContinue)
                if discard { dropped += drop(parser.discardConsumed()) }
                break loop
            case .request(let request, let consumed):
                precondition(consumed > 0 && consumed <= buffer.count)
                // Reported as if nothing had been dropped: the request's whole length.
                results.append(.request(Summary(request), consumed: consumed + dropped))
                dropped = 0
                buffer.removeFirst(consumed)
                if buffer.isEmpty { break loop }
            case .failure:
                results.append(Parsed(r))
                return results
            }
        }
    }
    if !buffer.isEmpty || parser.hasPartialRequest { results.append(.needMore) }
    return results
}

/// ``drive(_:pieces:limits:)`` with the whole input at once.
func driveWhole(_ input: String, limits: HTTPLimits = .default) -> [Parsed] {
    drive(bytes(input), pieces: [Int.max], limits: limits)
}

@testable import PrepageHTTP

/// One input: bytes a client sends. Parsed whole and in pieces (with the
/// server's discarding of consumed bytes), under default and tiny limits; the
/// parser must not trap, and the two ways must agree.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let tiny = HTTPLimits(
        maxRequestLineBytes: 64, maxHeaderBytes: 128, maxHeaderCount: 4, maxBodyBytes: 64, maxChunkLineBytes: 16,
        maxChunkOverheadBytes: 64)
    for limits in [HTTPLimits.default, tiny] {
        let whole = run(input, piece: Int.max, limits: limits)
        let split = run(input, piece: 1 + (size % 7), limits: limits)
        if whole != split {
            fatalError("whole \(whole) != split \(split)")
        }
    }
    return 0
}

/// Requests (method, path, body) and the final verdict, for comparing runs.
private func run(_ input: [UInt8], piece: Int, limits: HTTPLimits) -> [String] {
    var parser = HTTPParser(limits: limits, admit: { !$0.path.hasPrefix("/deny") })
    var buffer: [UInt8] = []
    var out: [String] = []
    var sent = 0
    outer: while sent < input.count {
        let n = min(piece, input.count - sent)
        buffer += input[sent..<(sent + n)]
        sent += n
        while true {
            switch parser.parse(buffer) {
            case .needMore, .sendContinue:
                buffer.removeFirst(parser.discardConsumed())
                continue outer
            case .request(let r, let consumed):
                precondition(consumed > 0 && consumed <= buffer.count, "consumed \(consumed) of \(buffer.count)")
                buffer.removeFirst(consumed)
                guard r.admitted else {
                    // Refused at its head: whether the connection may stay open depends on
                    // how much of the body had arrived, so the runs are compared up to here.
                    precondition(r.body.isEmpty, "a refused request carries a body")
                    out.append("refused \(r.method.name) \(r.path)")
                    return out
                }
                out.append("\(r.method.name) \(r.path) \(r.keepAlive) \(r.body)")
            case .failure(let e):
                precondition((400...599).contains(e.status))
                out.append("failure \(e.status)")
                return out
            }
        }
    }
    return out
}

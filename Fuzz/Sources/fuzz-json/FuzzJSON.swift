@testable import PrepageServer

/// One input: a request body. Every reader built on the JSON scanner (a fault,
/// a batch, a session configuration) and the scanner's own walk must answer a
/// value or a problem, never trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let body = UnsafeRawBufferPointer(start: data, count: size)
    _ = try? Inputs.fault(json: body)
    _ = try? Inputs.batch(json: body)
    _ = try? Inputs.config(json: body)
    _ = try? Inputs.fault(form: body)
    return 0
}

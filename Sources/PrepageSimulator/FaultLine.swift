import PrepageCore

/// One line of `prepage-sim decide`'s input: `PAGE` or `PAGE STREAM`, both decimal.
public enum FaultLine {
    /// Parses a line (without its newline; a trailing carriage return is ignored).
    /// - Returns: the page and the stream (0 when absent).
    /// - Throws: ``FaultLineError`` saying what was wrong and what is accepted.
    public static func parse<Bytes: BidirectionalCollection<UInt8>>(_ line: Bytes) throws(FaultLineError) -> (
        page: Int, stream: UInt32
    ) {
        var bytes = line[...]
        if bytes.last == UInt8(ascii: "\r") { bytes = bytes.dropLast() }
        guard !bytes.isEmpty else { throw FaultLineError("empty line; expected PAGE or PAGE STREAM (decimal)") }
        let space = bytes.firstIndex(of: UInt8(ascii: " "))
        let pageBytes = space.map { bytes[..<$0] } ?? bytes
        guard let page = decimal(pageBytes, max: UInt64(Int.max)) else {
            throw FaultLineError("page \"\(text(pageBytes))\" is not a decimal integer in 0 … \(Int.max)")
        }
        guard let space else { return (Int(page), 0) }
        let streamBytes = bytes[bytes.index(after: space)...]
        guard let stream = decimal(streamBytes, max: UInt64(UInt32.max)) else {
            throw FaultLineError("stream \"\(text(streamBytes))\" is not a decimal integer in 0 … \(UInt32.max)")
        }
        return (Int(page), UInt32(stream))
    }

    /// A non-empty run of ASCII digits whose value is at most `max`.
    static func decimal<Bytes: Collection<UInt8>>(_ bytes: Bytes, max: UInt64) -> UInt64? {
        guard !bytes.isEmpty, bytes.count <= 20 else { return nil }
        var value: UInt64 = 0
        for b in bytes {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(b - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            value = sum
        }
        return value <= max ? value : nil
    }

    static func text<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        String(decoding: bytes.prefix(40), as: UTF8.self)
    }
}

/// A line of fault input that could not be read.
public struct FaultLineError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension Decision {
    /// The compact JSON line of `prepage-sim decide`, keys in the vectors' order.
    public var jsonLine: String {
        "{\"start\":\(start),\"count\":\(count),\"outcome\":\"\(outcome.name)\",\"ntest\":\(ntest),\"nmin\":\(nmin),\"nmax\":\(nmax)}"
    }
}

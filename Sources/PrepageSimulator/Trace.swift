/// A recorded trace: the pages a program touched, in order, one per line.
///
/// Each line is a page number — or a byte address when read with a page size —
/// in decimal or `0x` hexadecimal, optionally followed by whitespace and a
/// stream id (decimal). `#` starts a comment; blank lines are skipped.
public enum TraceLine {
    /// Parses one line; `nil` for a blank or comment line.
    /// - Parameter pageSize: when set, the value is a byte address divided by it.
    public static func parse(_ line: Substring, pageSize: Int?) throws(FaultLineError) -> (page: Int, stream: UInt32)? {
        var text = line
        if let hash = text.firstIndex(of: "#") { text = text[..<hash] }
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
        guard let first = fields.first else { return nil }
        guard fields.count <= 2 else {
            throw FaultLineError("expected a page or address and an optional stream, got \(fields.count) fields")
        }
        let what = pageSize == nil ? "page" : "address"
        guard let value = number(first) else {
            throw FaultLineError("\(what) \"\(first.prefix(40))\" is not a decimal or 0x-hexadecimal integer")
        }
        let page = pageSize.map { value / UInt64($0) } ?? value
        guard page <= UInt64(Int.max) else {
            throw FaultLineError("page \(page) is past \(Int.max)")
        }
        var stream: UInt32 = 0
        if fields.count == 2 {
            guard let s = FaultLine.decimal(fields[1].utf8, max: UInt64(UInt32.max)) else {
                throw FaultLineError("stream \"\(fields[1].prefix(40))\" is not a decimal integer in 0 … \(UInt32.max)")
            }
            stream = UInt32(s)
        }
        return (Int(page), stream)
    }

    /// A decimal or `0x` hexadecimal unsigned 64-bit integer.
    public static func number(_ s: Substring) -> UInt64? {
        if s.hasPrefix("0x") || s.hasPrefix("0X") {
            let digits = s.dropFirst(2)
            guard !digits.isEmpty, digits.count <= 16 else { return nil }
            return UInt64(digits, radix: 16)
        }
        return FaultLine.decimal(s.utf8, max: UInt64.max)
    }
}

/// Replays a trace of touches through a policy: a touch of a page no window has
/// fetched is a fault; the window's pages are fetched. What can be known from
/// touches alone is measured: faults, pages fetched, pages touched, wasted.
public struct TraceReplay<P: SimulatedPolicy> {
    public var policy: P
    public var link: LinkModel
    public private(set) var metrics = Metrics()
    /// Fetched pages, as bitmaps of 64 pages keyed by `page >> 6`.
    private var fetched: [Int: UInt64] = [:]
    private var touched: [Int: UInt64] = [:]

    public init(policy: P, link: LinkModel = LinkModel()) {
        self.policy = policy
        self.link = link
    }

    private static func test(_ map: [Int: UInt64], _ page: Int) -> Bool {
        (map[page >> 6] ?? 0) & (1 << UInt64(page & 63)) != 0
    }

    /// Sets the bit of `page`; returns whether it was clear.
    private static func set(_ map: inout [Int: UInt64], _ page: Int) -> Bool {
        let bit: UInt64 = 1 << UInt64(page & 63)
        let old = map[page >> 6, default: 0]
        map[page >> 6] = old | bit
        return old & bit == 0
    }

    /// One touch of `page` by `stream`.
    public mutating func touch(page: Int, stream: UInt32) {
        if Self.set(&touched, page) { metrics.pagesNeeded += 1 }
        guard !Self.test(fetched, page) else { return }
        // Nothing beyond the fault is known to a trace: the oracle sees just the page.
        let context = FaultContext(remainingLow: page, remainingHigh: page + 1, hits: 0)
        let w = policy.fault(page: page, stream: stream, context: context)
        var fresh = 0
        for p in w.start..<(w.start + w.count) where Self.set(&fetched, p) { fresh += 1 }
        metrics.faults += 1
        metrics.pagesFetched += fresh
        metrics.stallMicros += link.stall(pages: fresh)
    }
}

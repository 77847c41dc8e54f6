import PrepageSockets

/// Wall-clock time as nanoseconds since the Unix epoch: what session timestamps
/// and idle expiry read. A parameter of the server, so expiry is tested without sleeping.
public protocol WallClock: Sendable {
    func now() -> Int64
}

/// The system's `CLOCK_REALTIME`.
public struct SystemClock: WallClock {
    public init() {}
    public func now() -> Int64 { System.wallNanoseconds() }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating).
    var nanoseconds: Int64 {
        let (s, atto) = components
        let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return s < 0 ? Int64.min : Int64.max }
        return ns &+ atto / 1_000_000_000
    }
}

import PrepageSockets
import Synchronization

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

/// A clock that moves only when told: for tests.
public final class ManualClock: WallClock {
    private let time: Mutex<Int64>

    public init(nanoseconds: Int64 = 1_800_000_000 * 1_000_000_000) {
        time = Mutex(nanoseconds)
    }

    public func now() -> Int64 { time.withLock { $0 } }

    public func advance(by duration: Duration) {
        time.withLock { $0 += duration.nanoseconds }
    }
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

import PrepageServer
import Synchronization

/// A wall clock that moves only when told, for the server's `clock` parameter.
final class ManualClock: WallClock {
    private let time: Mutex<Int64>

    init(nanoseconds: Int64 = 1_800_000_000 * 1_000_000_000) {
        time = Mutex(nanoseconds)
    }

    func now() -> Int64 { time.withLock { $0 } }

    func advance(by duration: Duration) {
        time.withLock { $0 += duration.nanoseconds }
    }
}

extension Duration {
    /// The duration in whole nanoseconds (the tests' own: the server's is internal).
    fileprivate var nanoseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }
}

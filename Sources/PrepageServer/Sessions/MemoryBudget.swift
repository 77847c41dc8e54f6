import PrepageCore
import Synchronization

/// The memory sessions may hold (`--memory-limit`): what every session
/// accounts for — its object, id, labels and its policy's state
/// (``Prepager/accountedBytes``) — is charged here.
///
/// Creating a session past the budget is refused (507); a new stream past it
/// takes the least recently used stream's slot instead of a new one.
public final class MemoryBudget: Sendable {
    /// Bytes sessions may hold in total.
    public let limit: Int
    private let used = Atomic<Int>(0)

    public init(limit: Int) {
        self.limit = max(0, limit)
    }

    /// A budget that never refuses.
    public static var unlimited: MemoryBudget { MemoryBudget(limit: Int.max) }

    /// Bytes charged now.
    public var usedBytes: Int { used.load(ordering: .relaxed) }

    /// Bytes left before the limit (0 when over it).
    @inline(__always)
    public var remaining: Int { max(0, limit &- used.load(ordering: .relaxed)) }

    /// Charges `bytes` if they fit under the limit; `false` (nothing charged) otherwise.
    func reserve(_ bytes: Int) -> Bool {
        var current = used.load(ordering: .relaxed)
        while true {
            let (next, overflow) = current.addingReportingOverflow(bytes)
            guard !overflow, next <= limit else { return false }
            let (exchanged, original) = used.compareExchange(expected: current, desired: next, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    /// Charges (or, negative, gives back) bytes already allocated within an allowance.
    @inline(__always)
    func adjust(_ bytes: Int) {
        if bytes != 0 { used.add(bytes, ordering: .relaxed) }
    }

    /// The default limit: a quarter of the cgroup's memory limit or of the
    /// machine's memory, whichever is smaller.
    public static func defaultLimit(machineBytes: Int?, cgroupBytes: Int?) -> Int {
        let quarters = [machineBytes, cgroupBytes].compactMap { $0 }.filter { $0 > 0 }.map { $0 / 4 }
        return quarters.min() ?? 1 << 30
    }
}

extension Session {
    /// Bytes a session with this id and configuration holds besides its policy
    /// state: the object, the id's and labels' storage, its entry in the registry.
    static func fixedBytes(id: String, config: SessionConfig) -> Int {
        // The object: header, id, config, createdAt, the lock with the state minus the
        // prepager (counted by Prepager.accountedBytes).
        let object =
            16 + MemoryLayout<String>.size + MemoryLayout<SessionConfig>.size + 8
            + MemoryLayout<Mutex<SessionState>>.size - MemoryLayout<Prepager>.size
        var total = MemoryAccounting.allocation(object) + stringBytes(id)
        // The registry's dictionary: key and value per bucket, at most 3/4 full, doubling.
        total += 2 * (MemoryLayout<String>.size + 8)
        if !config.labels.isEmpty {
            var buckets = 1
            while buckets * 3 < config.labels.count * 4 { buckets *= 2 }
            total += MemoryAccounting.allocation(64 + buckets / 8 + buckets * 2 * MemoryLayout<String>.size)
            for (key, value) in config.labels { total += stringBytes(key) + stringBytes(value) }
        }
        return total
    }

    /// Heap bytes of a string: none up to 15 UTF-8 bytes (held inline), else its buffer.
    private static func stringBytes(_ s: String) -> Int {
        let n = s.utf8.count
        return n <= 15 ? 0 : MemoryAccounting.allocation(32 + n + 1)
    }
}

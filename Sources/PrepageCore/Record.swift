/// A ring of the last `capacity` values pushed: MinRecord and MaxRecord.
///
/// Up to ``inlineCapacity`` values (the default `k` is 5) live inline, in the
/// value itself: pushing then touches no heap buffer, so there is no
/// uniqueness check and no bounds check on the fault path, and a session that
/// has not faulted yet holds no buffer for its records. A larger `k` (up to 64)
/// keeps its values in an array allocated once, when the record is made.
/// Pushing and emptying never allocate.
struct Record: Sendable {
    /// The most values kept inline.
    static let inlineCapacity = 8

    private var inline = InlineArray<8, Int32>(repeating: 0)
    /// Empty (no allocation) unless `capacity > inlineCapacity`.
    private var heap: ContiguousArray<Int32> = []
    /// Values held, at most `capacity`.
    private(set) var count = 0
    /// Where the next value goes once full (the oldest value).
    private var next = 0
    /// The smallest and largest value held, kept as values come and go, so that
    /// a bound's update after a push costs nothing in the common case.
    private(set) var minimumValue = Int32.max
    private(set) var maximumValue = Int32.min
    let capacity: Int

    init(capacity: Int) {
        precondition(capacity >= 1 && capacity <= PrepageConfig.maxK, "record capacity out of range")
        self.capacity = capacity
        if capacity > Self.inlineCapacity {
            heap = ContiguousArray(repeating: 0, count: capacity)
        }
    }

    var isFull: Bool { count == capacity }

    /// Heap bytes this record holds beyond its inline storage: the ring of a
    /// `k` over ``inlineCapacity`` (with the array's header), else 0.
    var heapBytes: Int {
        capacity > Self.inlineCapacity ? MemoryAccounting.allocation(32 + capacity * MemoryLayout<Int32>.stride) : 0
    }

    /// The value in slot `i` (`i < count`).
    @inline(__always)
    private func slot(_ i: Int) -> Int32 {
        capacity <= Self.inlineCapacity ? inline[unchecked: i] : heap[i]
    }

    /// Replaces the value in slot `i` (`i < capacity`) and returns the one it held.
    @inline(__always)
    private mutating func exchange(_ i: Int, _ v: Int32) -> Int32 {
        if capacity <= Self.inlineCapacity {
            let old = inline[unchecked: i]
            inline[unchecked: i] = v
            return old
        }
        let old = heap[i]
        heap[i] = v
        return old
    }

    /// Adds a value, overwriting the oldest once full.
    ///
    /// Values are page counts (at most ``PrepageConfig/maxPagesLimit``), so 32 bits hold them.
    @inline(__always)
    mutating func push(_ value: Int) {
        let v = Int32(truncatingIfNeeded: value)
        let full = count == capacity
        let evicted = exchange(full ? next : count, v)
        if full {
            next = next + 1 == capacity ? 0 : next + 1
        } else {
            count += 1
        }
        if v <= minimumValue {
            minimumValue = v
        } else if full && evicted == minimumValue {
            minimumValue = scan(Swift.min, from: Int32.max)
        }
        if v >= maximumValue {
            maximumValue = v
        } else if full && evicted == maximumValue {
            maximumValue = scan(Swift.max, from: Int32.min)
        }
    }

    private func scan(_ pick: (Int32, Int32) -> Int32, from start: Int32) -> Int32 {
        var m = start
        for i in 0..<count { m = pick(m, slot(i)) }
        return m
    }

    /// Forgets every value, keeping the storage.
    mutating func removeAll() {
        count = 0
        next = 0
        minimumValue = Int32.max
        maximumValue = Int32.min
    }

    var minimum: Int { Int(minimumValue) }
    var maximum: Int { Int(maximumValue) }

    /// The values, oldest first.
    var values: [Int] {
        (0..<count).map { Int(slot(count < capacity ? $0 : (next + $0) % capacity)) }
    }
}

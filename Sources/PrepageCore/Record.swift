/// A ring of the last `capacity` values pushed: MinRecord and MaxRecord.
///
/// The storage is allocated once, at `capacity`, when the record is made;
/// pushing and emptying never allocate (the buffer is mutated in place).
struct Record: Sendable, Hashable {
    private var storage: ContiguousArray<Int32>
    private var next = 0
    /// The smallest and largest value held, kept as values come and go, so that
    /// a bound's update after a push costs nothing in the common case.
    private(set) var minimumValue = Int32.max
    private(set) var maximumValue = Int32.min
    let capacity: Int

    init(capacity: Int) {
        precondition(capacity >= 1 && capacity <= PrepageConfig.maxK, "record capacity out of range")
        self.capacity = capacity
        storage = []
        storage.reserveCapacity(capacity)
    }

    var count: Int { storage.count }
    var isFull: Bool { storage.count == capacity }

    /// Adds a value, overwriting the oldest once full.
    ///
    /// Values are page counts (at most ``PrepageConfig/maxPagesLimit``), so 32 bits hold them.
    mutating func push(_ value: Int) {
        let v = Int32(truncatingIfNeeded: value)
        var evicted: Int32? = nil
        if storage.count < capacity {
            storage.append(v)
        } else {
            evicted = storage[next]
            storage[next] = v
        }
        next = next + 1 == capacity ? 0 : next + 1
        if v <= minimumValue {
            minimumValue = v
        } else if evicted == minimumValue {
            minimumValue = scan(Swift.min, from: Int32.max)
        }
        if v >= maximumValue {
            maximumValue = v
        } else if evicted == maximumValue {
            maximumValue = scan(Swift.max, from: Int32.min)
        }
    }

    private func scan(_ pick: (Int32, Int32) -> Int32, from start: Int32) -> Int32 {
        storage.withUnsafeBufferPointer { b in
            var m = start
            for i in 0..<b.count { m = pick(m, b[i]) }
            return m
        }
    }

    /// Forgets every value, keeping the storage.
    mutating func removeAll() {
        storage.removeAll(keepingCapacity: true)
        next = 0
        minimumValue = Int32.max
        maximumValue = Int32.min
    }

    var minimum: Int { Int(minimumValue) }
    var maximum: Int { Int(maximumValue) }

    /// The values, oldest first.
    var values: [Int] {
        if storage.count < capacity { return storage.map(Int.init) }
        return (storage[next...] + storage[..<next]).map(Int.init)
    }
}

/// A ring of the last `capacity` values pushed: MinRecord and MaxRecord.
///
/// The storage is allocated once, at `capacity`, when the record is made;
/// pushing and emptying never allocate (the buffer is mutated in place).
struct Record: Sendable, Hashable {
    private var storage: ContiguousArray<Int32>
    private var next = 0
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
        if storage.count < capacity {
            storage.append(v)
        } else {
            storage[next] = v
        }
        next = next + 1 == capacity ? 0 : next + 1
    }

    /// Forgets every value, keeping the storage.
    mutating func removeAll() {
        storage.removeAll(keepingCapacity: true)
        next = 0
    }

    var minimum: Int {
        storage.withUnsafeBufferPointer { b in
            var m = Int32.max
            for i in 0..<b.count { m = Swift.min(m, b[i]) }
            return Int(m)
        }
    }

    var maximum: Int {
        storage.withUnsafeBufferPointer { b in
            var m = Int32.min
            for i in 0..<b.count { m = Swift.max(m, b[i]) }
            return Int(m)
        }
    }

    /// The values, oldest first.
    var values: [Int] {
        if storage.count < capacity { return storage.map(Int.init) }
        return (storage[next...] + storage[..<next]).map(Int.init)
    }
}

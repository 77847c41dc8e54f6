import PrepageTestSupport
import Testing

@testable import PrepageCore

/// `Record` (MinRecord, MaxRecord) against a plain array of the last `k` values,
/// on both of its storages: inline (k ≤ 8) and a heap buffer (k > 8).
@Suite struct RecordTests {
    @Test(arguments: [1, 2, 5, 7, 8, 9, 16, 63, 64])
    func keepsTheLastKValuesAndTheirBounds(k: Int) {
        var rng = SplitMix64(seed: UInt64(k))
        var record = Record(capacity: k)
        var model: [Int] = []
        for step in 0..<2_000 {
            // Few distinct values, so that the evicted value is often the minimum or maximum.
            let v = Int.random(in: 1...12, using: &rng) * (step % 7 == 0 ? 1_000 : 1)
            record.push(v)
            model.append(v)
            if model.count > k { model.removeFirst() }
            #expect(record.values == model, "k \(k), step \(step)")
            #expect(record.minimum == model.min()!, "k \(k), step \(step)")
            #expect(record.maximum == model.max()!, "k \(k), step \(step)")
            #expect(record.isFull == (model.count == k))
            if step % 500 == 499 {
                record.removeAll()
                model.removeAll()
                #expect(record.values.isEmpty && record.count == 0 && !record.isFull)
            }
        }
    }

    @Test func aCopyIsIndependentOnBothStorages() {
        for k in [5, 40] {
            var a = Record(capacity: k)
            for v in 1...k { a.push(v) }
            var b = a
            b.push(1_000)
            #expect(a.values == Array(1...k))
            #expect(b.values == Array(2...k) + [1_000])
            #expect(a.maximum == k && b.maximum == 1_000)
        }
    }

    @Test func recordsAtTheLargestKTeachTheRange() throws {
        // k = 64 keeps its records on the heap: NMax moves once 64 cases each ended
        // in their first window, to the largest first guess among them.
        var dp = try DynamicPrepage(config: PrepageConfig(maxPages: 64, k: 64, initialPages: 8))
        var page = 0
        for _ in 0..<64 {
            _ = try dp.decide(page: page, stream: 0)
            page += 1_000
        }
        #expect(dp.maxRecordValues.count == 63 && dp.nmax == 64)  // 63 records: not yet
        _ = try dp.decide(page: page, stream: 0)
        #expect(dp.maxRecordValues.count == 64)
        #expect(dp.nmax == dp.maxRecordValues.max()!)
        #expect(dp.nmax < 64)
    }
}

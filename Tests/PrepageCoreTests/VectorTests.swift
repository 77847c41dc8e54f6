import Foundation
import PrepageCore
import PrepageTestSupport
import Testing

@Suite struct VectorTests {
    @Test func vectorsAreAllPresent() throws {
        #expect(try Vector.all().count == 13)
    }

    @Test(arguments: try Vector.all())
    func reproducesEveryDecision(_ vector: Vector) throws {
        #expect(vector.faults.count == vector.decisions.count)
        var dp = try DynamicPrepage(config: vector.config)
        for (i, page) in vector.faults.enumerated() {
            let got = try dp.decide(page: page, stream: vector.streams[i])
            try #require(got == vector.decisions[i], "fault #\(i) page \(page) stream \(vector.streams[i])")
        }
    }

    /// The committed copy must equal the shared vectors when those are beside the checkout.
    @Test func committedCopyMatchesSharedVectors() throws {
        let shared = Vector.directory.deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/vectors")
        guard FileManager.default.fileExists(atPath: shared.path) else { return }
        for name in try FileManager.default.contentsOfDirectory(atPath: shared.path) where name.hasSuffix(".json") {
            let a = try Data(contentsOf: shared.appendingPathComponent(name))
            let b = try Data(contentsOf: Vector.directory.appendingPathComponent(name))
            #expect(a == b, "\(name) differs from ../shared/vectors")
        }
    }
}

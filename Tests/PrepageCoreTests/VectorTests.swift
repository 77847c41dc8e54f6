import Foundation
import PrepageCore
import PrepageTestSupport
import Testing

@Suite struct VectorTests {
    @Test func vectorsAreAllPresent() throws {
        #expect(try Vector.all(plus: false).count == 13)
        #expect(try Vector.all(plus: true).count == 7)
    }

    @Test(arguments: try Vector.all())
    func reproducesEveryDecision(_ vector: Vector) throws {
        #expect(vector.faults.count == vector.expected.count)
        var policy = try Prepager(config: vector.config)
        for (i, page) in vector.faults.enumerated() {
            let got = try policy.decide(page: page, stream: vector.streams[i])
            try #require(
                vector.expected[i].matches(got),
                "fault #\(i) page \(page) stream \(vector.streams[i]): got \(got), expected \(vector.expected[i])")
        }
    }

    /// The committed copy must equal the upstream vectors when those are beside the checkout
    /// (the project's maintainers keep them there; a clone has only the committed copy).
    @Test(arguments: ["shared/vectors", "shared/vectors-dp-plus"])
    func committedCopyMatchesUpstreamVectors(_ upstream: String) throws {
        let shared = Vector.directory.deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(upstream)
        guard FileManager.default.fileExists(atPath: shared.path) else { return }
        for name in try FileManager.default.contentsOfDirectory(atPath: shared.path) where name.hasSuffix(".json") {
            let a = try Data(contentsOf: shared.appendingPathComponent(name))
            let b = try Data(contentsOf: Vector.directory.appendingPathComponent(name))
            #expect(a == b, "\(name) differs from \(upstream)")
        }
    }
}

import Foundation
import PrepageCore
import Testing

/// One file of `../shared/vectors/`: a config, faults, and the decisions any implementation must give.
struct Vector: Sendable, CustomTestStringConvertible {
    var name: String
    var config: PrepageConfig
    var faults: [Int]
    var streams: [UInt32]
    var decisions: [Decision]

    var testDescription: String { name }

    /// The committed copy of the shared vectors (`Tests/Vectors`).
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Vectors")

    static func all() throws -> [Vector] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".json") }.sorted()
        return try files.map { try load(directory.appendingPathComponent($0)) }
    }

    static func load(_ url: URL) throws -> Vector {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let c = object["config"] as! [String: Any]
        let config = PrepageConfig(
            policy: PolicyName(rawValue: c["policy"] as! String)!,
            minPages: c["min_pages"] as! Int, maxPages: c["max_pages"] as! Int,
            k: c["k"] as! Int, initialPages: c["initial_pages"] as? Int,
            gap: c["gap"] as! Int, memoryPages: c["memory_pages"] as! Int,
            maxStreams: c["max_streams"] as! Int)
        let faults = object["faults"] as! [Int]
        let streams = (object["streams"] as? [Int])?.map { UInt32($0) } ?? Array(repeating: 0, count: faults.count)
        let decisions = (object["decisions"] as! [[String: Any]]).map { d in
            Decision(
                start: d["start"] as! Int, count: d["count"] as! Int,
                outcome: Outcome(name: d["outcome"] as! String)!,
                ntest: d["ntest"] as! Int, nmin: d["nmin"] as! Int, nmax: d["nmax"] as! Int)
        }
        return Vector(
            name: object["name"] as! String, config: config, faults: faults,
            streams: streams, decisions: decisions)
    }
}

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

import Foundation
import PrepageCore

/// One file of the spec's vectors (`Tests/Vectors`, a copy of `../shared/vectors`):
/// a config, faults, and the decisions any implementation must give. Shared by
/// the test targets that replay them (in-process, over HTTP, through the CLI).
public struct Vector: Sendable, CustomStringConvertible {
    public var name: String
    /// The config object exactly as the file gives it (every field).
    public var configJSON: String
    public var config: PrepageConfig
    public var faults: [Int]
    public var streams: [UInt32]
    public var decisions: [Decision]

    public var description: String { name }

    /// The committed copy of the shared vectors.
    public static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Vectors")

    public static func all() throws -> [Vector] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".json") }.sorted()
            .map { try load(directory.appendingPathComponent($0)) }
    }

    public static func load(_ url: URL) throws -> Vector {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let c = object["config"] as! [String: Any]
        let config = PrepageConfig(
            policy: PolicyName(rawValue: c["policy"] as! String)!,
            minPages: c["min_pages"] as! Int, maxPages: c["max_pages"] as! Int,
            k: c["k"] as! Int, initialPages: c["initial_pages"] as? Int,
            gap: c["gap"] as! Int, memoryPages: c["memory_pages"] as! Int,
            maxStreams: c["max_streams"] as! Int)
        let configJSON = String(decoding: try JSONSerialization.data(withJSONObject: c), as: UTF8.self)
        let faults = object["faults"] as! [Int]
        let streams = (object["streams"] as? [Int])?.map { UInt32($0) } ?? Array(repeating: 0, count: faults.count)
        let decisions = (object["decisions"] as! [[String: Any]]).map { Decision(json: $0)! }
        return Vector(
            name: object["name"] as! String, configJSON: configJSON, config: config, faults: faults,
            streams: streams, decisions: decisions)
    }
}

extension Decision {
    /// A decision from its JSON object (`start, count, outcome, ntest, nmin, nmax`); nil when a key is missing.
    public init?(json d: [String: Any]) {
        guard let start = d["start"] as? Int, let count = d["count"] as? Int,
            let outcome = (d["outcome"] as? String).flatMap(Outcome.init(name:)),
            let ntest = d["ntest"] as? Int, let nmin = d["nmin"] as? Int, let nmax = d["nmax"] as? Int
        else { return nil }
        self.init(start: start, count: count, outcome: outcome, ntest: ntest, nmin: nmin, nmax: nmax)
    }
}

import Foundation
import PrepageCore
import PrepageSimulator

/// One file of the test vectors (`Tests/Vectors`): a config, faults, and the
/// decisions any implementation must give. Shared by the test targets that
/// replay them (in-process, over HTTP, through the CLI).
///
/// `dp` vectors give every field of a decision; `dp-plus` vectors
/// (`dp-plus-*.json`) give `start`, `count` and `outcome`, and only the config
/// fields that differ from the defaults.
public struct Vector: Sendable, CustomStringConvertible {
    public var name: String
    /// The config object exactly as the file gives it.
    public var configJSON: String
    public var config: PrepageConfig
    public var faults: [Int]
    public var streams: [UInt32]
    public var expected: [ExpectedDecision]

    public var description: String { name }

    /// The committed vectors.
    public static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Vectors")

    public static func all() throws -> [Vector] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".json") }.sorted()
            .map { try load(directory.appendingPathComponent($0)) }
    }

    /// The vectors of one policy family: `dp-plus`, or the others (`dp`, `dp-literal`).
    public static func all(plus: Bool) throws -> [Vector] {
        try all().filter { ($0.config.policy == .dpPlus) == plus }
    }

    public static func load(_ url: URL) throws -> Vector {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let c = object["config"] as! [String: Any]
        let configJSON = String(
            decoding: try JSONSerialization.data(withJSONObject: c, options: .sortedKeys), as: UTF8.self)
        let config = try ConfigJSON.parse(configJSON)
        let faults = object["faults"] as! [Int]
        let streams = (object["streams"] as? [Int])?.map { UInt32($0) } ?? Array(repeating: 0, count: faults.count)
        let expected = (object["decisions"] as! [[String: Any]]).map { ExpectedDecision(json: $0)! }
        return Vector(
            name: object["name"] as! String, configJSON: configJSON, config: config, faults: faults,
            streams: streams, expected: expected)
    }
}

/// A decision as a vector gives it: the window and outcome always, the state after
/// the step (`ntest`, `nmin`, `nmax`) in `dp` vectors only.
public struct ExpectedDecision: Sendable, Hashable, CustomStringConvertible {
    public var start: Int
    public var count: Int
    public var outcome: Outcome
    public var ntest: Int?
    public var nmin: Int?
    public var nmax: Int?

    /// From a JSON object; nil when `start`, `count` or `outcome` is missing.
    public init?(json d: [String: Any]) {
        guard let start = d["start"] as? Int, let count = d["count"] as? Int,
            let outcome = (d["outcome"] as? String).flatMap(Outcome.init(name:))
        else { return nil }
        self.start = start
        self.count = count
        self.outcome = outcome
        ntest = d["ntest"] as? Int
        nmin = d["nmin"] as? Int
        nmax = d["nmax"] as? Int
    }

    /// Whether `d` is this decision: every field the vector gives is equal.
    public func matches(_ d: Decision) -> Bool {
        d.start == start && d.count == count && d.outcome == outcome
            && (ntest == nil || ntest == d.ntest) && (nmin == nil || nmin == d.nmin) && (nmax == nil || nmax == d.nmax)
    }

    /// Whether a decision's JSON object is this decision.
    public func matches(json d: [String: Any]) -> Bool {
        Decision(json: d).map(matches) ?? false
    }

    public var description: String {
        "start \(start) count \(count) \(outcome.name)" + (ntest.map { " ntest \($0)" } ?? "")
            + (nmin.map { " nmin \($0)" } ?? "") + (nmax.map { " nmax \($0)" } ?? "")
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

import Foundation
import PrepageCore
import PrepageSimulator
import PrepageTestSupport
import Testing

/// The directory holding the package's built executables (beside the test bundle).
func productURL(_ name: String) -> URL {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    // Bundles run from `…/debug/prepagePackageTests.xctest/…` on some layouts.
    while !FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path) && dir.path != "/" {
        dir = dir.deletingLastPathComponent()
    }
    return dir.appendingPathComponent(name)
}

/// A running `prepage-sim decide`, driven one line at a time.
final class DecideProcess {
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    let errors = Pipe()
    private var pending = Data()

    init(config: String) throws {
        process.executableURL = productURL("prepage-sim")
        process.arguments = ["decide", "--config", config]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
    }

    func send(_ line: String) {
        input.fileHandleForWriting.write(Data((line + "\n").utf8))
    }

    /// Reads one line of output (blocks until it comes).
    func readLine() -> String? {
        while true {
            if let nl = pending.firstIndex(of: 0x0A) {
                let line = String(decoding: pending[..<nl], as: UTF8.self)
                pending.removeSubrange(...nl)
                return line
            }
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { return nil }
            pending.append(chunk)
        }
    }

    /// Closes stdin and waits; returns (status, rest of stdout, stderr).
    func finish() -> (Int32, String, String) {
        try? input.fileHandleForWriting.close()
        let rest = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: pending + rest, as: UTF8.self),
            String(decoding: err, as: UTF8.self)
        )
    }
}

@Suite struct DecideCommandTests {
    /// A closed loop: each next fault is computed from the decision just read.
    @Test func answersEachFaultBeforeTheNextIsSent() throws {
        let p = try DecideProcess(config: #"{"policy":"dp","max_pages":64}"#)
        p.send("1000")
        #expect(p.readLine() == #"{"start":1000,"count":1,"outcome":"first","ntest":1,"nmin":1,"nmax":64}"#)
        p.send("1001")  // the continuation of that window
        let second = p.readLine()
        #expect(second == #"{"start":1001,"count":31,"outcome":"smaller","ntest":32,"nmin":1,"nmax":64}"#)
        p.send("1032 7")  // another stream
        #expect(p.readLine()?.contains(#""outcome":"first""#) == true)
        let (status, rest, _) = p.finish()
        #expect(status == 0)
        #expect(rest.isEmpty)
    }

    @Test func replaysAVectorExactly() throws {
        let vectors = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Vectors/vcpus.json")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: vectors)) as! [String: Any]
        let config = String(decoding: try JSONSerialization.data(withJSONObject: object["config"]!), as: UTF8.self)
        let faults = object["faults"] as! [Int]
        let streams = object["streams"] as! [Int]
        let expected = (object["decisions"] as! [[String: Any]]).map { d in
            #"{"start":\#(d["start"]!),"count":\#(d["count"]!),"outcome":"\#(d["outcome"]!)","ntest":\#(d["ntest"]!),"nmin":\#(d["nmin"]!),"nmax":\#(d["nmax"]!)}"#
        }
        let p = try DecideProcess(config: config)
        for i in faults.indices { p.send("\(faults[i]) \(streams[i])") }
        let (status, out, err) = p.finish()
        #expect(status == 0, "\(err)")
        #expect(out.split(separator: "\n").map(String.init) == expected)
    }

    /// Every vector, dp and dp-plus, through the executable: each decision line is the vector's.
    @Test(arguments: try Vector.all())
    func replaysEveryVector(_ v: Vector) throws {
        let p = try DecideProcess(config: v.configJSON)
        for i in v.faults.indices { p.send("\(v.faults[i]) \(v.streams[i])") }
        let (status, out, err) = p.finish()
        #expect(status == 0, "\(err)")
        let lines = out.split(separator: "\n").map { String($0) }
        #expect(lines.count == v.expected.count)
        for (i, line) in lines.enumerated() where i < v.expected.count {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            try #require(
                v.expected[i].matches(json: object), "\(v.name) fault #\(i): \(line), expected \(v.expected[i])")
        }
    }

    @Test(arguments: [
        ("12\nabc\n", "line 2", 1),
        ("12\n-4\n", "line 2", 1),
        ("12 4294967296\n", "line 1", 0),
        ("\n", "line 1", 0),
        ("5  6\n", "line 1", 0),
        ("700\n", "outside guest memory", 0),
    ])
    func rejectsABadLineWithItsNumber(input: String, message: String, goodLines: Int) throws {
        let p = try DecideProcess(config: #"{"memory_pages":600}"#)
        for line in input.split(separator: "\n", omittingEmptySubsequences: false).dropLast() { p.send(String(line)) }
        let (status, out, err) = p.finish()
        #expect(status == 2)
        #expect(err.contains(message), "\(err)")
        #expect(out.split(separator: "\n").count == goodLines, "nothing on stdout for the bad line")
    }

    @Test(arguments: [
        (#"{"policy":"dp","k":0}"#, "k = 0 is out of range; allowed: 1 … 64"),
        (#"{"policy":"dp","max_streams":5000}"#, "max_streams"),
        (#"{"k":3}"#, "k does not apply to policy dp-plus"),
        (#"{"rtt_us":-1}"#, "rtt_us = -1.0 is out of range; allowed: 0.001 … 10000000"),
        (#"{"policy":"magic"}"#, "policy must be one of: dp, dp-literal, none, forward, readahead"),
        (#"{"kk":1}"#, #"unknown config key "kk""#),
        (#"{"gap":"three"}"#, "gap must be an integer"),
        ("[", "config must be a JSON object"),
    ])
    func rejectsABadConfig(config: String, message: String) throws {
        let p = try DecideProcess(config: config)
        let (status, out, err) = p.finish()
        #expect(status == 2)
        #expect(err.contains(message), "\(err)")
        #expect(out.isEmpty)
    }
}

@Suite struct ParsingTests {
    @Test func parsesPageAndOptionalStream() throws {
        #expect(try FaultLine.parse(Array("42".utf8)) == (42, 0))
        #expect(try FaultLine.parse(Array("42 9\r".utf8)) == (42, 9))
        #expect(try FaultLine.parse(Array("0 4294967295".utf8)) == (0, 4_294_967_295))
    }

    @Test(arguments: ["", "x", "4 ", " 4", "4 5 6", "99999999999999999999", "0x10", "1e3"])
    func rejectsMalformedLines(_ line: String) {
        #expect(throws: FaultLineError.self) { try FaultLine.parse(Array(line.utf8)) }
    }

    @Test func configKeysTakeDefaultsWhenMissing() throws {
        #expect(try ConfigJSON.parse("{}") == PrepageConfig().validated())
        let c = try ConfigJSON.parse(#"{"policy":"dp-literal","max_pages":64,"initial_pages":8}"#)
        #expect(c.policy == .dpLiteral && c.maxPages == 64 && c.initialPages == 8)
    }
}

/// Runs the built prepage-sim; returns (status, stdout, stderr).
func prepageSim(_ arguments: [String]) throws -> (Int32, String, String) {
    let process = Process()
    process.executableURL = productURL("prepage-sim")
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

@Suite struct ExperimentCommandTests {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
        "prepage-sim-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")

    init() throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    @Test func fig3WritesTheDocumentedCSVAndAnSVG() throws {
        let csv = dir.appendingPathComponent("fig3.csv").path
        let svg = dir.appendingPathComponent("fig3.svg").path
        let (status, out, err) = try prepageSim([
            "fig3", "--cases", "300", "--seeds", "2", "--max-noise", "0.1", "--csv", csv, "--svg", svg,
        ])
        #expect(status == 0, "\(err)")
        #expect(out.contains("nmin_over_n"))
        let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
        #expect(lines.first == "noise,nmin_over_n,nmax_over_n,faults_per_case,fetched_over_needed")
        #expect(lines.count == 4)  // header + noise 0, 0.05, 0.10
        #expect(try String(contentsOfFile: svg, encoding: .utf8).hasPrefix("<svg"))
    }

    @Test func replayReportsABadLineWithItsNumber() throws {
        let trace = dir.appendingPathComponent("bad.trace")
        try "# header\n100\n0x65 2\nbogus\n".write(to: trace, atomically: true, encoding: .utf8)
        let (status, out, err) = try prepageSim(["replay", "--trace", trace.path])
        #expect(status != 0)
        #expect(err.contains("bad.trace:4"), "\(err)")
        #expect(out.isEmpty)
    }

    @Test func replayAcceptsByteAddressesWithAPageSize() throws {
        let trace = dir.appendingPathComponent("addrs.trace")
        try "0x1000\n0x2000\n8192\n".write(to: trace, atomically: true, encoding: .utf8)
        let (status, out, err) = try prepageSim(["replay", "--trace", trace.path, "--addresses", "--policy", "none"])
        #expect(status == 0, "\(err)")
        #expect(out.contains("pages_touched          2"), "\(out)")  // pages 1 and 2; 8192 is page 2 again
    }

    @Test func compareRejectsAnUnknownPolicy() throws {
        let (status, _, err) = try prepageSim(["compare", "--policies", "dp,magic"])
        #expect(status != 0)
        #expect(err.contains("unknown policy \"magic\""))
    }
}

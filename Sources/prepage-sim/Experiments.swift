import ArgumentParser
import Foundation
import PrepageCore
import PrepageSimulator

/// Options every experiment shares: where to write the figures.
struct OutputOptions: ParsableArguments {
    @Option(name: .long, help: "Also write the table as CSV to this file.")
    var csv: String?

    @Option(name: .long, help: "Also write a plot as SVG to this file.")
    var svg: String?

    func write(_ text: String, to path: String?) throws {
        guard let path else { return }
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw RuntimeError("cannot write \(path): \(error.localizedDescription)")
        }
    }
}

/// The link model's options.
struct LinkOptions: ParsableArguments {
    @Option(name: .long, help: "Round trip per fault, microseconds.")
    var rttUs: Double = 100

    @Option(name: .long, help: "Link bandwidth, Gbit/s.")
    var gbps: Double = 1

    @Option(name: .long, help: "Page size, bytes (a power of two from 512 to 1 GiB).")
    var pageSize: Int = 4_096

    func validate() throws {
        guard rttUs >= 0 else { throw ValidationError("--rtt-us must be ≥ 0, got \(rttUs)") }
        guard gbps > 0 else { throw ValidationError("--gbps must be > 0, got \(gbps)") }
        guard pageSize >= 512, pageSize <= 1 << 30, pageSize & (pageSize - 1) == 0 else {
            throw ValidationError("--page-size must be a power of two from 512 to 1073741824, got \(pageSize)")
        }
    }

    var model: LinkModel { LinkModel(rttMicros: rttUs, bitsPerSecond: gbps * 1e9, pageSize: pageSize) }
}

struct Fig3Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fig3",
        abstract: "The paper's Fig. 3: DP's NMin/N and NMax/N after a run, for noise rates 0 … 0.5.")

    @Option(help: "Pages per case.") var n = 100
    @Option(help: "Cases per run.") var cases = 5_000
    @Option(help: "Seeds: runs 1 … SEEDS are averaged.") var seeds = 10
    @Option(help: "Noisy case sizes: around ([0.5 N, 1.5 N], never N), below ([0.1 N, N)), above ((N, 3 N]).")
    var shape: String = "around"
    @Option(help: "Highest noise rate; rates go from 0 in steps of 0.05.") var maxNoise = 0.5
    @Option(help: "DP configuration as JSON (keys as in `decide`; the policy is dp unless it says).") var config = "{}"
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard n >= 1 else { throw ValidationError("--n must be ≥ 1, got \(n)") }
        guard cases >= 1 else { throw ValidationError("--cases must be ≥ 1, got \(cases)") }
        guard seeds >= 1 else { throw ValidationError("--seeds must be ≥ 1, got \(seeds)") }
        guard NoiseShape(rawValue: shape) != nil else {
            throw ValidationError(
                "--shape must be one of: \(NoiseShape.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard (0...1).contains(maxNoise) else { throw ValidationError("--max-noise must be in 0 … 1, got \(maxNoise)") }
    }

    func run() throws {
        var fig = Fig3()
        fig.n = n
        fig.cases = cases
        fig.seeds = (1...UInt64(seeds)).map { $0 }
        fig.shape = NoiseShape(rawValue: shape)!
        fig.noiseRates = stride(from: 0.0, through: maxNoise + 1e-9, by: 0.05).map { ($0 * 100).rounded() / 100 }
        fig.config = try parseConfig(config, defaultPolicy: .dp)
        let rows = try fig.run()
        var table = Table(header: ["noise", "nmin_over_n", "nmax_over_n", "faults_per_case", "fetched_over_needed"])
        for r in rows {
            table.append([
                fixed(r.noise, 2), fixed(r.nminOverN, 3), fixed(r.nmaxOverN, 3), fixed(r.faultsPerCase, 3),
                fixed(r.fetchedOverNeeded, 3),
            ])
        }
        print("Fig. 3: N = \(n), \(cases) cases, \(seeds) seeds, noise \(shape); means over seeds")
        print(table.text, terminator: "")
        try output.write(table.csv, to: output.csv)
        try output.write(
            SVGChart.lines(
                title: "DP's range after \(cases) cases, N = \(n), noise \(shape) (mean of \(seeds) seeds)",
                xLabel: "noise rate", yLabel: "value / N",
                series: [
                    ("NMin / N", rows.map { ($0.noise, $0.nminOverN) }),
                    ("NMax / N", rows.map { ($0.noise, $0.nmaxOverN) }),
                    ("faults per case", rows.map { ($0.noise, $0.faultsPerCase) }),
                ], yMin: min(0.8, rows.map(\.nminOverN).min() ?? 0.8),
                yMax: max(1.4, rows.map { max($0.nmaxOverN, $0.faultsPerCase) }.max() ?? 1.4)), to: output.svg)
    }
}

/// Parses a configuration argument, exiting with status 2 and the reason when invalid.
func parseConfig(_ text: String, defaultPolicy: PolicyName = .dpPlus, anyPolicy: Bool = false) throws -> PrepageConfig {
    do {
        return try ConfigJSON.parse(text, defaultPolicy: defaultPolicy, anyPolicy: anyPolicy)
    } catch {
        throw ValidationError("invalid --config: \(error)")
    }
}

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Every policy on a fixed suite of loads, over several seeds: faults, pages, stall.")

    @Option(help: "Policies, comma-separated. Known: \(PolicyCatalog.names.joined(separator: ", ")).")
    var policies = PolicyCatalog.compared.joined(separator: ",")
    @Option(help: "Seeds: each workload runs with seeds 1 … SEEDS.") var seeds = 5
    @Option(help: "Scale of the case counts (1 = the documented suite).") var scale = 1.0
    @Option(help: "Only the workloads whose names contain this text.") var only: String?
    @Option(help: "Fields of the agent policies as JSON (DP's range, forward's window…).") var config = "{}"
    @Option(help: "Drive the agent policies through a running prepaged at this URL.") var server: String?
    @OptionGroup var link: LinkOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard seeds >= 1 else { throw ValidationError("--seeds must be ≥ 1, got \(seeds)") }
        guard scale > 0 else { throw ValidationError("--scale must be > 0, got \(scale)") }
        for p in policyList where !PolicyCatalog.names.contains(p) {
            throw ValidationError("unknown policy \"\(p)\"; known: \(PolicyCatalog.names.joined(separator: ", "))")
        }
    }

    var policyList: [String] { policies.split(separator: ",").map(String.init) }

    func run() throws {
        var comparison = Comparison(
            workloads: SuiteWorkload.suite(scale: scale).filter { only == nil || $0.name.contains(only!) },
            policies: policyList, seeds: (1...UInt64(seeds)).map { $0 }, link: link.model,
            base: try parseConfig(config, anyPolicy: true))
        var remote: RemotePolicies?
        if let server {
            remote = try RemotePolicies(url: server, pageSize: link.pageSize)
            comparison.factory = remote!.factory
        }
        defer { withExtendedLifetime(remote) {} }
        let rows = try comparison.run { FileHandle.standardError.write(Data("compare: \($0) done\n".utf8)) }
        var table = Table(header: [
            "workload", "policy", "faults", "pages_fetched", "pages_wasted", "accuracy", "coverage",
            "stall_ms", "mean_response_us", "stall_over_none", "stall_over_oracle", "over_oracle_min",
            "over_oracle_max",
        ])
        for r in rows {
            table.append([
                r.workload, r.policy, fixed(r.faults, 0), fixed(r.pagesFetched, 0), fixed(r.pagesWasted, 0),
                fixed(r.accuracy, 3), fixed(r.coverage, 3), fixed(r.stallMicros / 1_000, 1),
                fixed(r.meanResponseMicros, 1), fixed(r.stallOverNone, 3), fixed(r.stallOverOracle, 3),
                fixed(r.stallOverOracleRange.lowerBound, 3), fixed(r.stallOverOracleRange.upperBound, 3),
            ])
        }
        print(
            "compare: means over \(seeds) seeds; link \(link.rttUs) µs RTT, \(link.gbps) Gbit/s, \(link.pageSize) B pages"
        )
        print(table.text, terminator: "")
        try output.write(table.csv, to: output.csv)
        let workloads = comparison.workloads.map(\.name)
        try output.write(
            SVGChart.groupedBars(
                title: "Total stall relative to the oracle (mean of \(seeds) seeds; lower is better)",
                yLabel: "stall / oracle's stall", groups: workloads,
                series: policyList.map { p in
                    (p, workloads.map { w in rows.first { $0.workload == w && $0.policy == p }!.stallOverOracle })
                }), to: output.svg)
    }
}

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a recorded trace of page touches through a policy.",
        discussion: """
            Each line: a page number (or, with --addresses, a byte address) in decimal or 0x hex, optionally
            followed by a stream id. '#' starts a comment. A touch of a page not yet fetched is a fault.
            """)

    @Option(help: "The trace file; - for standard input.") var trace: String
    @Option(help: "Policy: \(PolicyName.allCases.map(\.rawValue).joined(separator: ", ")).") var policy =
        PrepageConfig().policy.rawValue
    @Flag(help: "The trace holds byte addresses; the page is address / --page-size.") var addresses = false
    @Option(help: "Policy configuration as JSON (keys as in `decide`).") var config = "{}"
    @Option(help: "Drive the policy through a running prepaged at this URL.") var server: String?
    @OptionGroup var link: LinkOptions

    func validate() throws {
        guard PolicyName(rawValue: policy) != nil else {
            throw ValidationError(
                "replay runs the policies an agent can run: \(PolicyName.allCases.map(\.rawValue).joined(separator: ", ")); got \"\(policy)\""
            )
        }
    }

    func run() throws {
        var base = try parseConfig(config, defaultPolicy: PolicyName(rawValue: policy)!)
        base.policy = PolicyName(rawValue: policy)!
        let remote = try server.map { try RemotePolicies(url: $0, pageSize: link.pageSize) }
        let simulated: any SimulatedPolicy = try remote?.make(policy, base) ?? PrepagerPolicy(base)
        let metrics = try withExtendedLifetime(remote) { try replay(simulated) }
        var table = Table(header: ["metric", "value"])
        table.append(["faults", String(metrics.faults)])
        table.append(["pages_touched", String(metrics.pagesNeeded)])
        table.append(["pages_fetched", String(metrics.pagesFetched)])
        table.append(["pages_wasted", String(metrics.pagesWasted)])
        table.append(["accuracy", fixed(metrics.accuracy, 4)])
        table.append(["coverage", fixed(metrics.coverage, 4)])
        table.append(["stall_ms", fixed(metrics.stallMicros / 1_000, 3)])
        table.append(["mean_response_us", fixed(metrics.meanResponseMicros, 2)])
        print("replay: \(trace) through \(policy)")
        print(table.text, terminator: "")
    }

    func replay<P: SimulatedPolicy>(_ policy: P) throws -> Metrics {
        var replay = TraceReplay(policy: policy, link: link.model)
        let pageSize = addresses ? link.pageSize : nil
        let handle: FileHandle
        if trace == "-" {
            handle = .standardInput
        } else {
            guard let h = FileHandle(forReadingAtPath: trace) else {
                throw RuntimeError("cannot open trace file \(trace)")
            }
            handle = h
        }
        var lineNumber = 0
        var pending = Data()
        func consume(_ line: Data) throws {
            lineNumber += 1
            let text = Substring(String(decoding: line, as: UTF8.self))
            do {
                if let (page, stream) = try TraceLine.parse(text, pageSize: pageSize) {
                    replay.touch(page: page, stream: stream)
                }
            } catch {
                throw RuntimeError("\(trace):\(lineNumber): \(error)")
            }
            if lineNumber % 1_000_000 == 0 {
                FileHandle.standardError.write(
                    Data("replay: \(lineNumber) lines, \(replay.metrics.faults) faults\n".utf8))
            }
        }
        while true {
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            pending.append(chunk)
            var start = pending.startIndex
            while let nl = pending[start...].firstIndex(of: 0x0A) {
                try consume(pending[start..<nl])
                start = nl + 1
            }
            pending = Data(pending[start...])
        }
        if !pending.isEmpty { try consume(pending) }
        return replay.metrics
    }
}

/// A failure while running (not a bad argument): printed as `Error: …`, exit status 1.
struct RuntimeError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

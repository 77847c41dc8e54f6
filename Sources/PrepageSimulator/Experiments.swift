import PrepageCore

// MARK: - Fig. 3

/// One row of the paper's Fig. 3: DP's range after a run, at one noise rate (means over seeds).
public struct Fig3Row: Sendable {
    public var noise: Double
    public var nminOverN: Double
    public var nmaxOverN: Double
    public var faultsPerCase: Double
    public var fetchedOverNeeded: Double
    /// The extremes over seeds, for the spread.
    public var nminOverNRange: ClosedRange<Double>
    public var nmaxOverNRange: ClosedRange<Double>
}

/// The paper's Fig. 3: N pages per case, noise from 0 to 0.5, DP's NMin/N and NMax/N after the run.
public struct Fig3: Sendable {
    public var n = 100
    public var cases = 5_000
    public var seeds: [UInt64] = Array(1...10)
    public var noiseRates: [Double] = (0...10).map { Double($0) * 0.05 }
    public var shape = NoiseShape.around
    public var config = PrepageConfig(policy: .dp)

    public init() {}

    public func run() throws -> [Fig3Row] {
        try noiseRates.map { rate in
            var nmins: [Double] = []
            var nmaxs: [Double] = []
            var faults = 0.0
            var fetched = 0.0
            for seed in seeds {
                let load = FSDWorkload(n: n, cases: cases, noiseRate: rate, noise: shape)
                var policy = try PrepagerPolicy(config)
                let m = Simulation(seed: seed).run(&policy, cases: load.cases(seed: seed))
                let state = policy.prepager.snapshot
                nmins.append(Double(state.nmin) / Double(n))
                nmaxs.append(Double(state.nmax) / Double(n))
                faults += m.faultsPerCase
                fetched += m.fetchedOverNeeded
            }
            let count = Double(seeds.count)
            return Fig3Row(
                noise: rate, nminOverN: nmins.reduce(0, +) / count, nmaxOverN: nmaxs.reduce(0, +) / count,
                faultsPerCase: faults / count, fetchedOverNeeded: fetched / count,
                nminOverNRange: nmins.min()!...nmins.max()!, nmaxOverNRange: nmaxs.min()!...nmaxs.max()!)
        }
    }
}

// MARK: - Compare

/// A named load of the comparison suite.
public struct SuiteWorkload: Sendable {
    public var name: String
    public var load: any CaseSource
    public var vcpus = 1
    public var streamIDs = true
    /// Cases each vCPU sweeps in lockstep (``Simulation/ways``).
    public var ways = 1

    public init(name: String, load: any CaseSource, vcpus: Int = 1, streamIDs: Bool = true, ways: Int = 1) {
        self.name = name
        self.load = load
        self.vcpus = vcpus
        self.streamIDs = streamIDs
        self.ways = ways
    }

    /// The fixed suite of `prepage-sim compare`, with `scale` × the default case counts.
    public static func suite(scale: Double = 1) -> [SuiteWorkload] {
        func c(_ n: Int) -> Int { max(1, Int(Double(n) * scale)) }
        let n = 64
        return [
            SuiteWorkload(name: "fsd-clean", load: FSDWorkload(n: n, cases: c(2_000))),
            SuiteWorkload(
                name: "fsd-noise-around", load: FSDWorkload(n: n, cases: c(2_000), noiseRate: 0.2, noise: .around)),
            SuiteWorkload(
                name: "fsd-noise-below", load: FSDWorkload(n: n, cases: c(2_000), noiseRate: 0.2, noise: .below)),
            SuiteWorkload(
                name: "fsd-noise-above", load: FSDWorkload(n: n, cases: c(2_000), noiseRate: 0.2, noise: .above)),
            SuiteWorkload(name: "fsd-downward-half", load: FSDWorkload(n: n, cases: c(2_000), downwardShare: 0.5)),
            SuiteWorkload(
                name: "phases-40-160-20",
                load: FSDWorkload(phases: [
                    .init(n: 40, cases: c(700)), .init(n: 160, cases: c(700)), .init(n: 20, cases: c(700)),
                ])),
            SuiteWorkload(name: "scan-65536", load: FSDWorkload(n: 65_536, cases: 1)),
            SuiteWorkload(name: "random-pages", load: FSDWorkload(n: 1, cases: c(20_000))),
            SuiteWorkload(name: "vcpus8-streams", load: FSDWorkload(n: n, cases: c(2_000)), vcpus: 8, streamIDs: true),
            SuiteWorkload(name: "vcpus8-stream0", load: FSDWorkload(n: n, cases: c(2_000)), vcpus: 8, streamIDs: false),
            SuiteWorkload(name: "small-n16", load: FSDWorkload(n: 16, cases: c(2_000))),
            SuiteWorkload(
                name: "bimodal-16-256", load: MixtureWorkload(modes: [16, 256], weights: [1, 1], cases: c(2_000))),
            SuiteWorkload(name: "drifting-32-128", load: FSDWorkload.drifting(from: 32, to: 128, cases: c(2_000))),
            SuiteWorkload(
                name: "scatter-then-fsd",
                load: FSDWorkload(phases: [.init(n: 1, cases: c(2_000)), .init(n: n, cases: c(2_000))])),
            SuiteWorkload(name: "triad-1", load: TriadWorkload(slicePages: c(4_096)), ways: 3),
            SuiteWorkload(
                name: "triad-4-streams", load: TriadWorkload(slicePages: c(1_024), threads: 4), vcpus: 4, ways: 3),
            SuiteWorkload(
                name: "triad-4-stream0", load: TriadWorkload(slicePages: c(1_024), threads: 4), vcpus: 4,
                streamIDs: false, ways: 3),
        ]
    }
}

/// One policy on one workload: metrics averaged over seeds, with the spread of the stall.
public struct CompareRow: Sendable {
    public var workload: String
    public var policy: String
    public var faults: Double
    public var pagesFetched: Double
    public var pagesWasted: Double
    public var accuracy: Double
    public var coverage: Double
    public var stallMicros: Double
    public var meanResponseMicros: Double
    public var stallOverNone: Double
    public var stallOverOracle: Double
    /// Stall over the oracle's, lowest and highest over the seeds.
    public var stallOverOracleRange: ClosedRange<Double>
}

/// Runs policies over workloads and seeds.
public struct Comparison {
    public var workloads: [SuiteWorkload]
    public var policies: [String]
    public var seeds: [UInt64]
    public var link: LinkModel
    /// Fields of the agent policies (DP's range, forward's window…).
    public var base: PrepageConfig
    /// Makes each policy; replace to drive a remote server.
    public var factory: (String, PrepageConfig) throws -> any SimulatedPolicy = { try PolicyCatalog.make($0, base: $1) }

    public init(
        workloads: [SuiteWorkload] = SuiteWorkload.suite(), policies: [String] = PolicyCatalog.compared,
        seeds: [UInt64] = Array(1...5), link: LinkModel = LinkModel(), base: PrepageConfig = PrepageConfig()
    ) {
        self.workloads = workloads
        self.policies = policies
        self.seeds = seeds
        self.link = link
        self.base = base
    }

    /// Every (workload, policy) row, workloads in suite order, policies in the order given.
    /// - Parameter progress: called after each workload with its name.
    public func run(progress: (String) -> Void = { _ in }) throws -> [CompareRow] {
        var rows: [CompareRow] = []
        // dp-plus plans for the session's link: give it the simulated one.
        var base = self.base
        base.rttMicroseconds = link.rttMicros
        base.pageMicroseconds = link.pageMicros
        for w in workloads {
            // metrics[policy][seed]
            var metrics: [String: [Metrics]] = [:]
            for seed in seeds {
                let cases = w.load.cases(seed: seed)
                for name in Set(policies + ["none", "oracle"]) {
                    var policy = try factory(name, base)
                    let sim = Simulation(link: link, vcpus: w.vcpus, streamIDs: w.streamIDs, seed: seed, ways: w.ways)
                    metrics[name, default: []].append(sim.run(&policy, cases: cases))
                }
            }
            for name in policies {
                let ms = metrics[name]!
                let count = Double(ms.count)
                func mean(_ f: (Metrics) -> Double) -> Double { ms.map(f).reduce(0, +) / count }
                let ratios = zip(ms, metrics["oracle"]!).map { $0.stallMicros / $1.stallMicros }
                rows.append(
                    CompareRow(
                        workload: w.name, policy: name,
                        faults: mean { Double($0.faults) }, pagesFetched: mean { Double($0.pagesFetched) },
                        pagesWasted: mean { Double($0.pagesWasted) }, accuracy: mean(\.accuracy),
                        coverage: mean(\.coverage), stallMicros: mean(\.stallMicros),
                        meanResponseMicros: mean(\.meanResponseMicros),
                        stallOverNone: mean(\.stallMicros) / metrics["none"]!.map(\.stallMicros).reduce(0, +) * count,
                        stallOverOracle: ratios.reduce(0, +) / count,
                        stallOverOracleRange: ratios.min()!...ratios.max()!))
            }
            progress(w.name)
        }
        return rows
    }
}

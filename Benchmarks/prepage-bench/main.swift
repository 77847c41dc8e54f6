import CAllocationCounter
import Glibc
import PrepageCore
import PrepageSimulator

/// `prepage-bench core [FAULTS]`: decisions per second of dp and dp-plus on the same
/// precomputed FSD trace, with one stream and with 16 interleaved streams, and
/// allocations per decision.
/// A benchmark, not a test: it prints figures and asserts nothing.

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// A trace of `faults` faults: FSD N = 64 with 10 % noise, run closed-loop through DP
/// on `streams` vCPUs, recording each fault as it happens.
func trace(faults: Int, streams: Int, seed: UInt64) -> (pages: [Int], streams: [UInt32]) {
    var pages: [Int] = []
    var ids: [UInt32] = []
    pages.reserveCapacity(faults)
    ids.reserveCapacity(faults)
    var policy = try! PrepagerPolicy(PrepageConfig(policy: .dp, maxPages: 512))
    var batch: UInt64 = 0
    while pages.count < faults {
        let load = FSDWorkload(n: 64, cases: 200_000, noiseRate: 0.1)
        let sim = Simulation(vcpus: streams, seed: seed &+ batch)
        _ = sim.run(&policy, cases: load.cases(seed: seed &+ batch)) { page, stream in
            if pages.count < faults {
                pages.append(page)
                ids.append(stream)
            }
        }
        batch += 1
    }
    return (pages, ids)
}

func benchCore(faults: Int) {
    print(
        "prepage-bench core: \(faults) faults, FSD N = 64, 10 % noise, recorded closed-loop through dp (max_pages 512)")
    print("policy   streams  decisions/s      ns/decision  allocations/decision  checksum")
    for streams in [1, 16] {
        let (pages, ids) = trace(faults: faults, streams: streams, seed: 2_026)
        for policy in [PolicyName.dp, .dpPlus] {
            run(policy, streams: streams, pages: pages, ids: ids)
        }
    }
}

/// Best of three replays of the trace through a fresh session of `policy`.
func run(_ policy: PolicyName, streams: Int, pages: [Int], ids: [UInt32]) {
    let faults = pages.count
    do {
        var best = Double.infinity
        var allocations: UInt64 = 0
        var checksum = 0
        for _ in 0..<3 {
            var dp = try! Prepager(config: PrepageConfig(policy: policy, maxPages: 512))
            checksum = 0
            let a0 = ac_process_allocations()
            let t0 = now()
            pages.withUnsafeBufferPointer { p in
                ids.withUnsafeBufferPointer { s in
                    for i in 0..<p.count {
                        let d = try! dp.decide(page: p[i], stream: s[i])
                        checksum &+= d.start &+ d.count
                    }
                }
            }
            let elapsed = now() - t0
            // The first decision of each stream grows the stream table; count the rest.
            allocations = ac_process_allocations() - a0
            best = min(best, elapsed)
        }
        let rate = Double(faults) / best
        print(
            policy.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
                + String(streams).padding(toLength: 9, withPad: " ", startingAt: 0)
                + format(rate, 0).padding(toLength: 17, withPad: " ", startingAt: 0)
                + format(best / Double(faults) * 1e9, 2).padding(toLength: 13, withPad: " ", startingAt: 0)
                + format(Double(allocations) / Double(faults), 6).padding(toLength: 22, withPad: " ", startingAt: 0)
                + String(checksum))
    }
}

func format(_ x: Double, _ decimals: Int) -> String {
    var buffer = [CChar](repeating: 0, count: 64)
    _ = withVaList([x]) { vsnprintf(&buffer, 64, "%.\(decimals)f", $0) }
    return String(cString: buffer)
}

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "core":
    let faults = arguments.dropFirst().first.flatMap { Int($0) } ?? 10_000_000
    benchCore(faults: faults)
default:
    print("usage: prepage-bench core [FAULTS]   (default 10000000)")
    exit(2)
}

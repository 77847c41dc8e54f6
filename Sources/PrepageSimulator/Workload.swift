/// How a noisy case's size is drawn (a noisy case never has exactly N pages).
public enum NoiseShape: String, Sendable, CaseIterable {
    /// Uniform from [0.5 N, 1.5 N], excluding N — the paper's Fig. 3.
    case around
    /// Uniform from [0.1 N, N).
    case below
    /// Uniform from (N, 3 N].
    case above

    /// A noisy size for cases of `n` pages.
    public func draw(n: Int, using rng: inout SplitMix64) -> Int {
        switch self {
        case .around:
            let lo = max(1, n / 2)
            let hi = max(lo + 1, n + n / 2)
            while true {
                let s = Int.random(in: lo...hi, using: &rng)
                if s != n { return s }
            }
        case .below:
            return Int.random(in: max(1, n / 10)..<max(2, n), using: &rng)
        case .above:
            return Int.random(in: (n + 1)...(3 * n), using: &rng)
        }
    }
}

/// One case of a fixed-size-data load: `size` pages from `base`, touched in order.
public struct Case: Sendable, Hashable {
    /// Lowest page of the case.
    public var base: Int
    public var size: Int
    /// `true` when the program touches the pages from the top down.
    public var downward: Bool

    public init(base: Int, size: Int, downward: Bool) {
        self.base = base
        self.size = size
        self.downward = downward
    }

    /// The `i`-th page touched.
    @inline(__always)
    func page(_ i: Int) -> Int { downward ? base + size - 1 - i : base + i }
}

/// A load as the simulator runs it: cases, in order, drawn from a seed.
public protocol CaseSource: Sendable {
    /// The cases, in order, drawn from `seed`.
    func cases(seed: UInt64) -> [Case]
}

/// A fixed-size-data (FSD) load: cases of N pages at random places, some noisy.
public struct FSDWorkload: CaseSource, Hashable {
    /// The case size; a list of phases when N changes: `[(n, cases)]`.
    public var phases: [Phase]
    /// Share of cases whose size is noise, 0 … 1.
    public var noiseRate: Double
    public var noise: NoiseShape
    /// Share of cases touched from the top down, 0 … 1.
    public var downwardShare: Double
    /// Pages in the address space the cases are placed in.
    public var spacePages: Int

    public struct Phase: Sendable, Hashable {
        public var n: Int
        public var cases: Int
        public init(n: Int, cases: Int) {
            self.n = n
            self.cases = cases
        }
    }

    public init(
        n: Int, cases: Int, noiseRate: Double = 0, noise: NoiseShape = .around,
        downwardShare: Double = 0, spacePages: Int = 1 << 30
    ) {
        self.init(
            phases: [Phase(n: n, cases: cases)], noiseRate: noiseRate, noise: noise,
            downwardShare: downwardShare, spacePages: spacePages)
    }

    public init(
        phases: [Phase], noiseRate: Double = 0, noise: NoiseShape = .around,
        downwardShare: Double = 0, spacePages: Int = 1 << 30
    ) {
        self.phases = phases
        self.noiseRate = noiseRate
        self.noise = noise
        self.downwardShare = downwardShare
        self.spacePages = spacePages
    }

    public var totalCases: Int { phases.reduce(0) { $0 + $1.cases } }

    /// The cases, in order, drawn from `seed`.
    public func cases(seed: UInt64) -> [Case] {
        var rng = SplitMix64(seed: seed)
        var out: [Case] = []
        out.reserveCapacity(totalCases)
        for phase in phases {
            for _ in 0..<phase.cases {
                let noisy = noiseRate > 0 && Double.random(in: 0..<1, using: &rng) < noiseRate
                let size = noisy ? noise.draw(n: phase.n, using: &rng) : phase.n
                let base = Int.random(in: 0...(spacePages - size), using: &rng)
                let down = downwardShare > 0 && Double.random(in: 0..<1, using: &rng) < downwardShare
                out.append(Case(base: base, size: size, downward: down))
            }
        }
        return out
    }
}

extension FSDWorkload {
    /// N drifting linearly from `from` to `to` and back over `cases` cases (one phase per case).
    public static func drifting(from: Int, to: Int, cases: Int, noiseRate: Double = 0) -> FSDWorkload {
        let half = max(1, cases / 2)
        let phases = (0..<cases).map { i -> Phase in
            let t = Double(i < half ? i : cases - 1 - i) / Double(half)
            return Phase(n: from + Int((Double(to - from) * t).rounded()), cases: 1)
        }
        return FSDWorkload(phases: phases, noiseRate: noiseRate)
    }
}

/// Cases whose sizes are drawn from a few modes (a bimodal 16/256 load: small records
/// and large ones), at random places.
public struct MixtureWorkload: CaseSource, Hashable {
    /// The case sizes and their weights (any positive scale).
    public var modes: [Int]
    public var weights: [Double]
    public var cases: Int
    public var spacePages: Int

    public init(modes: [Int], weights: [Double], cases: Int, spacePages: Int = 1 << 30) {
        precondition(modes.count == weights.count && !modes.isEmpty, "one weight per mode")
        self.modes = modes
        self.weights = weights
        self.cases = cases
        self.spacePages = spacePages
    }

    public func cases(seed: UInt64) -> [Case] {
        var rng = SplitMix64(seed: seed)
        let total = weights.reduce(0, +)
        return (0..<cases).map { _ in
            var x = Double.random(in: 0..<total, using: &rng)
            var k = 0
            while k < modes.count - 1 && x >= weights[k] {
                x -= weights[k]
                k += 1
            }
            let size = modes[k]
            return Case(base: Int.random(in: 0...(spacePages - size), using: &rng), size: size, downward: false)
        }
    }
}

/// A STREAM-like triad (`a[i] = b[i] + s × c[i]`): each thread sweeps its slice of three
/// arrays in lockstep, page by page, so its faults alternate between three sequential runs.
///
/// Run it with `ways = arrays` in ``Simulation``: the cases come in groups of `arrays`
/// per thread (thread t's slices of b, c and a), dealt round-robin to the vCPUs.
public struct TriadWorkload: CaseSource, Hashable {
    /// Pages of each thread's slice of one array.
    public var slicePages: Int
    public var threads: Int
    public var arrays: Int
    public var spacePages: Int

    public init(slicePages: Int, threads: Int = 1, arrays: Int = 3, spacePages: Int = 1 << 30) {
        self.slicePages = slicePages
        self.threads = threads
        self.arrays = arrays
        self.spacePages = spacePages
    }

    public func cases(seed: UInt64) -> [Case] {
        var rng = SplitMix64(seed: seed)
        // Arrays at random, non-overlapping places (one region per array, a slice per thread).
        let arrayPages = slicePages * threads
        let region = spacePages / arrays
        let bases = (0..<arrays).map { k in k * region + Int.random(in: 0...(region - arrayPages), using: &rng) }
        // Dealt round-robin: case i goes to vCPU i % threads, so interleave the threads' groups.
        var out: [Case] = []
        for k in 0..<arrays {
            for t in 0..<threads {
                out.append(Case(base: bases[k] + t * slicePages, size: slicePages, downward: false))
            }
        }
        return out
    }
}

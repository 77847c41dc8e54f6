import PrepageCore

/// What a policy may know about a fault beyond its page and stream.
///
/// Agents see only faults; the simulator also knows what the kernel or an
/// oracle would: used only by the simulator-only policies.
public struct FaultContext: Sendable {
    /// The pages of the faulting case not yet touched, the faulting page included: `[lo, hi)`.
    public var remainingLow: Int
    public var remainingHigh: Int
    /// Prefetched pages the stream touched since its previous fault (Linux's swap readahead hits).
    public var hits: Int

    public init(remainingLow: Int, remainingHigh: Int, hits: Int) {
        self.remainingLow = remainingLow
        self.remainingHigh = remainingHigh
        self.hits = hits
    }
}

/// A policy as the simulator drives it: a fault in, a window out.
public protocol SimulatedPolicy {
    /// The policy's name in reports.
    var name: String { get }
    /// The window `[start, start + count)` to fetch; it must contain `page`.
    mutating func fault(page: Int, stream: UInt32, context: FaultContext) -> (start: Int, count: Int)
}

/// A ``Prepager`` (any policy an agent can run) driven by the simulator.
public struct PrepagerPolicy: SimulatedPolicy {
    public var prepager: Prepager
    public let name: String

    public init(_ config: PrepageConfig) throws {
        prepager = try Prepager(config: config)
        name = config.policy.rawValue
    }

    @inline(__always)
    public mutating func fault(page: Int, stream: UInt32, context: FaultContext) -> (start: Int, count: Int) {
        do {
            let d = try prepager.decide(page: page, stream: stream)
            return (d.start, d.count)
        } catch {
            // The simulator never faults outside memory; a single page keeps the run going.
            return (page, 1)
        }
    }
}

/// The link between source and destination: each fault costs
/// `rtt + pages × pageSize / bandwidth`.
public struct LinkModel: Sendable, Hashable {
    /// Round trip per request, microseconds. Default 100.
    public var rttMicros: Double
    /// Bandwidth, bits per second. Default 1 Gbit/s.
    public var bitsPerSecond: Double
    /// Page size, bytes. Default 4,096.
    public var pageSize: Int

    public init(rttMicros: Double = 100, bitsPerSecond: Double = 1e9, pageSize: Int = 4_096) {
        self.rttMicros = rttMicros
        self.bitsPerSecond = bitsPerSecond
        self.pageSize = pageSize
    }

    /// Microseconds one page takes on the link (32.768 for 4 KiB at 1 Gbit/s).
    public var pageMicros: Double { Double(pageSize * 8) / bitsPerSecond * 1e6 }

    /// Microseconds one fault stalls for when it fetches `pages` pages.
    @inline(__always)
    public func stall(pages: Int) -> Double {
        rttMicros + Double(pages * pageSize * 8) / bitsPerSecond * 1e6
    }
}

/// What a run cost.
public struct Metrics: Sendable, Hashable {
    public var faults = 0
    /// Pages fetched (each page counted once per case, even if two windows held it).
    public var pagesFetched = 0
    /// Pages the load touched: what `none` fetches with one fault each.
    public var pagesNeeded = 0
    /// Total stall, microseconds.
    public var stallMicros = 0.0
    public var cases = 0

    public init() {}

    public var pagesWasted: Int { max(0, pagesFetched - pagesNeeded) }
    /// Used / fetched.
    public var accuracy: Double { pagesFetched == 0 ? 1 : Double(pagesNeeded) / Double(pagesFetched) }
    /// Faults avoided / faults under `none` (one per page needed).
    public var coverage: Double { pagesNeeded == 0 ? 0 : Double(pagesNeeded - faults) / Double(pagesNeeded) }
    public var meanResponseMicros: Double { faults == 0 ? 0 : stallMicros / Double(faults) }
    public var faultsPerCase: Double { cases == 0 ? 0 : Double(faults) / Double(cases) }
    public var fetchedOverNeeded: Double { pagesNeeded == 0 ? 0 : Double(pagesFetched) / Double(pagesNeeded) }
}

/// Runs a load closed-loop against a policy: each vCPU touches its cases page by page;
/// a touch of a page no window has fetched is a fault, answered by the policy.
public struct Simulation {
    public var link: LinkModel
    /// vCPUs running the load; cases are dealt to them round-robin and their faults interleave at random.
    public var vcpus: Int
    /// Whether faults carry their vCPU as stream (false: every fault is stream 0).
    public var streamIDs: Bool
    /// Seed of the interleaving.
    public var seed: UInt64
    /// Cases each vCPU sweeps at once, in lockstep page by page (3 for a STREAM triad);
    /// 1 runs each vCPU's cases one after the other.
    public var ways: Int

    public init(link: LinkModel = LinkModel(), vcpus: Int = 1, streamIDs: Bool = true, seed: UInt64 = 1, ways: Int = 1)
    {
        self.link = link
        self.vcpus = vcpus
        self.streamIDs = streamIDs
        self.seed = seed
        self.ways = ways
    }

    /// One vCPU's progress.
    private struct VCPU {
        var queue: [Case]
        var next = 0
        /// Pages of the current case touched so far.
        var touched = 0
        /// Windows fetched for the current case.
        var windows: [(lo: Int, hi: Int)] = []
        var hits = 0
        var justFaulted = false
        var current: Case? { next < queue.count ? queue[next] : nil }
    }

    /// Runs `cases` through `policy`.
    /// - Parameter onFault: called with each fault's page and stream (to record a trace).
    public func run<P: SimulatedPolicy>(
        _ policy: inout P, cases: [Case], onFault: ((Int, UInt32) -> Void)? = nil
    ) -> Metrics {
        if ways > 1 { return runLockstep(&policy, cases: cases, onFault: onFault) }
        var metrics = Metrics()
        metrics.cases = cases.count
        var cpus = (0..<max(1, vcpus)).map { v in
            VCPU(queue: stride(from: v, to: cases.count, by: max(1, vcpus)).map { cases[$0] })
        }
        var active = cpus.indices.filter { cpus[$0].current != nil }
        var rng = SplitMix64(seed: seed)
        while !active.isEmpty {
            let slot = active.count == 1 ? 0 : Int.random(in: 0..<active.count, using: &rng)
            let v = active[slot]
            guard let fault = Self.advance(&cpus[v], metrics: &metrics) else {
                active.swapAt(slot, active.count - 1)
                active.removeLast()
                continue
            }
            let c = cpus[v].current!
            let context = FaultContext(
                remainingLow: c.downward ? c.base : fault,
                remainingHigh: c.downward ? fault + 1 : c.base + c.size,
                hits: cpus[v].hits)
            let stream = streamIDs ? UInt32(v) : 0
            onFault?(fault, stream)
            let w = policy.fault(page: fault, stream: stream, context: context)
            precondition(w.start <= fault && fault < w.start + w.count, "\(policy.name): window misses the fault")
            let fresh = Self.newPages(lo: w.start, hi: w.start + w.count, known: cpus[v].windows)
            cpus[v].windows.append((w.start, w.start + w.count))
            cpus[v].hits = 0
            cpus[v].justFaulted = true
            metrics.faults += 1
            metrics.pagesFetched += fresh
            metrics.stallMicros += link.stall(pages: fresh)
        }
        return metrics
    }

    /// Touches pages of the vCPU's load until one is missing; returns that page, or nil when done.
    private static func advance(_ cpu: inout VCPU, metrics: inout Metrics) -> Int? {
        while let c = cpu.current {
            while cpu.touched < c.size {
                let page = c.page(cpu.touched)
                guard let window = cpu.windows.first(where: { $0.lo <= page && page < $0.hi }) else {
                    return page
                }
                // Every page of this window in the touch direction is present: skip to its end.
                let reach = min(c.size, c.downward ? c.base + c.size - window.lo : window.hi - c.base)
                // The page that just faulted is not a hit; the rest of the run are.
                cpu.hits += reach - cpu.touched - (cpu.justFaulted ? 1 : 0)
                cpu.justFaulted = false
                cpu.touched = reach
                guard reach < c.size else { break }
                // Forget windows that hold no page still to be touched.
                let next = c.page(reach)
                cpu.windows.removeAll { c.downward ? $0.lo > next : $0.hi <= next }
            }
            metrics.pagesNeeded += c.size
            cpu.next += 1
            cpu.touched = 0
            cpu.justFaulted = false
            cpu.windows.removeAll(keepingCapacity: true)
        }
        return nil
    }

    /// One vCPU sweeping a group of `ways` cases in lockstep: one page of each in turn.
    private struct Lockstep {
        var queue: [Case]
        var next = 0
        /// The group being swept: each case and the pages of it touched so far.
        var group: [(c: Case, touched: Int)] = []
        var turn = 0
        var windows: [(lo: Int, hi: Int)] = []
        var hits = 0
        var justFaulted = false
    }

    /// ``run(_:cases:onFault:)`` for `ways > 1`: each vCPU takes its cases `ways` at a time
    /// and touches one page of each in turn; a page no window of the group has fetched is a fault.
    private func runLockstep<P: SimulatedPolicy>(
        _ policy: inout P, cases: [Case], onFault: ((Int, UInt32) -> Void)?
    ) -> Metrics {
        var metrics = Metrics()
        metrics.cases = cases.count
        var cpus = (0..<max(1, vcpus)).map { v in
            Lockstep(queue: stride(from: v, to: cases.count, by: max(1, vcpus)).map { cases[$0] })
        }
        var active = Array(cpus.indices)
        var rng = SplitMix64(seed: seed)
        while !active.isEmpty {
            let slot = active.count == 1 ? 0 : Int.random(in: 0..<active.count, using: &rng)
            let v = active[slot]
            guard let (fault, k) = advance(&cpus[v], metrics: &metrics) else {
                active.swapAt(slot, active.count - 1)
                active.removeLast()
                continue
            }
            let c = cpus[v].group[k].c
            let context = FaultContext(
                remainingLow: c.downward ? c.base : fault, remainingHigh: c.downward ? fault + 1 : c.base + c.size,
                hits: cpus[v].hits)
            let stream = streamIDs ? UInt32(v) : 0
            onFault?(fault, stream)
            let w = policy.fault(page: fault, stream: stream, context: context)
            precondition(w.start <= fault && fault < w.start + w.count, "\(policy.name): window misses the fault")
            let fresh = Self.newPages(lo: w.start, hi: w.start + w.count, known: cpus[v].windows)
            cpus[v].windows.append((w.start, w.start + w.count))
            cpus[v].hits = 0
            cpus[v].justFaulted = true
            metrics.faults += 1
            metrics.pagesFetched += fresh
            metrics.stallMicros += link.stall(pages: fresh)
        }
        return metrics
    }

    /// Touches the group's pages in turn until one is missing: that page and its case's index.
    private func advance(_ cpu: inout Lockstep, metrics: inout Metrics) -> (Int, Int)? {
        while true {
            if cpu.group.isEmpty {
                guard cpu.next < cpu.queue.count else { return nil }
                let end = min(cpu.queue.count, cpu.next + ways)
                cpu.group = cpu.queue[cpu.next..<end].map { ($0, 0) }
                cpu.next = end
                cpu.turn = 0
                cpu.windows.removeAll(keepingCapacity: true)
                cpu.justFaulted = false
            }
            let k = cpu.turn
            let c = cpu.group[k].c
            let page = c.page(cpu.group[k].touched)
            guard cpu.windows.contains(where: { $0.lo <= page && page < $0.hi }) else { return (page, k) }
            if cpu.justFaulted { cpu.justFaulted = false } else { cpu.hits += 1 }
            cpu.group[k].touched += 1
            if cpu.group[k].touched == c.size {
                metrics.pagesNeeded += c.size
                cpu.group.remove(at: k)
                if cpu.group.isEmpty { continue }
                cpu.turn = k % cpu.group.count
            } else {
                cpu.turn = (k + 1) % cpu.group.count
            }
        }
    }

    /// Pages of `[lo, hi)` not in any of `known`.
    private static func newPages(lo: Int, hi: Int, known: [(lo: Int, hi: Int)]) -> Int {
        let parts = known.compactMap { k -> (Int, Int)? in
            let a = max(lo, k.lo)
            let b = min(hi, k.hi)
            return a < b ? (a, b) : nil
        }.sorted { $0.0 < $1.0 }
        var covered = 0
        var end = lo
        for (a, b) in parts where b > end {
            covered += b - max(a, end)
            end = b
        }
        return hi - lo - covered
    }
}

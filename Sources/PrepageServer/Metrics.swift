import PrepageCore
import PrepageSockets
import Synchronization

/// Counters of one event loop. Only its thread adds to them (relaxed atomics,
/// uncontended, no lock); a scrape of `/metrics` sums every loop's counters.
final class LoopMetrics: @unchecked Sendable {
    /// Statuses counted separately: the successes the API answers, then every
    /// problem's status, ascending. Anything else falls in the last slot.
    static let statuses = [200, 201] + Set(ProblemKind.allCases.map(\.status)).sorted()
    static let statusSlots = statuses.count + 1
    /// Upper bounds of the duration histogram, in microseconds (10 µs … 1 s).
    static let bucketsMicros: [UInt64] = [
        10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000,
    ]
    static let routeSlots = Route.allCases.count + 1

    // Layout of the counter block: requests by route and status, then per route the
    // histogram's buckets (the last is +Inf), its sum (µs) and its count.
    private static let requestsBase = 0
    private static let histogramBase = routeSlots * statusSlots
    private static let histogramStride = bucketsMicros.count + 3
    private static let outcomesBase = histogramBase + routeSlots * histogramStride
    private static let pagesAdvised = outcomesBase + Outcome.allCases.count
    private static let size = pagesAdvised + 1

    private let counters: UnsafeMutablePointer<Atomic<UInt64>>

    init() {
        counters = .allocate(capacity: Self.size)
        for i in 0..<Self.size { (counters + i).initialize(to: Atomic(0)) }
    }

    deinit {
        counters.deinitialize(count: Self.size)
        counters.deallocate()
    }

    @inline(__always)
    private func add(_ index: Int, _ value: UInt64 = 1) {
        counters[index].add(value, ordering: .relaxed)
    }

    @inline(__always)
    private func load(_ index: Int) -> UInt64 {
        counters[index].load(ordering: .relaxed)
    }

    static func statusSlot(_ status: Int) -> Int {
        statuses.firstIndex(of: status) ?? statuses.count
    }

    /// Counts one answered request.
    @inline(__always)
    func request(route: Route?, status: Int, micros: UInt64) {
        let r = route?.rawValue ?? Route.unmatchedIndex
        add(Self.requestsBase + r * Self.statusSlots + Self.statusSlot(status))
        var b = 0
        while b < Self.bucketsMicros.count && micros > Self.bucketsMicros[b] { b += 1 }
        let h = Self.histogramBase + r * Self.histogramStride
        add(h + b)
        add(h + Self.bucketsMicros.count + 1, micros)
        add(h + Self.bucketsMicros.count + 2)
    }

    /// Counts decided faults.
    @inline(__always)
    func fault(_ outcome: Outcome, pages: Int) {
        add(Self.outcomesBase + Int(outcome.rawValue))
        add(Self.pagesAdvised, UInt64(pages))
    }

    /// Adds this loop's counters into `total`.
    func accumulate(into total: inout [UInt64]) {
        if total.isEmpty { total = Array(repeating: 0, count: Self.size) }
        for i in 0..<Self.size { total[i] &+= load(i) }
    }

    /// Renders the Prometheus text format (version 0.0.4) from summed counters.
    static func render(
        _ t: [UInt64], sessions: SessionCounts, connections: Int, ready: Bool, process: ProcessStats,
        memory: (used: Int, limit: Int) = (0, 0), logLinesDropped: UInt64 = 0
    ) -> [UInt8] {
        var out = ""
        out.reserveCapacity(8_192)
        out +=
            "# HELP prepage_requests_total HTTP requests answered, by route template (\"unmatched\" for none) and status.\n"
        out += "# TYPE prepage_requests_total counter\n"
        for r in 0..<routeSlots {
            let name = r < Route.allCases.count ? Route(rawValue: r)!.template : "unmatched"
            for s in 0..<statusSlots {
                let v = t[requestsBase + r * statusSlots + s]
                guard v > 0 else { continue }
                let status = s < statuses.count ? String(statuses[s]) : "other"
                out += "prepage_requests_total{route=\"\(name)\",status=\"\(status)\"} \(v)\n"
            }
        }
        out +=
            "# HELP prepage_request_duration_seconds Time from a complete request to its response being queued, by route template.\n"
        out += "# TYPE prepage_request_duration_seconds histogram\n"
        for r in 0..<routeSlots {
            let h = histogramBase + r * histogramStride
            let count = t[h + bucketsMicros.count + 2]
            guard count > 0 else { continue }
            let name = r < Route.allCases.count ? Route(rawValue: r)!.template : "unmatched"
            var cumulative: UInt64 = 0
            for (i, bound) in bucketsMicros.enumerated() {
                cumulative &+= t[h + i]
                out +=
                    "prepage_request_duration_seconds_bucket{route=\"\(name)\",le=\"\(seconds(bound))\"} \(cumulative)\n"
            }
            cumulative &+= t[h + bucketsMicros.count]
            out += "prepage_request_duration_seconds_bucket{route=\"\(name)\",le=\"+Inf\"} \(cumulative)\n"
            out +=
                "prepage_request_duration_seconds_sum{route=\"\(name)\"} \(seconds(t[h + bucketsMicros.count + 1]))\n"
            out += "prepage_request_duration_seconds_count{route=\"\(name)\"} \(count)\n"
        }
        out += "# HELP prepage_faults_total Faults decided, by outcome.\n"
        out += "# TYPE prepage_faults_total counter\n"
        for o in Outcome.allCases {
            out += "prepage_faults_total{outcome=\"\(o.name)\"} \(t[outcomesBase + Int(o.rawValue)])\n"
        }
        out += "# HELP prepage_pages_advised_total Pages in every window answered.\n"
        out += "# TYPE prepage_pages_advised_total counter\n"
        out += "prepage_pages_advised_total \(t[pagesAdvised])\n"
        out += "# HELP prepage_sessions_live Sessions held now.\n"
        out += "# TYPE prepage_sessions_live gauge\n"
        out += "prepage_sessions_live \(sessions.live)\n"
        out += "# HELP prepage_sessions_created_total Sessions created.\n"
        out += "# TYPE prepage_sessions_created_total counter\n"
        out += "prepage_sessions_created_total \(sessions.created)\n"
        out += "# HELP prepage_sessions_expired_total Sessions removed for being idle.\n"
        out += "# TYPE prepage_sessions_expired_total counter\n"
        out += "prepage_sessions_expired_total \(sessions.expired)\n"
        out += "# HELP prepage_connections_open Client connections open now.\n"
        out += "# TYPE prepage_connections_open gauge\n"
        out += "prepage_connections_open \(connections)\n"
        out += "# HELP prepage_ready 1 while the server accepts work, 0 while starting or draining.\n"
        out += "# TYPE prepage_ready gauge\n"
        out += "prepage_ready \(ready ? 1 : 0)\n"
        out +=
            "# HELP prepage_resident_memory_bytes Resident memory of the process (the same as process_resident_memory_bytes).\n"
        out += "# TYPE prepage_resident_memory_bytes gauge\n"
        out += "prepage_resident_memory_bytes \(process.residentBytes)\n"
        out += "# HELP prepage_session_memory_bytes Bytes sessions account for (ids, labels, learned state).\n"
        out += "# TYPE prepage_session_memory_bytes gauge\n"
        out += "prepage_session_memory_bytes \(memory.used)\n"
        out += "# HELP prepage_session_memory_limit_bytes The sessions' memory budget (--memory-limit).\n"
        out += "# TYPE prepage_session_memory_limit_bytes gauge\n"
        out += "prepage_session_memory_limit_bytes \(memory.limit)\n"
        out += "# HELP prepage_log_lines_dropped_total Log lines dropped because standard error did not keep up.\n"
        out += "# TYPE prepage_log_lines_dropped_total counter\n"
        out += "prepage_log_lines_dropped_total \(logLinesDropped)\n"
        out += "# HELP prepage_build_info The server's version and API version; the value is always 1.\n"
        out += "# TYPE prepage_build_info gauge\n"
        out += "prepage_build_info{version=\"\(API.version)\",api=\"\(API.apiVersion)\"} 1\n"
        // The standard process metrics of Prometheus' client libraries, by their standard names.
        out += "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
        out += "# TYPE process_cpu_seconds_total counter\n"
        out += "process_cpu_seconds_total \(decimal(process.cpuSeconds))\n"
        out += "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        out += "# TYPE process_resident_memory_bytes gauge\n"
        out += "process_resident_memory_bytes \(process.residentBytes)\n"
        out += "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
        out += "# TYPE process_virtual_memory_bytes gauge\n"
        out += "process_virtual_memory_bytes \(process.virtualBytes)\n"
        out += "# HELP process_open_fds Number of open file descriptors.\n"
        out += "# TYPE process_open_fds gauge\n"
        out += "process_open_fds \(process.openFDs)\n"
        out += "# HELP process_max_fds Maximum number of open file descriptors.\n"
        out += "# TYPE process_max_fds gauge\n"
        out += "process_max_fds \(process.maxFDs)\n"
        out += "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
        out += "# TYPE process_start_time_seconds gauge\n"
        out += "process_start_time_seconds \(decimal(process.startTimeSeconds))\n"
        return Array(out.utf8)
    }

    /// A non-negative value with at most 6 decimals, no exponent (`12.34`).
    private static func decimal(_ v: Double) -> String {
        seconds(UInt64(max(0, v * 1_000_000).rounded()))
    }

    /// Microseconds as decimal seconds (`0.000025`).
    private static func seconds(_ micros: UInt64) -> String {
        let whole = micros / 1_000_000
        var frac = String(micros % 1_000_000)
        frac = String(repeating: "0", count: 6 - frac.count) + frac
        while frac.hasSuffix("0") { frac.removeLast() }
        return frac.isEmpty ? "\(whole)" : "\(whole).\(frac)"
    }
}

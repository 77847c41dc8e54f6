import PrepageCore
import Synchronization

/// Counters of one event loop. Only its thread adds to them (relaxed atomics,
/// uncontended, no lock); a scrape of `/metrics` sums every loop's counters.
final class LoopMetrics: @unchecked Sendable {
    /// Statuses counted separately; anything else falls in the last slot.
    static let statuses = [200, 201, 400, 401, 404, 405, 408, 409, 413, 414, 415, 422, 429, 431, 500, 501, 503, 505, 507]
    static let statusSlots = statuses.count + 1
    /// Upper bounds of the duration histogram, in microseconds (10 µs … 1 s).
    static let bucketsMicros: [UInt64] = [
        10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000,
    ]
    static let routeSlots = Route.allCases.count + 1

    // Layout of the counter block.
    private static let requestsBase = 0
    private static let bucketsBase = routeSlots * statusSlots
    private static let durationSum = bucketsBase + bucketsMicros.count + 1
    private static let durationCount = durationSum + 1
    private static let outcomesBase = durationCount + 1
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
        add(Self.bucketsBase + b)
        add(Self.durationSum, micros)
        add(Self.durationCount)
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
        _ t: [UInt64], sessions: SessionCounts, connections: Int, ready: Bool, residentBytes: Int,
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
        out += "# HELP prepage_request_duration_seconds Time from a complete request to its response being queued.\n"
        out += "# TYPE prepage_request_duration_seconds histogram\n"
        var cumulative: UInt64 = 0
        for (i, bound) in bucketsMicros.enumerated() {
            cumulative &+= t[bucketsBase + i]
            out += "prepage_request_duration_seconds_bucket{le=\"\(seconds(bound))\"} \(cumulative)\n"
        }
        cumulative &+= t[bucketsBase + bucketsMicros.count]
        out += "prepage_request_duration_seconds_bucket{le=\"+Inf\"} \(cumulative)\n"
        out += "prepage_request_duration_seconds_sum \(seconds(t[durationSum]))\n"
        out += "prepage_request_duration_seconds_count \(t[durationCount])\n"
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
        out += "# HELP prepage_resident_memory_bytes Resident memory of the process.\n"
        out += "# TYPE prepage_resident_memory_bytes gauge\n"
        out += "prepage_resident_memory_bytes \(residentBytes)\n"
        out += "# HELP prepage_session_memory_bytes Bytes sessions account for (ids, labels, learned state).\n"
        out += "# TYPE prepage_session_memory_bytes gauge\n"
        out += "prepage_session_memory_bytes \(memory.used)\n"
        out += "# HELP prepage_session_memory_limit_bytes The sessions' memory budget (--memory-limit).\n"
        out += "# TYPE prepage_session_memory_limit_bytes gauge\n"
        out += "prepage_session_memory_limit_bytes \(memory.limit)\n"
        out += "# HELP prepage_log_lines_dropped_total Log lines dropped because standard error did not keep up.\n"
        out += "# TYPE prepage_log_lines_dropped_total counter\n"
        out += "prepage_log_lines_dropped_total \(logLinesDropped)\n"
        return Array(out.utf8)
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

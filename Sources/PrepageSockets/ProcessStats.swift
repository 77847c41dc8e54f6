import Glibc

/// The standard `process_*` figures of Prometheus' client libraries, read from
/// the kernel for this process. Everything read lives under `/proc/self`, so it
/// works with systemd's `ProcSubset=pid`.
public struct ProcessStats: Sendable, Hashable {
    /// User and system CPU time, seconds (`getrusage`).
    public var cpuSeconds: Double
    /// Resident and virtual memory, bytes (`/proc/self/statm`).
    public var residentBytes: Int
    public var virtualBytes: Int
    /// Open descriptors (`/proc/self/fd`) and the soft limit on them (`RLIMIT_NOFILE`).
    public var openFDs: Int
    public var maxFDs: Int
    /// When the process started, seconds since the Unix epoch: its start in clock
    /// ticks since boot (`/proc/self/stat`), placed on the wall clock through
    /// `CLOCK_BOOTTIME`. 0 when unknown.
    public var startTimeSeconds: Double

    /// Reads the figures now.
    public static func current() -> ProcessStats {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu =
            Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
            + Double(usage.ru_stime.tv_usec) / 1e6
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var resident = 0
        var virtual = 0
        if let statm = System.readFile("/proc/self/statm") {
            let fields = String(decoding: statm, as: UTF8.self).split(separator: " ")
            if fields.count > 1 {
                virtual = (Int(fields[0]) ?? 0) * page
                resident = (Int(fields[1]) ?? 0) * page
            }
        }
        var limit = rlimit()
        let maxFDs = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Int(clamping: limit.rlim_cur) : 0
        return ProcessStats(
            cpuSeconds: cpu, residentBytes: resident, virtualBytes: virtual, openFDs: openDescriptors(),
            maxFDs: maxFDs, startTimeSeconds: startTime)
    }

    /// Entries of `/proc/self/fd` (the directory's own descriptor not counted).
    static func openDescriptors() -> Int {
        guard let dir = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(dir) }
        var n = 0
        while let entry = readdir(dir) {
            let first = withUnsafeBytes(of: entry.pointee.d_name) { $0[0] }
            if first != UInt8(ascii: ".") { n += 1 }
        }
        return max(0, n - 1)
    }

    /// Computed once: it does not change.
    static let startTime: Double = {
        guard let stat = System.readFile("/proc/self/stat") else { return 0 }
        // Field 22 (starttime), counted after the command name's closing parenthesis
        // (the name may hold spaces and parentheses).
        let text = String(decoding: stat, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return 0 }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state), so field 22 is fields[19].
        guard fields.count > 19, let ticks = Double(fields[19]) else { return 0 }
        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        var boot = timespec()
        clock_gettime(CLOCK_BOOTTIME, &boot)
        let sinceBoot = Double(boot.tv_sec) + Double(boot.tv_nsec) / 1e9
        let now = Double(System.wallNanoseconds()) / 1e9
        return now - sinceBoot + ticks / hz
    }()
}

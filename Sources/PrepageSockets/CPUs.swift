import CEpoll
import Glibc

/// How many CPUs this process may use: what `--threads` defaults to.
///
/// The smaller of two limits, either of which may be far below the machine's
/// online CPUs: the CPU affinity mask (`taskset`, a cpuset, systemd's
/// `CPUAffinity=`), and the CPU bandwidth quota of the process's cgroup and of
/// every cgroup above it (Kubernetes' CPU limit, systemd's `CPUQuota=`): cgroup v2
/// `cpu.max` (`200000 100000` is 2 CPUs, `max 100000` none), cgroup v1
/// `cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1: none). A fractional quota rounds
/// up (1.5 CPUs run 2 loops, as Go's and Java's runtimes do); the result is at least 1.
public struct CPULimits: Sendable, Hashable {
    /// CPUs in the affinity mask; `nil` when unknown.
    public var affinity: Int?
    /// The smallest cgroup CPU quota on the way to the root, in CPUs; `nil` for none.
    public var quota: Double?
    /// Online CPUs, the fallback when neither is known.
    public var online: Int

    public init(affinity: Int?, quota: Double?, online: Int) {
        self.affinity = affinity
        self.quota = quota
        self.online = online
    }

    /// Event loops to run: `min(affinity, ⌈quota⌉)`, at least 1.
    public var usable: Int {
        var n = affinity ?? online
        if let quota { n = min(n, Int(quota.rounded(.up))) }
        return max(1, n)
    }

    /// Reads the limits of this process. `root` prefixes every path read (`/proc/self/…`,
    /// the cgroup files), so tests can point it at a directory of fixture files.
    public static func current(root: String = "") -> CPULimits {
        CPULimits(
            affinity: root.isEmpty ? affinityCount() : nil, quota: cgroupQuota(root: root),
            online: System.processorCount)
    }

    /// CPUs in this thread's affinity mask (`sched_getaffinity`), `nil` when it fails.
    public static func affinityCount() -> Int? {
        var mask = [UInt8](repeating: 0, count: 1_024)  // 8,192 CPUs
        let bytes = mask.withUnsafeMutableBufferPointer { cepoll_affinity($0.baseAddress, UInt($0.count)) }
        guard bytes > 0 else { return nil }
        let n = mask.prefix(Int(bytes)).reduce(0) { $0 + $1.nonzeroBitCount }
        return n > 0 ? n : nil
    }

    /// The smallest CPU quota of the process's cgroup and its ancestors, read from
    /// `root` + `/proc/self/cgroup`, `/proc/self/mountinfo` and the cgroup files.
    public static func cgroupQuota(root: String) -> Double? {
        guard let cgroups = read(root + "/proc/self/cgroup"), let mounts = read(root + "/proc/self/mountinfo")
        else { return nil }
        var limit: Double?
        for directory in cgroupDirectories(cgroup: cgroups, mountinfo: mounts) {
            let quota: Double?
            if directory.v2 {
                quota = read(root + directory.path + "/cpu.max").flatMap(parseCPUMax)
            } else {
                quota = parseCFS(
                    quota: read(root + directory.path + "/cpu.cfs_quota_us"),
                    period: read(root + directory.path + "/cpu.cfs_period_us"))
            }
            if let quota { limit = min(limit ?? quota, quota) }
        }
        return limit
    }

    /// cgroup v2 `cpu.max`: `"QUOTA PERIOD"` in CPUs, `nil` for `max` or anything unreadable.
    public static func parseCPUMax(_ text: String) -> Double? {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count >= 1, fields[0] != "max", let quota = Double(fields[0]), quota > 0 else { return nil }
        let period = fields.count >= 2 ? Double(fields[1]) ?? 100_000 : 100_000
        guard period > 0 else { return nil }
        return quota / period
    }

    /// cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` in CPUs, `nil` for -1 (no quota).
    public static func parseCFS(quota: String?, period: String?) -> Double? {
        guard let q = quota.flatMap({ Double($0.trimmingSpaces) }), q > 0,
            let p = period.flatMap({ Double($0.trimmingSpaces) }), p > 0
        else { return nil }
        return q / p
    }

    /// The cgroup directories holding the process's CPU quota, from its own up to the
    /// root of the hierarchy's mount: for cgroup v2 (`0::/path`), or else the v1
    /// hierarchy with the `cpu` controller (`4:cpu,cpuacct:/path`).
    ///
    /// A cgroup path is relative to the hierarchy's root; `/proc/self/mountinfo` says
    /// where that root (or a subtree of it, inside a container) is mounted.
    public static func cgroupDirectories(cgroup: String, mountinfo: String) -> [(path: String, v2: Bool)] {
        var v2Path: String?
        var v1Path: String?
        for line in cgroup.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[0] == "0" && parts[1].isEmpty {
                v2Path = String(parts[2])
            } else if parts[1].split(separator: ",").contains("cpu") {
                v1Path = String(parts[2])
            }
        }
        // mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
        for line in mountinfo.split(separator: "\n") {
            let halves = line.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " ")
            let right = halves[1].split(separator: " ")
            guard left.count >= 5, right.count >= 1 else { continue }
            let mountRoot = unescape(String(left[3]))
            let mountPoint = unescape(String(left[4]))
            if let path = v1Path {
                // The cpu controller is on a v1 hierarchy (v1 alone, or hybrid with an empty v2 beside it).
                if right[0] == "cgroup", right.count >= 3, right[2].split(separator: ",").contains("cpu") {
                    return ancestors(of: path, mountRoot: mountRoot, mountPoint: mountPoint).map { ($0, false) }
                }
            } else if let path = v2Path, right[0] == "cgroup2" {
                return ancestors(of: path, mountRoot: mountRoot, mountPoint: mountPoint).map { ($0, true) }
            }
        }
        return []
    }

    /// `mountPoint` + the part of `path` below `mountRoot`, then each parent up to `mountPoint`.
    static func ancestors(of path: String, mountRoot: String, mountPoint: String) -> [String] {
        var relative = Substring(path)
        if mountRoot != "/" {
            // Inside a container without a cgroup namespace, the mount shows a subtree.
            guard relative.hasPrefix(mountRoot) else { return [mountPoint] }
            relative = relative.dropFirst(mountRoot.count)
        }
        var components = relative.split(separator: "/")
        var result: [String] = []
        let base = mountPoint == "/" ? "" : mountPoint
        while true {
            result.append(
                components.isEmpty ? (base.isEmpty ? "/" : base) : base + "/" + components.joined(separator: "/"))
            if components.isEmpty { break }
            components.removeLast()
        }
        return result
    }

    /// mountinfo escapes space, tab, newline and backslash as `\\ooo`.
    private static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 3 < b.count,
                let v = UInt8(String(decoding: b[(i + 1)...(i + 3)], as: UTF8.self), radix: 8)
            {
                out.append(v)
                i += 4
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func read(_ path: String) -> String? {
        System.readFile(path, limit: 1 << 20).map { String(decoding: $0, as: UTF8.self) }
    }
}

extension String {
    fileprivate var trimmingSpaces: Substring {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\n" || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\n" || c == "\t" { s.removeLast() }
        return s
    }
}

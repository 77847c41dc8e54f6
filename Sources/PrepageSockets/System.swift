import Glibc

/// Clocks, signals and threads: the remaining system calls the server needs.
public enum System {
    /// Nanoseconds of `CLOCK_MONOTONIC`: for timeouts and durations.
    @inline(__always)
    public static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Nanoseconds since the Unix epoch (`CLOCK_REALTIME`): for timestamps people read.
    @inline(__always)
    public static func wallNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec)
    }

    /// This machine's (or pod's) host name, `gethostname`.
    public static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Online processor count.
    public static var processorCount: Int {
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// Blocks SIGTERM and SIGINT in the calling thread and every thread it starts
    /// afterwards, and ignores SIGPIPE, so ``waitForTerminationSignal()`` can take them.
    /// Call it first thing in `main`, before any thread exists.
    public static func blockTerminationSignals() {
        signal(SIGPIPE, SIG_IGN)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Waits until SIGTERM or SIGINT arrives; returns the signal number.
    public static func waitForTerminationSignal() -> Int32 {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        var received: Int32 = 0
        while sigwait(&set, &received) != 0 {}
        return received
    }

    /// Waits at most `milliseconds` for SIGTERM or SIGINT (blocked by
    /// ``blockTerminationSignals()``); returns the signal, or `nil` when the time ran out.
    public static func waitForTerminationSignal(milliseconds: Int) -> Int32? {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        let deadline = monotonicNanoseconds() &+ UInt64(max(0, milliseconds)) &* 1_000_000
        while true {
            let now = monotonicNanoseconds()
            guard now < deadline else { return nil }
            let left = deadline - now
            var timeout = timespec(tv_sec: Int(left / 1_000_000_000), tv_nsec: Int(left % 1_000_000_000))
            let received = sigtimedwait(&set, nil, &timeout)
            if received > 0 { return received }
            if errno == EAGAIN { return nil }
            // EINTR: another signal; wait for the rest of the time.
        }
    }

    /// Reads a whole small file (a token file); `nil` when it cannot be read.
    public static func readFile(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while bytes.count < limit {
            let n = chunk.withUnsafeMutableBytes { raw in retryingEINTR { Glibc.read(fd, raw.baseAddress, raw.count) } }
            if n < 0 { return nil }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }

    /// The machine's physical memory in bytes (`sysconf`), `nil` when unknown.
    public static func physicalMemoryBytes() -> Int? {
        let pages = sysconf(Int32(_SC_PHYS_PAGES))
        let size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return nil }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: size)
        return overflow ? Int.max : bytes
    }

    /// The memory limit of this process's cgroup in bytes (v2 `memory.max`, else
    /// v1 `memory.limit_in_bytes`), `nil` when there is none or it cannot be read.
    public static func cgroupMemoryLimitBytes() -> Int? {
        var candidates: [String] = []
        // The cgroup of this process (v2: one line "0::/path").
        if let own = readFile("/proc/self/cgroup", limit: 65_536) {
            for line in String(decoding: own, as: UTF8.self).split(separator: "\n") where line.hasPrefix("0::") {
                let path = String(line.dropFirst(3))
                if path != "/" { candidates.append("/sys/fs/cgroup" + path + "/memory.max") }
            }
        }
        candidates += ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        for path in candidates {
            guard let bytes = readFile(path, limit: 64) else { continue }
            var text = String(decoding: bytes, as: UTF8.self)
            while text.last == "\n" || text.last == " " { text.removeLast() }
            if text == "max" { return nil }
            // cgroup v1 reports "no limit" as a huge number (near Int64.max rounded to pages).
            guard let value = Int(text), value > 0, value < 1 << 60 else { return nil }
            return value
        }
        return nil
    }

    /// Sleeps the calling thread (for short waits: polling a lock another process holds for an instant).
    public static func sleep(microseconds: Int) {
        var ts = timespec(tv_sec: microseconds / 1_000_000, tv_nsec: (microseconds % 1_000_000) * 1_000)
        var left = timespec()
        while nanosleep(&ts, &left) != 0 && errno == EINTR { ts = left }
    }

    /// Sleeps the calling thread.
    public static func sleep(milliseconds: Int) {
        var ts = timespec(tv_sec: milliseconds / 1_000, tv_nsec: (milliseconds % 1_000) * 1_000_000)
        var left = timespec()
        while nanosleep(&ts, &left) != 0 && errno == EINTR { ts = left }
    }

    /// Resident set size of this process in bytes (`/proc/self/statm`), 0 when unknown.
    public static func residentBytes() -> Int {
        guard let bytes = readFile("/proc/self/statm") else { return 0 }
        let fields = String(decoding: bytes, as: UTF8.self).split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

extension System {
    /// The value of an environment variable, or `nil`.
    public static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// Ends the process with `code`.
    public static func exit(_ code: Int32) -> Never {
        Glibc.exit(code)
    }

    /// Writes a string to standard error.
    public static func writeStandardError(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { writeStandardError($0) }
    }

    /// Writes bytes to standard error in one `write` (a log line stays whole).
    public static func writeStandardError(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let n = retryingEINTR { Glibc.write(2, bytes.baseAddress! + offset, bytes.count - offset) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// The absolute path of the running executable (`/proc/self/exe`), if known.
    public static func executablePath() -> String? {
        var buffer = [CChar](repeating: 0, count: 4_096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The current working directory, if known.
    public static func currentDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: 4_096)
        guard getcwd(&buffer, buffer.count) != nil else { return nil }
        return String(cString: buffer)
    }
}

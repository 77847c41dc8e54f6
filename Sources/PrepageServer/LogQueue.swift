import PrepageSockets
import Synchronization

/// Log lines on their way to standard error: a bounded queue drained by a
/// thread of its own, so that a slow or stalled stderr (a full pipe nobody
/// reads) never blocks an event loop.
///
/// When the queue is full a line is dropped and counted
/// (`prepage_log_lines_dropped_total`); once the queue has drained, one line
/// says how many were dropped since the last such line.
public final class LogQueue: Sendable {
    /// The process's queue, which ``PrepageLogHandler`` writes to.
    public static let shared = LogQueue()

    /// Most lines waiting, and most bytes waiting.
    public let capacityLines: Int
    public let capacityBytes: Int

    private struct State {
        var lines: [[UInt8]] = []
        var bytes = 0
        /// Dropped since the last report line.
        var droppedUnreported: UInt64 = 0
        var json = false
        var started = false
        /// The drainer is writing a batch (for ``flush(timeoutMilliseconds:)``).
        var writing = false
    }

    private let state = Mutex(State())
    private let wake: EventFD?
    private let droppedTotal = Atomic<UInt64>(0)
    /// Where lines go: standard error, or a test's sink.
    private let sink: @Sendable (UnsafeRawBufferPointer) -> Void

    public init(
        capacityLines: Int = 8_192, capacityBytes: Int = 4 << 20,
        sink: @escaping @Sendable (UnsafeRawBufferPointer) -> Void = { System.writeStandardError($0) }
    ) {
        self.capacityLines = capacityLines
        self.capacityBytes = capacityBytes
        self.sink = sink
        wake = try? EventFD()
    }

    /// Lines dropped because the queue was full, since the process started.
    public var dropped: UInt64 { droppedTotal.load(ordering: .relaxed) }

    /// Queues one line (ending in a newline). Never blocks on I/O: the lock is
    /// held only to append. Drops and counts the line when the queue is full.
    public func enqueue(_ line: [UInt8], json: Bool) {
        guard let wake else {
            line.withUnsafeBytes { sink($0) }  // no eventfd: write directly (never seen in practice)
            return
        }
        let (wasEmpty, start) = state.withLock { st -> (Bool, Bool) in
            st.json = json
            guard st.lines.count < capacityLines && st.bytes + line.count <= capacityBytes else {
                st.droppedUnreported &+= 1
                droppedTotal.add(1, ordering: .relaxed)
                return (false, false)
            }
            let wasEmpty = st.lines.isEmpty
            st.lines.append(line)
            st.bytes += line.count
            let start = !st.started
            st.started = true
            return (wasEmpty, start)
        }
        if start {
            // The drainer starts with the first line; it lives as long as the process.
            _ = try? OSThread(name: "prepaged-log") { [self] in self.drain(wake) }
        }
        if wasEmpty { wake.signal() }
    }

    /// Writes queued lines forever; after a batch that leaves the queue empty,
    /// reports the lines dropped meanwhile.
    private func drain(_ wake: EventFD) {
        var batch: [[UInt8]] = []
        while true {
            _ = wake.wait(timeoutMilliseconds: 200)
            while true {
                let report: [UInt8]? = state.withLock { st in
                    swap(&batch, &st.lines)
                    st.bytes = 0
                    st.writing = !batch.isEmpty
                    guard batch.isEmpty, st.droppedUnreported > 0 else { return nil }
                    let n = st.droppedUnreported
                    st.droppedUnreported = 0
                    return Self.droppedLine(n, json: st.json)
                }
                if let report {
                    report.withUnsafeBytes { sink($0) }
                    break
                }
                if batch.isEmpty { break }
                for line in batch { line.withUnsafeBytes { sink($0) } }
                batch.removeAll(keepingCapacity: batch.capacity <= 1_024)
                state.withLock { $0.writing = false }
            }
        }
    }

    /// Waits until every queued line is written, or `timeoutMilliseconds` pass
    /// (stderr may never drain). Returns whether the queue emptied.
    @discardableResult
    public func flush(timeoutMilliseconds: Int) -> Bool {
        let deadline = System.monotonicNanoseconds() &+ UInt64(max(0, timeoutMilliseconds)) &* 1_000_000
        while true {
            let idle = state.withLock { $0.lines.isEmpty && !$0.writing && $0.droppedUnreported == 0 }
            if idle { return true }
            if System.monotonicNanoseconds() >= deadline { return false }
            wake?.signal()
            System.sleep(milliseconds: 5)
        }
    }

    /// `<time> warning log lines dropped count=N reason=...`, or the JSON form.
    static func droppedLine(_ n: UInt64, json: Bool) -> [UInt8] {
        var line: [UInt8] = []
        let now = System.wallNanoseconds()
        let reason = "standard error did not keep up; the log queue was full"
        if json {
            var w = JSONWriter()
            w.raw("{\"time\":")
            w.timestamp(nanoseconds: now)
            w.raw(",\"level\":\"warning\",\"logger\":\"prepaged\",\"message\":\"log lines dropped\",\"count\":")
            w.string(String(n))
            w.raw(",\"reason\":")
            w.string(reason)
            w.raw("}")
            line = w.bytes
        } else {
            appendRFC3339(nanoseconds: now, into: &line)
            line.append(contentsOf: " warning log lines dropped count=\(n) reason=".utf8)
            var w = JSONWriter()
            w.string(reason)
            line.append(contentsOf: w.bytes)
        }
        line.append(0x0A)
        return line
    }
}

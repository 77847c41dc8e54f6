import ArgumentParser
import Glibc
import PrepageCore
import PrepageSimulator

/// `prepage-sim decide`: one decision per fault line, flushed before waiting for more input.
struct Decide: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read faults from stdin (PAGE or PAGE STREAM per line), print one decision per line as JSON.",
        discussion: """
            Each decision is flushed before the next read blocks, so a driver can run a closed loop.
            Config keys: \(PrepageConfig.acceptedKeys); a missing key takes its default.
            A bad config or input line is reported on stderr with its line number; exit status 2.
            """)

    @Option(name: .long, help: "Session configuration as JSON, e.g. '{\"max_pages\":64}'.")
    var config: String = "{}"

    func run() throws {
        let parsed: PrepageConfig
        do {
            parsed = try ConfigJSON.parse(config)
        } catch {
            fail("invalid --config: \(error)")
        }
        var policy = try! Prepager(config: parsed)  // validated above
        var output = OutputBuffer()
        var lineNumber = 0
        var failure: String?
        LineReader(fd: STDIN_FILENO).forEachLine(beforeBlocking: { output.flush() }) { line in
            lineNumber += 1
            do {
                let (page, stream) = try FaultLine.parse(line)
                let decision = try policy.decide(page: page, stream: stream)
                output.append(decision.jsonLine)
                return true
            } catch {
                failure = "line \(lineNumber): \(error)"
                return false
            }
        }
        output.flush()
        if let failure { fail(failure) }
    }
}

/// Prints `message` on stderr and exits with status 2.
func fail(_ message: String) -> Never {
    FileHandleStderr.write("prepage-sim: \(message)\n")
    exit(2)
}

enum FileHandleStderr {
    static func write(_ text: String) {
        var text = text
        text.withUTF8 { _ = Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}

/// Decisions waiting to be written to stdout.
struct OutputBuffer {
    private var bytes: [UInt8] = []

    mutating func append(_ line: String) {
        bytes.append(contentsOf: line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        if bytes.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                exit(1)  // stdout closed: nobody is reading
            }
            offset += n
        }
        bytes.removeAll(keepingCapacity: true)
    }
}

/// Reads lines from a descriptor with one buffer, calling `beforeBlocking` whenever
/// every complete line read so far has been handled and more input must be awaited.
struct LineReader {
    let fd: Int32

    func forEachLine(beforeBlocking: () -> Void, _ body: (ArraySlice<UInt8>) -> Bool) {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var start = 0
        var end = 0
        while true {
            // Hand out every complete line already buffered.
            while let nl = buffer[start..<end].firstIndex(of: UInt8(ascii: "\n")) {
                guard body(buffer[start..<nl]) else { return }
                start = nl + 1
            }
            if start > 0 {
                buffer.withUnsafeMutableBufferPointer { b in
                    _ = memmove(b.baseAddress!, b.baseAddress! + start, end - start)
                }
                end -= start
                start = 0
            }
            if end == buffer.count { buffer.append(contentsOf: repeatElement(0, count: buffer.count)) }
            beforeBlocking()
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + end, $0.count - end) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                if end > 0 { _ = body(buffer[0..<end]) }  // a last line without newline
                return
            }
            end += n
        }
    }
}

import CEpoll
import Glibc

/// A joinable POSIX thread: the event loops run one each.
public final class OSThread: @unchecked Sendable {
    private var handle = pthread_t()

    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts `body` on a new thread named `name` (at most 15 bytes show in `top`).
    public init(name: String, _ body: @escaping @Sendable () -> Void) throws(SocketError) {
        let box = Unmanaged.passRetained(
            Box {
                cepoll_set_thread_name(name)
                body()
            }
        ).toOpaque()
        let result = pthread_create(
            &handle, nil,
            { raw in
                let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
                box.body()
                return nil
            }, box)
        guard result == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw SocketError(call: "pthread_create", errno: result)
        }
    }

    /// Waits for the thread to finish.
    public func join() {
        pthread_join(handle, nil)
    }
}

extension System {
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

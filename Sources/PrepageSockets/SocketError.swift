import Glibc

/// A failed system call: its name and the `errno` it left.
///
/// Every syscall of the project goes through this module, so every I/O error
/// names the call that failed (`accept4`, `epoll_ctl`, …) and the reason.
public struct SocketError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The system call, as in its man page (`bind`, `epoll_wait`).
    public var call: String
    /// The `errno` value after the call.
    public var errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// Captures the current `errno` for `call`.
    static func last(_ call: String) -> SocketError {
        SocketError(call: call, errno: Glibc.errno)
    }

    /// Whether the address was taken (`EADDRINUSE`).
    public var isAddressInUse: Bool { errno == EADDRINUSE }

    public var description: String {
        "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// Runs a syscall until it does not fail with `EINTR`: the one retry loop of the module.
///
/// - Returns: the call's result; `-1` with `errno` set for any other failure.
@inline(__always)
func retryingEINTR<T: BinaryInteger>(_ body: () -> T) -> T {
    while true {
        let result = body()
        if result == -1 && Glibc.errno == EINTR { continue }
        return result
    }
}

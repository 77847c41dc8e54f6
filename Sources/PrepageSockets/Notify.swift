import Glibc

/// The service manager's readiness protocol (`sd_notify(3)`), spoken directly:
/// one datagram of `KEY=VALUE` lines to the `AF_UNIX` socket named by
/// `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace).
///
/// Written here rather than linked from libsystemd: the protocol is this one
/// `sendto`, documented as stable, and libsystemd would add a build and run-time
/// dependency (and a library to put in the container image) for it. Without
/// `$NOTIFY_SOCKET` (not started by systemd with `Type=notify`) it does nothing.
public enum ServiceNotify {
    /// Sends `state` (`READY=1`, `STOPPING=1`, `STATUS=…`, lines joined by `\n`).
    /// - Returns: `false` when there is no socket to tell or the send fails; the
    ///   service runs the same either way.
    @discardableResult
    public static func send(_ state: String) -> Bool {
        guard let path = System.environment("NOTIFY_SOCKET"), !path.isEmpty else { return false }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }  // abstract namespace
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity, bytes.first == 0 || bytes.first == UInt8(ascii: "/") else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == 0 ? 0 : 1))
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { Glibc.close(fd) }
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                message.withUnsafeBytes { body in
                    retryingEINTR { sendto(fd, body.baseAddress, body.count, Int32(MSG_NOSIGNAL), sa, length) }
                }
            }
        }
        return sent == message.count
    }
}

import CEpoll
import Glibc

/// What a non-blocking read or write did.
public enum IOResult: Sendable, Equatable {
    /// This many bytes moved (always > 0).
    case bytes(Int)
    /// The socket is not ready (`EAGAIN`): wait for epoll.
    case wouldBlock
    /// The peer closed its side (reads only).
    case endOfFile
}

/// POSIX socket calls on raw descriptors. Every socket made here is
/// non-blocking (except client sockets made by ``connect(host:port:timeoutMilliseconds:)``)
/// and close-on-exec.
public enum Socket {
    /// Opens a TCP listener on `host:port`.
    ///
    /// - Parameters:
    ///   - host: a numeric IPv4 or IPv6 address (`127.0.0.1`, `0.0.0.0`, `::1`, `::`);
    ///     `localhost` is `127.0.0.1`. `::` listens on IPv4 too (`IPV6_V6ONLY` off).
    ///   - port: the port; 0 lets the kernel choose (read it back with ``localPort(_:)``).
    ///   - reusePort: set `SO_REUSEPORT`, so one listener per event loop can share the port
    ///     and the kernel spreads connections over them.
    ///     > Warning: the kernel lets any process of the same user join the group too, and
    ///     > then splits connections with it. Call ``claim(host:port:)`` first.
    ///   - backlog: the accept queue length. Default 4,096.
    /// - Returns: a non-blocking, close-on-exec listening descriptor.
    public static func listen(host: String, port: Int, reusePort: Bool, backlog: Int32 = 4_096) throws(SocketError)
        -> Int32
    {
        let fd = try bound(host: host, port: port, reusePort: reusePort)
        guard Glibc.listen(fd, backlog) == 0 else {
            let error = SocketError.last("listen")
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// Checks that no other socket holds `host:port`, by binding it once without
    /// `SO_REUSEPORT` and closing it again.
    ///
    /// A listener group of `SO_REUSEPORT` sockets admits any socket of the same user
    /// that sets the option: a second server started on a port in use would bind
    /// without error and take part of the first one's connections. A socket without the
    /// option conflicts with every other socket on the port, reuse or not, so this bind
    /// fails with `EADDRINUSE` exactly when something (another process, or one of ours)
    /// is there. `SO_REUSEADDR` is set, as on the listeners, so that connections of an
    /// earlier run still in `TIME_WAIT` do not count. Port 0 needs no check.
    ///
    /// > Note: the check and the listeners' binds are two steps: a process that binds
    /// > the same port with `SO_REUSEPORT` in the microseconds between them is not seen.
    /// - Throws: ``SocketError`` with `EADDRINUSE` when the address is taken.
    public static func claim(host: String, port: Int) throws(SocketError) {
        guard port != 0 else { return }
        let fd = try bound(host: host, port: port, reusePort: false)
        Glibc.close(fd)
    }

    /// A TCP socket bound to `host:port`, not listening yet.
    private static func bound(host: String, port: Int, reusePort: Bool) throws(SocketError) -> Int32 {
        let address = try SocketAddress(host: host, port: port)
        let fd = socket(
            address.family,
            Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .last("socket") }
        do throws(SocketError) {
            try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, name: "setsockopt(SO_REUSEADDR)")
            if reusePort { try setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1, name: "setsockopt(SO_REUSEPORT)") }
            if address.family == AF_INET6 {
                // `::` takes IPv4 too, whatever net.ipv6.bindv6only says; `::1` is IPv6 only anyway.
                try setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 0, name: "setsockopt(IPV6_V6ONLY)")
            }
            let result = address.withSockaddr { bind(fd, $0, $1) }
            guard result == 0 else { throw .last("bind") }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// Whether `host` is an address ``listen(host:port:reusePort:backlog:)`` takes:
    /// numeric IPv4 or IPv6, or `localhost`.
    public static func isNumericAddress(_ host: String) -> Bool {
        (try? SocketAddress(host: host, port: 0)) != nil
    }

    /// The local port a socket is bound to (after binding to port 0).
    public static func localPort(_ fd: Int32) throws(SocketError) -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { throw .last("getsockname") }
        if Int32(storage.ss_family) == AF_INET6 {
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    Int(UInt16(bigEndian: $0.pointee.sin6_port))
                }
            }
        }
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }

    /// Accepts one connection: non-blocking, close-on-exec, with `TCP_NODELAY` set
    /// (each response goes out in one write; Nagle would hold it for the peer's delayed ACK).
    ///
    /// - Returns: the new descriptor, or `nil` when the queue is empty (`EAGAIN`).
    ///   Call in a loop until `nil`.
    /// > Note: `ECONNABORTED` (a peer that gave up while queued) is skipped, not thrown.
    public static func accept(_ listener: Int32) throws(SocketError) -> Int32? {
        while true {
            let fd = retryingEINTR {
                cepoll_accept4(listener, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
            }
            if fd >= 0 {
                // Best effort: a socket already reset by the peer may refuse it.
                var one: Int32 = 1
                _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return fd
            }
            switch errno {
            case EAGAIN, EWOULDBLOCK: return nil
            case ECONNABORTED, EPROTO: continue
            default: throw .last("accept4")
            }
        }
    }

    /// Reads what is available into `buffer`.
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> IOResult {
        let n = retryingEINTR { Glibc.read(fd, buffer.baseAddress, buffer.count) }
        if n > 0 { return .bytes(n) }
        if n == 0 { return .endOfFile }
        if errno == EAGAIN || errno == EWOULDBLOCK { return .wouldBlock }
        throw .last("read")
    }

    /// Sends bytes with `MSG_NOSIGNAL` (a closed peer is an error, not a SIGPIPE).
    public static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SocketError) -> IOResult {
        let n = retryingEINTR { Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }
        if n >= 0 { return .bytes(n) }
        if errno == EAGAIN || errno == EWOULDBLOCK { return .wouldBlock }
        throw .last("send")
    }

    /// Whether the kernel holds bytes (or an end of file) not read yet: `recv` with
    /// `MSG_PEEK | MSG_DONTWAIT`, which consumes nothing.
    public static func hasUnreadInput(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let n = retryingEINTR { Glibc.recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) }
        return n >= 0  // data, or end of file still to be seen; -1 with EAGAIN: nothing
    }

    /// Shuts down the write side (`shutdown(SHUT_WR)`), so the peer sees end of file
    /// while unread input can still be drained. Errors are ignored: the peer may be gone.
    public static func shutdownWrite(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    /// Closes a descriptor. `EINTR` is not retried (Linux closes the descriptor anyway).
    public static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Opens a blocking, close-on-exec client connection with `TCP_NODELAY` to `host`
    /// (a numeric IPv4 or IPv6 address, or a name resolved with `getaddrinfo`), giving up
    /// after `timeoutMilliseconds` (the connect runs non-blocking under `poll`).
    public static func connect(host: String, port: Int, timeoutMilliseconds: Int32) throws(SocketError) -> Int32 {
        let address: SocketAddress
        do {
            address = try SocketAddress(host: host, port: port)
        } catch {
            address = try SocketAddress(host: try resolve(host: host), port: port)
        }
        let fd = socket(
            address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue),
            0)
        guard fd >= 0 else { throw .last("socket") }
        do throws(SocketError) {
            let result = address.withSockaddr { raw, length in retryingEINTR { Glibc.connect(fd, raw, length) } }
            if result != 0 {
                guard Glibc.errno == EINPROGRESS else { throw .last("connect") }
                var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = retryingEINTR { poll(&pfd, 1, timeoutMilliseconds) }
                guard ready > 0 else { throw SocketError(call: "connect", errno: ready == 0 ? ETIMEDOUT : Glibc.errno) }
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                guard error == 0 else { throw SocketError(call: "connect", errno: error) }
            }
            // Back to blocking: the caller reads and writes with timeouts of its own.
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
            try setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1, name: "setsockopt(TCP_NODELAY)")
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// The first address of `host` (`getaddrinfo`), as its numeric text.
    private static func resolve(host: String) throws(SocketError) -> String {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &list)
        guard rc == 0, let first = list, let addr = first.pointee.ai_addr else {
            if let list { freeaddrinfo(list) }
            throw SocketError(call: "getaddrinfo(\(host)): \(String(cString: gai_strerror(rc)))", errno: EINVAL)
        }
        defer { freeaddrinfo(list) }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        if first.pointee.ai_family == AF_INET6 {
            addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { a in
                var ip = a.pointee.sin6_addr
                _ = inet_ntop(AF_INET6, &ip, &text, socklen_t(text.count))
            }
        } else {
            addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { a in
                var ip = a.pointee.sin_addr
                _ = inet_ntop(AF_INET, &ip, &text, socklen_t(text.count))
            }
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Sets the send and receive timeouts of a blocking socket.
    public static func setTimeouts(_ fd: Int32, milliseconds: Int) {
        var tv = timeval(tv_sec: milliseconds / 1_000, tv_usec: (milliseconds % 1_000) * 1_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Blocking read for client sockets: waits for at most `timeoutMilliseconds` (`poll`).
    ///
    /// - Returns: bytes read, 0 at end of file, `nil` on timeout.
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, timeoutMilliseconds: Int32)
        throws(SocketError) -> Int?
    {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = retryingEINTR { poll(&pfd, 1, timeoutMilliseconds) }
        guard ready >= 0 else { throw .last("poll") }
        if ready == 0 { return nil }
        let n = retryingEINTR { Glibc.read(fd, buffer.baseAddress, buffer.count) }
        guard n >= 0 else { throw .last("read") }
        return n
    }

    /// Blocking send of all bytes, for client sockets.
    public static func sendAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SocketError) {
        var offset = 0
        while offset < bytes.count {
            let n = retryingEINTR {
                Glibc.send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            guard n >= 0 else { throw .last("send") }
            offset += n
        }
    }

    // MARK: - Helpers

    private static func setOption(_ fd: Int32, _ level: Int32, _ option: Int32, _ value: Int32, name: String)
        throws(SocketError)
    {
        var value = value
        guard setsockopt(fd, level, option, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw .last(name)
        }
    }
}

/// An IPv4 or IPv6 socket address parsed from a numeric host and a port.
struct SocketAddress {
    private var storage = sockaddr_storage()
    let family: Int32
    let length: socklen_t

    /// - Parameter host: numeric IPv4 (`127.0.0.1`) or IPv6 (`::1`, `::`), or `localhost` (`127.0.0.1`).
    init(host: String, port: Int) throws(SocketError) {
        guard (0...65_535).contains(port) else { throw SocketError(call: "bind (port \(port))", errno: EINVAL) }
        let host = host == "localhost" ? "127.0.0.1" : host
        if host.utf8.contains(UInt8(ascii: ":")) {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = UInt16(port).bigEndian
            guard inet_pton(AF_INET6, host, &a.sin6_addr) == 1 else {
                throw SocketError(call: "inet_pton(\(host))", errno: EINVAL)
            }
            family = AF_INET6
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee = a }
            }
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = UInt16(port).bigEndian
            guard inet_pton(AF_INET, host, &a.sin_addr) == 1 else {
                throw SocketError(call: "inet_pton(\(host))", errno: EINVAL)
            }
            family = AF_INET
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee = a }
            }
        }
    }

    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var copy = storage
        return withUnsafePointer(to: &copy) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }
}

import CEpoll
import Glibc

/// An epoll instance, level-triggered: register a descriptor once, change its
/// interest only when a write blocks or drains, remove it when it closes.
public struct Epoll: ~Copyable {
    /// Interest and readiness flags, as epoll spells them.
    public struct Events: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let readable = Events(rawValue: EPOLLIN.rawValue)
        public static let writable = Events(rawValue: EPOLLOUT.rawValue)
        public static let hangup = Events(rawValue: EPOLLHUP.rawValue)
        public static let error = Events(rawValue: EPOLLERR.rawValue)
        public static let peerClosed = Events(rawValue: EPOLLRDHUP.rawValue)
    }

    /// One ready descriptor.
    public struct Event: Sendable {
        public var fd: Int32
        public var events: Events
    }

    public let fd: Int32
    private let buffer: UnsafeMutablePointer<epoll_event>
    private let capacity: Int

    /// - Parameter capacity: the most events one ``wait(timeoutMilliseconds:_:)`` returns. Default 256.
    public init(capacity: Int = 256) throws(SocketError) {
        fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard fd >= 0 else { throw .last("epoll_create1") }
        self.capacity = capacity
        buffer = .allocate(capacity: capacity)
    }

    deinit {
        Glibc.close(fd)
        buffer.deallocate()
    }

    public func add(_ target: Int32, _ events: Events) throws(SocketError) {
        try control(EPOLL_CTL_ADD, target, events, "epoll_ctl(ADD)")
    }

    public func modify(_ target: Int32, _ events: Events) throws(SocketError) {
        try control(EPOLL_CTL_MOD, target, events, "epoll_ctl(MOD)")
    }

    /// Removes a descriptor; errors are ignored (closing it removes it anyway).
    public func remove(_ target: Int32) {
        _ = epoll_ctl(fd, EPOLL_CTL_DEL, target, nil)
    }

    /// Waits for readiness and calls `body` for each ready descriptor.
    ///
    /// - Parameter timeoutMilliseconds: -1 waits for ever. An interrupted wait returns no events.
    /// - Returns: how many events were handled.
    @discardableResult
    public func wait(timeoutMilliseconds: Int32, _ body: (Event) -> Void) throws(SocketError) -> Int {
        let n = epoll_wait(fd, buffer, Int32(capacity), timeoutMilliseconds)
        if n < 0 {
            if errno == EINTR { return 0 }
            throw .last("epoll_wait")
        }
        for i in 0..<Int(n) {
            body(Event(fd: buffer[i].data.fd, events: Events(rawValue: buffer[i].events)))
        }
        return Int(n)
    }

    private func control(_ op: Int32, _ target: Int32, _ events: Events, _ name: String) throws(SocketError) {
        var event = epoll_event()
        event.events = events.rawValue
        event.data.fd = target
        guard epoll_ctl(fd, op, target, &event) == 0 else { throw .last(name) }
    }
}

/// An eventfd: a counter another thread bumps to wake an event loop (shutdown, wake-ups).
public final class EventFD: Sendable {
    public let fd: Int32

    public init() throws(SocketError) {
        fd = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        guard fd >= 0 else { throw .last("eventfd") }
    }

    deinit { Glibc.close(fd) }

    /// Wakes the loop waiting on ``fd``. Safe from any thread.
    public func signal() {
        var one: UInt64 = 1
        _ = retryingEINTR { Glibc.write(fd, &one, 8) }
    }

    /// Waits until ``signal()`` is called or `timeoutMilliseconds` pass; resets the counter.
    /// - Returns: `true` when signalled.
    @discardableResult
    public func wait(timeoutMilliseconds: Int32) -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = retryingEINTR { poll(&pfd, 1, timeoutMilliseconds) }
        guard ready > 0 else { return false }
        drain()
        return true
    }

    /// Resets the counter after a wake-up.
    public func drain() {
        var value: UInt64 = 0
        _ = retryingEINTR { Glibc.read(fd, &value, 8) }
    }
}

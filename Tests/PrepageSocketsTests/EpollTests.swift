import Foundation
import PrepageSockets
import Testing

/// Epoll and EventFD on real descriptors: readiness reported, changed and removed.
@Suite struct EpollTests {
    /// The events of one wait of at most `timeout` milliseconds.
    static func events(_ epoll: borrowing Epoll, timeout: Int32) throws -> [Epoll.Event] {
        var events: [Epoll.Event] = []
        try epoll.wait(timeoutMilliseconds: timeout) { events.append($0) }
        return events
    }

    @Test func anEventFDIsReadableOnceSignalledUntilDrained() throws {
        let epoll = try Epoll()
        let wake = try EventFD()
        try epoll.add(wake.fd, .readable)
        #expect(try Self.events(epoll, timeout: 0).isEmpty)
        wake.signal()
        let ready = try Self.events(epoll, timeout: 10_000)
        #expect(ready.count == 1)
        #expect(ready.first?.fd == wake.fd)
        #expect(ready.first?.events.contains(.readable) == true)
        // Level-triggered: still readable until the counter is read.
        #expect(try Self.events(epoll, timeout: 0).count == 1)
        wake.drain()
        #expect(try Self.events(epoll, timeout: 0).isEmpty)
    }

    @Test func modifyChangesTheInterestAndRemoveEndsIt() throws {
        let epoll = try Epoll()
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        // The write end of an empty pipe is writable, but only readability is asked for.
        try epoll.add(ends[1], .readable)
        #expect(try Self.events(epoll, timeout: 0).isEmpty)
        try epoll.modify(ends[1], .writable)
        let ready = try Self.events(epoll, timeout: 10_000)
        #expect(ready.map(\.fd) == [ends[1]])
        #expect(ready.first?.events.contains(.writable) == true)
        epoll.remove(ends[1])
        #expect(try Self.events(epoll, timeout: 0).isEmpty)
    }

    @Test func aClosedWriterShowsAsHangupOnTheReadEnd() throws {
        let epoll = try Epoll()
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]) }
        try epoll.add(ends[0], .readable)
        let byte: [UInt8] = [42]
        #expect(write(ends[1], byte, 1) == 1)
        close(ends[1])
        let ready = try Self.events(epoll, timeout: 10_000)
        #expect(ready.map(\.fd) == [ends[0]])
        #expect(ready.first?.events.contains([.readable, .hangup]) == true)
    }

    @Test func registeringTwiceOrChangingAnUnknownDescriptorIsAnError() throws {
        let epoll = try Epoll()
        let wake = try EventFD()
        try epoll.add(wake.fd, .readable)
        let twice = #expect(throws: SocketError.self) { try epoll.add(wake.fd, .readable) }
        #expect(twice == SocketError(call: "epoll_ctl(ADD)", errno: EEXIST))
        let other = try EventFD()
        let unknown = #expect(throws: SocketError.self) { try epoll.modify(other.fd, .readable) }
        #expect(unknown == SocketError(call: "epoll_ctl(MOD)", errno: ENOENT))
    }

    @Test func anEventFDWaitReportsASignalOrTheTimeout() throws {
        let wake = try EventFD()
        #expect(!wake.wait(timeoutMilliseconds: 1))
        wake.signal()
        wake.signal()
        #expect(wake.wait(timeoutMilliseconds: 10_000))
        // The wait drained both signals.
        #expect(!wake.wait(timeoutMilliseconds: 0))
    }
}

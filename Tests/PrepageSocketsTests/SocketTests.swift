import Foundation
import PrepageSockets
import Testing

/// Sockets on loopback, for real: a listener on port 0, a client, bytes both ways.
@Suite struct SocketTests {
    /// Waits (at most 10 s) until `fd` is readable, through an epoll of its own.
    static func awaitReadable(_ fd: Int32) throws {
        let epoll = try Epoll()
        try epoll.add(fd, .readable)
        var ready = false
        try epoll.wait(timeoutMilliseconds: 10_000) { ready = ready || $0.fd == fd }
        #expect(ready, "descriptor \(fd) did not become readable")
    }

    /// Accepts the next connection, waiting for it through epoll.
    static func acceptOne(_ listener: Int32) throws -> Int32 {
        try awaitReadable(listener)
        return try #require(try Socket.accept(listener))
    }

    @Test func aListenerOnPortZeroAcceptsAClientAndMovesBytesBothWays() throws {
        let listener = try Socket.listen(host: "127.0.0.1", port: 0, reusePort: false)
        defer { Socket.close(listener) }
        let port = try Socket.localPort(listener)
        #expect(port > 0)
        // Nobody has connected: accept does not block, it says so.
        #expect(try Socket.accept(listener) == nil)

        let client = try Socket.connect(host: "127.0.0.1", port: port, timeoutMilliseconds: 10_000)
        defer { Socket.close(client) }
        let server = try Self.acceptOne(listener)
        defer { Socket.close(server) }

        var buffer = [UInt8](repeating: 0, count: 64)
        // Nothing sent yet: the non-blocking read would block, and nothing is pending.
        #expect(try buffer.withUnsafeMutableBytes { try Socket.read(server, into: $0) } == .wouldBlock)
        #expect(!Socket.hasUnreadInput(server))

        try Array("ping".utf8).withUnsafeBytes { try Socket.sendAll(client, $0) }
        try Self.awaitReadable(server)
        #expect(Socket.hasUnreadInput(server))
        let got = try buffer.withUnsafeMutableBytes { try Socket.read(server, into: $0) }
        #expect(got == .bytes(4))
        #expect(Array(buffer[0..<4]) == Array("ping".utf8))

        let sent = try Array("pong!".utf8).withUnsafeBytes { try Socket.send(server, $0) }
        #expect(sent == .bytes(5))
        let n = try buffer.withUnsafeMutableBytes { try Socket.read(client, into: $0, timeoutMilliseconds: 10_000) }
        #expect(n == 5)
        #expect(Array(buffer[0..<5]) == Array("pong!".utf8))

        // The server shuts its write side: the client reads end of file (0), not a timeout.
        Socket.shutdownWrite(server)
        let eof = try buffer.withUnsafeMutableBytes { try Socket.read(client, into: $0, timeoutMilliseconds: 10_000) }
        #expect(eof == 0)
        // The client closes: the server reads end of file.
        Socket.close(client)
        try Self.awaitReadable(server)
        #expect(try buffer.withUnsafeMutableBytes { try Socket.read(server, into: $0) } == .endOfFile)
    }

    @Test func aBlockingReadWithNothingToReadTimesOut() throws {
        let listener = try Socket.listen(host: "127.0.0.1", port: 0, reusePort: false)
        defer { Socket.close(listener) }
        let client = try Socket.connect(
            host: "localhost", port: try Socket.localPort(listener), timeoutMilliseconds: 10_000)
        defer { Socket.close(client) }
        var buffer = [UInt8](repeating: 0, count: 8)
        #expect(try buffer.withUnsafeMutableBytes { try Socket.read(client, into: $0, timeoutMilliseconds: 10) } == nil)
    }

    @Test func aPortHeldByAListenerCannotBeClaimed() throws {
        let listener = try Socket.listen(host: "127.0.0.1", port: 0, reusePort: true)
        defer { Socket.close(listener) }
        let port = try Socket.localPort(listener)
        let error = #expect(throws: SocketError.self) { try Socket.claim(host: "127.0.0.1", port: port) }
        #expect(error?.isAddressInUse == true)
        #expect(error?.call == "bind")
        // Port 0 is never taken.
        try Socket.claim(host: "127.0.0.1", port: 0)
    }

    @Test func anIPv6ListenerOnTheWildcardTakesIPv4Clients() throws {
        guard let listener = try? Socket.listen(host: "::", port: 0, reusePort: false) else { return }  // no IPv6
        defer { Socket.close(listener) }
        let client = try Socket.connect(
            host: "127.0.0.1", port: try Socket.localPort(listener), timeoutMilliseconds: 10_000)
        defer { Socket.close(client) }
        let server = try Self.acceptOne(listener)
        Socket.close(server)
    }

    @Test func onlyNumericAddressesAndLocalhostAreListenedOn() throws {
        for host in ["127.0.0.1", "0.0.0.0", "::1", "::", "localhost"] {
            #expect(Socket.isNumericAddress(host), "\(host)")
        }
        for host in ["example.com", "127.0.0", "", "::g"] {
            #expect(!Socket.isNumericAddress(host), "\(host)")
        }
        let error = #expect(throws: SocketError.self) {
            _ = try Socket.listen(host: "example.com", port: 0, reusePort: false)
        }
        #expect(error == SocketError(call: "inet_pton(example.com)", errno: EINVAL))
        let port = #expect(throws: SocketError.self) {
            _ = try Socket.listen(host: "127.0.0.1", port: 70_000, reusePort: false)
        }
        #expect(port == SocketError(call: "bind (port 70000)", errno: EINVAL))
    }

    @Test func aConnectionToAClosedPortIsRefused() throws {
        // Bind a port and close it again: nothing listens there now.
        let listener = try Socket.listen(host: "127.0.0.1", port: 0, reusePort: false)
        let port = try Socket.localPort(listener)
        Socket.close(listener)
        let error = #expect(throws: SocketError.self) {
            _ = try Socket.connect(host: "127.0.0.1", port: port, timeoutMilliseconds: 10_000)
        }
        #expect(error?.call == "connect")
        #expect(error?.errno == ECONNREFUSED)
    }
}

/// The module's one error: the call and the reason `errno` gives.
@Suite struct SocketErrorTests {
    @Test func theMessageNamesTheCallTheReasonAndTheNumber() {
        let error = SocketError(call: "bind", errno: EADDRINUSE)
        #expect(error.description == "bind failed: Address already in use (errno \(EADDRINUSE))")
        #expect(error.isAddressInUse)
        let other = SocketError(call: "open(/nowhere)", errno: ENOENT)
        #expect(other.description == "open(/nowhere) failed: No such file or directory (errno \(ENOENT))")
        #expect(!other.isAddressInUse)
    }
}

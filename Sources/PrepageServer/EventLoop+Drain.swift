import PrepageSockets

/// Graceful shutdown: the listener closes, idle connections close, requests in flight finish.
extension EventLoop {
    /// Begins the drain: no more accepts; each connection is told (see ``ConnectionMachine/drain``).
    func beginDrain(_ now: UInt64) {
        draining = true
        drainDeadline = now &+ UInt64(shared.drainTimeout.nanoseconds)
        if !acceptPaused { epoll.remove(listener) }
        Socket.close(listener)
        listener = -1
        for case let c? in connections {
            let action = c.machine.drain(
                hasPendingInput: c.hasPendingInput, hasPendingOutput: c.hasPendingOutput,
                unreadInKernel: { Socket.hasUnreadInput(c.fd) })
            if action == .close { close(c) }
        }
    }

    /// Closes every connection when the loop ends. Requests still incomplete when the
    /// drain ends get no answer; they are counted.
    func endDrain() {
        var incomplete = 0
        for case let c? in connections {
            if !c.machine.isLingering && c.hasPendingInput { incomplete += 1 }
            close(c)
        }
        if incomplete > 0 {
            logger.warning(
                "drain ended with requests incomplete; closed unanswered", metadata: ["incomplete": "\(incomplete)"])
        }
        if evictedIdle > 0 {
            logger.info("idle connections closed to admit new ones at the cap", metadata: ["count": "\(evictedIdle)"])
        }
    }
}

import PrepageSockets

/// Accepting connections, and making room for one at the connection cap.
extension EventLoop {
    func acceptAll() {
        while true {
            let fd: Int32
            do {
                guard let accepted = try Socket.accept(listener) else { return }
                fd = accepted
            } catch {
                // EMFILE and friends: the level-triggered listener would report the same
                // pending connection at once, forever. Stop watching it until the next sweep.
                logger.warning("accept failed; pausing accepts for a sweep", metadata: ["error": "\(error)"])
                epoll.remove(listener)
                acceptPaused = true
                return
            }
            let open = shared.api.connections.wrappingAdd(1, ordering: .relaxed).newValue
            if draining {
                shared.api.connections.subtract(1, ordering: .relaxed)
                Socket.close(fd)
                continue
            }
            if open > shared.limits.maxConnections {
                // At the cap, a new connection is still taken: the longest-idle one of
                // this loop makes room (as nginx reuses keep-alive connections), so a
                // flood of idle sockets cannot lock everyone out.
                guard let victim = longestIdle() else {
                    shared.api.connections.subtract(1, ordering: .relaxed)
                    Socket.close(fd)
                    continue
                }
                close(victim)
                evictedIdle += 1
            }
            do {
                try epoll.add(fd, .readable)
            } catch {
                shared.api.connections.subtract(1, ordering: .relaxed)
                Socket.close(fd)
                continue
            }
            let c = Connection(fd: fd, limits: shared.limits, now: System.monotonicNanoseconds(), admit: admit)
            nextSerial &+= 1
            c.serial = nextSerial
            if Int(fd) >= connections.count {
                connections.append(contentsOf: repeatElement(nil, count: Int(fd) + 1 - connections.count))
            }
            connections[Int(fd)] = c
            openCount += 1
        }
    }

    /// This loop's connection idle the longest: waiting for a request (a kept-alive one
    /// between requests, or a new one that has sent nothing), with nothing to send.
    func longestIdle() -> Connection? {
        var best: Connection? = nil
        for case let c? in connections
        where c.machine.isIdle(hasPendingInput: c.hasPendingInput, hasPendingOutput: c.hasPendingOutput) {
            if best == nil || c.machine.lastActivity < best!.machine.lastActivity { best = c }
        }
        return best
    }
}

import PrepageHTTP

/// The periodic sweep: accepts resumed, the `Date` value, every connection's timers.
extension EventLoop {
    /// Closes idle keep-alive connections, times out slow requests, ends lingering closes.
    func sweep(_ now: UInt64) {
        if acceptPaused && !draining {
            acceptPaused = false
            try? epoll.add(listener, .readable)
        }
        let second = shared.clockSeconds()
        if second != dateSecond {
            dateSecond = second
            date = HTTPDate.imfFixdate(epochSeconds: second)
        }
        for case let c? in connections {
            switch c.machine.tick(
                now: now, timeouts: timeouts, hasPendingInput: c.hasPendingInput, hasPendingOutput: c.hasPendingOutput)
            {
            case .none:
                break
            case .close:
                close(c)
            case .requestTimeout:
                let reply = shared.api.problem(
                    APIProblem(.requestTimeout, "the request did not arrive within \(shared.limits.requestDeadline)"),
                    context)
                c.parser.reset()
                c.input.removeAll()
                c.inputStart = 0
                finish(reply, request: nil, route: nil, on: c, keepAlive: false, started: now, method: "-")
                flush(c)
            }
        }
    }

    /// Updates the cached `Date:` now (called once before the loop starts).
    func refreshDate() {
        dateSecond = shared.clockSeconds()
        date = HTTPDate.imfFixdate(epochSeconds: dateSecond)
    }
}

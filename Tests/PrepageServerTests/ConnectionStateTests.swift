import Testing

@testable import PrepageServer

/// Every transition of a connection's lifecycle, driven by events and a fake monotonic
/// time: no sockets, no sleeps. The timeouts over a real socket are in ProtocolTests
/// (one each) and LifecycleTests (the drain).
@Suite struct ConnectionStateTests {
    /// Nanoseconds, small so the arithmetic is readable.
    let timeouts = ConnectionMachine.Timeouts(idle: 5_000, request: 10_000, linger: 2_000)
    let high = ConnectionMachine.outputHighWater

    /// `#expect` cannot call a mutating method inside its expression: the event is sent here first.
    func check<T: Equatable>(_ actual: T, _ expected: T, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(actual == expected, sourceLocation: sourceLocation)
    }

    /// A connection accepted at 100 that has received a request and answered it, keeping alive, at `at`.
    func keptAlive(at: UInt64 = 1_000) -> ConnectionMachine {
        var m = ConnectionMachine(now: 100)
        check(m.bytesRead(now: at), .parse)
        check(m.nextParse(pendingOutput: 0), .parse)
        m.requestParsed()
        m.answered(keepAlive: true)
        check(m.nextParse(pendingOutput: 200), .parse)
        m.inputParsed(hasPendingInput: false, unreadInKernel: { false })
        m.wrote(now: at)
        check(m.writeFinished(now: at, timeouts: timeouts), .none)
        check(m.resumesAfterFlush(), false)
        return m
    }

    // MARK: - Accept and read

    @Test func aNewConnectionIsOpenAndUnderTheRequestDeadlineFromAccept() {
        let m = ConnectionMachine(now: 100)
        #expect(m.phase == .open)
        #expect(m.requestStarted == 100)
        #expect(m.lastActivity == 100)
        #expect(!m.receivedAny)
        #expect(!m.isIdle(hasPendingInput: false, hasPendingOutput: true))
        #expect(m.isIdle(hasPendingInput: false, hasPendingOutput: false))
    }

    @Test func bytesReadAreParsedAndCountAsActivity() {
        var m = ConnectionMachine(now: 100)
        check(m.bytesRead(now: 300), .parse)
        #expect(m.lastActivity == 300)
        #expect(m.receivedAny)
        check(m.nextParse(pendingOutput: 0), .parse)
    }

    @Test func aPartialRequestKeepsTheDeadlineOfItsFirstByte() {
        var m = keptAlive(at: 1_000)
        #expect(m.requestStarted == 0)
        check(m.bytesRead(now: 3_000), .parse)
        m.inputParsed(hasPendingInput: true, unreadInKernel: { false })
        #expect(m.requestStarted == 3_000)
        check(m.bytesRead(now: 4_000), .parse)
        m.inputParsed(hasPendingInput: true, unreadInKernel: { false })
        #expect(m.requestStarted == 3_000)
        m.requestParsed()
        #expect(m.requestStarted == 0)
        m.inputParsed(hasPendingInput: false, unreadInKernel: { false })
        #expect(m.requestStarted == 0)
    }

    // MARK: - Answers and Connection: close

    @Test func keepAliveAnswersLeaveTheConnectionOpen() {
        let m = keptAlive()
        #expect(m.phase == .open)
        #expect(
            m.keepsAlive(
                requested: true,
                moreInput: {
                    Issue.record("asked"); return false
                }))
        #expect(!m.keepsAlive(requested: false, moreInput: { true }))
    }

    @Test func connectionCloseAnswerIsSentThenLingers() {
        var m = ConnectionMachine(now: 100)
        _ = m.bytesRead(now: 200)
        m.requestParsed()
        m.answered(keepAlive: false)
        #expect(m.phase == .closing)
        check(m.nextParse(pendingOutput: 100), .stop)
        m.inputParsed(hasPendingInput: true, unreadInKernel: { false })
        m.wrote(now: 250)
        check(m.writeFinished(now: 250, timeouts: timeouts), .shutdownAndLinger(resumeReading: false))
        #expect(m.phase == .lingering(until: 2_250))
        #expect(!m.isIdle(hasPendingInput: false, hasPendingOutput: false))
    }

    @Test func aParseErrorClosesAfterItsAnswer() {
        var m = ConnectionMachine(now: 100)
        _ = m.bytesRead(now: 200)
        m.requestFailed()
        #expect(m.phase == .closing)
        check(m.nextParse(pendingOutput: 0), .stop)
        check(m.writeFinished(now: 300, timeouts: timeouts), .shutdownAndLinger(resumeReading: false))
        #expect(m.phase == .lingering(until: 2_300))
    }

    // MARK: - Lingering

    @Test func lingeringDiscardsInputAndClosesWhenTheLingerEnds() {
        var m = ConnectionMachine(now: 100)
        m.requestFailed()
        _ = m.writeFinished(now: 1_000, timeouts: timeouts)
        check(m.bytesRead(now: 1_500), .discard)
        check(m.nextParse(pendingOutput: 0), .stop)
        #expect(!m.parsesAfterWritable(hasPendingInput: true))
        check(m.tick(now: 2_999, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false), .none)
        check(m.tick(now: 3_000, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false), .close)
        #expect(m.isClosed)
        check(m.tick(now: 9_000, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false), .none)
    }

    @Test func thePeersCloseWhileLingeringClosesAtOnce() {
        var m = ConnectionMachine(now: 100)
        m.requestFailed()
        _ = m.writeFinished(now: 1_000, timeouts: timeouts)
        check(m.peerClosedInput(hasPendingOutput: false), .close)
        #expect(m.isClosed)
    }

    // MARK: - Peer close

    @Test func thePeersCloseWithNothingToSendCloses() {
        var m = keptAlive()
        check(m.peerClosedInput(hasPendingOutput: false), .close)
        #expect(m.isClosed)
    }

    @Test func thePeersCloseWithAnswersQueuedSendsThemThenClosesWithoutLingering() {
        var m = keptAlive()
        check(m.peerClosedInput(hasPendingOutput: true), .flushThenClose)
        #expect(m.phase == .closing)
        check(m.nextParse(pendingOutput: 10), .stop)
        check(m.writeFinished(now: 2_000, timeouts: timeouts), .close)
        #expect(m.isClosed)
    }

    @Test func thePeersCloseMidWriteClosesWhenTheBlockedWriteFinishes() {
        var m = keptAlive()
        check(m.writeWouldBlock(), true)
        check(m.peerClosedInput(hasPendingOutput: true), .flushThenClose)
        check(m.writeWouldBlock(), false)  // still blocked: EPOLLOUT already on
        check(m.writeFinished(now: 2_000, timeouts: timeouts), .close)
    }

    // MARK: - Large writes: pause and resume

    @Test func parsingPausesAtTheHighWaterMarkAndResumesWhenEverythingWentOutAtOnce() {
        var m = keptAlive()
        check(m.nextParse(pendingOutput: high - 1), .parse)
        check(m.nextParse(pendingOutput: high), .pause)
        m.inputParsed(hasPendingInput: true, unreadInKernel: { false })
        m.wrote(now: 2_000)
        check(m.writeFinished(now: 2_000, timeouts: timeouts), .none)
        check(m.resumesAfterFlush(), true)
        check(m.resumesAfterFlush(), false)  // once
        check(m.nextParse(pendingOutput: 0), .parse)
    }

    @Test func aPausedConnectionWhoseWriteBlocksResumesOnTheWritableEvent() {
        var m = keptAlive()
        check(m.nextParse(pendingOutput: high + 5), .pause)
        check(m.writeWouldBlock(), true)
        check(m.resumesAfterFlush(), false)
        #expect(!m.parsesAfterWritable(hasPendingInput: true))
        m.wrote(now: 2_000)
        check(m.writeWouldBlock(), false)
        check(m.writeFinished(now: 2_500, timeouts: timeouts), .resumeReading)
        #expect(!m.writeBlocked)
        #expect(m.parsesAfterWritable(hasPendingInput: true))
        #expect(!m.parsesAfterWritable(hasPendingInput: false))
        check(m.nextParse(pendingOutput: 0), .parse)
    }

    @Test func aClosingConnectionWhoseWriteBlockedWatchesInputAgainToLinger() {
        var m = keptAlive()
        m.answered(keepAlive: false)
        check(m.writeWouldBlock(), true)
        check(m.writeFinished(now: 4_000, timeouts: timeouts), .shutdownAndLinger(resumeReading: true))
        #expect(m.phase == .lingering(until: 6_000))
    }

    // MARK: - Timeouts

    @Test func anIdleKeepAliveConnectionClosesAfterTheIdleTimeout() {
        var m = keptAlive(at: 1_000)
        check(m.tick(now: 5_999, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false), .none)
        check(m.tick(now: 6_000, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false), .close)
        #expect(m.isClosed)
    }

    @Test func activityPushesTheIdleTimeoutBack() {
        var m = keptAlive(at: 1_000)
        m.wrote(now: 4_000)
        check(m.tick(now: 6_000, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false), .none)
        check(m.tick(now: 9_000, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false), .close)
    }

    @Test func aConnectionThatSendsNothingIsClosedUnansweredAtTheIdleTimeoutOrTheRequestDeadline() {
        var m = ConnectionMachine(now: 100)
        check(m.tick(now: 5_099, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false), .none)
        check(m.tick(now: 5_100, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false), .close)
        m = ConnectionMachine(now: 100)
        let long = ConnectionMachine.Timeouts(idle: 50_000, request: 10_000)
        check(m.tick(now: 10_099, timeouts: long, hasPendingInput: false, hasPendingOutput: false), .none)
        check(m.tick(now: 10_100, timeouts: long, hasPendingInput: false, hasPendingOutput: false), .close)
        #expect(m.isClosed)
    }

    @Test func aHeadOrBodyNotCompleteWithinTheDeadlineIsAnswered408ThenLingers() {
        var m = keptAlive(at: 1_000)
        _ = m.bytesRead(now: 2_000)
        m.inputParsed(hasPendingInput: true, unreadInKernel: { false })
        _ = m.bytesRead(now: 11_000)  // trickling bytes do not extend the deadline
        m.inputParsed(hasPendingInput: true, unreadInKernel: { false })
        check(m.tick(now: 11_999, timeouts: timeouts, hasPendingInput: true, hasPendingOutput: false), .none)
        check(m.tick(now: 12_000, timeouts: timeouts, hasPendingInput: true, hasPendingOutput: false), .requestTimeout)
        #expect(m.phase == .closing)
        #expect(m.requestStarted == 0)
        // The 408 is queued and sent by the loop; then the usual lingering close.
        check(m.tick(now: 30_000, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: true), .none)
        check(m.writeFinished(now: 12_001, timeouts: timeouts), .shutdownAndLinger(resumeReading: false))
    }

    @Test func aClientThatStopsReadingIsClosedAfterTheIdleTimeoutWithoutProgress() {
        var m = keptAlive(at: 1_000)
        check(m.writeWouldBlock(), true)
        check(m.tick(now: 5_999, timeouts: timeouts, hasPendingInput: true, hasPendingOutput: true), .none)
        check(m.tick(now: 6_000, timeouts: timeouts, hasPendingInput: true, hasPendingOutput: true), .close)
    }

    @Test func answersWaitingWithoutABlockedWriteAreNotIdle() {
        var m = keptAlive(at: 1_000)
        check(m.tick(now: 9_000, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: true), .none)
    }

    // MARK: - Replies made off the loop

    @Test func aDeferredRequestStopsParsingAndIsLeftAloneByTimersAndDrain() {
        var m = ConnectionMachine(now: 100)
        _ = m.bytesRead(now: 200)
        m.requestParsed()
        m.deferred()
        check(m.nextParse(pendingOutput: 0), .stop)
        check(m.tick(now: 1_000_000, timeouts: timeouts, hasPendingInput: true, hasPendingOutput: false), .none)
        check(m.drain(hasPendingInput: false, hasPendingOutput: false, unreadInKernel: { false }), .finish)
        check(m.replyArrived(), true)
        check(m.replyArrived(), false)  // a second reply for the same request is dropped
        check(m.nextParse(pendingOutput: 0), .parse)
    }

    @Test func whileDrainingADeferredRequestGetsItsReplyBeforeTheConnectionCloses() {
        var m = keptAlive()
        let drained = m.drain(hasPendingInput: true, hasPendingOutput: false, unreadInKernel: { false })
        #expect(drained == .finish)
        m.requestParsed()
        m.deferred()
        m.inputParsed(hasPendingInput: false, unreadInKernel: { false })
        #expect(m.phase == .open)  // not shut before the reply is written
        let written = m.writeFinished(now: 3_000, timeouts: timeouts)
        #expect(written == .none)
        let arrived = m.replyArrived()
        #expect(arrived)
        let keepAlive = m.keepsAlive(requested: true, moreInput: { false })
        #expect(!keepAlive)
        m.answered(keepAlive: keepAlive)
        let sent = m.writeFinished(now: 4_000, timeouts: timeouts)
        #expect(sent == .shutdownAndLinger(resumeReading: false))
    }

    @Test func aDeferralRefusedClosesAfterItsAnswer() {
        var m = ConnectionMachine(now: 100)
        m.deferred()
        m.deferralRefused()
        #expect(!m.awaitingReply)
        #expect(m.phase == .closing)
    }

    // MARK: - Drain

    @Test func drainClosesAnIdleConnectionAtOnce() {
        var m = keptAlive()
        check(m.drain(hasPendingInput: false, hasPendingOutput: false, unreadInKernel: { false }), .close)
        #expect(m.isClosed)
    }

    @Test func drainLetsARequestInFlightFinishWithConnectionClose() {
        var m = keptAlive()
        _ = m.bytesRead(now: 2_000)
        m.inputParsed(hasPendingInput: true, unreadInKernel: { false })
        var asked = false
        check(
            m.drain(
                hasPendingInput: true, hasPendingOutput: false,
                unreadInKernel: {
                    asked = true; return false
                }), .finish)
        #expect(!asked)
        #expect(m.phase == .open)
        check(m.nextParse(pendingOutput: 0), .parse)
        m.requestParsed()
        // Nothing after it: the answer says close.
        #expect(!m.keepsAlive(requested: true, moreInput: { false }))
        #expect(m.keepsAlive(requested: true, moreInput: { true }))
        m.answered(keepAlive: false)
        check(m.writeFinished(now: 2_100, timeouts: timeouts), .shutdownAndLinger(resumeReading: false))
    }

    @Test func drainCountsBytesStillInTheKernelAsARequestInFlight() {
        var m = keptAlive()
        check(m.drain(hasPendingInput: false, hasPendingOutput: false, unreadInKernel: { true }), .finish)
        #expect(m.phase == .open)
        // Read and parsed; nothing more here or in the kernel: close once answered.
        _ = m.bytesRead(now: 2_000)
        m.requestParsed()
        let keepAlive = m.keepsAlive(requested: true, moreInput: { false })
        m.answered(keepAlive: keepAlive)
        m.inputParsed(hasPendingInput: false, unreadInKernel: { false })
        #expect(m.phase == .closing)
    }

    @Test func drainSendsQueuedAnswersThenCloses() {
        var m = keptAlive()
        check(m.writeWouldBlock(), true)
        check(m.drain(hasPendingInput: false, hasPendingOutput: true, unreadInKernel: { false }), .finish)
        #expect(m.phase == .closing)
        check(m.writeFinished(now: 3_000, timeouts: timeouts), .shutdownAndLinger(resumeReading: true))
    }

    @Test func drainLeavesALingeringConnectionToItsLinger() {
        var m = ConnectionMachine(now: 100)
        m.requestFailed()
        _ = m.writeFinished(now: 1_000, timeouts: timeouts)
        check(m.drain(hasPendingInput: false, hasPendingOutput: false, unreadInKernel: { false }), .finish)
        #expect(m.phase == .lingering(until: 3_000))
    }

    @Test func whileDrainingAConnectionWithNothingMoreToAnswerClosesOnceAnswered() {
        var m = keptAlive()
        _ = m.bytesRead(now: 2_000)
        check(m.drain(hasPendingInput: true, hasPendingOutput: false, unreadInKernel: { false }), .finish)
        m.inputParsed(hasPendingInput: false, unreadInKernel: { true })  // more in the kernel: stays
        #expect(m.phase == .open)
        m.inputParsed(hasPendingInput: false, unreadInKernel: { false })
        #expect(m.phase == .closing)
    }

    // MARK: - Closed

    @Test func aClosedConnectionStaysClosed() {
        var m = keptAlive()
        m.closed()
        check(m.nextParse(pendingOutput: 0), .stop)
        check(m.resumesAfterFlush(), false)
        #expect(!m.parsesAfterWritable(hasPendingInput: true))
        check(m.tick(now: 1_000_000, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false), .none)
        #expect(!m.isIdle(hasPendingInput: false, hasPendingOutput: false))
        #expect(m.isClosed)
    }
}

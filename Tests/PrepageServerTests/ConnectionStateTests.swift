import Testing

@testable import PrepageServer

/// Every transition of a connection's lifecycle, driven by events and a fake monotonic
/// time: no sockets, no sleeps. The timeouts over a real socket are in ProtocolTests
/// (one each) and LifecycleTests (the drain).
@Suite struct ConnectionStateTests {
    /// Nanoseconds, small so the arithmetic is readable.
    let timeouts = ConnectionMachine.Timeouts(idle: 5_000, request: 10_000, linger: 2_000)
    let high = ConnectionMachine.outputHighWater

    /// A connection accepted at 100 that has received a request and answered it, keeping alive, at `at`.
    func keptAlive(at: UInt64 = 1_000) -> ConnectionMachine {
        var m = ConnectionMachine(now: 100)
        let a1 = m.bytesRead(now: at)
        #expect(a1 == .parse)
        let a2 = m.nextParse(pendingOutput: 0)
        #expect(a2 == .parse)
        m.requestParsed()
        m.answered(keepAlive: true)
        let a3 = m.nextParse(pendingOutput: 200)
        #expect(a3 == .parse)
        m.inputParsed(hasPendingInput: false, unreadInKernel: { false })
        m.wrote(now: at)
        let a4 = m.writeFinished(now: at, timeouts: timeouts)
        #expect(a4 == .none)
        let a5 = m.resumesAfterFlush()
        #expect(a5 == false)
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
        let a6 = m.bytesRead(now: 300)
        #expect(a6 == .parse)
        #expect(m.lastActivity == 300)
        #expect(m.receivedAny)
        let a7 = m.nextParse(pendingOutput: 0)
        #expect(a7 == .parse)
    }

    @Test func aPartialRequestKeepsTheDeadlineOfItsFirstByte() {
        var m = keptAlive(at: 1_000)
        #expect(m.requestStarted == 0)
        let a8 = m.bytesRead(now: 3_000)
        #expect(a8 == .parse)
        m.inputParsed(hasPendingInput: true, unreadInKernel: { false })
        #expect(m.requestStarted == 3_000)
        let a9 = m.bytesRead(now: 4_000)
        #expect(a9 == .parse)
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
        #expect(m.keepsAlive(requested: true, moreInput: { Issue.record("asked"); return false }))
        #expect(!m.keepsAlive(requested: false, moreInput: { true }))
    }

    @Test func connectionCloseAnswerIsSentThenLingers() {
        var m = ConnectionMachine(now: 100)
        _ = m.bytesRead(now: 200)
        m.requestParsed()
        m.answered(keepAlive: false)
        #expect(m.phase == .closing)
        let a10 = m.nextParse(pendingOutput: 100)
        #expect(a10 == .stop)
        m.inputParsed(hasPendingInput: true, unreadInKernel: { false })
        m.wrote(now: 250)
        let a11 = m.writeFinished(now: 250, timeouts: timeouts)
        #expect(a11 == .shutdownAndLinger(resumeReading: false))
        #expect(m.phase == .lingering(until: 2_250))
        #expect(!m.isIdle(hasPendingInput: false, hasPendingOutput: false))
    }

    @Test func aParseErrorClosesAfterItsAnswer() {
        var m = ConnectionMachine(now: 100)
        _ = m.bytesRead(now: 200)
        m.requestFailed()
        #expect(m.phase == .closing)
        let a12 = m.nextParse(pendingOutput: 0)
        #expect(a12 == .stop)
        let a13 = m.writeFinished(now: 300, timeouts: timeouts)
        #expect(a13 == .shutdownAndLinger(resumeReading: false))
        #expect(m.phase == .lingering(until: 2_300))
    }

    // MARK: - Lingering

    @Test func lingeringDiscardsInputAndClosesWhenTheLingerEnds() {
        var m = ConnectionMachine(now: 100)
        m.requestFailed()
        _ = m.writeFinished(now: 1_000, timeouts: timeouts)
        let a14 = m.bytesRead(now: 1_500)
        #expect(a14 == .discard)
        let a15 = m.nextParse(pendingOutput: 0)
        #expect(a15 == .stop)
        #expect(!m.parsesAfterWritable(hasPendingInput: true))
        let a16 = m.tick(now: 2_999, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false)
        #expect(a16 == .none)
        let a17 = m.tick(now: 3_000, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false)
        #expect(a17 == .close)
        #expect(m.isClosed)
        let a18 = m.tick(now: 9_000, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false)
        #expect(a18 == .none)
    }

    @Test func thePeersCloseWhileLingeringClosesAtOnce() {
        var m = ConnectionMachine(now: 100)
        m.requestFailed()
        _ = m.writeFinished(now: 1_000, timeouts: timeouts)
        let a19 = m.peerClosedInput(hasPendingOutput: false)
        #expect(a19 == .close)
        #expect(m.isClosed)
    }

    // MARK: - Peer close

    @Test func thePeersCloseWithNothingToSendCloses() {
        var m = keptAlive()
        let a20 = m.peerClosedInput(hasPendingOutput: false)
        #expect(a20 == .close)
        #expect(m.isClosed)
    }

    @Test func thePeersCloseWithAnswersQueuedSendsThemThenClosesWithoutLingering() {
        var m = keptAlive()
        let a21 = m.peerClosedInput(hasPendingOutput: true)
        #expect(a21 == .flushThenClose)
        #expect(m.phase == .closing)
        let a22 = m.nextParse(pendingOutput: 10)
        #expect(a22 == .stop)
        let a23 = m.writeFinished(now: 2_000, timeouts: timeouts)
        #expect(a23 == .close)
        #expect(m.isClosed)
    }

    @Test func thePeersCloseMidWriteClosesWhenTheBlockedWriteFinishes() {
        var m = keptAlive()
        let a24 = m.writeWouldBlock()
        #expect(a24)
        let a25 = m.peerClosedInput(hasPendingOutput: true)
        #expect(a25 == .flushThenClose)
        let a26 = m.writeWouldBlock()
        #expect(!a26)  // still blocked: EPOLLOUT already on
        let a27 = m.writeFinished(now: 2_000, timeouts: timeouts)
        #expect(a27 == .close)
    }

    // MARK: - Large writes: pause and resume

    @Test func parsingPausesAtTheHighWaterMarkAndResumesWhenEverythingWentOutAtOnce() {
        var m = keptAlive()
        let a28 = m.nextParse(pendingOutput: high - 1)
        #expect(a28 == .parse)
        let a29 = m.nextParse(pendingOutput: high)
        #expect(a29 == .pause)
        m.inputParsed(hasPendingInput: true, unreadInKernel: { false })
        m.wrote(now: 2_000)
        let a30 = m.writeFinished(now: 2_000, timeouts: timeouts)
        #expect(a30 == .none)
        let a31 = m.resumesAfterFlush()
        #expect(a31)
        let a32 = m.resumesAfterFlush()
        #expect(!a32)  // once
        let a33 = m.nextParse(pendingOutput: 0)
        #expect(a33 == .parse)
    }

    @Test func aPausedConnectionWhoseWriteBlocksResumesOnTheWritableEvent() {
        var m = keptAlive()
        let a34 = m.nextParse(pendingOutput: high + 5)
        #expect(a34 == .pause)
        let a35 = m.writeWouldBlock()
        #expect(a35)
        let a36 = m.resumesAfterFlush()
        #expect(!a36)
        #expect(!m.parsesAfterWritable(hasPendingInput: true))
        m.wrote(now: 2_000)
        let a37 = m.writeWouldBlock()
        #expect(!a37)
        let a38 = m.writeFinished(now: 2_500, timeouts: timeouts)
        #expect(a38 == .resumeReading)
        #expect(!m.writeBlocked)
        #expect(m.parsesAfterWritable(hasPendingInput: true))
        #expect(!m.parsesAfterWritable(hasPendingInput: false))
        let a39 = m.nextParse(pendingOutput: 0)
        #expect(a39 == .parse)
    }

    @Test func aClosingConnectionWhoseWriteBlockedWatchesInputAgainToLinger() {
        var m = keptAlive()
        m.answered(keepAlive: false)
        let a40 = m.writeWouldBlock()
        #expect(a40)
        let a41 = m.writeFinished(now: 4_000, timeouts: timeouts)
        #expect(a41 == .shutdownAndLinger(resumeReading: true))
        #expect(m.phase == .lingering(until: 6_000))
    }

    // MARK: - Timeouts

    @Test func anIdleKeepAliveConnectionClosesAfterTheIdleTimeout() {
        var m = keptAlive(at: 1_000)
        let a42 = m.tick(now: 5_999, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false)
        #expect(a42 == .none)
        let a43 = m.tick(now: 6_000, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false)
        #expect(a43 == .close)
        #expect(m.isClosed)
    }

    @Test func activityPushesTheIdleTimeoutBack() {
        var m = keptAlive(at: 1_000)
        m.wrote(now: 4_000)
        let a44 = m.tick(now: 6_000, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false)
        #expect(a44 == .none)
        let a45 = m.tick(now: 9_000, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false)
        #expect(a45 == .close)
    }

    @Test func aConnectionThatSendsNothingIsClosedUnansweredAtTheIdleTimeoutOrTheRequestDeadline() {
        var m = ConnectionMachine(now: 100)
        let a46 = m.tick(now: 5_099, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false)
        #expect(a46 == .none)
        let a47 = m.tick(now: 5_100, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false)
        #expect(a47 == .close)
        m = ConnectionMachine(now: 100)
        let long = ConnectionMachine.Timeouts(idle: 50_000, request: 10_000)
        let a48 = m.tick(now: 10_099, timeouts: long, hasPendingInput: false, hasPendingOutput: false)
        #expect(a48 == .none)
        let a49 = m.tick(now: 10_100, timeouts: long, hasPendingInput: false, hasPendingOutput: false)
        #expect(a49 == .close)
        #expect(m.isClosed)
    }

    @Test func aHeadOrBodyNotCompleteWithinTheDeadlineIsAnswered408ThenLingers() {
        var m = keptAlive(at: 1_000)
        _ = m.bytesRead(now: 2_000)
        m.inputParsed(hasPendingInput: true, unreadInKernel: { false })
        _ = m.bytesRead(now: 11_000)  // trickling bytes do not extend the deadline
        m.inputParsed(hasPendingInput: true, unreadInKernel: { false })
        let a50 = m.tick(now: 11_999, timeouts: timeouts, hasPendingInput: true, hasPendingOutput: false)
        #expect(a50 == .none)
        let a51 = m.tick(now: 12_000, timeouts: timeouts, hasPendingInput: true, hasPendingOutput: false)
        #expect(a51 == .requestTimeout)
        #expect(m.phase == .closing)
        #expect(m.requestStarted == 0)
        // The 408 is queued and sent by the loop; then the usual lingering close.
        let a52 = m.tick(now: 30_000, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: true)
        #expect(a52 == .none)
        let a53 = m.writeFinished(now: 12_001, timeouts: timeouts)
        #expect(a53 == .shutdownAndLinger(resumeReading: false))
    }

    @Test func aClientThatStopsReadingIsClosedAfterTheIdleTimeoutWithoutProgress() {
        var m = keptAlive(at: 1_000)
        let a54 = m.writeWouldBlock()
        #expect(a54)
        let a55 = m.tick(now: 5_999, timeouts: timeouts, hasPendingInput: true, hasPendingOutput: true)
        #expect(a55 == .none)
        let a56 = m.tick(now: 6_000, timeouts: timeouts, hasPendingInput: true, hasPendingOutput: true)
        #expect(a56 == .close)
    }

    @Test func answersWaitingWithoutABlockedWriteAreNotIdle() {
        var m = keptAlive(at: 1_000)
        let a57 = m.tick(now: 9_000, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: true)
        #expect(a57 == .none)
    }

    // MARK: - Replies made off the loop

    @Test func aDeferredRequestStopsParsingAndIsLeftAloneByTimersAndDrain() {
        var m = ConnectionMachine(now: 100)
        _ = m.bytesRead(now: 200)
        m.requestParsed()
        m.deferred()
        let a58 = m.nextParse(pendingOutput: 0)
        #expect(a58 == .stop)
        let a59 = m.tick(now: 1_000_000, timeouts: timeouts, hasPendingInput: true, hasPendingOutput: false)
        #expect(a59 == .none)
        let a60 = m.drain(hasPendingInput: false, hasPendingOutput: false, unreadInKernel: { false })
        #expect(a60 == .finish)
        let a61 = m.replyArrived()
        #expect(a61)
        let a62 = m.replyArrived()
        #expect(!a62)  // a second reply for the same request is dropped
        let a63 = m.nextParse(pendingOutput: 0)
        #expect(a63 == .parse)
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
        let a64 = m.drain(hasPendingInput: false, hasPendingOutput: false, unreadInKernel: { false })
        #expect(a64 == .close)
        #expect(m.isClosed)
    }

    @Test func drainLetsARequestInFlightFinishWithConnectionClose() {
        var m = keptAlive()
        _ = m.bytesRead(now: 2_000)
        m.inputParsed(hasPendingInput: true, unreadInKernel: { false })
        var asked = false
        let a65 = m.drain(
            hasPendingInput: true, hasPendingOutput: false, unreadInKernel: { asked = true; return false })
        #expect(a65 == .finish)
        #expect(!asked)
        #expect(m.phase == .open)
        let a66 = m.nextParse(pendingOutput: 0)
        #expect(a66 == .parse)
        m.requestParsed()
        // Nothing after it: the answer says close.
        #expect(!m.keepsAlive(requested: true, moreInput: { false }))
        #expect(m.keepsAlive(requested: true, moreInput: { true }))
        m.answered(keepAlive: false)
        let a67 = m.writeFinished(now: 2_100, timeouts: timeouts)
        #expect(a67 == .shutdownAndLinger(resumeReading: false))
    }

    @Test func drainCountsBytesStillInTheKernelAsARequestInFlight() {
        var m = keptAlive()
        let a68 = m.drain(hasPendingInput: false, hasPendingOutput: false, unreadInKernel: { true })
        #expect(a68 == .finish)
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
        let a69 = m.writeWouldBlock()
        #expect(a69)
        let a70 = m.drain(hasPendingInput: false, hasPendingOutput: true, unreadInKernel: { false })
        #expect(a70 == .finish)
        #expect(m.phase == .closing)
        let a71 = m.writeFinished(now: 3_000, timeouts: timeouts)
        #expect(a71 == .shutdownAndLinger(resumeReading: true))
    }

    @Test func drainLeavesALingeringConnectionToItsLinger() {
        var m = ConnectionMachine(now: 100)
        m.requestFailed()
        _ = m.writeFinished(now: 1_000, timeouts: timeouts)
        let a72 = m.drain(hasPendingInput: false, hasPendingOutput: false, unreadInKernel: { false })
        #expect(a72 == .finish)
        #expect(m.phase == .lingering(until: 3_000))
    }

    @Test func whileDrainingAConnectionWithNothingMoreToAnswerClosesOnceAnswered() {
        var m = keptAlive()
        _ = m.bytesRead(now: 2_000)
        let a73 = m.drain(hasPendingInput: true, hasPendingOutput: false, unreadInKernel: { false })
        #expect(a73 == .finish)
        m.inputParsed(hasPendingInput: false, unreadInKernel: { true })  // more in the kernel: stays
        #expect(m.phase == .open)
        m.inputParsed(hasPendingInput: false, unreadInKernel: { false })
        #expect(m.phase == .closing)
    }

    // MARK: - Closed

    @Test func aClosedConnectionStaysClosed() {
        var m = keptAlive()
        m.closed()
        let a74 = m.nextParse(pendingOutput: 0)
        #expect(a74 == .stop)
        let a75 = m.resumesAfterFlush()
        #expect(!a75)
        #expect(!m.parsesAfterWritable(hasPendingInput: true))
        let a76 = m.tick(now: 1_000_000, timeouts: timeouts, hasPendingInput: false, hasPendingOutput: false)
        #expect(a76 == .none)
        #expect(!m.isIdle(hasPendingInput: false, hasPendingOutput: false))
        #expect(m.isClosed)
    }
}

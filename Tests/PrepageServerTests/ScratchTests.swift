import Testing

@testable import PrepageServer

/// Each loop's scratch buffer serves every answer; after a large one it shrinks back
/// (issue: a 100 MB listing used to keep its buffer for the loop's lifetime).
@Suite struct ScratchTests {
    @Test func aLargeAnswersBufferIsGivenBackAndASmallOneKept() {
        let context = LoopContext(metrics: LoopMetrics())

        var small: [UInt8] = []
        small.reserveCapacity(64 << 10)
        context.giveBack(&small)
        #expect(context.body.capacity >= 64 << 10, "a buffer under the kept size is reused as it is")

        var large = [UInt8](repeating: 0x20, count: 4 << 20)
        context.giveBack(&large)
        #expect(context.body.capacity <= LoopContext.keptBodyBytes, "a 4 MiB answer's buffer is not kept")
        #expect(context.body.count == 0, "the next answer starts from an empty buffer")
    }
}

import NIOCore
import NIOEmbedded
import Testing
@testable import TLS

/// The TLS layer's queue of plaintext writes: the oldest inline, the rest in a ring made on demand.
@Suite struct WriteQueueTests {
    @Test func writesComeOutInOrderAcrossTheInlineSlotAndTheRing() {
        var queue = WriteQueue()
        #expect(queue.count == 0 && queue.firstBytes == 0 && queue.popFirst() == nil)
        for text in ["a", "bb", "ccc", "dddd", "eeeee", "ffffff"] { queue.append(ByteBuffer(string: text), nil) }
        #expect(queue.count == 6 && queue.firstBytes == 1)
        #expect(String(buffer: queue.removeFirst().buffer) == "a")
        #expect(queue.firstBytes == 2)
        queue.append(ByteBuffer(string: "g"), nil)
        var out: [String] = []
        while let write = queue.popFirst() { out.append(String(buffer: write.buffer)) }
        #expect(out == ["bb", "ccc", "dddd", "eeeee", "ffffff", "g"])
    }

    @Test func releasingSpareRoomKeepsWhatWaits() {
        var queue = WriteQueue()
        queue.append(ByteBuffer(string: "one"), nil)
        queue.append(ByteBuffer(string: "two"), nil)
        queue.releaseSpareRoom()  // "two" waits in the ring: it must stay
        #expect(queue.count == 2)
        _ = queue.popFirst()
        _ = queue.popFirst()
        queue.releaseSpareRoom()
        queue.append(ByteBuffer(string: "three"), nil)
        queue.append(ByteBuffer(string: "four"), nil)
        #expect(queue.count == 2 && String(buffer: queue.removeFirst().buffer) == "three" && String(buffer: queue.removeFirst().buffer) == "four")
    }
}

/// Small writes without a promise are copied into one buffer of the queue's own until a flush.
@Suite struct WriteQueueCoalescingTests {
    func drain(_ queue: inout WriteQueue) -> [String] {
        var out: [String] = []
        while let write = queue.popFirst() { out.append(String(buffer: write.buffer)) }
        return out
    }

    @Test func smallWritesBecomeOneBufferInOrder() {
        var queue = WriteQueue()
        for text in ["a", "bb", "ccc", "dddd"] {
            queue.appendCoalescing(ByteBuffer(string: text), limit: 100)
        }
        #expect(queue.count == 1)
        #expect(drain(&queue) == ["abbcccdddd"])
        #expect(queue.count == 0)
    }

    @Test func theLimitAPromiseAndAFlushEachStartANewWrite() {
        var queue = WriteQueue()
        func small(_ text: String) {
            queue.appendCoalescing(ByteBuffer(string: text), limit: 8)
        }
        small("one")
        small("two")        // "onetwo": 6 bytes
        small("six")        // would be 9 > 8: a write of its own
        small("x")          // joins "six"
        let promise = EmbeddedEventLoop().makePromise(of: Void.self)
        queue.append(ByteBuffer(string: "kept"), promise)  // a promise: never copied into
        small("after")      // the newest has a promise: a write of its own
        queue.markFlushed()
        #expect(queue.count == 4 && queue.flushed == 4)
        small("new")        // the newest is flushed: not touched
        #expect(queue.count == 5 && queue.flushed == 4)
        var writes: [(String, Bool)] = []
        while let write = queue.popFlushed() { writes.append((String(buffer: write.buffer), write.promise != nil)) }
        #expect(queue.count == 1 && queue.flushed == 0)  // "new" waits for the next flush
        queue.markFlushed()
        while let write = queue.popFlushed() { writes.append((String(buffer: write.buffer), write.promise != nil)) }
        #expect(writes.map(\.0) == ["onetwo", "sixx", "kept", "after", "new"])
        #expect(writes.map(\.1) == [false, false, true, false, false])
        promise.succeed(())
    }

    @Test func theSharedBufferIsNeverWrittenInto() {
        var queue = WriteQueue()
        let shared = ByteBuffer(string: "relay")
        queue.appendCoalescing(shared, limit: 100)
        queue.appendCoalescing(shared, limit: 100)
        #expect(String(buffer: shared) == "relay")
        #expect(drain(&queue) == ["relayrelay"])
    }
}

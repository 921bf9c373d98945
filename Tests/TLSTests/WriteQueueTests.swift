import NIOCore
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

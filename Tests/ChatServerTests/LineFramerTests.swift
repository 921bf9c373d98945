import IRCFraming
import NIOCore
import NIOEmbedded
import Testing

/// The server's line splitter: the line decoder's rules, without SwiftNIO's decoder machinery.
@Suite struct LineFramerTests {
    func channel(maximum: Int = 20) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(LineFramer(maximumLength: maximum))
        return channel
    }

    func lines(_ channel: EmbeddedChannel) throws -> [String] {
        var out: [String] = []
        while let line = try channel.readInbound(as: InboundLine.self) {
            switch line {
            case let .line(buffer): out.append(String(buffer: buffer))
            case .overlong: out.append("<overlong>")
            }
        }
        return out
    }

    @Test func linesSplitAtLFWithCRDroppedAcrossReads() throws {
        let channel = try channel()
        try channel.writeInbound(ByteBuffer(string: "NICK a\r\nUSER a 0 * :A\r\nJO"))
        #expect(try lines(channel) == ["NICK a", "USER a 0 * :A"])
        try channel.writeInbound(ByteBuffer(string: "IN #r"))
        #expect(try lines(channel).isEmpty)
        try channel.writeInbound(ByteBuffer(string: "\nPING x\n\r\n"))
        #expect(try lines(channel) == ["JOIN #r", "PING x", ""])
    }

    @Test func anOverlongLineIsReportedOnceAndTheNextLineComesThrough() throws {
        let channel = try channel(maximum: 10)
        // Too long with its end in view, then too long without an end: reported once each.
        try channel.writeInbound(ByteBuffer(string: "PRIVMSG #r :far too long\r\nOK\r\n"))
        #expect(try lines(channel) == ["<overlong>", "OK"])
        try channel.writeInbound(ByteBuffer(string: String(repeating: "x", count: 15)))
        try channel.writeInbound(ByteBuffer(string: String(repeating: "y", count: 15)))
        #expect(try lines(channel) == ["<overlong>"])
        try channel.writeInbound(ByteBuffer(string: "zz\r\nQUIT\r\n"))
        #expect(try lines(channel) == ["QUIT"])
    }

    @Test func anUnfinishedLineIsCopiedAndDroppedAtTheEnd() throws {
        let channel = try channel()
        let incoming = ByteBuffer(string: "PING a\r\nPI")
        try channel.writeInbound(incoming)
        #expect(try lines(channel) == ["PING a"])
        try channel.writeInbound(ByteBuffer(string: "NG b\r\n"))
        #expect(try lines(channel) == ["PING b"])
        try channel.writeInbound(ByteBuffer(string: "QUIT without an end"))
        _ = try channel.finish()
        #expect(try lines(channel).isEmpty)
    }
}

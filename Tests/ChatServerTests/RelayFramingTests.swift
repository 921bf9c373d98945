import IRC
import NIOCore
import Testing
@testable import ChatServer

/// The relay serialises each variant of a message once per event loop, as IRC lines for TLS
/// members and as WebSocket frames for WebSocket members: every recipient with the same
/// capabilities and transport gets the same buffer.
@Suite struct RelayFramingTests {
    let relay = Relay(source: "alice!~alice@host", command: "PRIVMSG", parameters: ["#r", "hi there"], time: "2026-12-04T07:00:00.000Z")

    func address(_ buffer: ByteBuffer) -> UnsafeRawPointer? { buffer.withUnsafeReadableBytes { $0.baseAddress } }

    @Test func eachVariantIsFramedOnceAndShared() {
        var cache = Relay.Cache()
        let first = relay.frames(for: [.serverTime], binary: false, cache: &cache)
        let second = relay.frames(for: [.serverTime], binary: false, cache: &cache)
        #expect(address(first) == address(second), "the second member gets the first member's frames")
        // The frame: FIN + text, the length, the line without CR LF.
        let line = relay.buffer(for: [.serverTime], cache: &cache)
        let payload = Array(line.readableBytesView.dropLast(2))
        #expect(Array(first.readableBytesView) == [0x81, UInt8(payload.count)] + payload)
        #expect(String(decoding: payload, as: UTF8.self) == "@time=2026-12-04T07:00:00.000Z :alice!~alice@host PRIVMSG #r :hi there")
        // Binary members and members without server-time get their own, each made once.
        let binary = relay.frames(for: [.serverTime], binary: true, cache: &cache)
        #expect(binary.getInteger(at: binary.readerIndex, as: UInt8.self) == 0x82)
        #expect(address(binary) == address(relay.frames(for: [.serverTime], binary: true, cache: &cache)))
        let plain = relay.frames(for: [], binary: false, cache: &cache)
        #expect(address(plain) != address(first))
        #expect(String(decoding: plain.readableBytesView.dropFirst(2), as: UTF8.self) == ":alice!~alice@host PRIVMSG #r :hi there")
    }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import NIOCore
import NIOWebSocket

/// IRC over WebSocket (IRCv3): each WebSocket message is one IRC line without CR LF, both ways.
///
/// Inbound, a message becomes a line for the IRC line decoder (so the TLS path's line limit and
/// 417 apply unchanged); pings are answered; a close from the client is answered and ends the
/// connection; a frame the decoder refuses closes it with the RFC's code. Outbound, the server's
/// bytes (one or more CR LF lines, as written once per event loop for every member of a room)
/// become one frame per line, all in one buffer and one write. Text frames must be UTF-8 for the
/// browser; a line that is not gets U+FFFD instead of killing the socket. Closing the connection
/// sends a close frame first.
final class WebSocketIRCBridge: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// `binary.ircv3.net`: lines go out as binary frames, as they are.
    let binary: Bool
    private var closeSent = false
    /// The last batch framed on this event loop, shared by its bridges (see `FrameCache`).
    private let cache: FrameCache

    init(binary: Bool, cache: FrameCache = FrameCache()) {
        self.binary = binary
        self.cache = cache
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            var line = frame.unmaskedData
            // RFC 6455: a text message is UTF-8, or the connection fails with 1007.
            if frame.opcode == .text && !Self.isValidUTF8(line) {
                sendClose(context, code: 1007, reason: "text frames must be UTF-8")
                context.close(promise: nil)
                return
            }
            line.writeStaticString("\r\n")
            context.fireChannelRead(wrapInboundOut(line))
        case .ping:
            var pong = context.channel.allocator.buffer(capacity: frame.length + 2)
            Self.appendFrame(&pong, opcode: 0x8A, frame.unmaskedData.readableBytesView)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            // Answer with the client's own code, as RFC 6455 asks, then hang up.
            var data = frame.unmaskedData
            let code = data.readInteger(as: UInt16.self) ?? 1000
            sendClose(context, code: code, reason: "")
            context.close(promise: nil)
        default:
            break  // pongs, continuations (merged by the aggregator before this)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        // A message to a room is one buffer written to every member on the loop: framed once.
        if let framed = cache.lookup(buffer, binary: binary) {
            context.write(wrapOutboundOut(framed), promise: promise)
            return
        }
        var frames = context.channel.allocator.buffer(capacity: buffer.readableBytes + 16)
        let opcode: UInt8 = binary ? 0x82 : 0x81
        let binary = self.binary
        buffer.withUnsafeReadableBytes { bytes in
            var start = 0
            while start < bytes.count {
                // memchr: the relayed batch is scanned once, at memory speed.
                let rest = UnsafeRawBufferPointer(rebasing: bytes[start...])
                let found = memchr(rest.baseAddress!, 0x0A, rest.count)
                let newline = found.map { start + (rest.baseAddress!.distance(to: UnsafeRawPointer($0))) }
                var end = newline ?? bytes.count
                if end > start && bytes[end - 1] == 0x0D { end -= 1 }
                let line = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
                if binary || Self.isValidUTF8(line) {
                    Self.appendFrame(&frames, opcode: opcode, line)
                } else {
                    Self.appendFrame(&frames, opcode: opcode, Array(String(decoding: line, as: UTF8.self).utf8))
                }
                start = newline.map { $0 + 1 } ?? bytes.count
            }
        }
        cache.store(buffer, frames, binary: binary)
        context.write(wrapOutboundOut(frames), promise: promise)
    }

    /// A server frame (unmasked): FIN and opcode, the length in 1, 3 or 9 bytes, the payload.
    static func appendFrame<Bytes: Collection>(_ out: inout ByteBuffer, opcode: UInt8, _ payload: Bytes) where Bytes.Element == UInt8 {
        out.writeInteger(opcode)
        if payload.count < 126 {
            out.writeInteger(UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            out.writeInteger(UInt8(126))
            out.writeInteger(UInt16(payload.count))
        } else {
            out.writeInteger(UInt8(127))
            out.writeInteger(UInt64(payload.count))
        }
        out.writeBytes(payload)
    }

    /// A frame the decoder or the aggregator refused: the RFC's close code, then hang up.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let error = error as? NIOWebSocketError {
            sendClose(context, code: error == .invalidFrameLength ? 1009 : 1002, reason: "")
            context.close(promise: nil)
        } else if error is NIOWebSocketFrameAggregator.Error {
            sendClose(context, code: 1009, reason: "")
            context.close(promise: nil)
        }
        context.fireErrorCaught(error)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all { sendClose(context, code: 1000, reason: "") }
        context.close(mode: mode, promise: promise)
    }

    private func sendClose(_ context: ChannelHandlerContext, code: UInt16, reason: String) {
        guard !closeSent else { return }
        closeSent = true
        var frame = context.channel.allocator.buffer(capacity: 4 + reason.utf8.count)
        Self.appendFrame(&frame, opcode: 0x88, withUnsafeBytes(of: code.bigEndian) { Array($0) } + Array(reason.utf8))
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    /// Whether bytes are UTF-8 (nearly always, for what the server sends: it relays no invalid
    /// UTF-8; a line that is not goes out with U+FFFD, so the browser keeps the socket).
    static func isValidUTF8(_ line: ByteBuffer) -> Bool { isValidUTF8(line.readableBytesView) }

    static func isValidUTF8<Bytes: Collection>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8 {
        // ASCII, the usual case, without the decoder.
        if bytes.allSatisfy({ $0 < 0x80 }) { return true }
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }
}

/// The frames of the last buffer written by the bridges of one event loop (used only on that
/// loop). The relay serialises a room message once per loop and writes the same buffer to every
/// member there; the first WebSocket member's bridge frames it and the others reuse the frames, as
/// TLS members share the buffer. The input is kept, so its memory (the key) cannot be reused for
/// another buffer while it is cached.
// @unchecked Sendable: loop-bound: only the bridges of one event loop touch it, on that loop; the
// endpoint only hands it out (under its lock).
public final class FrameCache: @unchecked Sendable {
    private var input: ByteBuffer?
    private var address: UnsafeRawPointer?
    private var output: ByteBuffer?
    private var binary = false

    public init() {}

    func lookup(_ buffer: ByteBuffer, binary: Bool) -> ByteBuffer? {
        guard let input, binary == self.binary, input.readableBytes == buffer.readableBytes,
              buffer.withUnsafeReadableBytes({ $0.baseAddress }) == address else { return nil }
        return output
    }

    func store(_ buffer: ByteBuffer, _ frames: ByteBuffer, binary: Bool) {
        input = buffer
        address = buffer.withUnsafeReadableBytes { $0.baseAddress }
        output = frames
        self.binary = binary
    }
}

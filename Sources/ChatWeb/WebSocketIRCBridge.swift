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

    init(binary: Bool) {
        self.binary = binary
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

    /// The session's own replies. (Relayed messages skip the bridge: the relay frames them once
    /// per event loop for every WebSocket member there, see `WebSocketFraming`.)
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frames = WebSocketFraming.frames(of: unwrapOutboundIn(data), binary: binary, allocator: context.channel.allocator)
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

/// The frames a WebSocket connection takes (its subprotocol: text.ircv3.net or binary.ircv3.net).
public enum WebSocketFrames: Sendable { case text, binary }

/// Server lines as WebSocket frames, for the bridge and for relayed messages.
public enum WebSocketFraming {
    /// One frame per CR LF line of `buffer`, all in one buffer: text frames (a line that is not
    /// UTF-8 gets U+FFFD, so the browser keeps the socket) or binary frames, as the subprotocol says.
    public static func frames(of buffer: ByteBuffer, binary: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        var frames = allocator.buffer(capacity: buffer.readableBytes + 16)
        let opcode: UInt8 = binary ? 0x82 : 0x81
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
                if binary || WebSocketIRCBridge.isValidUTF8(line) {
                    WebSocketIRCBridge.appendFrame(&frames, opcode: opcode, line)
                } else {
                    WebSocketIRCBridge.appendFrame(&frames, opcode: opcode, Array(String(decoding: line, as: UTF8.self).utf8))
                }
                start = newline.map { $0 + 1 } ?? bytes.count
            }
        }
        return frames
    }

    /// Where relayed messages enter a pipeline that speaks IRC over WebSocket: the bridge's own
    /// context, so that they go straight to TLS below it, already framed; and whether the frames
    /// are binary. Nil for IRC over TLS.
    public static func relayEntry(in pipeline: ChannelPipeline.SynchronousOperations) -> (context: ChannelHandlerContext, binary: Bool)? {
        guard let bridge = try? pipeline.handler(type: WebSocketIRCBridge.self),
              let context = try? pipeline.context(handler: bridge) else { return nil }
        return (context, bridge.binary)
    }
}

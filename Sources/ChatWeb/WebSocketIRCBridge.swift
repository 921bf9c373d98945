import NIOCore
import NIOWebSocket

/// IRC over WebSocket (IRCv3): each WebSocket message is one IRC line without CR LF, both ways.
///
/// Inbound, a message becomes a line for the IRC line decoder (so the TLS path's line limit and
/// 417 apply unchanged); pings are answered; a close from the client is answered and ends the
/// connection. Outbound, the server's bytes (one or more CR LF lines, as written once per event
/// loop for every member of a room) become one frame per line, sliced without copying. Text
/// frames must be UTF-8 for the browser; a line that is not gets U+FFFD instead of killing the
/// socket. Closing the connection sends a close frame first.
final class WebSocketIRCBridge: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = WebSocketFrame

    /// `binary.ircv3.net`: lines go out as binary frames, as they are.
    let binary: Bool
    private var closeSent = false

    init(binary: Bool) { self.binary = binary }

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
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
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
        let view = buffer.readableBytesView
        var start = view.startIndex
        var frames: [ByteBuffer] = []
        while let newline = view[start...].firstIndex(of: UInt8(ascii: "\n")) {
            var end = newline
            if end > start && view[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            frames.append(buffer.getSlice(at: start, length: end - start)!)
            start = newline + 1
        }
        if start < view.endIndex { frames.append(buffer.getSlice(at: start, length: view.endIndex - start)!) }
        guard !frames.isEmpty else {
            promise?.succeed(())
            return
        }
        for (index, line) in frames.enumerated() {
            let frame = WebSocketFrame(fin: true, opcode: binary ? .binary : .text, data: binary ? line : Self.validUTF8(line, allocator: context.channel.allocator))
            context.write(wrapOutboundOut(frame), promise: index == frames.count - 1 ? promise : nil)
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all { sendClose(context, code: 1000, reason: "") }
        context.close(mode: mode, promise: promise)
    }

    private func sendClose(_ context: ChannelHandlerContext, code: UInt16, reason: String) {
        guard !closeSent else { return }
        closeSent = true
        var data = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.writeInteger(code)
        data.writeString(reason)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)), promise: nil)
    }

    /// The line itself when it is UTF-8 (nearly always: the server relays no invalid UTF-8);
    /// otherwise a copy with U+FFFD for what is not, so the browser keeps the socket.
    static func validUTF8(_ line: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        if isValidUTF8(line) { return line }
        return allocator.buffer(string: String(decoding: line.readableBytesView, as: UTF8.self))
    }

    static func isValidUTF8(_ line: ByteBuffer) -> Bool {
        line.withUnsafeReadableBytes { raw in
            var iterator = raw.makeIterator()
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
}

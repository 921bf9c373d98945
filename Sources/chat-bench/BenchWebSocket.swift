import IRCFraming
import NIOCore
import TLS

/// IRC over WebSocket for the load generator (`--websocket`), in place of the line decoder: after
/// the TLS handshake it sends the HTTP upgrade (text.ircv3.net, the server's own Origin) and holds
/// the handshake event back until `101` arrives, so the connection logs in only then. Afterwards
/// each server frame becomes a line (a slice, no copy: the generator's own cost stays small), and
/// each line written becomes a masked frame, as a browser sends them. Written here, not taken
/// from the server, so the two check each other.
// @unchecked Sendable: loop-bound: a channel handler, used only on its channel's event loop.
final class BenchWebSocketFraming: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = InboundLine
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let host: String
    let port: Int
    private var upgraded = false
    private var pending: ByteBuffer?
    private var heldEvent: Any?
    private var maskState: UInt32 = 0x9E37_79B9

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSEvent, !upgraded {
            heldEvent = event
            let request = "GET / HTTP/1.1\r\nHost: localhost:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                + "Sec-WebSocket-Protocol: text.ircv3.net\r\nOrigin: https://localhost:\(port)\r\n\r\n"
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if pending == nil { pending = incoming } else { pending!.writeBuffer(&incoming) }
        if !upgraded {
            let view = pending!.readableBytesView
            guard let end = view.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
            guard view.starts(with: Array("HTTP/1.1 101".utf8)) else {
                context.fireErrorCaught(BenchError("WebSocket upgrade refused: \(String(decoding: view.prefix(80), as: UTF8.self))"))
                context.close(promise: nil)
                return
            }
            pending!.moveReaderIndex(forwardBy: end.upperBound - view.startIndex)
            upgraded = true
            if let event = heldEvent { heldEvent = nil; context.fireUserInboundEventTriggered(event) }
        }
        // Frames from the server are unmasked: header, optional length, payload.
        while var buffer = pending, buffer.readableBytes >= 2 {
            let first = buffer.readInteger(as: UInt8.self)!
            let second = buffer.readInteger(as: UInt8.self)!
            var length = Int(second & 0x7F)
            if length == 126 {
                guard let n = buffer.readInteger(as: UInt16.self) else { break }
                length = Int(n)
            } else if length == 127 {
                guard let n = buffer.readInteger(as: UInt64.self) else { break }
                length = Int(n)
            }
            guard let payload = buffer.readSlice(length: length) else { break }
            pending!.moveReaderIndex(to: buffer.readerIndex)
            switch first & 0x0F {
            case 1, 2:
                context.fireChannelRead(wrapInboundOut(.line(payload)))
            case 8:
                context.close(promise: nil)
                return
            default:
                break
            }
        }
        if pending?.readableBytes == 0 { pending = nil } else { pending?.discardReadBytes() }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        guard upgraded else {
            context.write(data, promise: promise)
            return
        }
        var out = context.channel.allocator.buffer(capacity: buffer.readableBytes + 16)
        let view = buffer.readableBytesView
        var start = view.startIndex
        while let newline = view[start...].firstIndex(of: UInt8(ascii: "\n")) {
            var end = newline
            if end > start && view[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            appendFrame(&out, view[start..<end])
            start = newline + 1
        }
        if start < view.endIndex { appendFrame(&out, view[start..<view.endIndex]) }
        context.write(wrapOutboundOut(out), promise: promise)
    }

    private func appendFrame(_ out: inout ByteBuffer, _ payload: ByteBufferView.SubSequence) {
        out.writeInteger(UInt8(0x81))
        if payload.count < 126 {
            out.writeInteger(UInt8(0x80 | payload.count))
        } else {
            out.writeInteger(UInt8(0x80 | 126))
            out.writeInteger(UInt16(payload.count))
        }
        // A cheap changing mask (xorshift): the server must unmask whatever it is.
        maskState ^= maskState << 13; maskState ^= maskState >> 17; maskState ^= maskState << 5
        let mask = withUnsafeBytes(of: maskState.bigEndian) { Array($0) }
        out.writeBytes(mask)
        var index = 0
        for byte in payload {
            out.writeInteger(byte ^ mask[index & 3])
            index += 1
        }
    }
}

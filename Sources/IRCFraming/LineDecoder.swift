#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import NIOCore

/// One line from a client, or the news that a line was too long and was dropped.
public enum InboundLine: Sendable, Equatable {
    case line(ByteBuffer)
    case overlong
}

/// Splits the plaintext stream at LF (dropping a CR before it), never buffering more than
/// `maximumLength` bytes of one line: a longer line is discarded up to its end and reported as
/// `.overlong`, and the connection lives on. A flood of bytes without a newline costs at most
/// `maximumLength` bytes of memory.
public struct LineDecoder: ByteToMessageDecoder {
    public typealias InboundOut = InboundLine

    public let maximumLength: Int
    private var discarding = false

    public init(maximumLength: Int) {
        self.maximumLength = maximumLength
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let (output, more) = Self.step(&buffer, maximumLength: maximumLength, discarding: &discarding)
        if let output { context.fireChannelRead(NIOAny(output)) }
        return more ? .continue : .needMoreData
    }

    /// One step over `buffer`: the next line (or the news that one was too long), and whether
    /// another step may find more. Shared by this decoder and `LineFramer`.
    @inline(__always)
    static func step(_ buffer: inout ByteBuffer, maximumLength: Int, discarding: inout Bool) -> (InboundLine?, more: Bool) {
        let newline = buffer.withUnsafeReadableBytes { bytes -> Int? in
            guard let base = bytes.baseAddress, let found = memchr(base, 0x0a, bytes.count) else { return nil }
            return base.distance(to: UnsafeRawPointer(found))
        }
        if let length = newline {
            if discarding {
                buffer.moveReaderIndex(forwardBy: length + 1)
                discarding = false
                return (nil, true)
            }
            var line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: 1)
            if line.readableBytes > 0, line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == 0x0d {
                line.moveWriterIndex(to: line.writerIndex - 1)
            }
            return (line.readableBytes > maximumLength ? .overlong : .line(line), true)
        }
        if buffer.readableBytes > maximumLength {
            let news: InboundLine? = discarding ? nil : .overlong
            discarding = true
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return (news, false)
        }
        return (nil, false)
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        buffer.moveReaderIndex(to: buffer.writerIndex)  // a last line without LF is dropped
        return .needMoreData
    }
}

/// The server's line splitter: `LineDecoder`'s rules as a plain handler. SwiftNIO's
/// `ByteToMessageHandler` around the decoder kept three objects and two ring buffers on every
/// connection (0.4 KiB of an idle one) and its bookkeeping on every read. Lines are slices of what
/// came in; only an unfinished line is kept, copied, so the buffer it came in is free again.
public final class LineFramer: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = InboundLine

    public let maximumLength: Int
    private var discarding = false
    private var unfinished: ByteBuffer?

    public init(maximumLength: Int) {
        self.maximumLength = maximumLength
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if var buffer = unfinished {
            unfinished = nil
            buffer.writeBuffer(&incoming)
            split(context: context, &buffer)
            if buffer.readableBytes > 0 {
                buffer.discardReadBytes()
                unfinished = buffer
            }
        } else {
            split(context: context, &incoming)
            if incoming.readableBytes > 0 {
                var copy = context.channel.allocator.buffer(capacity: incoming.readableBytes)
                copy.writeBuffer(&incoming)
                unfinished = copy
            }
        }
    }

    private func split(context: ChannelHandlerContext, _ buffer: inout ByteBuffer) {
        while true {
            let (output, more) = LineDecoder.step(&buffer, maximumLength: maximumLength, discarding: &discarding)
            if let output { context.fireChannelRead(wrapInboundOut(output)) }
            if !more { break }
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        unfinished = nil  // a last line without LF is dropped, as by the decoder
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension LineFramer: Sendable {}

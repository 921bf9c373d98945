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
        if let newline = buffer.readableBytesView.firstIndex(of: 0x0a) {
            let length = newline - buffer.readerIndex
            if discarding {
                buffer.moveReaderIndex(forwardBy: length + 1)
                discarding = false
                return .continue
            }
            var line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: 1)
            if line.readableBytes > 0, line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == 0x0d {
                line.moveWriterIndex(to: line.writerIndex - 1)
            }
            context.fireChannelRead(NIOAny(line.readableBytes > maximumLength ? InboundLine.overlong : InboundLine.line(line)))
            return .continue
        }
        if buffer.readableBytes > maximumLength {
            if !discarding { context.fireChannelRead(NIOAny(InboundLine.overlong)) }
            discarding = true
            buffer.moveReaderIndex(to: buffer.writerIndex)
        }
        return .needMoreData
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        buffer.moveReaderIndex(to: buffer.writerIndex)  // a last line without LF is dropped
        return .needMoreData
    }
}

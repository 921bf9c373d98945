import NIOCore

/// Disconnects a client that does not read: when its send queue stays above the high-water mark
/// for `grace`, it asks `ClientConnection` to close with `SessionEvent.sendQueueExceeded`.
///
/// A burst of messages flushed at once can pass the mark for a moment; a client that reads gets
/// back under it within the grace. Nobody else ever waits for a slow reader: writes to it queue
/// on its own channel.
public final class SendQueueWatchdog: ChannelInboundHandler {
    public typealias InboundIn = NIOAny

    private let grace: TimeAmount
    private var timer: Scheduled<Void>?

    public init(grace: TimeAmount = .seconds(2)) {
        self.grace = grace
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            timer?.cancel()
            timer = nil
        } else if timer == nil {
            timer = context.eventLoop.assumeIsolated().scheduleTask(in: grace) {
                self.timer = nil  // strong, as in KeepaliveHandler: cancelled when inactive
                if !context.channel.isWritable {
                    context.fireUserInboundEventTriggered(SessionEvent.sendQueueExceeded)
                }
            }
        }
        context.fireChannelWritabilityChanged()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }
}

import IRCFraming
import NIOCore

/// Keeps track of whether the client is alive: the registration timeout until it logs in, then
/// PING after `pingInterval` of silence and a timeout `pingTimeout` later.
///
/// Each timer belongs to the state it serves, so a state change cancels exactly the timer that
/// no longer applies. Input only records the time (no timer per line); the idle timer checks that
/// time when it fires. It asks `ClientConnection` to close with a `SessionEvent`, and learns of
/// the login from `SessionRegistered`, fired from the head of the pipeline. Inbound only, so
/// the messages written to the client never pass through it.
public final class KeepaliveHandler: ChannelInboundHandler {
    public typealias InboundIn = InboundLine
    public typealias InboundOut = InboundLine
    public typealias OutboundOut = ByteBuffer

    private enum State {
        case idle
        case registering(Scheduled<Void>)
        case active(Scheduled<Void>)
        case awaitingPong(Scheduled<Void>)
        case closed
    }

    private let serverName: String
    private let registrationTimeout: TimeAmount
    private let pingInterval: TimeAmount
    private let pingTimeout: TimeAmount
    private let registrationSeconds: Double
    private let pingTimeoutSeconds: Double
    private var state = State.idle
    private var lastInput = NIODeadline.uptimeNanoseconds(0)

    public init(serverName: String, registrationTimeoutSeconds: Double, pingIntervalSeconds: Double, pingTimeoutSeconds: Double) {
        self.serverName = serverName
        self.registrationSeconds = registrationTimeoutSeconds
        self.pingTimeoutSeconds = pingTimeoutSeconds
        self.registrationTimeout = .nanoseconds(Int64(registrationTimeoutSeconds * 1e9))
        self.pingInterval = .nanoseconds(Int64(pingIntervalSeconds * 1e9))
        self.pingTimeout = .nanoseconds(Int64(pingTimeoutSeconds * 1e9))
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        lastInput = context.eventLoop.now
        // The registration clock runs from the moment the connection is accepted.
        guard case .idle = state else { return }
        let seconds = registrationSeconds
        state = .registering(context.eventLoop.assumeIsolated().scheduleTask(in: registrationTimeout) {
            // Strong capture: the context holds this handler anyway, and a weak reference would give
            // the handler a side table (slower reference counting on every write). Cancelled on removal.
            guard case .registering = self.state else { return }
            self.state = .closed
            context.fireUserInboundEventTriggered(SessionEvent.registrationTimedOut(seconds: seconds))
        })
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        stop()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastInput = context.eventLoop.now
        if case let .awaitingPong(timeout) = state {
            timeout.cancel()
            scheduleIdleCheck(context, in: pingInterval)
        }
        context.fireChannelRead(data)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is SessionRegistered {
            if case let .registering(timer) = state {
                timer.cancel()
                scheduleIdleCheck(context, in: pingInterval)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func scheduleIdleCheck(_ context: ChannelHandlerContext, in delay: TimeAmount) {
        state = .active(context.eventLoop.assumeIsolated().scheduleTask(in: delay) {
            self.idleCheck(context)
        })
    }

    private func idleCheck(_ context: ChannelHandlerContext) {
        guard case .active = state else { return }
        let quiet = context.eventLoop.now - lastInput
        if quiet < pingInterval {
            scheduleIdleCheck(context, in: pingInterval - quiet)
            return
        }
        let seconds = pingTimeoutSeconds
        state = .awaitingPong(context.eventLoop.assumeIsolated().scheduleTask(in: pingTimeout) {
            guard case .awaitingPong = self.state else { return }
            self.state = .closed
            context.fireUserInboundEventTriggered(SessionEvent.pingTimedOut(seconds: seconds))
        })
        let ping = context.channel.allocator.buffer(string: "PING \(serverName)\r\n")
        context.writeAndFlush(wrapOutboundOut(ping), promise: nil)
    }

    private func stop() {
        switch state {
        case let .registering(timer), let .active(timer), let .awaitingPong(timer): timer.cancel()
        case .idle, .closed: break
        }
        state = .closed
    }
}

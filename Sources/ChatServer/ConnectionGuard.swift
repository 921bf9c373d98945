import IRCFraming
import NIOCore

/// Watches a connection from below its session, in one inbound handler: keepalive, flood control
/// and the send queue. When the connection must end, it fires a `SessionEvent` towards
/// `ClientConnection`, which closes with the reason. Inbound only, so the messages written to the
/// client never pass through it.
///
/// - **Keepalive**: the registration timeout until the login (learnt from `SessionRegistered`,
///   fired from the head of the pipeline), then PING after `pingInterval` of silence and a
///   timeout `pingTimeout` later. Input only records the time.
/// - **Send queue**: a client that does not read is asked to leave when its send queue stays
///   above the high-water mark for `sendQueueGrace`. A burst flushed at once can pass the mark
///   for a moment; a client that reads gets back under it within the grace. Nobody else ever
///   waits for a slow reader: writes to it queue on its own channel.
/// - **Flood control**: a token bucket of `messageBurst` lines refilled at `messagesPerSecond`.
///   Lines beyond it wait here, in order, and are passed on as tokens come back; nothing is
///   dropped. While lines wait, reading from the socket stops: it fires `ReadPressure.pause`, and
///   `ClientConnection` (the pipeline's tail, where `read` requests start) holds back `read`
///   calls as NIO's `BackPressureHandler` does, until `ReadPressure.resume`. So a flooding client
///   fills its own TCP window, not the server's memory. If a single read still brings more than
///   `maximumQueued` lines, the client is asked to leave with `SessionEvent.excessFlood`.
///
/// The deadlines of keepalive and the send queue are checked by the loop's `ConnectionClock`
/// (no timer per connection); only lines held by flood control have a timer of their own.
/// One handler instead of three saves every connection two handlers and their contexts
/// (BENCHMARKS.md, "Memory: where it goes").
public final class ConnectionGuard: ChannelInboundHandler {
    public typealias InboundIn = InboundLine
    public typealias InboundOut = InboundLine
    public typealias OutboundOut = ByteBuffer

    public struct Settings: Sendable {
        public var serverName: String
        public var registrationTimeoutSeconds: Double
        public var pingIntervalSeconds: Double
        public var pingTimeoutSeconds: Double
        public var sendQueueGraceSeconds: Double
        public var messagesPerSecond: Double
        public var messageBurst: Int
        public var maximumQueued: Int

        public init(serverName: String, registrationTimeoutSeconds: Double = 30, pingIntervalSeconds: Double = 90,
                    pingTimeoutSeconds: Double = 60, sendQueueGraceSeconds: Double = 2,
                    messagesPerSecond: Double = 4, messageBurst: Int = 20, maximumQueued: Int = 4096) {
            self.serverName = serverName
            self.registrationTimeoutSeconds = registrationTimeoutSeconds
            self.pingIntervalSeconds = pingIntervalSeconds
            self.pingTimeoutSeconds = pingTimeoutSeconds
            self.sendQueueGraceSeconds = sendQueueGraceSeconds
            self.messagesPerSecond = messagesPerSecond
            self.messageBurst = messageBurst
            self.maximumQueued = maximumQueued
        }

        public init(_ limits: ServerConfiguration.Limits, serverName: String) {
            self.init(serverName: serverName, registrationTimeoutSeconds: limits.registrationTimeoutSeconds,
                      pingIntervalSeconds: limits.pingIntervalSeconds, pingTimeoutSeconds: limits.pingTimeoutSeconds,
                      messagesPerSecond: limits.messagesPerSecond, messageBurst: limits.messageBurst)
        }

        /// The shortest of the configurable timeouts, which sets how often the clock must look
        /// (the send queue's grace, 2 seconds, may act up to a second late).
        var shortestTimeoutSeconds: Double {
            min(registrationTimeoutSeconds, pingIntervalSeconds, pingTimeoutSeconds)
        }

        static func amount(_ seconds: Double) -> TimeAmount { .nanoseconds(Int64(seconds * 1e9)) }
    }

    private enum Keepalive {
        case idle
        case registering(until: NIODeadline)
        case active
        case awaitingPong(until: NIODeadline)
        case closed
    }

    private let clock: ConnectionClock
    private var settings: Settings { clock.settings }
    /// This guard's place in the clock's list (-1: not in it); kept by the clock.
    var clockIndex = -1
    private var context: ChannelHandlerContext?
    private var keepalive = Keepalive.idle
    private var lastInput = NIODeadline.uptimeNanoseconds(0)
    private var unwritableSince: NIODeadline?
    // Flood control.
    private var tokens: Double
    private var lastRefill: NIODeadline?
    /// Lines waiting; made on first use (an empty CircularBuffer still allocates 16 slots, and
    /// most connections never wait).
    private var queued: CircularBuffer<NIOAny>?
    private var drainTimer: Scheduled<Void>?
    private var flooded = false

    /// A guard that enforces `clock.settings`, its deadlines checked by `clock`.
    init(clock: ConnectionClock) {
        self.clock = clock
        self.tokens = Double(clock.settings.messageBurst)
    }

    /// Lines waiting for a flood-control token.
    public var queuedCount: Int { queued?.count ?? 0 }

    // MARK: Channel events

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let now = context.eventLoop.now
        lastInput = now
        // The registration clock runs from the moment the connection is accepted.
        if case .idle = keepalive {
            keepalive = .registering(until: now + Settings.amount(settings.registrationTimeoutSeconds))
        }
        clock.add(self)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        stop()
        self.context = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        stop()
        queued = nil
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let now = context.eventLoop.now
        lastInput = now
        if case .awaitingPong = keepalive { keepalive = .active }
        if flooded { return }
        if queued == nil && takeToken(now) {
            context.fireChannelRead(data)
            return
        }
        guard queuedCount < settings.maximumQueued else {
            flooded = true
            queued = nil
            drainTimer?.cancel()
            context.fireUserInboundEventTriggered(SessionEvent.excessFlood)
            return
        }
        if queued == nil {
            queued = CircularBuffer(initialCapacity: 16)
            scheduleDrain(context)
            context.fireUserInboundEventTriggered(ReadPressure.pause)
        }
        queued!.append(data)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is SessionRegistered {
            if case .registering = keepalive { keepalive = .active }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            unwritableSince = nil
        } else if unwritableSince == nil {
            unwritableSince = context.eventLoop.now
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Deadlines (the clock)

    /// Checks the deadlines; called by the loop's `ConnectionClock`.
    func tick(_ now: NIODeadline) {
        guard let context else { return }
        if let since = unwritableSince, now - since >= Settings.amount(settings.sendQueueGraceSeconds) {
            unwritableSince = nil
            if !context.channel.isWritable {
                context.fireUserInboundEventTriggered(SessionEvent.sendQueueExceeded)
            }
        }
        switch keepalive {
        case let .registering(until) where now >= until:
            keepalive = .closed
            context.fireUserInboundEventTriggered(SessionEvent.registrationTimedOut(seconds: settings.registrationTimeoutSeconds))
        case .active where now - lastInput >= Settings.amount(settings.pingIntervalSeconds):
            keepalive = .awaitingPong(until: now + Settings.amount(settings.pingTimeoutSeconds))
            let ping = context.channel.allocator.buffer(string: "PING \(settings.serverName)\r\n")
            context.writeAndFlush(wrapOutboundOut(ping), promise: nil)
        case let .awaitingPong(until) where now >= until:
            keepalive = .closed
            context.fireUserInboundEventTriggered(SessionEvent.pingTimedOut(seconds: settings.pingTimeoutSeconds))
        default:
            break
        }
    }

    private func stop() {
        keepalive = .closed
        unwritableSince = nil
        drainTimer?.cancel()
        drainTimer = nil
        clock.remove(self)
    }

    // MARK: Flood control

    private func takeToken(_ now: NIODeadline) -> Bool {
        if let lastRefill {
            let elapsed = Double((now - lastRefill).nanoseconds) / 1e9
            tokens = min(Double(settings.messageBurst), tokens + elapsed * settings.messagesPerSecond)
        }
        lastRefill = now
        if tokens >= 1 {
            tokens -= 1
            return true
        }
        return false
    }

    private func scheduleDrain(_ context: ChannelHandlerContext) {
        let wait = max(0.001, (1 - tokens) / settings.messagesPerSecond)
        drainTimer = context.eventLoop.assumeIsolated().scheduleTask(in: Settings.amount(wait)) {
            // Strong capture: the context holds this handler anyway, and a weak reference would
            // give the handler a side table (slower reference counting). Cancelled on removal.
            self.drain(context)
        }
    }

    private func drain(_ context: ChannelHandlerContext) {
        drainTimer = nil
        var passed = false
        while !flooded, queuedCount > 0, takeToken(context.eventLoop.now) {
            context.fireChannelRead(queued!.removeFirst())
            passed = true
        }
        if passed { context.fireChannelReadComplete() }
        if queuedCount > 0 {
            scheduleDrain(context)
            return
        }
        queued = nil
        context.fireUserInboundEventTriggered(ReadPressure.resume)
    }
}

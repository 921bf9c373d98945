import IRCFraming
import NIOCore

/// Flood control: a token bucket of `burst` lines refilled at `perSecond`. Lines beyond it wait
/// here, in order, and are passed on as tokens come back; nothing is dropped.
///
/// While lines wait, reading from the socket stops: it fires `ReadPressure.pause`, and
/// `ClientConnection` (the pipeline's tail, where `read` requests start) holds back `read` calls
/// as NIO's `BackPressureHandler` does, until `ReadPressure.resume`. So a flooding client fills
/// its own TCP window, not the server's memory; and this handler stays inbound-only, out of the
/// path of every message written to the client. If a single read still brings more than
/// `maximumQueued` lines, the client is asked to leave with `SessionEvent.excessFlood`.
public final class FloodControlHandler: ChannelInboundHandler {
    public typealias InboundIn = InboundLine
    public typealias InboundOut = InboundLine

    private let perSecond: Double
    private let burst: Double
    private let maximumQueued: Int
    private var tokens: Double
    private var lastRefill: NIODeadline?
    /// Lines waiting; made on first use (an empty CircularBuffer still allocates 16 slots, and
    /// most connections never wait).
    private var queued: CircularBuffer<NIOAny>?
    private var drainTimer: Scheduled<Void>?
    private var flooded = false

    public init(perSecond: Double, burst: Int, maximumQueued: Int = 4096) {
        self.perSecond = perSecond
        self.burst = Double(burst)
        self.maximumQueued = maximumQueued
        self.tokens = Double(burst)
    }

    /// Lines waiting for a token.
    public var queuedCount: Int { queued?.count ?? 0 }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if flooded { return }
        if queued == nil && takeToken(context.eventLoop.now) {
            context.fireChannelRead(data)
            return
        }
        guard queuedCount < maximumQueued else {
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

    public func channelInactive(context: ChannelHandlerContext) {
        drainTimer?.cancel()
        queued = nil
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        drainTimer?.cancel()
    }

    private func takeToken(_ now: NIODeadline) -> Bool {
        if let lastRefill {
            let elapsed = Double((now - lastRefill).nanoseconds) / 1e9
            tokens = min(burst, tokens + elapsed * perSecond)
        }
        lastRefill = now
        if tokens >= 1 {
            tokens -= 1
            return true
        }
        return false
    }

    private func scheduleDrain(_ context: ChannelHandlerContext) {
        let wait = max(0.001, (1 - tokens) / perSecond)
        drainTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(wait * 1e9))) {
            self.drain(context)  // strong, as in KeepaliveHandler: cancelled on removal
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

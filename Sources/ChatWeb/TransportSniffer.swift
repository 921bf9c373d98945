import NIOCore
import TLS

/// Tells, from the first bytes after the TLS handshake, a browser (an HTTP request: the app, or a
/// WebSocket upgrade) from an IRC client, and sets up the pipeline for it.
///
/// IRC clients start with a command (`CAP`, `NICK`, `PASS`, `USER`…) that is never an HTTP
/// method; browsers start with `GET `. So one port serves both, which is simplest for people behind
/// firewalls that allow only 443. Until the first line decides, the connection has `timeout` to
/// send something (the registration timeout; the IRC handlers start their own clock after).
public final class TransportSniffer: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    private let web: WebEndpoint
    private let timeout: TimeAmount
    private let installIRC: @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void
    private var buffered: ByteBuffer?
    private var tlsEvent: TLSEvent?
    private var timer: Scheduled<Void>?
    private var decided = false
    private let onError: (Error) -> Void
    private let onClose: () -> Void

    static let httpMethods: [String] = ["GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE "]
    /// Enough bytes to tell the longest method token.
    static let enough = 8

    /// - Parameters:
    ///   - onError: an error before the first bytes decided (a failed handshake): the caller logs it.
    ///   - onClose: the connection ended before the first bytes decided.
    public init(web: WebEndpoint, timeout: TimeAmount, installIRC: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void,
                onError: @escaping (Error) -> Void = { _ in }, onClose: @escaping () -> Void = {}) {
        self.web = web
        self.onError = onError
        self.onClose = onClose
        self.timeout = timeout
        self.installIRC = installIRC
    }

    public enum Transport: Equatable { case irc, http, undecided }

    /// What the first bytes say: HTTP if they start with a method and a space, IRC as soon as they
    /// cannot, undecided while they still could.
    public static func classify(_ bytes: some Collection<UInt8>) -> Transport {
        let head = Array(bytes.prefix(enough))
        for method in httpMethods {
            let m = Array(method.utf8)
            if head.count >= m.count {
                if head.prefix(m.count).elementsEqual(m) { return .http }
            } else if m.prefix(head.count).elementsEqual(head) {
                return .undecided
            }
        }
        return .irc
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) { timer?.cancel() }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The handshake's outcome, for the IRC handlers that come after it (SASL EXTERNAL needs
        // the client certificate). Kept, not passed on: nothing above wants it yet.
        if let event = event as? TLSEvent, case .handshakeCompleted = event {
            tlsEvent = event
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        onError(error)
        context.close(promise: nil)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        onClose()
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if decided {
            context.fireChannelRead(data)
            return
        }
        if buffered == nil { buffered = incoming } else { buffered!.writeBuffer(&incoming) }
        let transport = Self.classify(buffered!.readableBytesView)
        guard transport != .undecided else { return }
        decided = true
        timer?.cancel()
        do {
            let pipeline = context.pipeline.syncOperations
            switch transport {
            case .http:
                try web.install(on: pipeline, tlsEvent: tlsEvent, installIRC: installIRC)
            case .irc, .undecided:
                try installIRC(pipeline)
                if let tlsEvent { context.fireUserInboundEventTriggered(tlsEvent) }
            }
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        let bytes = buffered!
        buffered = nil
        context.fireChannelRead(wrapInboundOut(bytes))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

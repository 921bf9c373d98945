import ChatSupport
import ChatAuth
import ChatWeb
import Dispatch
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IRC
import IRCFraming
import Logging
import NIOCore
import TLS

/// The channel handler at the end of a client's pipeline: it feeds lines and events to its
/// `Session` and carries out the actions the session returns. It owns no chat logic.
///
/// Loop-confined: every method runs on the channel's event loop. While a login is being checked it
/// holds further lines (and stops reading), then processes them in order. It also holds back
/// reading while flood control asks (`ReadPressure`).
public final class ClientConnection: ChannelDuplexHandler, DeliveryTarget {
    public typealias InboundIn = InboundLine
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private var session: Session
    /// The session's capabilities, copied after every change: read per delivery, so it must
    /// cost one load, not an access to the whole `Session` value.
    private var capabilities: Capabilities = []
    private let core: ServerCore
    private let address: String
    private let now: () -> Date
    private var context: ChannelHandlerContext?
    /// Where relayed messages are written: the context of the first handler above TLS, so that
    /// they skip the inbound-only handlers between (nil: this handler's own context).
    var relayContext: ChannelHandlerContext?
    /// The TLS layer below, when relayed messages go to it directly (`TLSHandler.enqueue`): the
    /// same queue `relayContext` leads to, without boxing each one and counting references to
    /// contexts and handlers per recipient. Dropped with the contexts.
    var relayTLS: TLSHandler?
    /// Relayed messages go out as WebSocket frames (text or binary), written below the bridge;
    /// nil: as IRC lines.
    var relayFrames: WebSocketFrames?
    /// Lines that came while a password was checked. Made on first use: most connections never
    /// need it, and an empty CircularBuffer still allocates 16 slots (idle memory).
    private var held: CircularBuffer<InboundLine>?
    private var readPending = false
    /// Flood control has lines waiting: no reading until it says resume.
    private var floodPaused = false
    /// Cluster mode: messages of this client on their way to the database. Past the window, no
    /// reading until half of them are through: a client that sends faster than the database
    /// takes waits (TCP pushes back), instead of queueing without bound in this server.
    private var publishing = 0
    private var publishPaused = false
    static let publishWindow = 64
    private var closing = false
    private var flushPending = false
    private let flusher: LoopFlusher
    private let connectedAt: NIODeadline
    /// The negotiated version and cipher suite, for the login's log line (OpenSSL's names,
    /// shared by every connection: no string of its own per connection).
    private var tls: (version: String, cipherSuite: String) = ("", "")
    private var tlsSummary: String { "\(tls.version) \(tls.cipherSuite)" }
    private var failure: String?
    /// The password check waiting for a hashing thread, dropped if the client leaves first.
    private var pendingLogin: LoginQueue.Ticket?

    public init(core: ServerCore, eventLoop: EventLoop, address: String, now: @escaping () -> Date = Date.init) {
        self.core = core
        self.address = address
        self.now = now
        self.flusher = core.flusher(for: eventLoop)
        self.connectedAt = eventLoop.now
        self.session = Session(core: core, address: address, eventLoop: eventLoop, target: nil)
        session.attach(self)
    }

    private var logger: Logger { core.logger }
    private var account: String { session.handle?.nick ?? "-" }

    // MARK: Channel events

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        relayContext = nil
        relayTLS = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        pendingLogin?.cancel()
        pendingLogin = nil
        // Why the session ended, if it ended first (QUIT, a timeout): that is the reason, not a
        // socket or TLS error that came with the hang-up afterwards.
        let endedBecause = session.closeReason
        perform(session.connectionLost(now: now()))
        held = nil
        relayContext = nil
        relayTLS = nil
        let seconds = Double((context.eventLoop.now - connectedAt).nanoseconds) / 1e9
        Self.logDisconnected(logger, account: account, address: address, reason: endedBecause ?? failure ?? "Connection closed", seconds: seconds)
        context.fireChannelInactive()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case let .handshakeCompleted(info)? = event as? TLSEvent {
            tls = (info.version, info.cipherSuite)
            session.tlsEstablished(clientCertificate: info.peerCertificate.flatMap { ClientCertificate.normalizedFingerprint($0.sha256Fingerprint) })
            logger.debug("TLS handshake completed", metadata: ["address": "\(address)", "tls": "\(tlsSummary)"])
        } else if let pressure = event as? ReadPressure {
            floodPaused = pressure == .pause
            resumeReadingIfAllowed(context)
            return
        } else if let event = event as? SessionEvent {
            if event == .sendQueueExceeded {
                logger.notice("send queue exceeded", metadata: ["account": "\(account)", "address": "\(address)"])
            }
            close(reason: event.reason)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        failure = failure ?? Self.log(error, logger, account: account, address: address)
        context.close(promise: nil)
    }

    /// Logs a connection error in words (an unclean TLS shutdown only at debug); returns them.
    static func log(_ error: Error, _ logger: Logger, account: String, address: String) -> String {
        let reason = describe(error)
        if let tls = error as? TLSError, tls == .uncleanShutdown {
            logger.debug("\(reason)", metadata: ["address": "\(address)"])
        } else {
            logger.info("\(reason)", metadata: ["account": "\(account)", "address": "\(address)"])
        }
        return reason
    }

    /// The one line every connection leaves when it ends: who, from where, why, how long.
    static func logDisconnected(_ logger: Logger, account: String, address: String, reason: String, seconds: Double) {
        let metadata: Logger.Metadata = [
            "account": "\(account)", "address": "\(address)",
            "reason": "\(reason)", "duration": "\(Digits.fixed(seconds, 1))s",
        ]
        logger.info("disconnected", metadata: metadata)
    }

    /// A connection error in words: TLS errors as the TLS layer words them (with the alert a
    /// client sent), socket errors as the system's message.
    static func describe(_ error: Error) -> String {
        if let tls = error as? TLSError { return "TLS: \(tls)" }
        if let io = error as? IOError { return "connection error: \(String(cString: strerror(io.errnoCode)))" }
        return "connection error: \(error)"
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        if session.isAwaitingLogin || held != nil {
            held = held ?? CircularBuffer(initialCapacity: 4)
            held!.append(line)
            return
        }
        perform(session.receive(line, now: now()))
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    public func read(context: ChannelHandlerContext) {
        if session.isAwaitingLogin || floodPaused || publishPaused {
            readPending = true
        } else {
            context.read()
        }
    }

    private func resumeReadingIfAllowed(_ context: ChannelHandlerContext) {
        if readPending && !session.isAwaitingLogin && !floodPaused && !publishPaused {
            readPending = false
            context.read()
        }
    }

    // MARK: Actions

    private func perform(_ actions: [Session.Action]) {
        capabilities = session.capabilities
        for action in actions { perform(action) }
    }

    private func perform(_ action: Session.Action) {
        guard let context else { return }
        switch action {
        case let .send(message):
            context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: message.serialized())), promise: nil)
        case let .deliver(relay, audience, except, requiring):
            audience.deliver(relay, except: except, requiring: requiring)
        case let .publish(event, command):
            guard let cluster = core.cluster else { return }
            let connection = NIOLoopBound(self, eventLoop: context.eventLoop)
            let loop = context.eventLoop
            let serverName = core.serverName
            publishing += 1
            if publishing >= Self.publishWindow { publishPaused = true }
            cluster.publish(event).whenComplete { result in
                loop.execute {
                    let this = connection.value
                    this.publishing -= 1
                    if case let .failure(error) = result {
                        this.logger.warning("cluster: a message was not sent: \(error)")
                        this.perform(.send(IRCMessage(source: serverName, command: "FAIL", parameters: [command, "CANNOT_SEND", "Message not delivered: the cluster's database did not take it, try again"])))
                        this.context?.flush()
                    }
                    if this.publishPaused && this.publishing <= Self.publishWindow / 2, let context = this.context {
                        this.publishPaused = false
                        this.resumeReadingIfAllowed(context)
                    }
                }
            }
        case let .verify(account, password, method):
            verify(account: account, password: password, method: method)
        case let .verifyCertificate(fingerprint, account):
            var outcome = core.logins.login(certificate: fingerprint, account: account, address: address)
            if case .success = outcome, let cluster = core.cluster, !cluster.isConnected {
                outcome = .unavailable(reason: ClusterLink.unavailableReason)
            }
            if case .success = outcome {} else {
                logger.notice("certificate login failed: \(outcome)", metadata: ["fingerprint": "\(fingerprint)", "address": "\(address)"])
            }
            // A later turn of the loop, like a password check's answer.
            let connection = NIOLoopBound(self, eventLoop: context.eventLoop)
            let answer = outcome
            context.eventLoop.execute { connection.value.loginFinished(answer, via: .sasl) }
        case let .registered(handle):
            logger.info("logged in", metadata: ["account": "\(handle.nick)", "address": "\(address)", "tls": "\(tlsSummary)",
                                                "caps": "\(session.capabilities.names.joined(separator: ","))"])
            context.channel.pipeline.fireUserInboundEventTriggered(SessionRegistered())
            core.cluster?.loggedIn(handle)
        case let .replace(old):
            logger.info("replacing an older connection", metadata: ["account": "\(old.nick)"])
            old.end(reason: Session.replacedReason)
        case let .verifyOper(password):
            verifyOper(password: password)
        case let .administer(task, label):
            let core = self.core
            let connection = NIOLoopBound(self, eventLoop: context.eventLoop)
            let loop = context.eventLoop
            // Writing the users file blocks on the disk: never on the event loop.
            DispatchQueue.global().async {
                let text = core.perform(task)
                loop.execute {
                    let this = connection.value
                    this.perform(this.session.adminFinished(text, label: label))
                    this.context?.flush()
                }
            }
        case let .history(job, label):
            let core = self.core
            let account = session.handle?.folded ?? ""
            let connection = NIOLoopBound(self, eventLoop: context.eventLoop)
            let loop = context.eventLoop
            let sequence = core.history?.sequence  // what was relayed before this request
            // The database is read off the event loop, by a few threads; the answer comes back here.
            let queued = core.historyReaders?.enqueue {
                let result = core.perform(job, account: account, after: sequence)
                loop.execute {
                    let this = connection.value
                    this.perform(this.session.historyFinished(job, result, label: label))
                    this.context?.flush()
                }
            }
            if queued != true {
                perform(session.historyFinished(job, .failed("the server is busy: try again in a moment"), label: label))
            }
        case let .close(reason):
            closing = true
            held = nil
            context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: IRCMessage(command: "ERROR", parameters: [reason]).serialized())), promise: nil)
            context.flush()
            context.close(promise: nil)
        }
    }

    private func verify(account: String, password: Password, method: Registration.Method) {
        let loop = context!.eventLoop
        let address = self.address
        let logger = self.logger
        let connection = NIOLoopBound(self, eventLoop: loop)
        // The outcome goes from the hashing thread straight to this loop (see
        // `Authenticator.login(…completion:)`), always on a later turn of the loop.
        let cluster = core.cluster
        pendingLogin = core.logins.login(account: account, password: password, address: address) { checked in
            // A cluster node cut off from its database would log in someone whose account may
            // have been locked or who is logged in elsewhere: it refuses, and says why.
            let outcome: LoginOutcome
            if case .success = checked, let cluster, !cluster.isConnected {
                outcome = .unavailable(reason: ClusterLink.unavailableReason)
            } else {
                outcome = checked
            }
            loop.execute {
                switch outcome {
                case .success: break
                case .busy: logger.warning("login refused: server busy", metadata: ["account": "\(account)", "address": "\(address)"])
                default: logger.notice("login failed: \(outcome)", metadata: ["account": "\(account)", "address": "\(address)"])
                }
                connection.value.loginFinished(outcome, via: method)
            }
        }
    }

    /// OPER's password check: the same checker, throttling and hashing pool as a login.
    private func verifyOper(password: Password) {
        let loop = context!.eventLoop
        let connection = NIOLoopBound(self, eventLoop: loop)
        pendingLogin = core.logins.login(account: account, password: password, address: address) { outcome in
            loop.execute { connection.value.operFinished(outcome) }
        }
    }

    private func operFinished(_ outcome: LoginOutcome) {
        pendingLogin = nil
        guard context != nil, !closing else { return }
        perform(session.operFinished(outcome, now: now()))
        runHeldLines()
    }

    private func loginFinished(_ outcome: LoginOutcome, via method: Registration.Method) {
        pendingLogin = nil
        guard context != nil, !closing else { return }
        perform(session.loginFinished(outcome, via: method, now: now()))
        runHeldLines()
    }

    /// Runs the lines that came while a password was checked, in order, until one starts another
    /// check; then reading resumes.
    private func runHeldLines() {
        guard let context else { return }
        // Lines that came while the password was checked, in order, until one starts another check.
        while let line = held?.popFirst(), !closing {
            perform(session.receive(line, now: now()))
            if session.isAwaitingLogin { break }
        }
        if held?.isEmpty == true { held = nil }
        context.flush()
        resumeReadingIfAllowed(context)
    }

    /// Ends the session with `reason` (QUIT to its rooms, ERROR to the client).
    func close(reason: String) {
        guard !closing else { return }
        perform(session.close(reason: reason, now: now()))
    }

    // MARK: DeliveryTarget

    public func deliver(_ relay: Relay, cache: inout Relay.Cache, requiring: Capabilities) {
        guard context != nil, !closing, capabilities.isSuperset(of: requiring) else { return }
        if let relayTLS {
            relayTLS.enqueue(relay.buffer(for: capabilities, cache: &cache))
        } else if let context = relayContext ?? context {
            let buffer = relayFrames.map { relay.frames(for: capabilities, binary: $0 == .binary, cache: &cache) }
                ?? relay.buffer(for: capabilities, cache: &cache)
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
        if !flushPending {
            flushPending = true
            flusher.mark(self)
        }
    }

    public func end(reason: String) {
        close(reason: reason)
    }

    /// Called by the loop's flusher at the end of the turn in which this client was written to.
    func flushNow() {
        flushPending = false
        context?.flush()
    }
}

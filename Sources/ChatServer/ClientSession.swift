import ChatAuth
import Foundation
import IRC
import IRCFraming
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TLS

/// One client connection above TLS and the line decoder: registration through `Registration`,
/// then the chat commands. Everything it owns lives on its channel's event loop; other sessions
/// reach it only through `eventLoop` (delivery hops there) and the few immutable or locked facts
/// below (its identity, its away message).
public final class ClientSession: ChannelInboundHandler, @unchecked Sendable {
    public typealias InboundIn = InboundLine
    public typealias OutboundOut = ByteBuffer

    let core: ServerCore
    public let eventLoop: EventLoop
    /// The client's IP address (for limits, throttling and logs; never shown to other users).
    public let address: String

    // Identity: written once on the session's loop before the registry publishes the session.
    public private(set) var nick = "*"
    private(set) var username = ""
    private(set) var realname = ""
    var host: String { "user/" + nick }
    var mask: String { "\(nick)!\(username)@\(host)" }
    private(set) var signonTime = 0

    // Loop-confined state.
    private var context: ChannelHandlerContext?
    private var registration: Registration
    private(set) var isRegistered = false
    var capabilities: Capabilities = []
    var joined: [String: Room] = [:]
    var lastMessageTime = 0
    private var lastInput: NIODeadline = .now()
    private var pingSentAt: NIODeadline?
    private var tokens: Double
    private var lastRefill: NIODeadline = .now()
    private var held = CircularBuffer<InboundLine>()
    private var drainTimer: Scheduled<Void>?
    private var registrationTimer: Scheduled<Void>?
    private var pingTimer: Scheduled<Void>?
    private var sendQueueTimer: Scheduled<Void>?
    private var closing = false
    private var tlsSummary = ""
    private let flusher: LoopFlusher
    private var flushPending = false

    // Read by other sessions (WHOIS, WHO, PRIVMSG replies).
    private let awayBox = NIOLockedValueBox<String?>(nil)
    var awayMessage: String? { awayBox.withLockedValue { $0 } }

    public init(core: ServerCore, eventLoop: EventLoop, address: String) {
        self.core = core
        self.eventLoop = eventLoop
        self.address = address
        self.registration = Registration(serverName: core.serverName)
        self.tokens = Double(core.configuration.limits.messageBurst)
        self.flusher = core.flusher(for: eventLoop)
    }

    var limits: ServerConfiguration.Limits { core.configuration.limits }
    var logger: Logger { core.logger }

    // MARK: Channel events

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let timeout = limits.registrationTimeoutSeconds
        registrationTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(timeout * 1000))) { [weak self] in
            guard let self, !self.isRegistered else { return }
            let seconds = timeout == timeout.rounded() ? "\(Int(timeout))" : "\(timeout)"
            self.close(reason: "Registration timed out: log in within \(seconds) seconds")
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        registrationTimer?.cancel()
        pingTimer?.cancel()
        drainTimer?.cancel()
        sendQueueTimer?.cancel()
        if isRegistered {
            quitRooms(reason: closing ? "Quit" : "Connection closed")
            core.registry.release(self)
            logger.info("disconnected", metadata: ["account": "\(nick)", "address": "\(address)"])
        }
        isRegistered = false
        context.fireChannelInactive()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case let .handshakeCompleted(info)? = event as? TLSEvent {
            tlsSummary = "\(info.version) \(info.cipherSuite)"
            logger.debug("TLS handshake completed", metadata: ["address": "\(address)", "tls": "\(tlsSummary)"])
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let tls = error as? TLSError {
            switch tls {
            case .uncleanShutdown, .closedDuringHandshake:
                logger.debug("\(tls)", metadata: ["address": "\(address)"])
            default:
                logger.info("TLS: \(tls)", metadata: ["address": "\(address)"])
            }
        } else {
            logger.info("connection error: \(error)", metadata: ["address": "\(address)"])
        }
        context.close(promise: nil)
    }

    /// How long a client may stay above its send queue limit before it counts as not reading.
    /// A burst of messages flushed at once can pass the limit for a moment; a slow reader stays.
    static let sendQueueGrace = TimeAmount.seconds(2)

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if !context.channel.isWritable && !closing && sendQueueTimer == nil {
            sendQueueTimer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.sendQueueGrace) { [weak self] in
                guard let self, let context = self.context else { return }
                self.sendQueueTimer = nil
                // Still above the limit: this client is not reading. Nobody else waits for it.
                if !context.channel.isWritable && !self.closing {
                    self.logger.notice("send queue exceeded", metadata: ["account": "\(self.nick)", "address": "\(self.address)"])
                    self.close(reason: "SendQ exceeded")
                }
            }
        }
        context.fireChannelWritabilityChanged()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        lastInput = context.eventLoop.now
        pingSentAt = nil
        if !held.isEmpty {
            hold(line)
            return
        }
        if !takeToken(context) {
            hold(line)
            return
        }
        process(line)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    // MARK: Flood control (token bucket; excess lines wait, reading pauses)

    private func takeToken(_ context: ChannelHandlerContext) -> Bool {
        let now = context.eventLoop.now
        let elapsed = Double((now - lastRefill).nanoseconds) / 1e9
        lastRefill = now
        tokens = min(Double(limits.messageBurst), tokens + elapsed * limits.messagesPerSecond)
        if tokens >= 1 {
            tokens -= 1
            return true
        }
        return false
    }

    private func hold(_ line: InboundLine) {
        guard let context else { return }
        if held.count >= 4096 {
            close(reason: "Excess flood")
            return
        }
        held.append(line)
        if held.count == 1 {
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
            scheduleDrain(context)
        }
    }

    private func scheduleDrain(_ context: ChannelHandlerContext) {
        let wait = max(0.001, (1 - tokens) / limits.messagesPerSecond)
        drainTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(wait * 1e9))) { [weak self] in
            self?.drain()
        }
    }

    private func drain() {
        guard let context, !closing else { return }
        while !held.isEmpty && takeToken(context) {
            process(held.removeFirst())
            if closing { return }
        }
        context.flush()
        if held.isEmpty {
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        } else {
            scheduleDrain(context)
        }
    }

    // MARK: Lines

    private func process(_ line: InboundLine) {
        guard !closing else { return }
        switch line {
        case .overlong:
            sendNumeric(.inputTooLong, "Input line was too long (limit \(limits.lineLength) bytes without tags)")
        case let .line(buffer):
            if buffer.readableBytes == 0 { return }
            let message: IRCMessage
            do {
                message = try buffer.withUnsafeReadableBytes { raw throws(IRCParseError) in
                    try IRCMessage.parse(buffer: raw.bindMemory(to: UInt8.self), maximumTagBytes: IRCMessage.Limits.clientTags, maximumLineBytes: limits.lineLength)
                }
            } catch {
                reportParseError(error, buffer)
                return
            }
            if isRegistered {
                handleCommand(message)
            } else {
                for action in registration.receive(message) { perform(action) }
            }
        }
    }

    private func reportParseError(_ error: IRCParseError, _ buffer: ByteBuffer) {
        switch error {
        case .lineTooLong, .tagsTooLong:
            sendNumeric(.inputTooLong, "Input line was too long (limit \(limits.lineLength) bytes without tags)")
        case .invalidUTF8, .containsNUL:
            // Never relayed. Name the command if it can be read.
            let word = buffer.getBytes(at: buffer.readerIndex, length: min(buffer.readableBytes, 20)).map {
                String(decoding: $0.prefix { $0 != 0x20 && $0 < 0x80 && $0 > 0x20 }, as: UTF8.self)
            } ?? "*"
            let command = word.isEmpty || word.hasPrefix("@") || word.hasPrefix(":") ? "*" : word.uppercased()
            send(IRCMessage(source: core.serverName, command: "FAIL", parameters: [command, error == .invalidUTF8 ? "INVALID_UTF8" : "INVALID_MESSAGE",
                error == .invalidUTF8 ? "Message rejected: it is not valid UTF-8 (set your client to UTF-8)" : "Message rejected: it contains a NUL byte"]))
        case .empty:
            break
        case .invalidCommand, .tooManyParameters:
            sendNumeric(.unknownCommand, "*", "Malformed message: \(error)")
        }
    }

    // MARK: Registration actions

    private func perform(_ action: Registration.Action) {
        switch action {
        case let .send(message):
            send(message)
        case let .close(reason):
            close(reason: reason)
        case let .verify(account, password, method):
            verify(account: account, password: password, method: method)
        case let .complete(account, requestedNick, username, realname, capabilities):
            complete(account: account, requestedNick: requestedNick, username: username, realname: realname, capabilities: capabilities)
        }
    }

    private func verify(account: String, password: Password, method: Registration.Method) {
        if let immediate = core.immediateLoginForTesting {
            for action in registration.loginFinished(immediate(account, password), via: method) { perform(action) }
            return
        }
        let authenticator = core.authenticator
        let address = self.address
        let loop = eventLoop
        let promise = loop.makePromise(of: LoginOutcome.self)
        // Straight from the hashing thread to this loop (see `Authenticator.login(…completion:)`);
        // always a later turn of the loop, also when the answer comes at once (throttled, busy).
        authenticator.login(account: account, password: password, address: address) { outcome in
            loop.execute { promise.succeed(outcome) }
        }
        promise.futureResult.assumeIsolated().whenSuccess { [weak self] outcome in
            guard let self, !self.closing else { return }
            switch outcome {
            case .success: break
            case .busy: self.logger.warning("login refused: server busy", metadata: ["account": "\(account)", "address": "\(address)"])
            default: self.logger.notice("login failed: \(outcome)", metadata: ["account": "\(account)", "address": "\(address)"])
            }
            for action in self.registration.loginFinished(outcome, via: method) { self.perform(action) }
            self.context?.flush()
        }
    }

    private func complete(account: String, requestedNick: String, username: String, realname: String, capabilities: Capabilities) {
        guard let context else { return }
        let oldNick = requestedNick
        nick = account
        self.username = "~" + String(username.filter { $0.isLetter || $0.isNumber }.prefix(10))
        if self.username == "~" { self.username = "~" + account.prefix(10) }
        self.realname = realname
        self.capabilities = capabilities
        signonTime = Int(Date().timeIntervalSince1970)
        lastMessageTime = signonTime
        registrationTimer?.cancel()
        isRegistered = true
        if let old = core.registry.claim(self) {
            logger.info("replacing an older connection", metadata: ["account": "\(account)"])
            old.eventLoop.execute { old.replaced() }
        }
        logger.info("logged in", metadata: ["account": "\(account)", "address": "\(address)", "tls": "\(tlsSummary)"])
        if oldNick != account {
            // The nick is the account name: tell the client its real nick.
            send(IRCMessage(source: "\(oldNick)!\(self.username)@\(host)", command: "NICK", parameters: [account]))
        }
        let c = core.configuration
        sendNumeric(.welcome, "Welcome to the \(c.networkName) network, \(mask)")
        sendNumeric(.yourHost, "Your host is \(c.serverName), running version \(core.version)")
        sendNumeric(.created, core.createdText)
        sendNumeric(.myInfo, c.serverName, core.version, "i", "iknot", "ko")
        for tokens in core.isupportLines {
            sendNumeric(.isupport, tokens + ["are supported by this server"])
        }
        sendMOTD()
        startPing(context)
        context.flush()
    }

    /// Another connection logged in to this account.
    func replaced() {
        guard !closing else { return }
        close(reason: "Closing link: logged in from another connection")
    }

    /// Keepalive: after `pingIntervalSeconds` without input, send PING; after
    /// `pingTimeoutSeconds` more without input, the client is gone and its rooms see it leave.
    private func startPing(_ context: ChannelHandlerContext) {
        let interval = TimeAmount.nanoseconds(Int64(limits.pingIntervalSeconds * 1e9))
        let timeout = TimeAmount.nanoseconds(Int64(limits.pingTimeoutSeconds * 1e9))
        let check = TimeAmount.nanoseconds(max(1_000_000, min(interval, timeout).nanoseconds / 4))
        pingTimer = context.eventLoop.assumeIsolated().scheduleTask(in: check) { [weak self] in
            guard let self, let context = self.context, !self.closing else { return }
            let now = context.eventLoop.now
            if let sent = self.pingSentAt {
                if now - sent >= timeout {
                    self.close(reason: "Ping timeout: \(Int(self.limits.pingTimeoutSeconds)) seconds")
                    return
                }
            } else if now - self.lastInput >= interval {
                self.pingSentAt = now
                self.send(IRCMessage(command: "PING", parameters: [self.core.serverName]))
                context.flush()
            }
            self.startPing(context)
        }
    }

    // MARK: Output

    /// Writes a message to this client (on its loop); flushed at the end of the read burst.
    func send(_ message: IRCMessage) {
        guard let context else { return }
        context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: message.serialized())), promise: nil)
    }

    func sendNumeric(_ numeric: Numeric, _ parameters: String...) {
        sendNumeric(numeric, parameters)
    }

    func sendNumeric(_ numeric: Numeric, _ parameters: [String]) {
        send(IRCMessage(source: core.serverName, command: numeric.rawValue, parameters: [nick] + parameters))
    }

    /// Writes a relayed message in the variant this client's capabilities call for; the flush
    /// comes at the end of this loop turn, shared with whatever else this client gets meanwhile.
    func deliver(_ relay: Relay, cache: inout Relay.Cache) {
        guard let context, !closing else { return }
        context.write(wrapOutboundOut(relay.buffer(for: capabilities, cache: &cache, allocator: context.channel.allocator)), promise: nil)
        if !flushPending {
            flushPending = true
            flusher.mark(self)
        }
    }

    /// Called by the loop's flusher.
    func flushNow() {
        flushPending = false
        context?.flush()
    }


    /// Delivers `relay` to sessions grouped by event loop: one task per loop, one serialisation
    /// per variant per loop. Skips `except`, and sessions without the capabilities `requiring`.
    static func broadcast(_ relay: Relay, to groups: [[ClientSession]], except: ClientSession? = nil, requiring: Capabilities = []) {
        for group in groups {
            guard let first = group.first else { continue }
            let work = {
                var cache = Relay.Cache()
                for session in group where session !== except && session.capabilities.isSuperset(of: requiring) {
                    session.deliver(relay, cache: &cache)
                }
            }
            if first.eventLoop.inEventLoop { work() } else { first.eventLoop.execute(work) }
        }
    }

    /// Groups sessions by event loop for `broadcast`.
    static func group(_ sessions: [ClientSession]) -> [[ClientSession]] {
        var index: [ObjectIdentifier: Int] = [:]
        var groups: [[ClientSession]] = []
        for session in sessions {
            let key = ObjectIdentifier(session.eventLoop)
            if let i = index[key] { groups[i].append(session) } else { index[key] = groups.count; groups.append([session]) }
        }
        return groups
    }

    func relay(_ command: String, _ parameters: [String], clientTags: [IRCTag] = []) -> Relay {
        Relay(source: mask, command: command, parameters: parameters, time: Relay.timestamp(), account: nick, clientTags: clientTags)
    }

    // MARK: Leaving

    /// Sends `ERROR :reason` and closes (TLS close_notify included).
    func close(reason: String) {
        guard let context, !closing else { return }
        if isRegistered {
            quitRooms(reason: reason)
            core.registry.release(self)
            isRegistered = false
        }
        closing = true
        held.removeAll()
        send(IRCMessage(command: "ERROR", parameters: [reason]))
        context.flush()
        context.close(promise: nil)
    }

    /// Leaves every room, telling everyone who shared one (once each).
    func quitRooms(reason: String) {
        guard !joined.isEmpty else { return }
        var seen = Set<ObjectIdentifier>()
        var audience: [ClientSession] = []
        for room in joined.values {
            for (member, _) in room.roster where member !== self && seen.insert(ObjectIdentifier(member)).inserted {
                audience.append(member)
            }
            if room.leave(self) { core.registry.remove(room) }
        }
        joined.removeAll()
        ClientSession.broadcast(relay("QUIT", [reason]), to: ClientSession.group(audience))
    }

    func setAway(_ message: String?) {
        awayBox.withLockedValue { $0 = message }
    }
}

import ChatSupport
import ChatAuth
import ChatHistory
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import IRC
import IRCFraming
import NIOCore

/// One client's life on the server as a plain value: registration (through `Registration`), the
/// welcome burst, every chat command, and leaving.
///
/// Each method takes an event (a line, a login result, a close) and the time, and returns the
/// actions to carry out; it does no I/O and reads no clock. `ClientConnection` feeds it from the
/// network and carries the actions out; tests drive it directly (`SessionHarness` in ChatTesting).
/// Shared state it touches (the registry, rooms, other sessions' presence) is locked or immutable.
public struct Session {
    public enum Action {
        /// A line to this client.
        case send(IRCMessage)
        /// A message for others: `audience.deliver(relay, except:, requiring:)`.
        case deliver(Relay, to: Audience, except: SessionHandle?, requiring: Capabilities)
        /// Check this password off the event loop, then call `loginFinished`. Input that
        /// arrives meanwhile waits (see `isAwaitingLogin`).
        case verify(account: String, password: Password, method: Registration.Method)
        /// Look up the account of this client certificate (SASL EXTERNAL), then call
        /// `loginFinished(via: .sasl)`.
        case verifyCertificate(fingerprint: String, account: String?)
        /// Registration completed: start the keepalive, log the login.
        case registered(SessionHandle)
        /// `handle` held this account until now: tell it (on its own loop) it was replaced.
        case replace(SessionHandle)
        /// Send `ERROR :reason`, then close the connection.
        case close(reason: String)
        /// OPER: check this password for the session's own account off the event loop, then
        /// call `operFinished`. Input waits meanwhile, as for a login.
        case verifyOper(password: Password)
        /// KLINE, UNKLINE: carry out `ServerCore.perform(task)` off the event loop, then call
        /// `adminFinished` with what it says (and the command's label, labeled-response).
        case administer(AdminTask, label: String? = nil)
        /// Ask the history store (`ServerCore.perform(job, account:)`) off the event loop, then
        /// call `historyFinished` (with the command's label, labeled-response).
        case history(HistoryJob, label: String? = nil)
        /// Cluster mode: send `event` to every node through the database; if that fails, tell
        /// the client with a FAIL for `command`.
        case publish(ClusterEvent, command: String)
    }

    public enum Phase: Equatable { case registering, registered, closed }

    public let core: ServerCore
    /// The client's IP address.
    public let address: String
    private let eventLoop: EventLoop
    // Unowned: the target is the connection that holds this session, so it outlives it; a weak
    // reference would give the connection a side table (slow reference counting on every write).
    private unowned(unsafe) var target: (any DeliveryTarget)?
    private var registration: Registration
    private var operVerifying = false
    /// The label of the OPER whose password is being checked (labeled-response).
    private var operLabel: String?
    /// CHATHISTORY requests this session may make now (see `HistoryCommand.RequestBudget`).
    private var historyBudget = HistoryCommand.RequestBudget()
    public private(set) var phase = Phase.registering
    /// Set when registration completes: what other sessions see of this one.
    public private(set) var handle: SessionHandle?
    public private(set) var capabilities: Capabilities = []
    /// Why the session ended, once it has.
    public private(set) var closeReason: String?

    /// - Parameters:
    ///   - eventLoop: the connection's loop, where other sessions deliver to it.
    ///   - target: the connection that delivery ends in.
    public init(core: ServerCore, address: String, eventLoop: EventLoop, target: (any DeliveryTarget)?) {
        self.core = core
        self.address = address
        self.eventLoop = eventLoop
        self.target = target
        self.registration = Registration(serverName: core.configuration.serverName, offered: core.offeredCapabilities)
    }

    /// Sets the connection that delivery to this session ends in (before registration).
    public mutating func attach(_ target: any DeliveryTarget) {
        self.target = target
    }

    /// The TLS handshake finished; `fingerprint` is the SHA-256 of the client's certificate, if
    /// it presented one (it may then log in with SASL EXTERNAL).
    public mutating func tlsEstablished(clientCertificate fingerprint: String?) {
        registration.clientCertificate = fingerprint
    }

    /// True while a password is being checked: the connection holds further input until the
    /// result, so a client that pipelines `PASS`, `NICK`, `USER` and `JOIN` loses nothing.
    public var isAwaitingLogin: Bool { registration.isVerifying || operVerifying }

    private var output: SessionOutput {
        SessionOutput(serverName: core.configuration.serverName, target: handle?.nick ?? registration.target)
    }

    // MARK: Input

    /// A line from the decoder: parsed, refused with the right reply, or handled.
    public mutating func receive(_ line: InboundLine, now: Date) -> [Action] {
        guard phase != .closed else { return [] }
        let limit = core.configuration.limits.lineLength
        switch line {
        case .overlong:
            var out = output
            out.numeric(.inputTooLong, "Input line was too long (limit \(limit) bytes without tags)")
            return out.actions
        case let .line(buffer):
            if buffer.readableBytes == 0 { return [] }
            do {
                let message = try buffer.withUnsafeReadableBytes { raw throws(IRCParseError) in
                    try IRCMessage.parse(buffer: raw.bindMemory(to: UInt8.self), maximumTagBytes: IRCMessage.Limits.clientTags, maximumLineBytes: limit)
                }
                return receive(message, now: now)
            } catch {
                return parseError(error, buffer)
            }
        }
    }

    private func parseError(_ error: IRCParseError, _ buffer: ByteBuffer) -> [Action] {
        var out = output
        switch error {
        case .lineTooLong, .tagsTooLong:
            out.numeric(.inputTooLong, "Input line was too long (limit \(core.configuration.limits.lineLength) bytes without tags)")
        case .invalidUTF8, .containsNUL, .containsLineBreak:
            // Never relayed. Name the command if it can be read.
            let word = buffer.getBytes(at: buffer.readerIndex, length: min(buffer.readableBytes, 20)).map {
                String(decoding: $0.prefix { $0 > 0x20 && $0 < 0x80 }, as: UTF8.self)
            } ?? "*"
            let command = word.isEmpty || word.hasPrefix("@") || word.hasPrefix(":") ? "*" : word.uppercased()
            let text = switch error {
            case .invalidUTF8: "Message rejected: it is not valid UTF-8 (set your client to UTF-8)"
            case .containsNUL: "Message rejected: it contains a NUL byte"
            default: "Message rejected: it contains a CR or LF inside the line (a line ends only at CR LF)"
            }
            out.reply("FAIL", [command, error == .invalidUTF8 ? FailCode.invalidUTF8.rawValue : FailCode.invalidMessage.rawValue, text])
        case .empty:
            break
        case .invalidCommand, .tooManyParameters:
            out.numeric(.unknownCommand, "*", "Malformed message: \(error)")
        }
        return out.actions
    }

    /// A parsed message from the client.
    public mutating func receive(_ message: IRCMessage, now: Date) -> [Action] {
        switch phase {
        case .closed:
            return []
        case .registering:
            return carryOut(registration.receive(message), now: now)
        case .registered:
            let label = LabeledResponse.label(of: message, capabilities: capabilities)
            let actions = command(message, now: now)
            guard let label else { return actions }
            if message.command == "OPER" && operVerifying { operLabel = label }
            return LabeledResponse.apply(label, to: actions, me: handle, capabilities: capabilities, serverName: core.configuration.serverName)
        }
    }

    /// The result of a `.verify` action.
    public mutating func loginFinished(_ outcome: LoginOutcome, via method: Registration.Method, now: Date) -> [Action] {
        guard phase == .registering else { return [] }
        var outcome = outcome
        // A server ban on the account (or the address, set meanwhile) refuses a right password.
        if case let .success(name) = outcome, let ban = core.policy.ban(account: name, address: address, at: now) {
            core.logger.notice("login refused: server ban on \(ban.target)", metadata: ["account": "\(name)", "address": "\(address)"])
            outcome = .banned(message: ban.message)
        }
        return carryOut(registration.loginFinished(outcome, via: method), now: now)
    }

    /// The result of a `.verifyOper` action.
    public mutating func operFinished(_ outcome: LoginOutcome, now: Date) -> [Action] {
        operVerifying = false
        guard phase == .registered, let me = handle else { return [] }
        var c = CommandContext(core: core, me: me, now: now, capabilities: capabilities, out: output)
        OperCommands.operFinished(outcome, &c)
        defer { operLabel = nil }
        return labeled(c.out.actions, operLabel)
    }

    /// The result of an `.administer` action: what `ServerCore.perform` said, as a notice.
    public func adminFinished(_ text: String, label: String? = nil) -> [Action] {
        guard phase == .registered, let me = handle else { return [] }
        var out = output
        out.reply("NOTICE", [me.nick, text])
        return labeled(out.actions, label)
    }

    /// The answer to a labeled command that came later (labeled-response).
    private func labeled(_ actions: [Action], _ label: String?) -> [Action] {
        guard let label else { return actions }
        return LabeledResponse.apply(label, to: actions, me: handle, capabilities: capabilities, serverName: core.configuration.serverName)
    }

    /// The answer to a `.history` action: a CHATHISTORY batch, a replay, or missed messages
    /// (`HistoryCommand.answer`).
    public func historyFinished(_ job: HistoryJob, _ result: HistoryResult, label: String? = nil) -> [Action] {
        guard phase == .registered, let me = handle else { return [] }
        var out = output
        HistoryCommand.answer(job, result, to: me, capabilities: capabilities, serverName: core.configuration.serverName, into: &out)
        return labeled(out.actions, label)
    }

    /// A login refused before any hashing, because a server ban covers the address.
    private mutating func refuseBannedAddress(_ method: Registration.Method, now: Date) -> [Action]? {
        guard let ban = core.policy.ban(account: nil, address: address, at: now) else { return nil }
        core.logger.notice("login refused: server ban on \(ban.target)", metadata: ["address": "\(address)"])
        return carryOut(registration.loginFinished(.banned(message: ban.message), via: method), now: now)
    }

    private mutating func carryOut(_ steps: [Registration.Action], now: Date) -> [Action] {
        var actions: [Action] = []
        for step in steps {
            switch step {
            case let .send(message): actions.append(.send(message))
            case let .verify(account, password, method):
                if let refused = refuseBannedAddress(method, now: now) { actions += refused; continue }
                actions.append(.verify(account: account, password: password, method: method))
            case let .verifyCertificate(fingerprint, account):
                if let refused = refuseBannedAddress(.sasl, now: now) { actions += refused; continue }
                actions.append(.verifyCertificate(fingerprint: fingerprint, account: account))
            case let .close(reason): actions += close(reason: reason, now: now)
            case let .complete(account, requestedNick, username, realname, capabilities):
                actions += complete(account: account, requestedNick: requestedNick, username: username, realname: realname,
                                    capabilities: capabilities, now: now)
            }
        }
        return actions
    }

    // MARK: Registration complete

    private mutating func complete(account: String, requestedNick: String, username: String, realname: String,
                                   capabilities: Capabilities, now: Date) -> [Action] {
        // The user part of the mask is the account name, never what the client sent in USER (its
        // machine's login name): nothing about the client's computer is shown to others.
        let me = SessionHandle(nick: account, username: account, realname: realname,
                               address: address, signonTime: Int(now.timeIntervalSince1970), eventLoop: eventLoop, target: target)
        handle = me
        phase = .registered
        self.capabilities = capabilities
        var out = output
        if let old = core.registry.claim(me) { out.append(.replace(old)) }
        if requestedNick != account {
            // The nick is the account name: tell the client its real nick.
            out.send(IRCMessage(source: "\(requestedNick)!\(me.username)@\(me.host)", command: "NICK", parameters: [account]))
        }
        let c = core.configuration
        out.numeric(.welcome, "Welcome to the \(c.networkName) network, \(me.mask)")
        out.numeric(.yourHost, "Your host is \(c.serverName), running version \(core.version)")
        out.numeric(.created, core.createdText)
        out.numeric(.myInfo, c.serverName, core.version, "Biow", "biklmnostv", "bklov")
        for tokens in core.isupportLines {
            out.numeric(.isupport, tokens + ["are supported by this server"])
        }
        QueryCommands.lusers(&out, core: core)
        QueryCommands.motd(&out, core: core)
        MonitorCommand.announce(me, online: true, registry: core.registry, serverName: c.serverName, out: &out)
        out.append(.registered(me))
        // The rooms this account was in follow it (history on, rooms.rejoinOnLogin).
        if c.rooms.rejoinOnLogin, let history = core.history {
            let rooms = history.memberships(of: me.folded)
            if !rooms.isEmpty {
                var context = CommandContext(core: core, me: me, now: now, capabilities: capabilities, out: out)
                RoomCommands.rejoin(rooms, &context)
                HistoryCommand.storeEvents(context.out.actions, by: me, core: core, now: now)
                out = context.out
            }
        }
        // Private messages sent while the account was away, for clients that do not fetch them.
        if core.history != nil && !capabilities.contains(.chathistory) { out.append(.history(.missed)) }
        return out.actions
    }

    // MARK: Commands

    /// Commands whose parameters a trace log may show: queries, never text people wrote, keys
    /// or passwords.
    private static let tracedParameters: Set<String> = ["CAP", "ISON", "LIST", "MONITOR", "NAMES", "USERHOST", "WHO", "WHOIS", "WHOWAS"]

    private mutating func command(_ message: IRCMessage, now: Date) -> [Action] {
        guard let me = handle else { return [] }
        if core.logger.logLevel <= .trace {
            // `--log-level trace`: what clients send, to see how an IRC client uses the server.
            let shown = Self.tracedParameters.contains(message.command) ? ([message.command] + message.parameters).joined(separator: " ") : message.command
            core.logger.trace("command \(shown)", metadata: ["account": "\(me.nick)"])
        }
        var c = CommandContext(core: core, me: me, now: now, capabilities: capabilities, out: output)
        let p = message.parameters
        switch message.command {
        case "PRIVMSG", "NOTICE", "TAGMSG": MessageCommands.send(message, &c)
        case "JOIN": RoomCommands.join(message, &c)
        case "PART": RoomCommands.part(message, &c)
        case "TOPIC": RoomCommands.topic(message, &c)
        case "NAMES": RoomCommands.names(message, &c)
        case "LIST": RoomCommands.list(message, &c)
        case "KICK": RoomCommands.kick(message, &c)
        case "INVITE": RoomCommands.invite(message, &c)
        case "OWNER": RoomCommands.owner(message, &c)
        case "MODE": ModeCommand.mode(message, &c)
        case "WHO": QueryCommands.who(message, &c)
        case "WHOIS": QueryCommands.whois(message, &c)
        case "USERHOST": QueryCommands.userhost(message, &c)
        case "ISON": QueryCommands.ison(message, &c)
        case "AWAY": QueryCommands.away(message, &c)
        case "MOTD": QueryCommands.motd(&c.out, core: core)
        case "LUSERS": QueryCommands.lusers(&c.out, core: core)
        case "MONITOR": MonitorCommand.monitor(message, &c)
        case "SETNAME": QueryCommands.setname(message, &c)
        case "WHOWAS": QueryCommands.whowas(message, &c)
        case "HELP", "HELPOP": HelpCommand.help(message, &c)
        case "TIME": QueryCommands.time(&c.out, core: core, now: now)
        case "CAP": QueryCommands.cap(message, &c)
        case "OPER":
            if let action = OperCommands.oper(message, &c) {
                operVerifying = true
                c.out.append(action)
            }
        case "KILL": OperCommands.kill(message, &c)
        case "WALLOPS": OperCommands.wallops(message, &c)
        case "KLINE": if let action = OperCommands.kline(message, &c) { c.out.append(action) }
        case "UNKLINE": if let action = OperCommands.unkline(message, &c) { c.out.append(action) }
        case "STATS": OperCommands.stats(message, &c)
        case "CLEARCHAN": OperCommands.clearchan(message, &c)
        case "CHATHISTORY":
            if !historyBudget.take(now: now) {
                c.out.reply("FAIL", ["CHATHISTORY", "MESSAGE_ERROR", p.first ?? "*", p.count > 1 ? p[1] : "*",
                                     "Too many history requests: at most \(HistoryCommand.RequestBudget.burst) at once, then \(Int(HistoryCommand.RequestBudget.perSecond)) a second"])
            } else if let action = HistoryCommand.chathistory(message, &c) {
                c.out.append(action)
            }
        case "MARKREAD": HistoryCommand.markread(message, &c)
        case "PING":
            if let token = p.first { c.out.reply("PONG", [core.configuration.serverName, token]) } else { c.out.numeric(.noOrigin, "No origin specified") }
        case "PONG":
            break
        case "QUIT":
            return close(reason: p.first.map { "Quit: \($0)" } ?? "Quit", now: now)
        case "NICK":
            guard c.need(1, message) else { break }
            if IRCName.fold(p[0]) != me.folded {
                c.out.numeric(.erroneousNickname, p[0], "Your nick is your account name (\(me.nick)) and cannot be changed")
            }
        case "USER", "PASS":
            c.out.numeric(.alreadyRegistered, "You may not reregister")
        case "AUTHENTICATE":
            c.out.numeric(.saslAlready, "You have already authenticated using SASL")
        default:
            c.out.numeric(.unknownCommand, message.command, "Unknown command")
        }
        capabilities = c.capabilities
        if core.history != nil { HistoryCommand.storeEvents(c.out.actions, by: me, core: core, now: now) }
        return c.out.actions
    }

    // MARK: Leaving

    /// Ends the session: its rooms see it quit with `reason`, the client gets `ERROR :reason`.
    /// For QUIT, timeouts, floods, a full send queue, a newer login and shutdown.
    public mutating func close(reason: String, now: Date) -> [Action] {
        guard phase != .closed else { return [] }
        var actions = leave(reason: reason, now: now)
        actions.append(.close(reason: reason))
        return actions
    }

    /// What a session hears when a newer login takes its account.
    public static let replacedReason = "Closing link: logged in from another connection"

    /// The connection went away without a goodbye (or after one): rooms see the quit if they
    /// have not yet.
    public mutating func connectionLost(reason: String = "Connection closed", now: Date) -> [Action] {
        guard phase != .closed else { return [] }
        return leave(reason: reason, now: now)
    }

    private mutating func leave(reason: String, now: Date) -> [Action] {
        let wasRegistered = phase == .registered
        phase = .closed
        closeReason = reason
        guard wasRegistered, let me = handle else { return [] }
        me.detach()
        core.history?.setLastSeen(me.folded, time: HistoryCommand.milliseconds(now))
        core.registry.release(me)
        core.registry.unmonitor(me.clearMonitoring(), by: me)
        var out = output
        if core.registry.session(named: me.nick) == nil {  // not replaced by a newer login
            core.registry.departed(me, at: Int(now.timeIntervalSince1970))
            MonitorCommand.announce(me, online: false, registry: core.registry, serverName: core.configuration.serverName, out: &out)
        }
        var audience: [SessionHandle] = []
        let relay = Relay(source: me.mask, command: "QUIT", parameters: [reason], time: Relay.timestamp(now), account: me.nick)
        for room in me.rooms.values {
            audience += room.roster.map(\.session).filter { $0 !== me }
            if let history = core.history { HistoryCommand.storeEvent(relay, key: room.folded, by: me, history: history, now: now) }
            if room.leave(me) { core.registry.remove(room) }
        }
        if !audience.isEmpty {
            out.deliver(relay, to: Audience(audience))
        }
        if core.cluster != nil {
            out.append(.publish(.quit(relay, nick: me.nick, token: me.clusterToken), command: "QUIT"))
        }
        return out.actions
    }
}

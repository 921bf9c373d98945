import ChatSupport
import ChatAuth
import IRC

/// A connection's life before it may chat: CAP negotiation, SASL PLAIN or PASS, NICK and USER.
///
/// A plain value: `receive(_:)` and `loginFinished(_:via:)` take an event and return the actions
/// to carry out (send a reply, verify a password off the event loop, complete, close). No I/O,
/// no clock; the channel handler feeds it and does what it says, and tests drive it directly.
/// Registration never completes without a verified password.
public struct Registration {
    public enum Method: Sendable, Equatable { case sasl, pass }

    public enum Action {
        case send(IRCMessage)
        /// Check this password (on the hashing pool) and call `loginFinished`.
        case verify(account: String, password: Password, method: Method)
        /// Find the account that registered this client certificate (SASL EXTERNAL; `account` is
        /// the authorization identity, if the client gave one) and call `loginFinished`.
        case verifyCertificate(fingerprint: String, account: String?)
        /// Registration is done: the account is logged in.
        case complete(account: String, requestedNick: String, username: String, realname: String, capabilities: Capabilities)
        /// Send `ERROR :reason` and close.
        case close(reason: String)
    }

    private enum SASLState { case idle, collecting([UInt8]), collectingExternal([UInt8]), verifying }

    public let serverName: String
    /// The capabilities this server offers (draft/chathistory only with history on).
    public let offered: Capabilities
    public let maximumFailures = 3
    public private(set) var capabilities: Capabilities = []
    public private(set) var account: String?
    public private(set) var failures = 0
    public private(set) var isComplete = false
    /// The SHA-256 fingerprint of the client's TLS certificate, if it presented one (for SASL
    /// EXTERNAL).
    public var clientCertificate: String?
    private var negotiating = false
    private var capVersion = 0
    private var nick: String?
    private var username: String?
    private var realname = ""
    private var pass: Password?
    private var sasl = SASLState.idle
    private var verifyingPass = false
    private var closed = false

    public init(serverName: String, offered: Capabilities = .all) {
        self.serverName = serverName
        self.offered = offered
    }

    /// The first parameter of numerics: the nick given so far, or `*`.
    var target: String { nick ?? "*" }

    /// True while a password is being checked.
    public var isVerifying: Bool {
        if case .verifying = sasl { return true }
        return verifyingPass
    }

    private func reply(_ numeric: Numeric, _ parameters: String...) -> Action {
        .send(IRCMessage(source: serverName, command: numeric.rawValue, parameters: [target] + parameters))
    }

    public mutating func receive(_ message: IRCMessage) -> [Action] {
        guard !closed, !isComplete else { return [] }
        let p = message.parameters
        switch message.command {
        case "CAP":
            return cap(message)
        case "AUTHENTICATE":
            return authenticate(p)
        case "PASS":
            // Clients differ on quoting a password with spaces; take every parameter.
            let text = p.joined(separator: " ")
            guard !text.isEmpty else { return [reply(.needMoreParams, "PASS", "Not enough parameters")] }
            pass = Password(text)
            return []
        case "NICK":
            guard let wanted = p.first, !wanted.isEmpty else { return [reply(.noNicknameGiven, "No nickname given")] }
            guard IRCName.isValidNick(wanted) else {
                return [reply(.erroneousNickname, wanted, "Erroneous nickname: use letters, digits and -_[]\\`^{}|, starting with a letter")]
            }
            nick = wanted
            return tryComplete()
        case "USER":
            guard p.count >= 4, !p[0].isEmpty else { return [reply(.needMoreParams, "USER", "Not enough parameters")] }
            if username != nil { return [reply(.alreadyRegistered, "You may not reregister")] }
            username = String(p[0].prefix(16))
            realname = p[3]
            return tryComplete()
        case "PING":
            guard let token = p.first else { return [reply(.noOrigin, "No origin specified")] }
            return [.send(IRCMessage(source: serverName, command: "PONG", parameters: [serverName, token]))]
        case "PONG":
            return []
        case "QUIT":
            closed = true
            return [.close(reason: "Closing link: quit before logging in")]
        default:
            return [reply(.notRegistered, "You have not registered: log in with SASL PLAIN or PASS account:password first")]
        }
    }

    private mutating func cap(_ message: IRCMessage) -> [Action] {
        let p = message.parameters
        guard let sub = p.first?.uppercased() else { return [reply(.needMoreParams, "CAP", "Not enough parameters")] }
        func capReply(_ parameters: String...) -> Action {
            .send(IRCMessage(source: serverName, command: "CAP", parameters: [target] + parameters))
        }
        switch sub {
        case "LS":
            negotiating = true
            capVersion = max(capVersion, p.count > 1 ? Int(p[1]) ?? 0 : 0)
            if capVersion >= 302 { capabilities.insert(.capNotify) }  // implicit with 302
            return [capReply("LS", Capabilities.listing(version: capVersion, offered: offered))]
        case "LIST":
            return [capReply("LIST", capabilities.names.joined(separator: " "))]
        case "REQ":
            negotiating = true
            let requested = p.count > 1 ? p[1] : ""
            guard let (add, remove) = Capabilities.parseRequest(requested, offered: offered) else { return [capReply("NAK", requested)] }
            capabilities.formUnion(add)
            capabilities.subtract(remove)
            return [capReply("ACK", requested)]
        case "END":
            negotiating = false
            return tryComplete()
        default:
            return [reply(.invalidCapCommand, sub, "Invalid CAP command")]
        }
    }

    private mutating func authenticate(_ p: [String]) -> [Action] {
        guard let argument = p.first, !argument.isEmpty else { return [reply(.needMoreParams, "AUTHENTICATE", "Not enough parameters")] }
        if account != nil { return [reply(.saslAlready, "You have already authenticated using SASL")] }
        switch sasl {
        case .verifying:
            return []
        case .idle:
            if argument == "*" { return [reply(.saslAborted, "SASL authentication aborted")] }
            switch argument.uppercased() {
            case "PLAIN":
                sasl = .collecting([])
            case "EXTERNAL":
                guard clientCertificate != nil else {
                    return fail(.sasl, "SASL authentication failed: EXTERNAL needs a client certificate, and this connection presented none", code: .invalidCredentials)
                }
                sasl = .collectingExternal([])
            default:
                return [reply(.saslMechs, Capabilities.saslMechanisms, "are available SASL mechanisms"),
                        reply(.saslFail, "SASL authentication failed: the mechanisms are \(Capabilities.saslMechanisms)")]
            }
            return [.send(IRCMessage(command: "AUTHENTICATE", parameters: ["+"]))]
        case var .collectingExternal(buffer):
            if argument == "*" {
                sasl = .idle
                return [reply(.saslAborted, "SASL authentication aborted")]
            }
            if argument.utf8.count > 400 {
                sasl = .idle
                return [reply(.saslTooLong, "SASL message too long: send it in chunks of 400 bytes")]
            }
            if argument != "+" { buffer.append(contentsOf: argument.utf8) }
            if buffer.count > 400 {
                sasl = .idle
                return [reply(.saslFail, "SASL authentication failed: the EXTERNAL message is too long")]
            }
            if argument.utf8.count == 400 {
                sasl = .collectingExternal(buffer)
                return []
            }
            // The message is the authorization identity (base64), or empty for "the account the
            // certificate belongs to".
            var identity: String?
            if !buffer.isEmpty {
                guard let bytes = Base64.decode(buffer, padded: true), let name = String(validating: bytes, as: UTF8.self), !name.isEmpty else {
                    sasl = .idle
                    return fail(.sasl, "SASL authentication failed: malformed EXTERNAL message", code: .invalidCredentials)
                }
                identity = name
            }
            sasl = .verifying
            return [.verifyCertificate(fingerprint: clientCertificate!, account: identity)]
        case var .collecting(buffer):
            if argument == "*" {
                sasl = .idle
                return [reply(.saslAborted, "SASL authentication aborted")]
            }
            // sasl-3.1: 905 is for one parameter over 400 bytes; chunks that add up to more than
            // a PLAIN message can hold are a failed authentication (904).
            if argument.utf8.count > 400 {
                sasl = .idle
                return [reply(.saslTooLong, "SASL message too long: send it in chunks of 400 bytes")]
            }
            if argument != "+" { buffer.append(contentsOf: argument.utf8) }
            if buffer.count > SASLPlain.maximumEncodedLength {
                sasl = .idle
                for k in buffer.indices { buffer[k] = 0 }
                return fail(.sasl, "SASL authentication failed: the PLAIN message is longer than an account name and password can be", code: .invalidCredentials)
            }
            if argument.utf8.count == 400 {
                sasl = .collecting(buffer)  // more chunks follow
                return []
            }
            defer { for k in buffer.indices { buffer[k] = 0 } }
            do {
                let decoded = try SASLPlain.decode(buffer)
                sasl = .verifying
                return [.verify(account: decoded.account, password: Password(bytes: decoded.password), method: .sasl)]
            } catch {
                sasl = .idle
                return fail(.sasl, "SASL authentication failed: malformed PLAIN message", code: .invalidCredentials)
            }
        }
    }

    private mutating func tryComplete() -> [Action] {
        guard !negotiating, let nick, let username, !verifyingPass else { return [] }
        if case .verifying = sasl { return [] }
        var aborted: [Action] = []
        switch sasl {
        case .collecting, .collectingExternal:
            // Registration ends an exchange the client did not finish (sasl-3.1: 906).
            sasl = .idle
            aborted = [reply(.saslAborted, "SASL authentication aborted: registration ended before it finished")]
        case .idle, .verifying:
            break
        }
        return aborted + completeRegistration(nick: nick, username: username)
    }

    private mutating func completeRegistration(nick: String, username: String) -> [Action] {
        if let account {
            isComplete = true
            return [.complete(account: account, requestedNick: nick, username: username, realname: realname, capabilities: capabilities)]
        }
        guard let pass else {
            closed = true
            return [reply(.passwdMismatch, "Password required: log in with SASL PLAIN or PASS account:password"),
                    .close(reason: "Login required: use SASL PLAIN, or PASS account:password")]
        }
        self.pass = nil
        verifyingPass = true
        // "account:password", or the whole text as the password of the account named by NICK.
        let text = String(decoding: pass.bytes, as: UTF8.self)
        if let colon = text.firstIndex(of: ":"), IRCName.isValidNick(String(text[..<colon])) {
            return [.verify(account: String(text[..<colon]), password: Password(String(text[text.index(after: colon)...])), method: .pass)]
        }
        return [.verify(account: nick, password: pass, method: .pass)]
    }

    /// The result of a `.verify` action.
    public mutating func loginFinished(_ outcome: LoginOutcome, via method: Method) -> [Action] {
        guard !closed else { return [] }
        if method == .sasl { sasl = .idle } else { verifyingPass = false }
        switch outcome {
        case let .success(name):
            account = name
            var actions: [Action] = []
            if method == .sasl {
                let mask = "\(name)!\(name)@user/\(name)"
                actions.append(reply(.loggedIn, mask, name, "You are now logged in as \(name)"))
                actions.append(reply(.saslSuccess, "SASL authentication successful"))
            }
            return actions + tryComplete()
        case .invalidCredentials:
            return fail(method, method == .sasl ? "SASL authentication failed: wrong account name or password" : "Password incorrect: wrong account name or password", code: .invalidCredentials)
        case let .locked(name):
            return fail(method, "Account \(name) is locked: ask the server's operator", code: .accountLocked)
        case let .throttled(seconds):
            // A throttled client would only be refused again: close, so it waits before retrying.
            return fail(method, "Too many failed logins: try again in \(Int(seconds.rounded(.up))) seconds", code: .rateLimited, counts: false, closes: true)
        case .busy:
            return fail(method, "Server busy: try again in a few seconds", code: .serverBusy, counts: false)
        case let .unavailable(reason):
            return fail(method, reason, code: .serverBusy, counts: false, closes: true)
        case let .banned(message):
            // The login's own numeric ends the exchange; 465 is what IRC clients show as a ban.
            return fail(method, message, code: .banned, counts: false, closes: true, before: [reply(.yourebannedcreep, message)])
        }
    }

    private mutating func fail(_ method: Method, _ text: String, code: FailCode, counts: Bool = true, closes: Bool = false,
                               before closing: [Action] = []) -> [Action] {
        if counts { failures += 1 }
        let command = method == .sasl ? "AUTHENTICATE" : "PASS"
        // The numeric the specifications name, for every client; a FAIL with a machine-readable
        // code before it only for clients that asked for standard replies.
        var actions: [Action] = []
        if capabilities.contains(.standardReplies) {
            actions.append(.send(IRCMessage(source: serverName, command: "FAIL", parameters: [command, code.rawValue, text])))
        }
        actions.append(reply(method == .sasl ? .saslFail : .passwdMismatch, text))
        // PASS cannot be retried on the same connection; SASL may, up to the failure limit.
        if method == .pass || failures >= maximumFailures || closes {
            closed = true
            actions += closing
            actions.append(.close(reason: failures >= maximumFailures ? "Too many failed login attempts" : text))
        }
        return actions
    }
}

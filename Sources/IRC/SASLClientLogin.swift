/// The client side of logging in with SASL PLAIN (IRCv3 sasl 3.1), as a plain value: the lines to
/// open with, and what each reply from the server means. `chat-client`'s library, the test client
/// and `chat-bench` all log in through it, each doing its own I/O.
public struct SASLClientLogin: Sendable {
    /// Why the login did not succeed.
    public enum Failure: Error, Sendable, Equatable {
        /// The server does not offer SASL (CAP NAK).
        case saslUnavailable
        /// Unknown account or wrong password (the server does not say which).
        case invalidCredentials(String)
        case accountLocked(String)
        case rateLimited(String)
        case serverBusy(String)
        /// Refused for another reason (the server's text).
        case refused(String)
        /// The server closed the connection (`ERROR`).
        case disconnected(String)
    }

    /// What to do after a reply.
    public enum Step: Sendable, Equatable {
        /// Nothing yet: keep reading.
        case wait
        /// Send these lines (without CR LF).
        case send([String])
        /// Registered: 001 arrived with this nick.
        case welcome(nick: String)
        case failed(Failure)
    }

    public let account: String
    public let nick: String
    /// The password for PLAIN; nil to log in with EXTERNAL (the connection's client certificate).
    private let password: [UInt8]?
    private let capabilities: [String]
    private let optionalCapabilities: [String]
    private let realname: String
    private let pipelined: Bool
    private var failure: (code: String, text: String)?
    /// standard-replies is asked for with sasl; a server that refuses the pair is asked again
    /// for sasl (and the caller's capabilities) alone.
    private var askedForStandardReplies = true
    /// What the server lists in `CAP LS` (names without values).
    public private(set) var offered: Set<String> = []
    /// What the server granted (`CAP ACK`), so far.
    public private(set) var acknowledged: Set<String> = []
    private var mechanismSent = false
    private var optionalRequested = false

    /// - Parameters:
    ///   - capabilities: requested with `sasl` in one `CAP REQ`.
    ///   - optionalCapabilities: requested after that is granted, in a second `CAP REQ`, only
    ///     those `CAP LS` lists, so a server without them still lets the login through.
    ///   - pipelined: send `AUTHENTICATE PLAIN` without waiting for `CAP ACK` (one round trip
    ///     less, for load generators).
    public init(account: String, password: [UInt8]?, nick: String? = nil, realname: String? = nil,
                capabilities: [String] = [], optionalCapabilities: [String] = [], pipelined: Bool = false) {
        self.account = account
        self.nick = nick ?? account
        self.password = password
        self.realname = realname ?? account
        self.capabilities = capabilities
        self.optionalCapabilities = optionalCapabilities
        self.pipelined = pipelined
        self.mechanismSent = pipelined
    }

    /// The first lines to send, in order.
    public var opening: [String] {
        var lines = ["CAP LS 302", "NICK \(nick)", "USER \(nick) 0 * :\(realname)", "CAP REQ :" + (["sasl", "standard-replies"] + capabilities).joined(separator: " ")]
        if pipelined { lines.append(mechanism) }
        return lines
    }

    /// The capability names in the last parameter of a `CAP` reply (values and modifiers removed).
    private static func names(_ m: IRCMessage) -> [String] {
        (m.parameters.last ?? "").split(separator: " ").map { name in
            String(name.drop { $0 == "-" || $0 == "~" || $0 == "=" }.prefix { $0 != "=" })
        }
    }

    private var mechanism: String { password == nil ? "AUTHENTICATE EXTERNAL" : "AUTHENTICATE PLAIN" }

    /// Reads one message from the server.
    public mutating func receive(_ m: IRCMessage) -> Step {
        switch m.command {
        case "CAP" where m.parameters.count >= 3 && m.parameters[1] == "LS":
            offered.formUnion(Self.names(m))
            return .wait
        case "CAP" where m.parameters.count >= 2 && m.parameters[1] == "ACK":
            acknowledged.formUnion(Self.names(m))
            var request: [String] = []
            let more = optionalCapabilities.filter { offered.contains($0) && !acknowledged.contains($0) }
            if !optionalRequested && !more.isEmpty && acknowledged.contains("sasl") {
                optionalRequested = true
                request = ["CAP REQ :" + more.joined(separator: " ")]
            }
            if mechanismSent { return request.isEmpty ? .wait : .send(request) }
            mechanismSent = true
            return .send(request + [mechanism])
        case "CAP" where m.parameters.count >= 2 && m.parameters[1] == "NAK":
            // A refused optional request changes nothing: the login goes on without them.
            if optionalRequested { return .wait }
            guard askedForStandardReplies else { return .failed(.saslUnavailable) }
            askedForStandardReplies = false
            return .send(["CAP REQ :" + (["sasl"] + capabilities).joined(separator: " ")])
        case "AUTHENTICATE" where m.parameters.first == "+":
            // EXTERNAL: the authorization identity is the account the certificate belongs to.
            guard let password else { return .send(["AUTHENTICATE +"]) }
            // AUTHENTICATE carries at most 400 characters per line; a payload that is an exact
            // multiple of 400 ends with "+".
            let payload = Array(SASLPlain.encode(account: account, password: password).utf8)
            var lines = stride(from: 0, to: payload.count, by: 400).map {
                "AUTHENTICATE " + String(decoding: payload[$0..<min($0 + 400, payload.count)], as: UTF8.self)
            }
            if payload.count % 400 == 0 { lines.append("AUTHENTICATE +") }
            return .send(lines)
        case "FAIL" where m.parameters.count >= 3:
            failure = (m.parameters[1], m.parameters.last!)
            return .wait
        case Numeric.saslSuccess.rawValue:
            return .send(["CAP END"])
        case Numeric.saslFail.rawValue, Numeric.saslTooLong.rawValue, Numeric.saslAborted.rawValue:
            let text = failure?.text ?? m.parameters.last ?? "SASL authentication failed"
            switch failure.flatMap({ FailCode(rawValue: $0.code) }) {
            case .accountLocked: return .failed(.accountLocked(text))
            case .serverBusy: return .failed(.serverBusy(text))
            case .rateLimited: return .failed(.rateLimited(text))
            case .invalidCredentials, nil: return .failed(.invalidCredentials(text))
            default: return .failed(.refused(text))
            }
        case Numeric.passwdMismatch.rawValue, "465":
            return .failed(.refused(m.parameters.last ?? "password refused"))
        case "ERROR":
            return .failed(.disconnected(m.parameters.first ?? "closing"))
        case Numeric.welcome.rawValue:
            return .welcome(nick: m.parameters.first ?? nick)
        default:
            return .wait
        }
    }
}

import ChatAuth
import Foundation
import IRC
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// What every session shares: configuration, the registry of users and rooms, the authenticator,
/// the logger and the texts sent at registration. Immutable after start, safe on every loop.
public final class ServerCore: Sendable {
    public let configuration: ServerConfiguration
    public let registry: Registry
    public let authenticator: Authenticator
    public let logger: Logger
    public let createdText: String
    public let version = "SecureChat-0.1"
    /// Answers logins at once on the event loop instead of through the authenticator. Only for
    /// deterministic harnesses (the session fuzzer drives sessions in an EmbeddedChannel); a
    /// server never sets it.
    public let immediateLoginForTesting: (@Sendable (String, Password) -> LoginOutcome)?

    public init(configuration: ServerConfiguration, registry: Registry, authenticator: Authenticator, logger: Logger,
                immediateLoginForTesting: (@Sendable (String, Password) -> LoginOutcome)? = nil) {
        self.configuration = configuration
        self.registry = registry
        self.authenticator = authenticator
        self.logger = logger
        self.createdText = "This server was created \(Relay.timestamp())"
        self.immediateLoginForTesting = immediateLoginForTesting
    }

    var serverName: String { configuration.serverName }

    private let flushers = NIOLockedValueBox<[ObjectIdentifier: LoopFlusher]>([:])

    /// The flusher of `eventLoop` (made on first use; looked up once per session).
    func flusher(for eventLoop: EventLoop) -> LoopFlusher {
        flushers.withLockedValue { table in
            if let existing = table[ObjectIdentifier(eventLoop)] { return existing }
            let flusher = LoopFlusher(eventLoop: eventLoop)
            table[ObjectIdentifier(eventLoop)] = flusher
            return flusher
        }
    }

    /// ISUPPORT (005) tokens, at most 13 per line.
    var isupportLines: [[String]] {
        let l = configuration.limits
        let tokens = [
            "AWAYLEN=390", "CASEMAPPING=ascii", "CHANLIMIT=#:\(l.roomsPerUser)", "CHANMODES=,k,,int", "CHANNELLEN=\(IRCName.roomLength)",
            "CHANTYPES=#", "KICKLEN=390", "LINELEN=\(l.lineLength)", "MODES=4", "NETWORK=\(configuration.networkName)",
            "NICKLEN=\(IRCName.nickLength)", "PREFIX=(o)@", "STATUSMSG=@", "TARGMAX=JOIN:,KICK:1,NAMES:1,NOTICE:4,PART:,PRIVMSG:4,WHOIS:1",
            "TOPICLEN=390", "UTF8ONLY",
        ]
        return stride(from: 0, to: tokens.count, by: 13).map { Array(tokens[$0..<min($0 + 13, tokens.count)]) }
    }

    var motdLines: [String]? {
        configuration.motd.map { $0.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
    }
}

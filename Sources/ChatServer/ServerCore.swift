import ChatSupport
import ChatHistory
import ChatAuth
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
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Checks a login: the server's `Authenticator`, or an injected checker in tests and fuzzing.
public protocol LoginChecker: Sendable {
    /// Checks `password` for `account` from `address` and hands the outcome to `completion`, on
    /// any thread (the connection hops back to its own loop). Returns the waiting check, which
    /// the connection cancels if it closes first, or nil.
    func login(account: String, password: Password, address: String, completion: @escaping @Sendable (LoginOutcome) -> Void) -> LoginQueue.Ticket?
    /// A login with a client certificate's SHA-256 fingerprint (SASL EXTERNAL), answered at once;
    /// `account` is the identity the client asked for, if any.
    func login(certificate fingerprint: String, account: String?, address: String) -> LoginOutcome
}

extension Authenticator: LoginChecker {}

/// What every session shares: configuration, the registry of users and rooms, the login
/// checker, the logger and the texts sent at registration. Immutable after start, safe on every
/// loop.
public final class ServerCore: Sendable {
    public let configuration: ServerConfiguration
    public let registry: Registry
    public let logins: any LoginChecker
    /// Operator roles and server bans.
    public let policy: any ServerPolicy
    /// What was said, kept; nil when history is off.
    public let history: (any HistoryStore)?
    /// The other nodes, in cluster mode; nil for a single server.
    public let cluster: ClusterLink?
    public let logger: Logger
    public let createdText: String
    public let version = "SecureChat-0.1"

    public init(configuration: ServerConfiguration, registry: Registry = Registry(), logins: any LoginChecker,
                policy: any ServerPolicy = MemoryPolicy(), history: (any HistoryStore)? = nil, cluster: ClusterLink? = nil, logger: Logger) {
        self.configuration = configuration
        self.registry = registry
        self.logins = logins
        self.policy = policy
        self.history = history
        self.cluster = cluster
        self.historyReaders = history == nil ? nil : WorkerPool(threads: 2, queueLimit: 2000, name: "securechat-history-read")
        self.logger = logger
        self.createdText = "This server was created \(Relay.timestamp())"
    }

    var serverName: String { configuration.serverName }

    /// What CAP LS offers: everything, but draft/chathistory and draft/read-marker only when
    /// history is kept.
    public var offeredCapabilities: Capabilities { history == nil ? Capabilities.all.subtracting([.chathistory, .readMarker, .eventPlayback]) : .all }

    /// Acts on live sessions when accounts or bans change (chat-admin, KLINE): a deleted, locked
    /// or re-passworded account's session ends; a demoted operator loses operator status; a new
    /// ban ends every session it covers.
    public func apply(_ changes: [AccountDirectory.Change]) {
        for change in changes {
            switch change {
            case let .banned(ban):
                for session in registry.allSessions where ban.target.covers(account: session.nick, address: session.address) {
                    logger.notice("ending the session: server ban on \(ban.target)", metadata: ["account": "\(session.nick)", "address": "\(session.address)"])
                    session.end(reason: "Banned: \(ban.reason)")
                }
            case let .demoted(name):
                guard let session = registry.session(named: name), session.isOperator else { continue }
                session.setOperator(false)
                logger.notice("operator status removed: the account lost the operator role", metadata: ["account": "\(session.nick)"])
                let relay = Relay(source: serverName, command: "MODE", parameters: [session.nick, "-o"], time: Relay.timestamp())
                Audience([session]).deliver(relay)
            default:
                guard let name = change.account, let session = registry.session(named: name) else { continue }
                logger.notice("ending the session: \(change.reason)", metadata: ["account": "\(session.nick)", "address": "\(session.address)"])
                session.end(reason: change.reason)
            }
        }
    }

    /// Logs what a server operator did (every operator action is logged).
    func logOperatorAction(_ operator_: SessionHandle, _ action: String) {
        logger.notice("operator action: \(action)", metadata: ["operator": "\(operator_.nick)", "address": "\(operator_.address)"])
    }

    /// History reads (CHATHISTORY, replays): two threads, so the database's readers stay few;
    /// beyond 2,000 waiting, a request is answered "busy". Only when history is kept.
    let historyReaders: WorkerPool?

    private let flushers = PerLoop<LoopFlusher>()
    private let clocks = PerLoop<ConnectionClock>()

    /// The flusher of `eventLoop` (made on first use; looked up once per session).
    func flusher(for eventLoop: EventLoop) -> LoopFlusher {
        flushers.value(for: eventLoop) {
            LoopFlusher(eventLoop: eventLoop, interval: .nanoseconds(Int64(configuration.limits.flushIntervalMilliseconds * 1e6)))
        }
    }

    /// The clock that keeps the connections' deadlines on `eventLoop` (made on first use).
    func clock(for eventLoop: EventLoop) -> ConnectionClock {
        clocks.value(for: eventLoop) {
            ConnectionClock(eventLoop: eventLoop, settings: ConnectionGuard.Settings(configuration.limits, serverName: serverName))
        }
    }

    /// ISUPPORT (005) tokens, at most 13 per line.
    var isupportLines: [[String]] {
        let l = configuration.limits
        let tokens = [
            "ACCOUNTEXTBAN=a", "AWAYLEN=390", "BOT=B", "CASEMAPPING=ascii", "CHANLIMIT=#:\(l.roomsPerUser)", "CHANMODES=b,k,l,imnst", "CHANNELLEN=\(IRCName.roomLength)",
            "CHANTYPES=#", "ELIST=MNU", "EXTBAN=~,am", "KICKLEN=390", "LINELEN=\(l.lineLength)", "MAXLIST=b:\(Room.maximumBans)", "MODES=4", "MONITOR=\(MonitorCommand.limit)", "NAMELEN=\(QueryCommands.realnameLength)", "NETWORK=\(configuration.networkName)",
            "NICKLEN=\(IRCName.nickLength)", "PREFIX=(ov)@+", "STATUSMSG=@", "TARGMAX=JOIN:,KICK:1,NAMES:1,NOTICE:4,PART:,PRIVMSG:4,WHOIS:1",
            "TOPICLEN=390", "UTF8ONLY", "WHOX",
        ] + (history == nil ? [] : ["CHATHISTORY=\(HistoryCommand.maximumLimit)", "MSGREFTYPES=timestamp,msgid"])
        return stride(from: 0, to: tokens.count, by: 13).map { Array(tokens[$0..<min($0 + 13, tokens.count)]) }
    }

    var motdLines: [String]? {
        configuration.motd.map { $0.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
    }
}

/// One object per event loop, made on first use (the loops' flushers and clocks).
final class PerLoop<Value: AnyObject & Sendable>: Sendable {
    private let table = NIOLockedValueBox<[ObjectIdentifier: Value]>([:])

    func value(for eventLoop: EventLoop, make: () -> Value) -> Value {
        table.withLockedValue { table in
            if let existing = table[ObjectIdentifier(eventLoop)] { return existing }
            let made = make()
            table[ObjectIdentifier(eventLoop)] = made
            return made
        }
    }
}

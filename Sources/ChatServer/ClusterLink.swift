import ChatCluster
import ChatHistory
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
import NIOConcurrencyHelpers
import NIOCore

/// This node's part in a cluster.
///
/// Room messages go out through PostgreSQL and come back, in the database's order, to every
/// node, which delivers them to its own members: every node shows a room's messages in the same
/// order, with the same msgid and server time. Logins, quits, joins and parts are delivered at
/// once on their own node and published for the others, which keep a mirror of who is where
/// (`RemotePresence`) for NAMES, WHO, WHOIS, ISON and private messages. A login replaces the
/// account's session on any node; of two logins at once, the later in the database's order wins
/// on every node.
public final class ClusterLink: Sendable {
    public let node: String
    private let registry: Registry
    let presence: RemotePresence
    private let bus: ClusterBus
    private let history: (any HistoryStore)?
    private let receiver: ClusterReceiver
    /// Where logins and logouts are written for operators (`securechat_sessions`).
    private let sessions: ClusterNode?
    /// Operators' invitations not used yet, on any node, as "room nick" (folded): the database's
    /// (`securechat_invitations`), read at start, and those heard since. Used up by a join on
    /// any node.
    private let invitations: NIOLockedValueBox<Set<String>>
    private let report: @Sendable (String) -> Void
    private let connected: NIOLockedValueBox<Bool>

    /// Starts listening and says hello. Blocking (call before serving).
    /// - Parameter history: where this node keeps what is said. A node's own SQLite file keeps
    ///   every room message and private message as it comes from the database, its own included;
    ///   the shared PostgreSQL history (`isShared`) stores each once, as it is published.
    public init(settings: ClusterSettings, serverName: String, registry: Registry, history: (any HistoryStore)?, sessions: ClusterNode? = nil,
                eventLoop: EventLoop, report: @escaping @Sendable (String) -> Void) throws {
        let presence = RemotePresence()
        let node = settings.node
        self.node = node
        self.registry = registry
        self.presence = presence
        self.history = history
        self.sessions = sessions
        self.report = report
        let invitations = NIOLockedValueBox<Set<String>>([])
        self.invitations = invitations
        let receiver = ClusterReceiver(node: node, serverName: serverName, registry: registry, presence: presence, history: history,
                                       invitations: invitations)
        self.receiver = receiver
        // The receiving side needs the bus to answer a hello: it gets it through this box, set
        // once the bus has started.
        let answer = NIOLockedValueBox<ClusterBus?>(nil)
        let connected = NIOLockedValueBox(true)
        self.connected = connected
        let shared = history as? PostgresHistory
        var onState: (@Sendable (String) -> Void)?
        if let shared { onState = { payload in shared.changed(payload) } }
        bus = try ClusterBus.start(settings, on: eventLoop, report: report, onConnection: { up in
            connected.withLockedValue { $0 = up }
            // What other nodes changed in the shared history meanwhile is read again.
            if up { shared?.reloadAll() }
            // Everyone here learns it: what they send to rooms is refused until it is back.
            let text = up
                ? "This server's database is back: messages reach every server again"
                : "This server lost its database: messages to rooms and to people on other servers are refused until it is back; new logins wait too"
            let notice = Relay(source: serverName, command: "NOTICE", parameters: ["*", text], time: Relay.timestamp())
            let sessions = registry.allSessions
            if !sessions.isEmpty { Audience(sessions).deliver(notice) }
        }, onState: onState) { payload in
            guard let (origin, event) = Self.decode(payload) else {
                report("cluster: ignored an event this node cannot read (from a newer node?): \(payload.prefix(80))")
                return
            }
            Self.keep(event, history: history)
            receiver.receive(event, from: origin, answer: answer.withLockedValue { $0 })
        }
        answer.withLockedValue { $0 = bus }
        // Read once the bus listens: what is stored later is heard of (its event, or its NOTIFY
        // on the history's channel).
        try shared?.reloadAllNow()
        let stored = try bus.invitations()
        invitations.withLockedValue { set in for (room, nick) in stored { set.insert("\(room) \(nick)") } }
        _ = bus.publish(Self.encode(.hello, origin: node))
    }

    public static let unavailableReason = "This server cannot reach its database right now: try again in a minute (or another server of this network)"

    /// Whether events flow (the listening connection to the database is up).
    public var isConnected: Bool { connected.withLockedValue { $0 } }

    /// Sends `event` to every node; fails when the database did not take it.
    public func publish(_ event: ClusterEvent) -> EventLoopFuture<Void> {
        if case let .quit(_, nick, token) = event { sessions?.session(IRCName.fold(nick), token: token, loggedIn: false) }
        return bus.publish(Self.encode(event, origin: node), storing: history?.isShared == true ? Self.storedMessage(event) : nil,
                           invitation: invitation(event))
    }

    /// The invitation `event` stores (an operator's INVITE) or uses up (a JOIN it let in).
    private func invitation(_ event: ClusterEvent) -> ClusterBus.Invitation? {
        switch event {
        case let .invite(relay, room, target, true):
            return .given(room: room, nick: IRCName.fold(target), by: IRCName.fold(Self.senderNick(relay) ?? ""))
        case let .join(relay, room, _):
            guard let nick = Self.senderNick(relay).map(IRCName.fold) else { return nil }
            return invitations.withLockedValue { $0.remove("\(room) \(nick)") } != nil ? .used(room: room, nick: nick) : nil
        default:
            return nil
        }
    }

    /// A session logged in here: every node learns it, and ends an older session of the account.
    func loggedIn(_ session: SessionHandle) {
        presence.loginPublished(session.folded)
        sessions?.session(session.folded, token: session.clusterToken, loggedIn: true)
        _ = publish(.login(Self.remoteUser(session, node: node), snapshot: false))
    }

    /// Users of `node` went with it (its heartbeat stopped): their rooms here see them quit.
    public func nodeLost(_ lost: String, at time: String) {
        let gone = presence.removeNode(lost)
        guard !gone.isEmpty else { return }
        report("cluster: node \(lost) stopped answering; \(gone.count) of its users are shown as gone")
        receiver.gone(gone, reason: "Node \(lost) lost", time: time)
    }

    /// Whether an operator, on any node, invited `nick` to `room` (both folded). The JOIN it
    /// lets in uses it up (`publish`).
    func isInvited(room: String, nick: String) -> Bool {
        invitations.withLockedValue { $0.contains("\(room) \(nick)") }
    }

    /// A deleted room's invitations go with it.
    func forgetInvitations(room: String) {
        invitations.withLockedValue { set in set = set.filter { !$0.hasPrefix(room + " ") } }
    }

    public func stop() {
        bus.stop()
    }

    /// This node's events not yet back from the database (tests).
    var eventsOnTheirWay: Int { (try? bus.onTheirWay) ?? -1 }

    static func remoteUser(_ session: SessionHandle, node: String) -> RemoteUser {
        RemoteUser(nick: session.nick, username: session.username, realname: session.realname, token: session.clusterToken, node: node)
    }

    /// Keeps a room message or a private message in this node's own history (a shared history
    /// has it already: it was stored as it was published).
    static func keep(_ event: ClusterEvent, history: (any HistoryStore)?) {
        guard let history, !history.isShared, let message = storedMessage(event) else { return }
        history.append(message)
    }

    /// What the history keeps of a room message (not one to operators only) or a private message.
    static func storedMessage(_ event: ClusterEvent) -> StoredMessage? {
        switch event {
        case let .room(relay, room, false, _, _):
            guard let sender = senderNick(relay) else { return nil }
            return HistoryCommand.storedMessage(relay, key: room, sender: IRCName.fold(sender), time: milliseconds(relay.time))
        case let .privateMessage(relay, target, _):
            guard let sender = senderNick(relay) else { return nil }
            return HistoryCommand.storedMessage(relay, key: HistoryTarget.privateKey(IRCName.fold(sender), IRCName.fold(target)), sender: IRCName.fold(sender),
                                                time: milliseconds(relay.time))
        default:
            return nil
        }
    }

    static func senderNick(_ relay: Relay) -> String? {
        relay.source.split(separator: "!").first.map(String.init)
    }

    /// `2026-12-04T10:00:00.123Z` (server-time's form) as milliseconds since 1970; now if malformed.
    static func milliseconds(_ time: String) -> Int64 {
        let digits = Array(time.utf8)
        func number(_ from: Int, _ count: Int) -> Int64? {
            guard from + count <= digits.count else { return nil }
            var value: Int64 = 0
            for b in digits[from..<(from + count)] {
                guard b >= 48 && b <= 57 else { return nil }
                value = value * 10 + Int64(b - 48)
            }
            return value
        }
        guard digits.count == 24, let y = number(0, 4), let m = number(5, 2), let d = number(8, 2), let hh = number(11, 2),
              let mm = number(14, 2), let ss = number(17, 2), let ms = number(20, 3), (1...12).contains(m), (1...31).contains(d)
        else { return HistoryCommand.milliseconds(Date()) }
        // Days from 1970-01-01 to the civil date (Howard Hinnant's algorithm).
        let year = m <= 2 ? y - 1 : y
        let era = (year >= 0 ? year : year - 399) / 400
        let yoe = year - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return ((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms
    }

}

import ChatCluster
import ChatHistory
import Foundation
import IRC
import NIOConcurrencyHelpers
import NIOCore

/// What one node tells every node (itself included) through the cluster's bus.
public enum ClusterEvent: Sendable, Equatable {
    /// A message to a room: each node delivers it to its own members of `room` (folded), or
    /// only to the room's operators, skipping the session named `except` (the sender without
    /// echo-message).
    case room(Relay, room: String, operatorsOnly: Bool, except: String?, requiring: Capabilities)
    /// A session logged in; it replaces any older session of the account on any node. With
    /// `snapshot`, it is an answer to a new node's hello, not a new login.
    case login(RemoteUser, snapshot: Bool)
    /// The session with `token` left: its rooms on every node see the QUIT.
    case quit(Relay, nick: String, token: String)
    /// A member joined a room (the JOIN relay, with its extended-join variant).
    case join(Relay, room: String)
    /// `nick` left a room: a PART, or a KICK.
    case part(Relay, room: String, nick: String)
    /// A private message (or notice, or TAGMSG) to `target`, delivered by the node that has them.
    case privateMessage(Relay, target: String, requiring: Capabilities)
    /// A node started: the others tell it who they have (`login` with `snapshot`, and `member`).
    case hello
    /// Part of a hello's answer: `nick` is in `room`.
    case member(room: String, nick: String)
    /// `nick` set (a text in the relay) or cleared their AWAY.
    case away(Relay, nick: String)
    /// A room's settings changed (topic, modes, key, owner, bans): every node keeps them, and
    /// its members there see `relay` (the TOPIC or MODE line).
    case roomState(RoomRecord, relay: Relay?)
}

extension Relay: Equatable {
    public static func == (a: Relay, b: Relay) -> Bool {
        a.msgid == b.msgid && a.source == b.source && a.command == b.command && a.parameters == b.parameters
            && a.time == b.time && a.account == b.account && a.clientTags == b.clientTags && a.fromBot == b.fromBot
            && a.extendedJoinParameters == b.extendedJoinParameters
    }
}

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
    private let report: @Sendable (String) -> Void
    private let connected: NIOLockedValueBox<Bool>

    /// Starts listening and says hello. Blocking (call before serving).
    /// - Parameter history: where this node keeps what is said. A node's own SQLite file keeps
    ///   every room message and private message as it comes from the database, its own included;
    ///   the shared PostgreSQL history (`isShared`) stores each once, as it is published.
    public init(settings: ClusterSettings, serverName: String, registry: Registry, history: (any HistoryStore)?, eventLoop: EventLoop,
                report: @escaping @Sendable (String) -> Void) throws {
        let presence = RemotePresence()
        let node = settings.node
        self.node = node
        self.registry = registry
        self.presence = presence
        self.history = history
        self.report = report
        // The receiving side needs the bus to answer a hello: it gets it through this box, set
        // once the bus has started.
        let answer = NIOLockedValueBox<ClusterBus?>(nil)
        let connected = NIOLockedValueBox(true)
        self.connected = connected
        bus = try ClusterBus.start(settings, on: eventLoop, report: report, onConnection: { up in
            connected.withLockedValue { $0 = up }
            // Everyone here learns it: what they send to rooms is refused until it is back.
            let text = up
                ? "This server's database is back: messages reach every server again"
                : "This server lost its database: messages to rooms and to people on other servers are refused until it is back; new logins wait too"
            let notice = Relay(source: serverName, command: "NOTICE", parameters: ["*", text], time: Relay.timestamp())
            let sessions = registry.allSessions
            if !sessions.isEmpty { Audience(sessions).deliver(notice) }
        }) { payload in
            guard let (origin, event) = Self.decode(payload) else {
                report("cluster: ignored an event this node cannot read (from a newer node?): \(payload.prefix(80))")
                return
            }
            Self.keep(event, history: history)
            Self.receive(event, from: origin, node: node, registry: registry, presence: presence, history: history, answer: answer.withLockedValue { $0 })
        }
        answer.withLockedValue { $0 = bus }
        _ = bus.publish(Self.encode(.hello, origin: node))
    }

    public static let unavailableReason = "This server cannot reach its database right now: try again in a minute (or another server of this network)"

    /// Whether events flow (the listening connection to the database is up).
    public var isConnected: Bool { connected.withLockedValue { $0 } }

    /// Sends `event` to every node; fails when the database did not take it.
    public func publish(_ event: ClusterEvent) -> EventLoopFuture<Void> {
        bus.publish(Self.encode(event, origin: node), storing: history?.isShared == true ? Self.storedMessage(event) : nil)
    }

    /// A session logged in here: every node learns it, and ends an older session of the account.
    func loggedIn(_ session: SessionHandle) {
        presence.loginPublished(session.folded)
        _ = publish(.login(Self.remoteUser(session, node: node), snapshot: false))
    }

    /// Users of `node` went with it (its heartbeat stopped): their rooms here see them quit.
    public func nodeLost(_ lost: String, at time: String) {
        let gone = presence.removeNode(lost)
        guard !gone.isEmpty else { return }
        report("cluster: node \(lost) stopped answering; \(gone.count) of its users are shown as gone")
        for (user, rooms) in gone {
            let relay = Relay(source: user.mask, command: "QUIT", parameters: ["Node \(lost) lost"], time: time, account: user.nick)
            Self.deliver(relay, toRooms: rooms, registry: registry)
        }
    }

    public func stop() {
        bus.stop()
    }

    static func remoteUser(_ session: SessionHandle, node: String) -> RemoteUser {
        RemoteUser(nick: session.nick, username: session.username, realname: session.realname, token: session.clusterToken, node: node)
    }

    // MARK: Receiving

    static func receive(_ event: ClusterEvent, from origin: String, node: String, registry: Registry, presence: RemotePresence,
                        history: (any HistoryStore)? = nil, answer: ClusterBus?) {
        let own = origin == node
        switch event {
        case let .room(relay, room, operatorsOnly, except, requiring):
            guard let local = registry.room(named: room) else { return }
            let audience = operatorsOnly ? Audience(local.roster.filter(\.isOperator).map(\.session)) : local.audience
            audience.deliver(relay, except: except.flatMap { registry.session(named: $0) }, requiring: requiring)
        case let .login(user, snapshot):
            let folded = IRCName.fold(user.nick)
            if own {
                if let (old, rooms) = presence.ownLoginConfirmed(folded) {
                    Self.deliver(Relay(source: old.mask, command: "QUIT", parameters: [Session.replacedReason], time: Relay.timestamp(), account: old.nick),
                                 toRooms: rooms, registry: registry)
                }
                return
            }
            if snapshot {
                if registry.session(named: user.nick) == nil { presence.add(user) }
                return
            }
            // Ours is newer if its own login event has not come back yet: the other node ends
            // its session when it sees ours.
            guard !presence.hasPendingLogin(folded) else { return }
            registry.session(named: user.nick)?.end(reason: Session.replacedReason)
            if let (old, rooms) = presence.add(user) {
                Self.deliver(Relay(source: old.mask, command: "QUIT", parameters: [Session.replacedReason], time: Relay.timestamp(), account: old.nick),
                             toRooms: rooms, registry: registry)
            }
        case let .quit(relay, nick, token):
            guard !own, let (_, rooms) = presence.remove(nick, token: token) else { return }
            Self.deliver(relay, toRooms: rooms, registry: registry)
        case let .join(relay, room):
            guard !own, let nick = relay.source.split(separator: "!").first.map(String.init) else { return }
            guard presence.join(nick, room: room, node: origin) else { return }
            registry.room(named: room)?.audience.deliver(relay)
        case let .part(relay, room, nick):
            guard !own else { return }
            presence.part(nick, room: room, node: origin)
            registry.room(named: room)?.audience.deliver(relay)
        case let .privateMessage(relay, target, requiring):
            guard !own, let session = registry.session(named: target) else { return }
            Audience([session]).deliver(relay, requiring: requiring)
        case .hello:
            guard !own, let bus = answer else { return }
            // A node that says hello has just started: users it had before (it was killed and
            // restarted faster than the heartbeat timeout) are gone.
            for (user, rooms) in presence.removeNode(origin) {
                deliver(Relay(source: user.mask, command: "QUIT", parameters: ["Node \(origin) restarted"], time: Relay.timestamp(), account: user.nick),
                        toRooms: rooms, registry: registry)
            }
            // Tell the new node who is here, and in which rooms.
            for session in registry.allSessions {
                _ = bus.publish(encode(.login(remoteUser(session, node: node), snapshot: true), origin: node))
                for room in session.rooms.values {
                    _ = bus.publish(encode(.member(room: room.folded, nick: session.nick), origin: node))
                }
            }
        case let .member(room, nick):
            guard !own else { return }
            presence.join(nick, room: room, node: origin)
        case let .away(relay, nick):
            guard !own else { return }
            let rooms = presence.setAway(nick, relay.parameters.first, node: origin)
            let members = rooms.compactMap { registry.room(named: $0) }.flatMap { $0.roster.map(\.session) }
            if !members.isEmpty { Audience(members).deliver(relay, requiring: .awayNotify) }
        case let .roomState(record, relay):
            guard !own else { return }
            let folded = IRCName.fold(record.name)
            // Kept, so that the room has these settings when someone here joins it later. The
            // shared history has them from the node that made the change: only remembered.
            if let shared = history as? PostgresHistory {
                shared.remember(record, folded: folded)
            } else {
                history?.saveRoom(record, folded: folded)
            }
            guard let local = registry.room(named: folded) else { return }
            local.apply(record)
            if let relay { local.audience.deliver(relay) }
        }
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

    /// Delivers `relay` to this node's members of `rooms` (folded), each once.
    static func deliver(_ relay: Relay, toRooms rooms: Set<String>, registry: Registry) {
        let members = rooms.compactMap { registry.room(named: $0) }.flatMap { $0.roster.map(\.session) }
        if !members.isEmpty { Audience(members).deliver(relay) }
    }

    // MARK: The wire form
    //
    // Line 1: `1 KIND ORIGIN ARGUMENTS…` (words without spaces); line 2: the relayed message as an
    // IRC line with every tag (time, account, msgid, bot, client tags), or a real name.

    static let allTags: Capabilities = [.serverTime, .accountTag, .messageTags]

    static func line(_ relay: Relay, extendedJoin: Bool = false) -> String {
        String(decoding: relay.message(for: extendedJoin ? allTags.union(.extendedJoin) : allTags).serialized().dropLast(2), as: UTF8.self)
    }

    static func encode(_ event: ClusterEvent, origin: String) -> String {
        switch event {
        case let .room(relay, room, operatorsOnly, except, requiring):
            return "1 room \(origin) \(room) \(operatorsOnly ? "o" : "a") \(except ?? "*") \(requiring.rawValue)\n\(line(relay))"
        case let .login(user, snapshot):
            return "1 login \(origin) \(user.nick) \(user.username) \(user.token) \(snapshot ? 1 : 0)\n\(user.realname)"
        case let .quit(relay, nick, token):
            return "1 quit \(origin) \(nick) \(token)\n\(line(relay))"
        case let .join(relay, room):
            return "1 join \(origin) \(room)\n\(line(relay, extendedJoin: true))"
        case let .part(relay, room, nick):
            return "1 part \(origin) \(room) \(nick)\n\(line(relay))"
        case let .privateMessage(relay, target, requiring):
            return "1 pm \(origin) \(target) \(requiring.rawValue)\n\(line(relay))"
        case .hello:
            return "1 hello \(origin)\n"
        case let .member(room, nick):
            return "1 member \(origin) \(room) \(nick)\n"
        case let .away(relay, nick):
            return "1 away \(origin) \(nick)\n\(line(relay))"
        case let .roomState(record, relay):
            var record = record
            var text = ""
            // The ban list can be long: the oldest bans give way so that the event fits.
            repeat {
                text = "1 roomstate \(origin)\n\(relay.map { line($0) } ?? "-")\n\(roomJSON(record))"
                if ClusterBus.fits(text) || record.bans.isEmpty { break }
                record.bans.removeFirst(max(1, record.bans.count / 4))
            } while true
            return text
        }
    }

    static func decode(_ payload: String) -> (origin: String, event: ClusterEvent)? {
        guard let newline = payload.firstIndex(of: "\n") else { return nil }
        let words = payload[..<newline].split(separator: " ").map(String.init)
        guard words.count >= 3, words[0] == "1" else { return nil }
        let rest = String(payload[payload.index(after: newline)...])
        // Names and rooms come from other nodes' sessions, but are checked as if from a client.
        func nick(_ text: String) -> String? { IRCName.isValidNick(text) ? text : nil }
        func room(_ text: String) -> String? { text.hasPrefix("#") && !text.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 32 } == true }) ? text : nil }
        let origin = words[2]
        switch (words[1], words.count) {
        case ("room", 7):
            guard let room = room(words[3]), let requiring = UInt32(words[6]), let relay = relay(from: rest) else { return nil }
            return (origin, .room(relay, room: room, operatorsOnly: words[4] == "o", except: words[5] == "*" ? nil : nick(words[5]),
                                  requiring: Capabilities(rawValue: requiring)))
        case ("login", 7):
            guard let nick = nick(words[3]), IRCName.isValidNick(words[4]), !rest.contains(where: { $0.asciiValue.map { $0 < 32 } == true }) else { return nil }
            return (origin, .login(RemoteUser(nick: nick, username: words[4], realname: rest, token: words[5], node: origin), snapshot: words[6] == "1"))
        case ("quit", 5):
            guard let nick = nick(words[3]), let relay = relay(from: rest) else { return nil }
            return (origin, .quit(relay, nick: nick, token: words[4]))
        case ("join", 4):
            guard let room = room(words[3]), var relay = relay(from: rest), relay.command == "JOIN" else { return nil }
            if relay.parameters.count == 3 {
                relay.extendedJoinParameters = relay.parameters
                relay.parameters = [relay.parameters[0]]
            }
            return (origin, .join(relay, room: room))
        case ("part", 5):
            guard let room = room(words[3]), let nick = nick(words[4]), let relay = relay(from: rest) else { return nil }
            return (origin, .part(relay, room: room, nick: nick))
        case ("pm", 5):
            guard let target = nick(words[3]), let requiring = UInt32(words[4]), let relay = relay(from: rest) else { return nil }
            return (origin, .privateMessage(relay, target: target, requiring: Capabilities(rawValue: requiring)))
        case ("hello", 3):
            return (origin, .hello)
        case ("away", 4):
            guard let nick = nick(words[3]), let relay = relay(from: rest), relay.command == "AWAY" else { return nil }
            return (origin, .away(relay, nick: nick))
        case ("roomstate", 3):
            let lines = rest.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
            guard lines.count == 2, let record = Self.roomRecord(fromJSON: String(lines[1])), room(record.name) != nil else { return nil }
            let relay: Relay? = lines[0] == "-" ? nil : Self.relay(from: String(lines[0]))
            if lines[0] != "-" && relay == nil { return nil }
            return (origin, .roomState(record, relay: relay))
        case ("member", 5):
            guard let room = room(words[3]), let nick = nick(words[4]) else { return nil }
            return (origin, .member(room: room, nick: nick))
        default:
            return nil
        }
    }

    static func roomJSON(_ r: RoomRecord) -> String {
        var object: [String: Any] = ["name": r.name, "topicBy": r.topicBy, "topicTime": r.topicTime, "flags": r.flags,
                                     "created": r.created, "lastUsed": r.lastUsed,
                                     "bans": r.bans.map { ["mask": $0.mask, "setBy": $0.setBy, "setAt": $0.setAt] as [String: Any] }]
        if let topic = r.topic { object["topic"] = topic }
        if let key = r.key { object["key"] = key }
        if let limit = r.limit { object["limit"] = limit }
        if let owner = r.owner { object["owner"] = owner }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static func roomRecord(fromJSON text: String) -> RoomRecord? {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any],
              let name = object["name"] as? String, let flags = object["flags"] as? String,
              let created = object["created"] as? Int, let lastUsed = object["lastUsed"] as? Int
        else { return nil }
        // Text that clients will see is checked as a client's would be.
        func clean(_ value: String?) -> String? { value.map { String($0.unicodeScalars.filter { $0.value >= 32 }) } }
        let bans = (object["bans"] as? [[String: Any]] ?? []).compactMap { ban -> RoomRecord.Ban? in
            guard let mask = ban["mask"] as? String, let setBy = ban["setBy"] as? String, let setAt = ban["setAt"] as? Int else { return nil }
            return RoomRecord.Ban(mask: clean(mask)!, setBy: clean(setBy)!, setAt: setAt)
        }
        return RoomRecord(name: name, topic: clean(object["topic"] as? String), topicBy: clean(object["topicBy"] as? String) ?? "",
                          topicTime: object["topicTime"] as? Int ?? 0, flags: String(flags.filter { "imnst".contains($0) }),
                          key: clean(object["key"] as? String), limit: object["limit"] as? Int, owner: object["owner"] as? String,
                          created: created, lastUsed: lastUsed, bans: bans)
    }

    static func relay(from text: String) -> Relay? {
        guard let message = try? IRCMessage.parse(Array(text.utf8), maximumTagBytes: IRCMessage.Limits.tags, maximumLineBytes: 4096),
              let source = message.source
        else { return nil }
        func tag(_ key: String) -> String? { message.tags.first { $0.key == key }?.value }
        guard let time = tag("time"), let msgid = tag("msgid") else { return nil }
        var relay = Relay(source: source, command: message.command, parameters: message.parameters, time: time, account: tag("account"),
                          clientTags: message.tags.filter(\.isClientOnly), msgid: msgid)
        relay.fromBot = message.tags.contains { $0.key == "bot" }
        return relay
    }
}

import ChatCluster
import ChatHistory
import ChatSupport
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
    /// A member joined a room (the JOIN relay, with its extended-join variant), with the status
    /// its node gave it there ("o" for the owner, or "").
    case join(Relay, room: String, status: String)
    /// `nick` left a room: a PART, or a KICK (which the node that has `nick` carries out).
    case part(Relay, room: String, nick: String)
    /// A private message (or notice, or TAGMSG) to `target`, delivered by the node that has them.
    case privateMessage(Relay, target: String, requiring: Capabilities)
    /// A node started: the others tell it who they have (`login` with `snapshot`, and `member`).
    case hello
    /// Part of a hello's answer: `nick` is in `room`, with its status there ("o", "v", "ov", "").
    case member(room: String, nick: String, status: String)
    /// An INVITE to `target`, delivered by the node that has them; with `admit`, it lets them
    /// past +i and +k (an operator's invitation).
    case invite(Relay, room: String, target: String, admit: Bool)
    /// `nick` set (a text in the relay) or cleared their AWAY.
    case away(Relay, nick: String)
    /// A room's settings changed (topic, modes, key, owner, bans): every node keeps them, and
    /// its members there see `relay` (the TOPIC or MODE line).
    case roomState(RoomRecord, relay: Relay?)
    /// A node made a new room: of two nodes making it at once, the first claim in the
    /// database's order stands on every node (its owner, its settings).
    case roomCreated(RoomRecord)
}

extension Relay: Equatable {
    public static func == (a: Relay, b: Relay) -> Bool {
        a.msgid == b.msgid && a.source == b.source && a.command == b.command && a.parameters == b.parameters
            && a.time == b.time && a.account == b.account && a.clientTags == b.clientTags && a.fromBot == b.fromBot
            && a.extendedJoinParameters == b.extendedJoinParameters
    }
}

extension ClusterLink {
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
        case let .join(relay, room, status):
            return "1 join \(origin) \(room)\(status.isEmpty ? "" : " " + status)\n\(line(relay, extendedJoin: true))"
        case let .part(relay, room, nick):
            return "1 part \(origin) \(room) \(nick)\n\(line(relay))"
        case let .privateMessage(relay, target, requiring):
            return "1 pm \(origin) \(target) \(requiring.rawValue)\n\(line(relay))"
        case .hello:
            return "1 hello \(origin)\n"
        case let .member(room, nick, status):
            return "1 member \(origin) \(room) \(nick)\(status.isEmpty ? "" : " " + status)\n"
        case let .invite(relay, room, target, admit):
            return "1 invite \(origin) \(room) \(target) \(admit ? "a" : "n")\n\(line(relay))"
        case let .away(relay, nick):
            return "1 away \(origin) \(nick)\n\(line(relay))"
        case let .roomCreated(record):
            return "1 roomcreated \(origin)\n-\n\(roomJSON(record))"
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
        // A member's status: only the letters o and v count.
        func status(_ text: String) -> String { String(Set(text.filter { $0 == "o" || $0 == "v" }).sorted()) }
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
        case ("join", 4), ("join", 5):
            guard let room = room(words[3]), var relay = relay(from: rest), relay.command == "JOIN" else { return nil }
            if relay.parameters.count == 3 {
                relay.extendedJoinParameters = relay.parameters
                relay.parameters = [relay.parameters[0]]
            }
            return (origin, .join(relay, room: room, status: words.count == 5 ? status(words[4]) : ""))
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
        case ("roomstate", 3), ("roomcreated", 3):
            let lines = rest.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
            guard lines.count == 2, let record = Self.roomRecord(fromJSON: String(lines[1])), room(record.name) != nil else { return nil }
            let relay: Relay? = lines[0] == "-" ? nil : Self.relay(from: String(lines[0]))
            if lines[0] != "-" && relay == nil { return nil }
            return (origin, words[1] == "roomcreated" ? .roomCreated(record) : .roomState(record, relay: relay))
        case ("member", 5), ("member", 6):
            guard let room = room(words[3]), let nick = nick(words[4]) else { return nil }
            return (origin, .member(room: room, nick: nick, status: words.count == 6 ? status(words[5]) : ""))
        case ("invite", 6):
            guard let room = room(words[3]), let target = nick(words[4]), let relay = relay(from: rest), relay.command == "INVITE" else { return nil }
            return (origin, .invite(relay, room: room, target: target, admit: words[5] == "a"))
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
        return JSONSyntax.text(object)
    }

    static func roomRecord(fromJSON text: String) -> RoomRecord? {
        func integer(_ value: Any?) -> Int? { JSONNumber.integer(value) }
        guard let object = (try? JSONSyntax.parse(Array(text.utf8))) as? [String: Any],
              let name = object["name"] as? String, let flags = object["flags"] as? String,
              let created = integer(object["created"]), let lastUsed = integer(object["lastUsed"])
        else { return nil }
        // Text that clients will see is checked as a client's would be.
        func clean(_ value: String?) -> String? { value.map { String($0.unicodeScalars.filter { $0.value >= 32 }) } }
        let bans = (object["bans"] as? [[String: Any]] ?? []).compactMap { ban -> RoomRecord.Ban? in
            guard let mask = ban["mask"] as? String, let setBy = ban["setBy"] as? String, let setAt = integer(ban["setAt"]) else { return nil }
            return RoomRecord.Ban(mask: clean(mask)!, setBy: clean(setBy)!, setAt: setAt)
        }
        return RoomRecord(name: name, topic: clean(object["topic"] as? String), topicBy: clean(object["topicBy"] as? String) ?? "",
                          topicTime: integer(object["topicTime"]) ?? 0, flags: String(flags.filter { "imnst".contains($0) }),
                          key: clean(object["key"] as? String), limit: integer(object["limit"]), owner: object["owner"] as? String,
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

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

/// The actions one event of a session produces, with helpers that build the replies.
struct SessionOutput {
    let serverName: String
    /// The first parameter of every numeric: the client's nick, or `*` before registration.
    var target: String
    private(set) var actions: [Session.Action] = []

    init(serverName: String, target: String) {
        self.serverName = serverName
        self.target = target
    }

    mutating func send(_ message: IRCMessage) {
        actions.append(.send(message))
    }

    mutating func numeric(_ numeric: Numeric, _ parameters: String...) {
        self.numeric(numeric, parameters)
    }

    mutating func numeric(_ numeric: Numeric, _ parameters: [String]) {
        send(IRCMessage(source: serverName, command: numeric.rawValue, parameters: [target] + parameters))
    }

    /// A reply from the server that is not a numeric (PONG, CAP, FAIL).
    mutating func reply(_ command: String, _ parameters: [String]) {
        send(IRCMessage(source: serverName, command: command, parameters: parameters))
    }

    mutating func deliver(_ relay: Relay, to audience: Audience, except: SessionHandle? = nil, requiring: Capabilities = []) {
        actions.append(.deliver(relay, to: audience, except: except, requiring: requiring))
    }

    mutating func append(_ action: Session.Action) {
        actions.append(action)
    }

    mutating func append(contentsOf more: [Session.Action]) {
        actions.append(contentsOf: more)
    }
}

/// What a registered session's command sees: the server, itself, the time, and where its replies go.
struct CommandContext {
    let core: ServerCore
    let me: SessionHandle
    let now: Date
    var capabilities: Capabilities
    var out: SessionOutput

    var registry: Registry { core.registry }
    var limits: ServerConfiguration.Limits { core.configuration.limits }
    var unixTime: Int { Int(now.timeIntervalSince1970) }

    /// A message from this session to others.
    func relay(_ command: String, _ parameters: [String], clientTags: [IRCTag] = [], extendedJoin: [String]? = nil) -> Relay {
        var relay = Relay(source: me.mask, command: command, parameters: parameters, time: Relay.timestamp(now), account: me.nick,
                          clientTags: clientTags, extendedJoinParameters: extendedJoin)
        relay.fromBot = me.isBot
        return relay
    }

    /// False (after 461) when `message` has fewer than `count` parameters or an empty first one.
    mutating func need(_ count: Int, _ message: IRCMessage) -> Bool {
        let p = message.parameters
        if p.count < count || (count > 0 && p[0].isEmpty) {
            out.numeric(.needMoreParams, message.command, "Not enough parameters")
            return false
        }
        return true
    }

    /// The room called `name` if this session is in it, else the room if it exists and is not
    /// secret (+s): to outsiders a secret room does not exist.
    func room(_ name: String) -> (room: Room, isMember: Bool)? {
        let folded = IRCName.fold(name)
        if let room = me.room(folded: folded) { return (room, true) }
        // Server operators see secret rooms too.
        guard let room = registry.room(named: name), !room.modes.secret || me.isOperator else { return nil }
        return (room, false)
    }

    /// 403 when the room does not exist (or is secret), 442 when this session is not in it.
    mutating func notInRoom(_ name: String) {
        if room(name) == nil {
            out.numeric(.noSuchChannel, name, "No such channel")
        } else {
            out.numeric(.notOnChannel, name, "You're not on that channel")
        }
    }

    mutating func topicReply(_ room: Room) {
        if let topic = room.topic {
            out.numeric(.topic, room.name, topic.text)
            out.numeric(.topicWhoTime, room.name, topic.setBy, String(topic.setAt))
        } else {
            out.numeric(.noTopic, room.name, "No topic is set")
        }
    }
}

/// `text` cut to at most `bytes` bytes of UTF-8 at a character boundary.
func truncated(_ text: String, bytes: Int) -> String {
    if text.utf8.count <= bytes { return text }
    var out = ""
    var used = 0
    for character in text {
        let size = character.utf8.count
        if used + size > bytes { break }
        out.append(character)
        used += size
    }
    return out
}

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

/// WHO (and WHOX), WHOIS, WHOWAS, USERHOST, ISON, AWAY, SETNAME, LUSERS, TIME, MOTD and CAP
/// after registration.
enum QueryCommands {
    /// WHO for a room or a nick; with WHOX (`WHO #room %tcnuhraf,42`), the fields asked for.
    static func who(_ message: IRCMessage, _ c: inout CommandContext) {
        let mask = message.parameters.first ?? "*"
        let whox = message.parameters.count > 1 && message.parameters[1].hasPrefix("%") ? WhoxRequest(message.parameters[1]) : nil
        let presence = c.core.cluster?.presence
        if mask.hasPrefix("#") {
            if let (room, _) = c.room(mask) {
                let all = c.capabilities.contains(.multiPrefix)
                for entry in room.roster { whoReply(WhoLine(entry.session, prefix: entry.prefix(all: all), c), room: room.name, whox, &c) }
                for user in presence?.members(of: room.folded) ?? [] where room.member(named: user.nick) == nil {
                    whoReply(WhoLine(user, prefix: presence!.prefix(of: user.nick, in: room.folded, all: all)), room: room.name, whox, &c)
                }
            }
        } else if let session = c.registry.session(named: mask) {
            whoReply(WhoLine(session, prefix: "", c), room: "*", whox, &c)
        } else if let user = presence?.user(named: mask) {
            whoReply(WhoLine(user, prefix: ""), room: "*", whox, &c)
        }
        c.out.numeric(.endOfWho, mask, "End of /WHO list")
    }

    /// What WHO shows of someone: a session here, or a user on another node of a cluster (as
    /// far as this node knows them; their node is shown as their server).
    struct WhoLine {
        var username, host, server, nick, flags, realname: String
        var idleSeconds: Int

        init(_ member: SessionHandle, prefix: String, _ c: CommandContext) {
            username = member.username
            host = member.host
            server = c.core.configuration.serverName
            nick = member.nick
            flags = (member.away == nil ? "H" : "G") + (member.isOperator ? "*" : "") + (member.isBot ? "B" : "") + prefix
            realname = member.realname
            idleSeconds = max(0, c.unixTime - member.lastMessageTime)
        }

        init(_ user: RemoteUser, prefix: String) {
            username = user.username
            host = user.host
            server = user.node
            nick = user.nick
            flags = (user.away == nil ? "H" : "G") + prefix
            realname = user.realname
            idleSeconds = 0
        }
    }

    private static func whoReply(_ who: WhoLine, room: String, _ whox: WhoxRequest?, _ c: inout CommandContext) {
        guard let whox else {
            c.out.numeric(.whoReply, room, who.username, who.host, who.server, who.nick, who.flags, "0 \(who.realname)")
            return
        }
        // The fields in the order the WHOX specification gives, whatever order they were asked in.
        var fields: [String] = []
        for field in "tcuihsnfdlaor" where whox.fields.contains(field) {
            switch field {
            case "t": fields.append(whox.token)
            case "c": fields.append(room)
            case "u": fields.append(who.username)
            case "i": fields.append("255.255.255.255")  // addresses are never shown
            case "h": fields.append(who.host)
            case "s": fields.append(who.server)
            case "n": fields.append(who.nick)
            case "f": fields.append(who.flags)
            case "d": fields.append("0")
            case "l": fields.append(String(who.idleSeconds))
            case "a": fields.append(who.nick)  // the nick is the account
            case "o": fields.append("n/a")
            default: fields.append(who.realname)
            }
        }
        c.out.numeric(.whoSpecialReply, fields)
    }

    /// `%fields[,token]` of a WHOX request; the token is at most 3 digits.
    struct WhoxRequest {
        let fields: Set<Character>
        let token: String
        init(_ text: String) {
            let parts = text.dropFirst().split(separator: ",", maxSplits: 1)
            fields = Set(parts.first.map(String.init) ?? "")
            let token = parts.count > 1 ? String(parts[1].prefix(3)) : "0"
            self.token = token.allSatisfy(\.isNumber) && !token.isEmpty ? token : "0"
        }
    }

    static func whois(_ message: IRCMessage, _ c: inout CommandContext) {
        guard c.need(1, message) else { return }
        let p = message.parameters
        let target = p.count > 1 ? p[1] : p[0]
        if c.registry.session(named: target) == nil, let user = c.core.cluster?.presence.user(named: target) {
            // On another node: who they are and where; their node knows the rest.
            c.out.numeric(.whoisUser, user.nick, user.username, user.host, "*", user.realname)
            let rooms = (c.core.cluster?.presence.rooms(of: user.nick) ?? []).compactMap { folded -> String? in
                guard let room = c.registry.room(named: folded) else { return nil }
                return room.modes.secret && !room.isMember(c.me) ? nil : room.name
            }.sorted()
            if !rooms.isEmpty { c.out.numeric(.whoisChannels, user.nick, rooms.joined(separator: " ")) }
            c.out.numeric(.whoisServer, user.nick, user.node, c.core.configuration.networkName)
            if let away = user.away { c.out.numeric(.away, user.nick, away) }
            c.out.numeric(.whoisSecure, user.nick, "is using a secure connection")
            c.out.numeric(.whoisAccount, user.nick, user.nick, "is logged in as")
            c.out.numeric(.endOfWhois, user.nick, "End of /WHOIS list")
            return
        }
        guard let session = c.registry.session(named: target) else {
            c.out.numeric(.noSuchNick, target, "No such nick")
            c.out.numeric(.endOfWhois, target, "End of /WHOIS list")
            return
        }
        let nick = session.nick
        c.out.numeric(.whoisUser, nick, session.username, session.host, "*", session.realname)
        if session.isBot { c.out.numeric(.whoisBot, nick, "is a bot") }
        if session.isOperator { c.out.numeric(.whoisOperator, nick, "is an IRC operator") }
        let rooms = session.rooms.values.filter { !$0.modes.secret || $0.isMember(c.me) }.sorted { $0.folded < $1.folded }
        if !rooms.isEmpty {
            c.out.numeric(.whoisChannels, nick, rooms.map { $0.prefix(of: session, all: c.capabilities.contains(.multiPrefix)) + $0.name }.joined(separator: " "))
        }
        c.out.numeric(.whoisServer, nick, c.core.configuration.serverName, c.core.configuration.networkName)
        if let away = session.away { c.out.numeric(.away, nick, away) }
        c.out.numeric(.whoisSecure, nick, "is using a secure connection")
        c.out.numeric(.whoisAccount, nick, nick, "is logged in as")
        let idle = max(0, c.unixTime - session.lastMessageTime)
        c.out.numeric(.whoisIdle, nick, String(idle), String(session.signonTime), "seconds idle, signon time")
        c.out.numeric(.endOfWhois, nick, "End of /WHOIS list")
    }

    static func userhost(_ message: IRCMessage, _ c: inout CommandContext) {
        guard c.need(1, message) else { return }
        let replies = message.parameters.prefix(5).compactMap { c.registry.session(named: $0) }.map {
            "\($0.nick)=\($0.away == nil ? "+" : "-")\($0.username)@\($0.host)"
        }
        c.out.reply("302", [c.me.nick, replies.joined(separator: " ")])
    }

    static func ison(_ message: IRCMessage, _ c: inout CommandContext) {
        let online = message.parameters.flatMap { $0.split(separator: " ").map(String.init) }.compactMap {
            c.registry.session(named: $0)?.nick ?? c.core.cluster?.presence.user(named: $0)?.nick
        }
        c.out.reply("303", [c.me.nick, online.joined(separator: " ")])
    }

    /// Sets or clears the away text; members who share a room and have away-notify are told.
    static func away(_ message: IRCMessage, _ c: inout CommandContext) {
        let text = message.parameters.first.flatMap { $0.isEmpty ? nil : truncated($0, bytes: 390) }
        c.me.setAway(text)
        if text == nil {
            c.out.numeric(.unaway, "You are no longer marked as being away")
        } else {
            c.out.numeric(.nowAway, "You have been marked as being away")
        }
        let others = c.me.rooms.values.flatMap { $0.roster.map(\.session) }
        let relay = c.relay("AWAY", text.map { [$0] } ?? [])
        c.out.deliver(relay, to: Audience(others), except: c.me, requiring: .awayNotify)
        if c.core.cluster != nil { c.out.append(.publish(.away(relay, nick: c.me.nick), command: "AWAY")) }
        // extended-monitor: those who monitor this user and share no room with them.
        let roommates = Set(others.map(ObjectIdentifier.init))
        let watchers = c.registry.watchers(of: c.me.nick).filter { !roommates.contains(ObjectIdentifier($0)) }
        if !watchers.isEmpty {
            c.out.deliver(relay, to: Audience(watchers), except: c.me, requiring: [.awayNotify, .extendedMonitor])
        }
    }

    /// SETNAME: a new real name, shown to the user and to roommates (and monitors with
    /// extended-monitor) that asked for setname.
    static func setname(_ message: IRCMessage, _ c: inout CommandContext) {
        guard let text = message.parameters.first, !text.isEmpty else {
            c.out.send(IRCMessage(source: c.out.serverName, command: "FAIL", parameters: ["SETNAME", "INVALID_REALNAME", "The real name must not be empty"]))
            return
        }
        guard text.utf8.count <= realnameLength else {
            c.out.send(IRCMessage(source: c.out.serverName, command: "FAIL", parameters: ["SETNAME", "INVALID_REALNAME", "The real name is longer than \(realnameLength) bytes"]))
            return
        }
        c.me.setRealname(text)
        let relay = c.relay("SETNAME", [text])
        let roommates = c.me.rooms.values.flatMap { $0.roster.map(\.session) }
        c.out.deliver(relay, to: Audience(roommates + [c.me]), requiring: .setname)
        let near = Set(roommates.map(ObjectIdentifier.init))
        let watchers = c.registry.watchers(of: c.me.nick).filter { !near.contains(ObjectIdentifier($0)) && $0 !== c.me }
        if !watchers.isEmpty { c.out.deliver(relay, to: Audience(watchers), requiring: [.setname, .extendedMonitor]) }
    }

    /// WHOWAS nick [count]: who last used a nick (the last 1,000 departures are kept).
    static func whowas(_ message: IRCMessage, _ c: inout CommandContext) {
        guard c.need(1, message) else { return }
        let nick = message.parameters[0]
        let count = message.parameters.count > 1 ? Int(message.parameters[1]).map { $0 > 0 ? $0 : Int.max } ?? Int.max : Int.max
        let found = c.registry.departures(of: nick).prefix(count)
        if found.isEmpty { c.out.numeric(.wasNoSuchNick, nick, "There was no such nickname") }
        for entry in found {
            c.out.numeric(.whowasUser, entry.nick, entry.username, entry.host, "*", entry.realname)
            c.out.numeric(.whoisServer, entry.nick, c.core.configuration.serverName, "left at " + Relay.timestamp(Date(timeIntervalSince1970: Double(entry.time))))
        }
        c.out.numeric(.endOfWhowas, nick, "End of WHOWAS")
    }

    /// Longest real name (ISUPPORT NAMELEN).
    static let realnameLength = 390

    /// LUSERS (also part of the welcome burst). Every user is `+i` here, so all are invisible;
    /// one server; the room count includes secret rooms (a number reveals no name).
    static func lusers(_ out: inout SessionOutput, core: ServerCore) {
        let users = core.registry.userCount
        let peak = core.registry.peakUserCount
        out.numeric(.lUserClient, "There are 0 users and \(users) invisible on 1 servers")
        out.numeric(.lUserChannels, String(core.registry.roomCount), "channels formed")
        out.numeric(.lUserMe, "I have \(users) clients and 0 servers")
        out.numeric(.localUsers, String(users), String(peak), "Current local users \(users), max \(peak)")
        out.numeric(.globalUsers, String(users), String(peak), "Current global users \(users), max \(peak)")
    }

    /// TIME: the server's time, as a Unix timestamp and in words (RFC 3339, UTC).
    static func time(_ out: inout SessionOutput, core: ServerCore, now: Date) {
        out.numeric(.time, core.configuration.serverName, String(Int(now.timeIntervalSince1970)), "0", Relay.timestamp(now))
    }

    static func motd(_ out: inout SessionOutput, core: ServerCore) {
        guard let lines = core.motdLines else { return out.numeric(.noMotd, "MOTD File is missing") }
        out.numeric(.motdStart, "- \(core.configuration.serverName) Message of the day - ")
        for line in lines { out.numeric(.motd, "- \(line)") }
        out.numeric(.endOfMotd, "End of /MOTD command.")
    }

    static func cap(_ message: IRCMessage, _ c: inout CommandContext) {
        let p = message.parameters
        let sub = p.first?.uppercased() ?? ""
        switch sub {
        case "LS":
            c.out.reply("CAP", [c.me.nick, "LS", Capabilities.listing(version: Int(p.count > 1 ? p[1] : "") ?? 0, offered: c.core.offeredCapabilities)])
        case "LIST":
            c.out.reply("CAP", [c.me.nick, "LIST", c.capabilities.names.joined(separator: " ")])
        case "REQ":
            let requested = p.count > 1 ? p[1] : ""
            // sasl cannot be taken back once logged in.
            guard let (add, remove) = Capabilities.parseRequest(requested, offered: c.core.offeredCapabilities), !remove.contains(.sasl) else {
                return c.out.reply("CAP", [c.me.nick, "NAK", requested])
            }
            c.capabilities.formUnion(add)
            c.capabilities.subtract(remove)
            c.out.reply("CAP", [c.me.nick, "ACK", requested])
        case "END":
            break
        default:
            c.out.numeric(.invalidCapCommand, sub, "Invalid CAP command")
        }
    }
}

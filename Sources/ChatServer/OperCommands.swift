import ChatAuth
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

/// What server operators do: OPER, KILL, WALLOPS, KLINE, UNKLINE, STATS k and CLEARCHAN.
///
/// Operator powers need two things: the account's operator role (`chat-admin role NAME
/// operator`, stored with the account) and an `OPER` with the account's own password in this
/// session. Powers are never given automatically at login: a session logged in with a client
/// certificate, or left open on someone's screen, cannot kill or ban until the password is typed,
/// and an operator chats as a normal user until they choose otherwise. Every act is logged.
enum OperCommands {
    /// OPER <name> <password>: the name must be your own account, which needs the operator role.
    static func oper(_ message: IRCMessage, _ c: inout CommandContext) -> Session.Action? {
        guard c.need(2, message) else { return nil }
        let p = message.parameters
        if c.me.isOperator {
            c.out.numeric(.youreOper, "You are already an IRC operator")
            return nil
        }
        guard IRCName.fold(p[0]) == c.me.folded, c.core.policy.isOperator(c.me.nick) else {
            c.core.logOperatorAction(c.me, "OPER refused: the account has no operator role (name given: \(p[0]))")
            c.out.numeric(.noOperHost, "No operator role for this account: OPER <your account> <your password> works only for accounts given the role with 'chat-admin role NAME operator'")
            return nil
        }
        // Clients differ on quoting a password with spaces (as for PASS): take every parameter.
        return .verifyOper(password: Password(p.dropFirst().joined(separator: " ")))
    }

    /// The answer to OPER's password check.
    static func operFinished(_ outcome: LoginOutcome, _ c: inout CommandContext) {
        switch outcome {
        case .success:
            guard c.core.policy.isOperator(c.me.nick) else {
                c.out.numeric(.noOperHost, "No operator role for this account")
                return
            }
            c.me.setOperator(true)
            c.core.logOperatorAction(c.me, "OPER: now a server operator")
            c.out.numeric(.youreOper, "You are now an IRC operator")
            c.out.send(IRCMessage(source: c.me.mask, command: "MODE", parameters: [c.me.nick, "+o"]))
        case let .throttled(seconds):
            c.core.logOperatorAction(c.me, "OPER refused: throttled")
            c.out.numeric(.passwdMismatch, "Too many failed attempts: try again in \(Int(seconds.rounded(.up))) seconds")
        case .busy:
            c.out.numeric(.passwdMismatch, "Server busy: try again in a few seconds")
        case let .unavailable(reason):
            c.out.numeric(.passwdMismatch, reason)
        case .invalidCredentials, .locked, .banned:
            c.core.logOperatorAction(c.me, "OPER refused: wrong password")
            c.out.numeric(.passwdMismatch, "Password incorrect")
        }
    }

    /// 481 unless this session is a server operator.
    private static func mustBeOperator(_ c: inout CommandContext) -> Bool {
        if c.me.isOperator { return true }
        c.out.numeric(.noPrivileges, "Permission denied: you are not an IRC operator (OPER first)")
        return false
    }

    private static func notice(_ text: String, _ c: inout CommandContext) {
        c.out.reply("NOTICE", [c.me.nick, text])
    }

    /// KILL <nick> [:<reason>]: ends someone's session; their rooms see why.
    static func kill(_ message: IRCMessage, _ c: inout CommandContext) {
        guard c.need(1, message), mustBeOperator(&c) else { return }
        let p = message.parameters
        guard let victim = c.registry.session(named: p[0]) else {
            c.out.numeric(.noSuchNick, p[0], "No such nick")
            return
        }
        let reason = truncated(p.count > 1 && !p[1].isEmpty ? p[1] : "No reason given", bytes: 300)
        c.core.logOperatorAction(c.me, "KILL \(victim.nick) (address \(victim.address)): \(reason)")
        victim.end(reason: "Killed by \(c.me.nick) (\(reason))")
    }

    /// WALLOPS :<text>: to everyone with user mode +w.
    static func wallops(_ message: IRCMessage, _ c: inout CommandContext) {
        guard c.need(1, message), mustBeOperator(&c) else { return }
        let text = truncated(message.parameters[0], bytes: 400)
        c.core.logOperatorAction(c.me, "WALLOPS: \(text)")
        let readers = c.registry.allSessions.filter(\.receivesWallops)
        c.out.deliver(c.relay("WALLOPS", [text]), to: Audience(readers))
    }

    /// KLINE [<duration>] <account|address|range> [:<reason>]
    static func kline(_ message: IRCMessage, _ c: inout CommandContext) -> Session.Action? {
        guard c.need(1, message), mustBeOperator(&c) else { return nil }
        var p = message.parameters[...]
        var duration: TimeInterval?
        if let parsed = ServerBan.parseDuration(p[p.startIndex]) {
            duration = parsed
            p = p.dropFirst()
        }
        guard let targetText = p.first, !targetText.isEmpty else {
            c.out.numeric(.needMoreParams, "KLINE", "Not enough parameters: KLINE [<duration>] <account|address|range> [:<reason>]")
            return nil
        }
        let target: ServerBan.Target
        do {
            target = try ServerBan.Target(parsing: targetText)
        } catch {
            notice("KLINE: \(error)", &c)
            return nil
        }
        if target.covers(account: c.me.nick, address: c.me.address) {
            notice("KLINE: refused: that ban would cover you (\(c.me.nick) from \(c.me.address))", &c)
            return nil
        }
        let reason = truncated(p.dropFirst().first.flatMap { $0.isEmpty ? nil : $0 } ?? "No reason given", bytes: 300)
        let ban = ServerBan(target: target, reason: reason, setBy: c.me.nick, created: c.now, expires: duration.map { c.now.addingTimeInterval($0) })
        c.core.logOperatorAction(c.me, "KLINE \(target) \(ban.expires.map { "until \($0)" } ?? "without end"): \(reason)")
        return .administer(.addBan(ban))
    }

    /// UNKLINE <account|address|range>
    static func unkline(_ message: IRCMessage, _ c: inout CommandContext) -> Session.Action? {
        guard c.need(1, message), mustBeOperator(&c) else { return nil }
        do {
            let target = try ServerBan.Target(parsing: message.parameters[0])
            c.core.logOperatorAction(c.me, "UNKLINE \(target)")
            return .administer(.removeBan(target))
        } catch {
            notice("UNKLINE: \(error)", &c)
            return nil
        }
    }

    /// STATS k: the server bans in force (operators only).
    static func stats(_ message: IRCMessage, _ c: inout CommandContext) {
        guard c.need(1, message) else { return }
        let letter = message.parameters[0]
        if letter.lowercased() == "k" {
            guard mustBeOperator(&c) else { return }
            for ban in c.core.policy.bans where ban.isActive(at: c.now) {
                c.out.numeric(.statsKLine, "K", ban.target.description, ban.expires ?? "0", ban.setBy, ban.reason)
            }
        }
        c.out.numeric(.endOfStats, letter, "End of /STATS report")
    }

    /// CLEARCHAN <#room> [:<reason>]: removes everyone but server operators; an emptied room is
    /// gone, with its modes and bans.
    static func clearchan(_ message: IRCMessage, _ c: inout CommandContext) {
        guard c.need(1, message), mustBeOperator(&c) else { return }
        let p = message.parameters
        guard let room = c.registry.room(named: p[0]) else {
            c.out.numeric(.noSuchChannel, p[0], "No such channel")
            return
        }
        let reason = truncated(p.count > 1 && !p[1].isEmpty ? p[1] : "Room closed by a server operator", bytes: 300)
        var removed = 0
        let everyone = room.audience  // each member sees every KICK, their own and those before it
        for entry in room.roster where !entry.session.isOperator {
            c.out.deliver(c.relay("KICK", [room.name, entry.session.nick, reason]), to: everyone)
            if room.leave(entry.session) { c.registry.remove(room) }
            c.core.history?.setMembership(account: entry.session.folded, room: room.name, member: false)
            removed += 1
        }
        // Closed: what was kept of it goes too (history on), so it does not come back as it was.
        if room.memberCount == 0 { c.core.history?.deleteRoom(room.folded) }
        c.core.logOperatorAction(c.me, "CLEARCHAN \(room.name): \(removed) members removed: \(reason)")
        notice("CLEARCHAN: removed \(removed) members from \(room.name)", &c)
    }

    /// Logs a room command that worked only because the sender is a server operator.
    static func override(_ what: String, _ c: CommandContext) {
        c.core.logOperatorAction(c.me, "\(what) (as server operator, not a room operator)")
    }
}

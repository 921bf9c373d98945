import ChatHistory
import IRC

/// PRIVMSG, NOTICE and TAGMSG to rooms (`#room`, or `@#room` for its operators) and to users.
enum MessageCommands {
    static func send(_ message: IRCMessage, _ c: inout CommandContext) {
        let isNotice = message.command == "NOTICE"
        let isTagOnly = message.command == "TAGMSG"
        let p = message.parameters
        guard let targets = p.first, !targets.isEmpty else {
            if isTagOnly {
                c.out.numeric(.needMoreParams, message.command, "Not enough parameters")
            } else if !isNotice {
                c.out.numeric(.noRecipient, "No recipient given (\(message.command))")
            }
            return
        }
        let clientTags = message.tags.filter(\.isClientOnly)
        if isTagOnly && clientTags.isEmpty { return }
        let text = p.count > 1 ? p[1] : ""
        if !isTagOnly && text.isEmpty {
            if !isNotice { c.out.numeric(.noTextToSend, "No text to send") }
            return
        }
        c.me.touch(c.unixTime)
        let requiring: Capabilities = isTagOnly ? .messageTags : []
        let echo = c.capabilities.contains(.echoMessage)
        for target in targets.split(separator: ",").prefix(4).map(String.init) {
            let relay = c.relay(message.command, isTagOnly ? [target] : [target, text], clientTags: clientTags)
            if target.hasPrefix("#") || target.hasPrefix("@#") {
                let operatorsOnly = target.hasPrefix("@")
                let name = operatorsOnly ? String(target.dropFirst()) : target
                guard let (room, isMember) = c.room(name) else {
                    if !isNotice { c.out.numeric(.noSuchChannel, name, "No such channel") }
                    continue
                }
                if room.modes.noExternal && !isMember {
                    if !isNotice { c.out.numeric(.cannotSendToChan, room.name, "Cannot send to channel: join it first (+n)") }
                    continue
                }
                if !room.maySpeak(c.me) {
                    let why = room.modes.moderated ? "it is moderated (+m), ask an operator for voice (+v)" : "you are banned or muted here (+b)"
                    if !isNotice { c.out.numeric(.cannotSendToChan, room.name, "Cannot send to channel: \(why)") }
                    continue
                }
                if c.core.cluster != nil {
                    // Every node, this one too, delivers it as it comes back from the database.
                    c.out.append(.publish(.room(relay, room: room.folded, operatorsOnly: operatorsOnly, except: echo ? nil : c.me.nick, requiring: requiring),
                                          command: message.command))
                } else {
                    let audience = operatorsOnly ? Audience(room.roster.filter(\.isOperator).map(\.session)) : room.audience
                    c.out.deliver(relay, to: audience, except: echo ? nil : c.me, requiring: requiring)
                    if !operatorsOnly { HistoryCommand.store(relay, key: room.folded, c) }
                }
            } else {
                if c.core.cluster != nil {
                    clusterPrivateMessage(relay, to: target, requiring: requiring, echo: echo, command: message.command, &c)
                    continue
                }
                guard let recipient = c.registry.session(named: target) else {
                    // An account that is offline gets it at its next login, when history is kept.
                    if c.core.history != nil, IRCName.isValidNick(target), c.core.policy.accountExists(target) {
                        HistoryCommand.store(relay, key: HistoryTarget.privateKey(c.me.folded, IRCName.fold(target)), c)
                        if echo { c.out.deliver(relay, to: Audience([c.me]), requiring: requiring) }
                        if !isNotice && !isTagOnly {
                            c.out.numeric(.away, target, "is offline: your message is kept and delivered at their next login")
                        }
                        continue
                    }
                    if !isNotice { c.out.numeric(.noSuchNick, target, "No such nick") }
                    continue
                }
                let audience = echo && recipient !== c.me ? Audience([recipient, c.me]) : Audience([recipient])
                c.out.deliver(relay, to: audience, requiring: requiring)
                HistoryCommand.store(relay, key: HistoryTarget.privateKey(c.me.folded, recipient.folded), c)
                if !isNotice && !isTagOnly, let away = recipient.away {
                    c.out.numeric(.away, recipient.nick, away)
                }
            }
        }
    }

    /// Cluster mode: every private message goes through the database, so that every node keeps
    /// it in its history; the node that has the recipient delivers it (this one at once).
    private static func clusterPrivateMessage(_ relay: Relay, to target: String, requiring: Capabilities, echo: Bool, command: String,
                                              _ c: inout CommandContext) {
        let isNotice = command == "NOTICE"
        let quiet = isNotice || command == "TAGMSG"
        let local = c.registry.session(named: target)
        let remote = local == nil ? c.core.cluster?.presence.user(named: target) : nil
        let offline = local == nil && remote == nil
        if offline && !(c.core.history != nil && IRCName.isValidNick(target) && c.core.policy.accountExists(target)) {
            if !isNotice { c.out.numeric(.noSuchNick, target, "No such nick") }
            return
        }
        let nick = local?.nick ?? remote?.nick ?? target
        c.out.append(.publish(.privateMessage(relay, target: nick, requiring: requiring), command: command))
        if let local {
            c.out.deliver(relay, to: echo && local !== c.me ? Audience([local, c.me]) : Audience([local]), requiring: requiring)
            if !quiet, let away = local.away { c.out.numeric(.away, local.nick, away) }
        } else if echo {
            c.out.deliver(relay, to: Audience([c.me]), requiring: requiring)
        }
        if !quiet, let remote, let away = remote.away { c.out.numeric(.away, remote.nick, away) }
        if offline && !quiet {
            c.out.numeric(.away, target, "is offline: your message is kept and delivered at their next login")
        }
    }
}

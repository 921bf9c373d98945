import IRC

/// MODE for rooms (`+b +i +k +l +m +n +s +t +o +v`, and the list queries clients send on join) and for the
/// user's own modes.
enum ModeCommand {
    static func mode(_ message: IRCMessage, _ c: inout CommandContext) {
        guard c.need(1, message) else { return }
        let p = message.parameters
        guard p[0].hasPrefix("#") else { return userMode(p, &c) }
        guard let (room, isMember) = c.room(p[0]) else {
            c.out.numeric(.noSuchChannel, p[0], "No such channel")
            return
        }
        guard p.count > 1 else {
            c.out.numeric(.channelModeIs, [room.name] + room.modes.string(showKey: isMember))
            c.out.numeric(.creationTime, room.name, String(room.createdAt))
            return
        }
        // `MODE #room b` (irssi sends it on every join), `e`, `I`: list queries, answered to
        // anyone who may see the room. The exception lists are not kept, so they are empty.
        let flags = p[1].filter { $0 != "+" && $0 != "-" }
        if p.count == 2, !flags.isEmpty, flags.allSatisfy({ "beI".contains($0) }) {
            var seen = Set<Character>()
            for flag in flags where seen.insert(flag).inserted {
                switch flag {
                case "b":
                    for ban in room.banList { c.out.numeric(.banList, room.name, ban.mask.text, ban.setBy, String(ban.setAt)) }
                    c.out.numeric(.endOfBanList, room.name, "End of channel ban list")
                case "e": c.out.numeric(.endOfExceptList, room.name, "End of channel exception list")
                default: c.out.numeric(.endOfInviteList, room.name, "End of channel invite list")
                }
            }
            return
        }
        if !isMember || !room.isOperator(c.me) {
            // A server operator acts in any room; the override is logged.
            guard c.me.isOperator else {
                if !isMember { return c.out.numeric(.notOnChannel, room.name, "You're not on that channel") }
                return c.out.numeric(.chanOPrivsNeeded, room.name, "You're not a room operator")
            }
            OperCommands.override("MODE \(([room.name] + p.dropFirst()).joined(separator: " "))", c)
        }
        change(room, flags: p[1], arguments: Array(p.dropFirst(2)), &c)
    }

    private static func userMode(_ p: [String], _ c: inout CommandContext) {
        guard IRCName.fold(p[0]) == c.me.folded else {
            c.out.numeric(c.registry.session(named: p[0]) == nil ? .noSuchNick : .usersDontMatch, p[0], "Can't change or view modes for other users")
            return
        }
        if p.count > 1 {
            // +i is always on; +B (bot) and +w (wallops) are the user's to set; +o comes only from
            // OPER (a +o is ignored, as the specification says), and -o gives it up.
            var adding = true
            var changed = ""
            var sign: Character?
            func note(_ flag: Character) {
                let s: Character = adding ? "+" : "-"
                if sign != s { changed.append(s); sign = s }
                changed.append(flag)
            }
            for flag in p[1] {
                switch flag {
                case "+": adding = true
                case "-": adding = false
                case "i": break
                case "B":
                    if c.me.isBot != adding { c.me.setBot(adding); note("B") }
                case "w":
                    if c.me.receivesWallops != adding { c.me.setWallops(adding); note("w") }
                case "o":
                    if !adding && c.me.isOperator {
                        c.me.setOperator(false)
                        c.core.logOperatorAction(c.me, "MODE -o: no longer a server operator")
                        note("o")
                    }
                default:
                    c.out.numeric(.umodeUnknownFlag, "Unknown MODE flag (user modes are B, i, o and w)")
                }
            }
            if !changed.isEmpty {
                c.out.send(IRCMessage(source: c.me.mask, command: "MODE", parameters: [c.me.nick, changed]))
                return
            }
        }
        c.out.numeric(.umodeIs, c.me.userModes)
    }

    /// Applies up to four changes and tells the room what actually changed, in one MODE line.
    private static func change(_ room: Room, flags: String, arguments: [String], _ c: inout CommandContext) {
        var adding = true
        var arguments = arguments.makeIterator()
        var applied = ""
        var appliedSign: Character?
        var appliedArguments: [String] = []
        func note(_ flag: Character, _ argument: String? = nil) {
            let sign: Character = adding ? "+" : "-"
            if appliedSign != sign { applied.append(sign); appliedSign = sign }
            applied.append(flag)
            if let argument { appliedArguments.append(argument) }
        }
        var changes = 0
        for flag in flags {
            switch flag {
            case "+": adding = true
            case "-": adding = false
            case "i", "t", "n", "s", "m":
                changes += 1
                let value = adding
                room.updateModes { modes in
                    switch flag {
                    case "i": modes.inviteOnly = value
                    case "t": modes.topicLocked = value
                    case "s": modes.secret = value
                    case "m": modes.moderated = value
                    default: modes.noExternal = value
                    }
                }
                note(flag)
            case "k":
                changes += 1
                if adding {
                    guard let key = arguments.next() else {
                        c.out.numeric(.needMoreParams, "MODE", "+k needs a key (no spaces or commas)")
                        continue
                    }
                    guard !key.isEmpty, !key.contains(" "), !key.contains(",") else {
                        c.out.numeric(.invalidModeParam, room.name, "k", key, "Invalid key: use one word without spaces or commas")
                        continue
                    }
                    room.updateModes { $0.key = key }
                    note("k", key)
                } else {
                    _ = arguments.next()
                    room.updateModes { $0.key = nil }
                    note("k", "*")
                }
            case "l":
                changes += 1
                if adding {
                    guard let text = arguments.next() else {
                        c.out.numeric(.needMoreParams, "MODE", "+l needs a number of members")
                        continue
                    }
                    guard let limit = Int(text), (1...100_000).contains(limit) else {
                        c.out.numeric(.invalidModeParam, room.name, "l", text, "Invalid limit: a whole number of members from 1 to 100000")
                        continue
                    }
                    room.updateModes { $0.limit = limit }
                    note("l", String(limit))
                } else {
                    room.updateModes { $0.limit = nil }
                    note("l")
                }
            case "b":
                changes += 1
                guard let text = arguments.next() else { continue }  // "+b" alone was a list query, above
                guard let mask = BanMask(text) else {
                    c.out.numeric(.invalidModeParam, room.name, "b", text, "Invalid ban: a nick!user@host mask, ~a:account or ~m:mask")
                    continue
                }
                switch room.changeBan(mask, adding: adding, by: c.me.nick, at: c.unixTime) {
                case .added, .removed: note("b", mask.text)
                case .unchanged: break
                case .full: c.out.numeric(.banListFull, room.name, "b", "Ban list is full (\(Room.maximumBans) entries)")
                }
            case "o", "v":
                changes += 1
                guard let name = arguments.next() else {
                    c.out.numeric(.needMoreParams, "MODE", "+\(flag) needs a nick")
                    continue
                }
                guard let member = room.member(named: name) else {
                    // A member on another node of a cluster: the MODE line, shared with every
                    // node below, changes their status on theirs.
                    if let remote = c.core.cluster?.presence.members(of: room.folded).first(where: { IRCName.fold($0.nick) == IRCName.fold(name) }) {
                        c.core.cluster?.presence.setStatus(remote.nick, room: room.folded, flag: flag, adding: adding)
                        note(flag, remote.nick)
                        continue
                    }
                    if c.registry.session(named: name) == nil && c.core.cluster?.presence.user(named: name) == nil {
                        c.out.numeric(.noSuchNick, name, "No such nick")
                    } else {
                        c.out.numeric(.userNotInChannel, name, room.name, "They aren't on that channel")
                    }
                    continue
                }
                if flag == "o" { room.setOperator(member, adding) } else { room.setVoice(member, adding) }
                note(flag, member.nick)
            default:
                c.out.numeric(.unknownMode, String(flag), "is an unknown mode char to me (rooms have b, i, k, l, m, n, o, s, t, v)")
            }
            if changes >= 4 { break }
        }
        if !applied.isEmpty {
            let relay = c.relay("MODE", [room.name, applied] + appliedArguments)
            c.out.deliver(relay, to: room.audience)
            RoomCommands.save(room, c)
            RoomCommands.share(room, relay: relay, command: "MODE", &c)
        }
    }
}

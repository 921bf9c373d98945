import IRC

/// JOIN, PART, TOPIC, NAMES, LIST, KICK and INVITE: transitions of a registered `Session`.
enum RoomCommands {
    static func join(_ message: IRCMessage, _ c: inout CommandContext) {
        guard c.need(1, message) else { return }
        let p = message.parameters
        if p[0] == "0" {
            for room in c.me.rooms.values { part(room.name, reason: "Left all rooms", &c) }
            return
        }
        let keys = p.count > 1 ? p[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init) : []
        for (i, name) in p[0].split(separator: ",").map(String.init).enumerated() {
            join(name, key: i < keys.count && !keys[i].isEmpty ? keys[i] : nil, &c)
        }
    }

    /// The rooms the account was in, joined again at login (`rooms.rejoinOnLogin`): past +i, +k
    /// and +l, not past a ban (then the room is forgotten).
    static func rejoin(_ names: [String], _ c: inout CommandContext) {
        for name in names.prefix(c.limits.roomsPerUser) { join(name, key: nil, trusted: true, &c) }
    }

    /// Saves what a restart must not lose of `room` (history on).
    static func save(_ room: Room, _ c: CommandContext) {
        c.core.history?.saveRoom(room.record(now: c.unixTime), folded: room.folded)
    }

    /// Cluster mode: the room's new settings go to every node, with the line its members there
    /// see (`relay`).
    static func share(_ room: Room, relay: Relay?, command: String, _ c: inout CommandContext) {
        guard c.core.cluster != nil else { return }
        c.out.append(.publish(.roomState(room.record(now: c.unixTime), relay: relay), command: command))
    }

    private static func join(_ name: String, key: String?, trusted: Bool = false, _ c: inout CommandContext) {
        guard IRCName.isValidRoom(name) else {
            c.out.numeric(.noSuchChannel, name, "Invalid room name: '#' then up to 49 characters without spaces, commas or colons")
            return
        }
        if c.me.room(folded: IRCName.fold(name)) != nil { return }
        if c.me.roomCount >= c.limits.roomsPerUser {
            c.out.numeric(.tooManyChannels, name, "You have joined too many rooms (limit \(c.limits.roomsPerUser))")
            return
        }
        let saved = c.core.history?.room(IRCName.fold(name))
        var room = c.registry.roomForJoin(name, now: c.unixTime, saved: saved)
        // An operator invited them, on this node or another (a cluster): that lets them in.
        if c.core.cluster?.isInvited(room: room.folded, nick: c.me.folded) == true { room.invite(c.me) }
        var result = room.join(c.me, key: key, trusted: trusted)
        if case .failure(.closed) = result {
            // The room emptied and closed between lookup and join: make it again.
            c.registry.remove(room)
            room = c.registry.roomForJoin(name, now: c.unixTime, saved: c.core.history?.room(IRCName.fold(name)))
            result = room.join(c.me, key: key, trusted: trusted)
        }
        switch result {
        case let .failure(reason):
            switch reason {
            case .inviteOnly: c.out.numeric(.inviteOnlyChan, room.name, "Cannot join channel: it is invite only (+i)")
            case .badKey: c.out.numeric(.badChannelKey, room.name, "Cannot join channel: wrong key (+k)")
            case .full: c.out.numeric(.channelIsFull, room.name, "Cannot join channel: it is full (+l)")
            case .banned: c.out.numeric(.bannedFromChan, room.name, "Cannot join channel: you are banned (+b)")
            case .closed: c.out.numeric(.noSuchChannel, name, "Room is closing, try again")
            }
            if room.memberCount == 0 { c.registry.remove(room) }
            if trusted { c.core.history?.setMembership(account: c.me.folded, room: room.name, member: false) }
        case .success:
            // Kept (history on): the room's state, and that this account is in it.
            save(room, c)
            // A new room: every node learns its owner and modes.
            if saved == nil && room.memberCount == 1 && c.core.cluster != nil {
                c.out.append(.publish(.roomCreated(room.record(now: c.unixTime)), command: "JOIN"))
            }
            c.core.history?.setMembership(account: c.me.folded, room: room.name, member: true)
            // One relay, two variants: extended-join members get account and real name.
            let relay = c.relay("JOIN", [room.name], extendedJoin: [room.name, c.me.nick, c.me.realname])
            c.out.deliver(relay, to: room.audience)
            if c.core.cluster != nil {
                let status = room.isOperator(c.me) ? "o" : ""
                c.out.append(.publish(.join(relay, room: room.folded, status: status), command: "JOIN"))
            }
            if let away = c.me.away {
                // away-notify: members who asked learn at once that the newcomer is away.
                c.out.deliver(c.relay("AWAY", [away]), to: room.audience, except: c.me, requiring: .awayNotify)
            }
            if room.topic != nil { c.topicReply(room) }
            names(room, &c, joining: true)
            // What was said before: replayed to clients that do not fetch history themselves.
            let replay = c.core.configuration.history.replayOnJoin
            if c.core.history != nil && replay > 0 && !c.capabilities.contains(.chathistory) {
                c.out.append(.history(.replay(room: room.name, key: room.folded, limit: replay, before: HistoryCommand.milliseconds(c.now))))
            }
        }
    }

    static func part(_ message: IRCMessage, _ c: inout CommandContext) {
        guard c.need(1, message) else { return }
        let p = message.parameters
        for name in p[0].split(separator: ",").map(String.init) { part(name, reason: p.count > 1 ? p[1] : nil, &c) }
    }

    private static func part(_ name: String, reason: String?, _ c: inout CommandContext) {
        guard let room = c.me.room(folded: IRCName.fold(name)) else { return c.notInRoom(name) }
        let relay = c.relay("PART", reason.map { [room.name, $0] } ?? [room.name])
        c.out.deliver(relay, to: room.audience)
        if c.core.cluster != nil { c.out.append(.publish(.part(relay, room: room.folded, nick: c.me.nick), command: "PART")) }
        if room.leave(c.me) { c.registry.remove(room) }
        c.core.history?.setMembership(account: c.me.folded, room: room.name, member: false)
        save(room, c)
    }

    static func topic(_ message: IRCMessage, _ c: inout CommandContext) {
        guard c.need(1, message) else { return }
        let p = message.parameters
        guard let (room, isMember) = c.room(p[0]) else {
            c.out.numeric(.noSuchChannel, p[0], "No such channel")
            return
        }
        guard p.count > 1 else { return c.topicReply(room) }
        if !isMember || (room.modes.topicLocked && !room.isOperator(c.me)) {
            guard c.me.isOperator else {
                if !isMember { return c.out.numeric(.notOnChannel, room.name, "You're not on that channel") }
                return c.out.numeric(.chanOPrivsNeeded, room.name, "You're not a room operator (+t: only operators set the topic)")
            }
            OperCommands.override("TOPIC \(room.name)", c)
        }
        let text = truncated(p[1], bytes: 390)
        room.setTopic(text.isEmpty ? nil : Room.Topic(text: text, setBy: c.me.mask, setAt: c.unixTime))
        let relay = c.relay("TOPIC", [room.name, text])
        c.out.deliver(relay, to: room.audience)
        save(room, c)
        share(room, relay: relay, command: "TOPIC", &c)
    }

    static func names(_ message: IRCMessage, _ c: inout CommandContext) {
        guard let list = message.parameters.first, !list.isEmpty else {
            c.out.numeric(.endOfNames, "*", "End of /NAMES list")
            return
        }
        for name in list.split(separator: ",").map(String.init) {
            if let (room, _) = c.room(name) {
                names(room, &c)
            } else {
                c.out.numeric(.endOfNames, name, "End of /NAMES list")
            }
        }
    }

    static func names(_ room: Room, _ c: inout CommandContext, joining: Bool = false) {
        let all = c.capabilities.contains(.multiPrefix)
        let masks = c.capabilities.contains(.userhostInNames)
        // Members here, then on the other nodes of a cluster.
        let presence = c.core.cluster?.presence
        let entries = room.roster.map { $0.prefix(all: all) + (masks ? $0.session.mask : $0.session.nick) }
            + (presence?.members(of: room.folded) ?? []).filter { room.member(named: $0.nick) == nil }
            .map { presence!.prefix(of: $0.nick, in: room.folded, all: all) + (masks ? $0.mask : $0.nick) }
        var line: [String] = []
        var length = 0
        for entry in entries {
            if length + entry.utf8.count + 1 > 400 {
                c.out.numeric(.namReply, "=", room.name, line.joined(separator: " "))
                line = []
                length = 0
            }
            line.append(entry)
            length += entry.utf8.count + 1
        }
        if !line.isEmpty { c.out.numeric(.namReply, "=", room.name, line.joined(separator: " ")) }
        if joining, c.capabilities.contains(.readMarker), let history = c.core.history {
            // draft/read-marker: where this account had read up to, before the end of NAMES.
            c.out.reply("MARKREAD", [room.name, HistoryCommand.marker(history.readMarker(account: c.me.folded, target: room.folded))])
        }
        c.out.numeric(.endOfNames, room.name, "End of /NAMES list")
    }

    /// LIST, with ELIST filters (ISUPPORT `ELIST=MNU`): room names or masks (`#dev*`), `!mask`
    /// to leave rooms out, `>n` and `<n` for more or fewer than n members; several, comma-separated,
    /// all apply.
    static func list(_ message: IRCMessage, _ c: inout CommandContext) {
        c.out.numeric(.listStart, "Channel", "Users  Name")
        var masks: [String] = []
        var excluded: [String] = []
        var more: Int?
        var fewer: Int?
        for item in (message.parameters.first ?? "").split(separator: ",").map(String.init) {
            if item.hasPrefix(">"), let n = Int(item.dropFirst()) { more = n }
            else if item.hasPrefix("<"), let n = Int(item.dropFirst()) { fewer = n }
            else if item.hasPrefix("!") { excluded.append(IRCName.fold(String(item.dropFirst()))) }
            else { masks.append(IRCName.fold(item)) }
        }
        // In a cluster, members on the other nodes count, and rooms only they are in are listed
        // from the settings this node keeps.
        let presence = c.core.cluster?.presence
        var entries: [(folded: String, name: String, count: Int, topic: String, hidden: Bool)] = c.registry.allRooms.map { room in
            (room.folded, room.name, room.memberCount + (presence?.members(of: room.folded).filter { room.member(named: $0.nick) == nil }.count ?? 0),
             room.topic?.text ?? "", room.modes.secret && !room.isMember(c.me))
        }
        if let presence {
            let local = Set(entries.map(\.folded))
            for folded in presence.roomNames where !local.contains(folded) {
                let record = c.core.history?.room(folded)
                entries.append((folded, record?.name ?? folded, presence.members(of: folded).count, record?.topic ?? "", record?.flags.contains("s") ?? false))
            }
        }
        for room in entries.sorted(by: { $0.folded < $1.folded }) {
            if !masks.isEmpty && !masks.contains(where: { BanMask.glob($0, room.folded) }) { continue }
            if excluded.contains(where: { BanMask.glob($0, room.folded) }) { continue }
            if room.hidden { continue }
            if let more, room.count <= more { continue }
            if let fewer, room.count >= fewer { continue }
            c.out.numeric(.list, room.name, String(room.count), room.topic)
        }
        c.out.numeric(.listEnd, "End of /LIST")
    }

    static func kick(_ message: IRCMessage, _ c: inout CommandContext) {
        guard c.need(2, message) else { return }
        let p = message.parameters
        let mine = c.me.room(folded: IRCName.fold(p[0]))
        // A server operator kicks in any room, member or not; the override is logged.
        guard let room = mine ?? (c.me.isOperator ? c.registry.room(named: p[0]) : nil) else { return c.notInRoom(p[0]) }
        let overriding = mine == nil || !room.isOperator(c.me)
        if overriding && !c.me.isOperator { return c.out.numeric(.chanOPrivsNeeded, room.name, "You're not a room operator") }
        guard let victim = room.member(named: p[1]) else {
            // On another node of a cluster: that node carries the KICK out.
            if let remote = c.core.cluster?.presence.members(of: room.folded).first(where: { IRCName.fold($0.nick) == IRCName.fold(p[1]) }) {
                if overriding { OperCommands.override("KICK \(room.name) \(remote.nick)", c) }
                let kick = c.relay("KICK", [room.name, remote.nick, truncated(p.count > 2 ? p[2] : c.me.nick, bytes: 390)])
                c.out.deliver(kick, to: room.audience)
                c.out.append(.publish(.part(kick, room: room.folded, nick: remote.nick), command: "KICK"))
                c.core.cluster?.presence.part(remote.nick, room: room.folded, node: remote.node)
                return
            }
            c.out.numeric(.userNotInChannel, p[1], room.name, "They aren't on that channel")
            return
        }
        if overriding { OperCommands.override("KICK \(room.name) \(victim.nick)", c) }
        let reason = p.count > 2 ? p[2] : c.me.nick
        // Everyone, the victim included, sees the KICK; the room and the victim's room list
        // change together under the room's lock.
        let kick = c.relay("KICK", [room.name, victim.nick, truncated(reason, bytes: 390)])
        c.out.deliver(kick, to: room.audience)
        if c.core.cluster != nil { c.out.append(.publish(.part(kick, room: room.folded, nick: victim.nick), command: "KICK")) }
        if room.leave(victim) { c.registry.remove(room) }
        c.core.history?.setMembership(account: victim.folded, room: room.name, member: false)
    }

    /// `OWNER #room [<account>]`: shows the room's owner, or hands ownership to another account
    /// (the owner, or a server operator). The owner is operator whenever it joins.
    static func owner(_ message: IRCMessage, _ c: inout CommandContext) {
        guard c.need(1, message) else { return }
        let p = message.parameters
        guard let (room, _) = c.room(p[0]) else { return c.out.numeric(.noSuchChannel, p[0], "No such channel") }
        func notice(_ text: String) { c.out.reply("NOTICE", [c.me.nick, text]) }
        guard p.count > 1 else {
            return notice("\(room.name) is owned by \(room.owner ?? "nobody")")
        }
        let isOwner = room.owner == c.me.folded
        guard isOwner || c.me.isOperator else {
            return c.out.numeric(.chanOPrivsNeeded, room.name, "Only the room's owner (\(room.owner ?? "nobody")) hands ownership on")
        }
        let account = p[1]
        guard IRCName.isValidNick(account), c.core.policy.accountExists(account) else {
            return c.out.numeric(.noSuchNick, account, "No such account")
        }
        if !isOwner { OperCommands.override("OWNER \(room.name) \(account)", c) }
        room.setOwner(IRCName.fold(account))
        if let member = room.member(named: account) {
            room.setOperator(member, true)
            c.out.deliver(Relay(source: c.core.configuration.serverName, command: "MODE", parameters: [room.name, "+o", member.nick],
                                time: Relay.timestamp(c.now)), to: room.audience)
        }
        save(room, c)
        share(room, relay: nil, command: "OWNER", &c)
        notice("\(room.name) is now owned by \(IRCName.fold(account))")
    }

    static func invite(_ message: IRCMessage, _ c: inout CommandContext) {
        guard c.need(2, message) else { return }
        let p = message.parameters
        let invitee = c.registry.session(named: p[0])
        // In a cluster, someone on another node: that node delivers the invitation.
        let remote = invitee == nil ? c.core.cluster?.presence.user(named: p[0]) : nil
        guard invitee != nil || remote != nil else {
            c.out.numeric(.noSuchNick, p[0], "No such nick")
            return
        }
        guard let room = c.me.room(folded: IRCName.fold(p[1])) else { return c.notInRoom(p[1]) }
        let modes = room.modes
        let isOperator = room.isOperator(c.me)
        if (modes.inviteOnly || modes.key != nil) && !isOperator {
            c.out.numeric(.chanOPrivsNeeded, room.name, "You're not a room operator (+\(modes.inviteOnly ? "i" : "k"): only operators invite)")
            return
        }
        let nick = invitee?.nick ?? remote!.nick
        if invitee.map({ room.isMember($0) }) ?? c.core.cluster!.presence.rooms(of: nick).contains(room.folded) {
            c.out.numeric(.userOnChannel, nick, room.name, "is already on channel")
            return
        }
        c.out.numeric(.inviting, nick, room.name)
        let relay = c.relay("INVITE", [nick, room.name])
        if let invitee {
            // Only an operator's invitation lets someone past +i or +k (a room that gets them later).
            if isOperator { room.invite(invitee) }
            c.out.deliver(relay, to: Audience([invitee]))
        }
        // In a cluster every node hears it (a remote invitee's node delivers it): an operator's
        // invitation is stored with it and lets the invitee in on any node.
        if c.core.cluster != nil {
            c.out.append(.publish(.invite(relay, room: room.folded, target: nick, admit: isOperator), command: "INVITE"))
        }
        // invite-notify: the room's members who asked see it too.
        c.out.deliver(relay, to: room.audience, except: c.me, requiring: .inviteNotify)
    }
}

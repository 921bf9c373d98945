import Foundation
import IRC
import NIOCore

/// The commands of a registered client: rooms, messages, information.
extension ClientSession {
    func handleCommand(_ message: IRCMessage) {
        let p = message.parameters
        func need(_ count: Int) -> Bool {
            if p.count < count || (count > 0 && p[0].isEmpty) {
                sendNumeric(.needMoreParams, message.command, "Not enough parameters")
                return false
            }
            return true
        }
        switch message.command {
        case "PRIVMSG", "NOTICE":
            privmsg(message)
        case "TAGMSG":
            guard need(1) else { return }
            privmsg(message)
        case "JOIN":
            guard need(1) else { return }
            if p[0] == "0" { partAll(); return }
            let keys = p.count > 1 ? p[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init) : []
            for (i, name) in p[0].split(separator: ",").map(String.init).enumerated() {
                join(name, key: i < keys.count && !keys[i].isEmpty ? keys[i] : nil)
            }
        case "PART":
            guard need(1) else { return }
            for name in p[0].split(separator: ",").map(String.init) { part(name, reason: p.count > 1 ? p[1] : nil) }
        case "TOPIC":
            guard need(1) else { return }
            topic(p[0], newTopic: p.count > 1 ? p[1] : nil)
        case "NAMES":
            if let name = p.first, !name.isEmpty {
                for room in name.split(separator: ",").map(String.init) { names(room) }
            } else {
                sendNumeric(.endOfNames, "*", "End of /NAMES list")
            }
        case "LIST":
            list(p.first)
        case "KICK":
            guard need(2) else { return }
            kick(p[0], target: p[1], reason: p.count > 2 ? p[2] : nick)
        case "INVITE":
            guard need(2) else { return }
            invite(p[0], to: p[1])
        case "MODE":
            guard need(1) else { return }
            mode(p)
        case "WHO":
            who(p.first ?? "*")
        case "WHOIS":
            guard need(1) else { return }
            whois(p.count > 1 ? p[1] : p[0])
        case "AWAY":
            away(p.first)
        case "MOTD":
            sendMOTD()
        case "PING":
            guard let token = p.first else { sendNumeric(.noOrigin, "No origin specified"); return }
            send(IRCMessage(source: core.serverName, command: "PONG", parameters: [core.serverName, token]))
        case "PONG":
            break
        case "QUIT":
            close(reason: p.first.map { "Quit: \($0)" } ?? "Quit")
        case "CAP":
            capAfterRegistration(p)
        case "NICK":
            guard need(1) else { return }
            if IRCName.fold(p[0]) != IRCName.fold(nick) {
                sendNumeric(.erroneousNickname, p[0], "Your nick is your account name (\(nick)) and cannot be changed")
            }
        case "USER", "PASS":
            sendNumeric(.alreadyRegistered, "You may not reregister")
        case "AUTHENTICATE":
            sendNumeric(.saslAlready, "You have already authenticated using SASL")
        case "USERHOST":
            guard need(1) else { return }
            let replies = p.prefix(5).compactMap { core.registry.session(named: $0) }.map { "\($0.nick)=\($0.awayMessage == nil ? "+" : "-")\($0.username)@\($0.host)" }
            send(IRCMessage(source: core.serverName, command: "302", parameters: [nick, replies.joined(separator: " ")]))
        case "ISON":
            let online = p.flatMap { $0.split(separator: " ").map(String.init) }.compactMap { core.registry.session(named: $0)?.nick }
            send(IRCMessage(source: core.serverName, command: "303", parameters: [nick, online.joined(separator: " ")]))
        default:
            sendNumeric(.unknownCommand, message.command, "Unknown command")
        }
    }

    // MARK: Messages

    private func privmsg(_ message: IRCMessage) {
        let isNotice = message.command == "NOTICE"
        let isTagOnly = message.command == "TAGMSG"
        let p = message.parameters
        guard let targets = p.first, !targets.isEmpty else {
            if !isNotice { sendNumeric(.noRecipient, "No recipient given (\(message.command))") }
            return
        }
        let clientTags = message.tags.filter(\.isClientOnly)
        if isTagOnly && clientTags.isEmpty { return }
        let text = p.count > 1 ? p[1] : ""
        if !isTagOnly && text.isEmpty {
            if !isNotice { sendNumeric(.noTextToSend, "No text to send") }
            return
        }
        lastMessageTime = Int(Date().timeIntervalSince1970)
        let requiring: Capabilities = isTagOnly ? .messageTags : []
        for target in targets.split(separator: ",").prefix(4).map(String.init) {
            let parameters = isTagOnly ? [target] : [target, text]
            let echo = capabilities.contains(.echoMessage)
            if target.hasPrefix("#") || target.hasPrefix("@#") {
                let roomName = target.hasPrefix("@") ? String(target.dropFirst()) : target
                let room = joined[IRCName.fold(roomName)] ?? core.registry.room(named: roomName)
                guard let room else {
                    if !isNotice { sendNumeric(.noSuchChannel, roomName, "No such channel") }
                    continue
                }
                if room.modes.noExternal && joined[room.folded] == nil {
                    if !isNotice { sendNumeric(.cannotSendToChan, room.name, "Cannot send to channel: join it first (+n)") }
                    continue
                }
                let relay = self.relay(message.command, isTagOnly ? [target] : [target, text], clientTags: clientTags)
                if target.hasPrefix("@") {
                    let ops = room.roster.filter(\.isOperator).map(\.session)
                    ClientSession.broadcast(relay, to: ClientSession.group(ops), except: echo ? nil : self, requiring: requiring)
                } else {
                    ClientSession.broadcast(relay, to: room.deliveryGroups, except: echo ? nil : self, requiring: requiring)
                }
            } else {
                guard let recipient = core.registry.session(named: target) else {
                    if !isNotice { sendNumeric(.noSuchNick, target, "No such nick") }
                    continue
                }
                let relay = self.relay(message.command, parameters, clientTags: clientTags)
                ClientSession.broadcast(relay, to: [[recipient]], requiring: requiring)
                if echo && recipient !== self && capabilities.isSuperset(of: requiring) {
                    var cache = Relay.Cache()
                    deliver(relay, cache: &cache)
                }
                if !isNotice && !isTagOnly, let away = recipient.awayMessage {
                    sendNumeric(.away, recipient.nick, away)
                }
            }
        }
    }

    // MARK: Rooms

    private func join(_ name: String, key: String?) {
        guard IRCName.isValidRoom(name) else {
            sendNumeric(.noSuchChannel, name, "Invalid room name: '#' then up to 49 characters without spaces, commas or colons")
            return
        }
        if joined[IRCName.fold(name)] != nil { return }
        if joined.count >= limits.roomsPerUser {
            sendNumeric(.tooManyChannels, name, "You have joined too many rooms (limit \(limits.roomsPerUser))")
            return
        }
        let now = Int(Date().timeIntervalSince1970)
        var room = core.registry.roomForJoin(name, now: now)
        var result = room.join(self, key: key)
        if case let .failure(error) = result, error.reason == .closed {
            // The room emptied and closed between lookup and join: make it again.
            core.registry.remove(room)
            room = core.registry.roomForJoin(name, now: now)
            result = room.join(self, key: key)
        }
        switch result {
        case let .failure(error):
            switch error.reason {
            case .inviteOnly: sendNumeric(.inviteOnlyChan, room.name, "Cannot join channel: it is invite only (+i)")
            case .badKey: sendNumeric(.badChannelKey, room.name, "Cannot join channel: wrong key (+k)")
            case .closed: sendNumeric(.noSuchChannel, name, "Room is closing, try again")
            }
            if room.memberCount == 0 { core.registry.remove(room) }
        case .success:
            joined[room.folded] = room
            let plain = relay("JOIN", [room.name])
            let extended = relay("JOIN", [room.name, nick, realname])
            for group in room.deliveryGroups {
                let withCap = group.filter { $0.capabilities.contains(.extendedJoin) }
                let without = group.filter { !$0.capabilities.contains(.extendedJoin) }
                ClientSession.broadcast(extended, to: [withCap])
                ClientSession.broadcast(plain, to: [without])
            }
            if let topic = room.topic {
                sendNumeric(.topic, room.name, topic.text)
                sendNumeric(.topicWhoTime, room.name, topic.setBy, String(topic.setAt))
            }
            names(room.name)
        }
    }

    private func part(_ name: String, reason: String?) {
        guard let room = joined[IRCName.fold(name)] else {
            if core.registry.room(named: name) == nil {
                sendNumeric(.noSuchChannel, name, "No such channel")
            } else {
                sendNumeric(.notOnChannel, name, "You're not on that channel")
            }
            return
        }
        ClientSession.broadcast(relay("PART", reason.map { [room.name, $0] } ?? [room.name]), to: room.deliveryGroups)
        joined[room.folded] = nil
        if room.leave(self) { core.registry.remove(room) }
    }

    private func partAll() {
        for room in Array(joined.values) { part(room.name, reason: "Left all rooms") }
    }

    /// Removes `session` from `room` by KICK, on the kicked session's own loop.
    func kicked(from room: Room) {
        joined[room.folded] = nil
        if room.leave(self) { core.registry.remove(room) }
    }

    private func topic(_ name: String, newTopic: String?) {
        guard let room = joined[IRCName.fold(name)] ?? core.registry.room(named: name) else {
            sendNumeric(.noSuchChannel, name, "No such channel")
            return
        }
        guard let newTopic else {
            if let topic = room.topic {
                sendNumeric(.topic, room.name, topic.text)
                sendNumeric(.topicWhoTime, room.name, topic.setBy, String(topic.setAt))
            } else {
                sendNumeric(.noTopic, room.name, "No topic is set")
            }
            return
        }
        guard joined[room.folded] != nil else {
            sendNumeric(.notOnChannel, room.name, "You're not on that channel")
            return
        }
        if room.modes.topicLocked && !room.isOperator(self) {
            sendNumeric(.chanOPrivsNeeded, room.name, "You're not a room operator (+t: only operators set the topic)")
            return
        }
        let text = truncated(newTopic, bytes: 390)
        room.setTopic(text.isEmpty ? nil : Room.Topic(text: text, setBy: mask, setAt: Int(Date().timeIntervalSince1970)))
        ClientSession.broadcast(relay("TOPIC", [room.name, text]), to: room.deliveryGroups)
    }

    func names(_ name: String) {
        guard let room = joined[IRCName.fold(name)] ?? core.registry.room(named: name) else {
            sendNumeric(.endOfNames, name, "End of /NAMES list")
            return
        }
        var line: [String] = []
        var length = 0
        for (member, isOperator) in room.roster {
            let entry = (isOperator ? "@" : "") + member.nick
            if length + entry.utf8.count + 1 > 400 {
                sendNumeric(.namReply, "=", room.name, line.joined(separator: " "))
                line = []
                length = 0
            }
            line.append(entry)
            length += entry.utf8.count + 1
        }
        if !line.isEmpty { sendNumeric(.namReply, "=", room.name, line.joined(separator: " ")) }
        sendNumeric(.endOfNames, room.name, "End of /NAMES list")
    }

    private func list(_ filter: String?) {
        sendNumeric(.listStart, "Channel", "Users  Name")
        let wanted = filter.map { Set($0.split(separator: ",").map { IRCName.fold(String($0)) }) }
        for room in core.registry.allRooms.sorted(by: { $0.folded < $1.folded }) {
            if let wanted, !wanted.contains(room.folded) { continue }
            sendNumeric(.list, room.name, String(room.memberCount), room.topic?.text ?? "")
        }
        sendNumeric(.listEnd, "End of /LIST")
    }

    private func kick(_ name: String, target: String, reason: String) {
        guard let room = joined[IRCName.fold(name)] else {
            sendNumeric(core.registry.room(named: name) == nil ? .noSuchChannel : .notOnChannel, name,
                        core.registry.room(named: name) == nil ? "No such channel" : "You're not on that channel")
            return
        }
        guard room.isOperator(self) else {
            sendNumeric(.chanOPrivsNeeded, room.name, "You're not a room operator")
            return
        }
        guard let victim = room.member(named: target) else {
            sendNumeric(.userNotInChannel, target, room.name, "They aren't on that channel")
            return
        }
        ClientSession.broadcast(relay("KICK", [room.name, victim.nick, String(reason.prefix(390))]), to: room.deliveryGroups)
        if victim.eventLoop.inEventLoop { victim.kicked(from: room) } else { victim.eventLoop.execute { victim.kicked(from: room) } }
    }

    private func invite(_ target: String, to name: String) {
        guard let invitee = core.registry.session(named: target) else {
            sendNumeric(.noSuchNick, target, "No such nick")
            return
        }
        guard let room = joined[IRCName.fold(name)] else {
            sendNumeric(core.registry.room(named: name) == nil ? .noSuchChannel : .notOnChannel, name,
                        core.registry.room(named: name) == nil ? "No such channel" : "You're not on that channel")
            return
        }
        if room.modes.inviteOnly && !room.isOperator(self) {
            sendNumeric(.chanOPrivsNeeded, room.name, "You're not a room operator (+i: only operators invite)")
            return
        }
        if room.isMember(invitee) {
            sendNumeric(.userOnChannel, invitee.nick, room.name, "is already on channel")
            return
        }
        room.invite(invitee.nick)
        sendNumeric(.inviting, invitee.nick, room.name)
        ClientSession.broadcast(relay("INVITE", [invitee.nick, room.name]), to: [[invitee]])
    }

    private func mode(_ p: [String]) {
        let target = p[0]
        if !target.hasPrefix("#") {
            guard IRCName.fold(target) == IRCName.fold(nick) else {
                sendNumeric(core.registry.session(named: target) == nil ? .noSuchNick : .usersDontMatch, target,
                            "Can't change or view modes for other users")
                return
            }
            if p.count > 1 {
                let flags = p[1].filter { $0 != "+" && $0 != "-" }
                if flags.contains(where: { $0 != "i" }) { sendNumeric(.umodeUnknownFlag, "Unknown MODE flag (only +i exists)") }
            }
            sendNumeric(.umodeIs, "+i")
            return
        }
        guard let room = joined[IRCName.fold(target)] ?? core.registry.room(named: target) else {
            sendNumeric(.noSuchChannel, target, "No such channel")
            return
        }
        guard p.count > 1 else {
            sendNumeric(.channelModeIs, [room.name] + room.modes.string(showKey: joined[room.folded] != nil))
            sendNumeric(.creationTime, room.name, String(room.createdAt))
            return
        }
        guard joined[room.folded] != nil else {
            sendNumeric(.notOnChannel, room.name, "You're not on that channel")
            return
        }
        guard room.isOperator(self) else {
            sendNumeric(.chanOPrivsNeeded, room.name, "You're not a room operator")
            return
        }
        var adding = true
        var arguments = p.dropFirst(2).makeIterator()
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
        for flag in p[1] {
            switch flag {
            case "+": adding = true
            case "-": adding = false
            case "i", "t", "n":
                changes += 1
                room.updateModes { modes in
                    switch flag {
                    case "i": modes.inviteOnly = adding
                    case "t": modes.topicLocked = adding
                    default: modes.noExternal = adding
                    }
                }
                note(flag)
            case "k":
                changes += 1
                if adding {
                    guard let key = arguments.next(), !key.isEmpty, !key.contains(" "), !key.contains(",") else {
                        sendNumeric(.needMoreParams, "MODE", "+k needs a key (no spaces or commas)")
                        continue
                    }
                    room.updateModes { $0.key = key }
                    note("k", key)
                } else {
                    _ = arguments.next()
                    room.updateModes { $0.key = nil }
                    note("k", "*")
                }
            case "o":
                changes += 1
                guard let name = arguments.next() else {
                    sendNumeric(.needMoreParams, "MODE", "+o needs a nick")
                    continue
                }
                guard let member = room.member(named: name) else {
                    sendNumeric(.userNotInChannel, name, room.name, "They aren't on that channel")
                    continue
                }
                room.setOperator(member, adding)
                note("o", member.nick)
            default:
                sendNumeric(.unknownMode, String(flag), "is an unknown mode char to me (rooms have i, k, n, o, t)")
            }
            if changes >= 4 { break }
        }
        if !applied.isEmpty {
            ClientSession.broadcast(relay("MODE", [room.name, applied] + appliedArguments), to: room.deliveryGroups)
        }
    }

    // MARK: Information

    private func who(_ mask: String) {
        if mask.hasPrefix("#") {
            if let room = joined[IRCName.fold(mask)] ?? core.registry.room(named: mask) {
                for (member, isOperator) in room.roster {
                    whoReply(member, room: room.name, isOperator: isOperator)
                }
            }
        } else if let session = core.registry.session(named: mask) {
            whoReply(session, room: "*", isOperator: false)
        }
        sendNumeric(.endOfWho, mask, "End of /WHO list")
    }

    private func whoReply(_ member: ClientSession, room: String, isOperator: Bool) {
        let flags = (member.awayMessage == nil ? "H" : "G") + (isOperator ? "@" : "")
        sendNumeric(.whoReply, room, member.username, member.host, core.serverName, member.nick, flags, "0 \(member.realname)")
    }

    private func whois(_ target: String) {
        guard let session = core.registry.session(named: target) else {
            sendNumeric(.noSuchNick, target, "No such nick")
            sendNumeric(.endOfWhois, target, "End of /WHOIS list")
            return
        }
        sendNumeric(.whoisUser, session.nick, session.username, session.host, "*", session.realname)
        let rooms = core.registry.allRooms.filter { $0.isMember(session) }
        if !rooms.isEmpty {
            sendNumeric(.whoisChannels, session.nick, rooms.map { ($0.isOperator(session) ? "@" : "") + $0.name }.joined(separator: " "))
        }
        sendNumeric(.whoisServer, session.nick, core.serverName, core.configuration.networkName)
        if let away = session.awayMessage { sendNumeric(.away, session.nick, away) }
        sendNumeric(.whoisSecure, session.nick, "is using a secure connection")
        sendNumeric(.whoisAccount, session.nick, session.nick, "is logged in as")
        let idle = max(0, Int(Date().timeIntervalSince1970) - session.lastMessageTime)
        sendNumeric(.whoisIdle, session.nick, String(idle), String(session.signonTime), "seconds idle, signon time")
        sendNumeric(.endOfWhois, session.nick, "End of /WHOIS list")
    }

    private func away(_ message: String?) {
        let text = message.flatMap { $0.isEmpty ? nil : String($0.prefix(390)) }
        setAway(text)
        if text == nil {
            sendNumeric(.unaway, "You are no longer marked as being away")
        } else {
            sendNumeric(.nowAway, "You have been marked as being away")
        }
        var seen = Set<ObjectIdentifier>()
        var audience: [ClientSession] = []
        for room in joined.values {
            for (member, _) in room.roster where member !== self && seen.insert(ObjectIdentifier(member)).inserted {
                audience.append(member)
            }
        }
        let relay = self.relay("AWAY", text.map { [$0] } ?? [])
        let groups = ClientSession.group(audience)
        for group in groups {
            guard let first = group.first else { continue }
            let work = {
                var cache = Relay.Cache()
                for member in group where member.capabilities.contains(.awayNotify) { member.deliver(relay, cache: &cache) }
            }
            if first.eventLoop.inEventLoop { work() } else { first.eventLoop.execute(work) }
        }
    }

    func sendMOTD() {
        guard let lines = core.motdLines else {
            sendNumeric(.noMotd, "MOTD File is missing")
            return
        }
        sendNumeric(.motdStart, "- \(core.serverName) Message of the day - ")
        for line in lines { sendNumeric(.motd, "- \(line)") }
        sendNumeric(.endOfMotd, "End of /MOTD command.")
    }

    private func capAfterRegistration(_ p: [String]) {
        let sub = p.first?.uppercased() ?? ""
        switch sub {
        case "LS":
            send(IRCMessage(source: core.serverName, command: "CAP", parameters: [nick, "LS", Capabilities.listing(version: Int(p.count > 1 ? p[1] : "") ?? 0)]))
        case "LIST":
            send(IRCMessage(source: core.serverName, command: "CAP", parameters: [nick, "LIST", capabilities.names.joined(separator: " ")]))
        case "REQ":
            let requested = p.count > 1 ? p[1] : ""
            var add: Capabilities = []
            var remove: Capabilities = []
            for word in requested.split(separator: " ") {
                let removing = word.hasPrefix("-")
                guard let cap = Capabilities.named(String(removing ? word.dropFirst() : word[...])), cap != .sasl || !removing else {
                    send(IRCMessage(source: core.serverName, command: "CAP", parameters: [nick, "NAK", requested]))
                    return
                }
                if removing { remove.insert(cap) } else { add.insert(cap) }
            }
            capabilities.formUnion(add)
            capabilities.subtract(remove)
            send(IRCMessage(source: core.serverName, command: "CAP", parameters: [nick, "ACK", requested]))
        case "END":
            break
        default:
            sendNumeric(.invalidCapCommand, sub, "Invalid CAP command")
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

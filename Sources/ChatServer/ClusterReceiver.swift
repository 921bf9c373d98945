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
import Dispatch
import IRC
import NIOConcurrencyHelpers

/// What a node does with each event from the cluster's bus, its own included, on the bus's
/// event loop: delivers it to its own sessions and keeps its mirror of the other nodes
/// (`RemotePresence`) up to date.
struct ClusterReceiver: Sendable {
    let node: String
    let serverName: String
    let registry: Registry
    let presence: RemotePresence
    let history: (any HistoryStore)?
    /// Operators' invitations not used yet, on any node ("room nick", folded; `ClusterLink`).
    let invitations: NIOLockedValueBox<Set<String>>
    /// New rooms claimed lately (folded name → when, in seconds of uptime): a later claim of the
    /// same room, made at the same time on another node, gives way.
    let claims = NIOLockedValueBox<[String: Double]>([:])
    /// How long a claim holds against another.
    static let claimSeconds = 60.0

    func receive(_ event: ClusterEvent, from origin: String, answer: ClusterBus?) {
        let own = origin == node
        switch event {
        case let .room(relay, room, operatorsOnly, except, requiring):
            guard let local = registry.room(named: room) else { return }
            let audience = operatorsOnly ? Audience(local.roster.filter(\.isOperator).map(\.session)) : local.audience
            audience.deliver(relay, except: except.flatMap { registry.session(named: $0) }, requiring: requiring)
        case let .login(user, snapshot):
            login(user, snapshot: snapshot, own: own)
        case let .quit(relay, nick, token):
            guard !own, let (user, rooms) = presence.remove(nick, token: token) else { return }
            deliver(relay, toRooms: rooms)
            MonitorCommand.announceRemote(nick: user.nick, mask: user.mask, online: false, registry: registry, serverName: serverName)
        case let .join(relay, room, status):
            guard let nick = ClusterLink.senderNick(relay) else { return }
            // A join uses up an invitation, wherever it was given and wherever it is used.
            let folded = IRCName.fold(nick)
            invitations.withLockedValue { _ = $0.remove("\(room) \(folded)") }
            guard !own else { return }
            registry.room(named: room)?.uninvite(folded)
            guard presence.join(nick, room: room, node: origin, status: status) else { return }
            registry.room(named: room)?.audience.deliver(relay)
        case let .part(relay, room, nick):
            guard !own else { return }
            part(relay, room: room, nick: nick, origin: origin)
        case let .privateMessage(relay, target, requiring):
            guard !own, let session = registry.session(named: target) else { return }
            Audience([session]).deliver(relay, requiring: requiring)
        case .hello:
            guard !own, let bus = answer else { return }
            // A node that says hello has just started: users it had before (it was killed and
            // restarted faster than the heartbeat timeout) are gone.
            gone(presence.removeNode(origin), reason: "Node \(origin) restarted", time: Relay.timestamp())
            // Tell the new node who is here, and in which rooms.
            for session in registry.allSessions {
                _ = bus.publish(ClusterLink.encode(.login(ClusterLink.remoteUser(session, node: node), snapshot: true), origin: node))
                for room in session.rooms.values {
                    let entry = room.roster.first { $0.session === session }
                    let status = (entry?.isOperator == true ? "o" : "") + (entry?.isVoiced == true ? "v" : "")
                    _ = bus.publish(ClusterLink.encode(.member(room: room.folded, nick: session.nick, status: status), origin: node))
                }
            }
        case let .member(room, nick, status):
            guard !own else { return }
            presence.join(nick, room: room, node: origin, status: status)
        case let .away(relay, nick):
            guard !own else { return }
            let rooms = presence.setAway(nick, relay.parameters.first, node: origin)
            let members = rooms.compactMap { registry.room(named: $0) }.flatMap { $0.roster.map(\.session) }
            if !members.isEmpty { Audience(members).deliver(relay, requiring: .awayNotify) }
        case let .roomState(record, relay):
            guard !own else { return }
            roomState(record, relay: relay)
        case let .roomCreated(record):
            roomCreated(record, own: own, bus: answer)
        case let .invite(relay, room, target, admit):
            // Every node keeps an operator's invitation: it lets the invitee in on any node.
            if admit { invitations.withLockedValue { _ = $0.insert("\(room) \(IRCName.fold(target))") } }
            guard !own else { return }
            let invitee = registry.session(named: target)
            if let invitee {
                if admit { registry.room(named: room)?.invite(invitee) }
                Audience([invitee]).deliver(relay)
            }
            // invite-notify: the room's members here who asked see it too.
            if let local = registry.room(named: room) { local.audience.deliver(relay, except: invitee, requiring: .inviteNotify) }
        }
    }

    private func login(_ user: RemoteUser, snapshot: Bool, own: Bool) {
        let folded = IRCName.fold(user.nick)
        if own {
            if let (old, rooms) = presence.ownLoginConfirmed(folded) {
                deliver(Relay(source: old.mask, command: "QUIT", parameters: [Session.replacedReason], time: Relay.timestamp(), account: old.nick), toRooms: rooms)
            }
            return
        }
        if snapshot {
            if registry.session(named: user.nick) == nil, presence.user(named: user.nick) == nil {
                presence.add(user)
                MonitorCommand.announceRemote(nick: user.nick, mask: user.mask, online: true, registry: registry, serverName: serverName)
            }
            return
        }
        // Ours is newer if its own login event has not come back yet: the other node ends
        // its session when it sees ours.
        guard !presence.hasPendingLogin(folded) else { return }
        registry.session(named: user.nick)?.end(reason: Session.replacedReason)
        if let (old, rooms) = presence.add(user) {
            deliver(Relay(source: old.mask, command: "QUIT", parameters: [Session.replacedReason], time: Relay.timestamp(), account: old.nick), toRooms: rooms)
        } else {
            // MONITOR: a login from another node is a login here too (a replaced session here
            // has said "offline" as it ended).
            MonitorCommand.announceRemote(nick: user.nick, mask: user.mask, online: true, registry: registry, serverName: serverName)
        }
    }

    /// A PART, or a KICK: a KICK of one of this node's members is carried out here.
    private func part(_ relay: Relay, room: String, nick: String, origin: String) {
        if relay.command == "KICK", let local = registry.room(named: room), let victim = local.member(named: nick) {
            // Everyone here, the victim included, sees the KICK; then the victim leaves.
            local.audience.deliver(relay)
            if local.leave(victim) { registry.remove(local) }
            history?.setMembership(account: victim.folded, room: local.name, member: false)
            return
        }
        // A KICK from another node than the victim's: the victim's own node is the one to
        // match in the mirror.
        presence.part(nick, room: room, node: relay.command == "KICK" ? presence.user(named: nick)?.node ?? origin : origin)
        registry.room(named: room)?.audience.deliver(relay)
    }

    private func roomState(_ record: RoomRecord, relay: Relay?) {
        let folded = IRCName.fold(record.name)
        // Kept, so that the room has these settings when someone here joins it later. The
        // shared history has them from the node that made the change: only remembered.
        if let shared = history as? PostgresHistory {
            shared.remember(record, folded: folded)
        } else {
            history?.saveRoom(record, folded: folded)
        }
        let local = registry.room(named: folded)
        local?.apply(record)
        if let relay, relay.command == "MODE" {
            // +o, -o, +v and -v: of a member here, their status changes here; of a member on
            // another node, the mirror notes it for NAMES and WHO.
            for (flag, adding, nick) in Self.statusChanges(relay.parameters.dropFirst()) {
                if let local, let member = local.member(named: nick) {
                    if flag == "o" { local.setOperator(member, adding) } else { local.setVoice(member, adding) }
                } else {
                    presence.setStatus(nick, room: folded, flag: flag, adding: adding)
                }
            }
        }
        if let relay { local?.audience.deliver(relay) }
    }

    /// A new room: the first claim in the database's order stands. A node whose own claim came
    /// second takes the first one's owner and settings (and stores them: it had stored its own),
    /// and its members lose the operator status its claim gave them, as on a netsplit: the MODE
    /// -o goes to every node.
    private func roomCreated(_ record: RoomRecord, own: Bool, bus: ClusterBus?) {
        let folded = IRCName.fold(record.name)
        let now = Double(DispatchTime.now().uptimeNanoseconds) / 1e9
        let first = claims.withLockedValue { claims -> Bool in
            if let earlier = claims[folded], now - earlier < Self.claimSeconds { return false }
            if claims.count > 10_000 { claims = claims.filter { now - $0.value < Self.claimSeconds } }
            claims[folded] = now
            return true
        }
        guard first, !own else { return }
        let local = registry.room(named: folded)
        if let shared = history as? PostgresHistory, local == nil || local?.owner == record.owner {
            // The shared history has the room from the node that made it. Storing this first
            // record again could land after that node's next change (a +i) and undo it.
            shared.remember(record, folded: folded)
        } else {
            history?.saveRoom(record, folded: folded)
        }
        guard let local else { return }
        let claimed = local.owner
        local.apply(record)
        guard claimed != record.owner else { return }
        let riders = local.roster.filter { $0.isOperator && $0.session.folded != record.owner }.map(\.session)
        guard !riders.isEmpty else { return }
        for session in riders { local.setOperator(session, false) }
        let mode = Relay(source: serverName, command: "MODE", parameters: [local.name, "-" + String(repeating: "o", count: riders.count)] + riders.map(\.nick),
                         time: Relay.timestamp())
        local.audience.deliver(mode)
        _ = bus?.publish(ClusterLink.encode(.roomState(local.record(now: Int(Date().timeIntervalSince1970)), relay: mode), origin: node))
    }

    /// The o and v changes in a MODE line's flags and arguments, as the server writes them
    /// (k takes an argument either way, l only when set, b, o and v always).
    static func statusChanges(_ parameters: ArraySlice<String>) -> [(Character, Bool, String)] {
        guard let flags = parameters.first else { return [] }
        var arguments = parameters.dropFirst().makeIterator()
        var adding = true
        var changes: [(Character, Bool, String)] = []
        for flag in flags {
            switch flag {
            case "+": adding = true
            case "-": adding = false
            case "k", "b": _ = arguments.next()
            case "l": if adding { _ = arguments.next() }
            case "o", "v": if let nick = arguments.next() { changes.append((flag, adding, nick)) }
            default: break
            }
        }
        return changes
    }

    /// Users of another node that are gone: their rooms here see them quit, and whoever
    /// monitors them hears they are offline.
    func gone(_ users: [(RemoteUser, Set<String>)], reason: String, time: String) {
        for (user, rooms) in users {
            deliver(Relay(source: user.mask, command: "QUIT", parameters: [reason], time: time, account: user.nick), toRooms: rooms)
            MonitorCommand.announceRemote(nick: user.nick, mask: user.mask, online: false, registry: registry, serverName: serverName)
        }
    }

    /// Delivers `relay` to this node's members of `rooms` (folded), each once.
    func deliver(_ relay: Relay, toRooms rooms: Set<String>) {
        let members = rooms.compactMap { registry.room(named: $0) }.flatMap { $0.roster.map(\.session) }
        if !members.isEmpty { Audience(members).deliver(relay) }
    }
}

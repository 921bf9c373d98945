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
import IRC

extension ServerCore {
    /// Applies what `chat-admin room delete|set-owner` asked since the last call to the live
    /// rooms (the server checks every two seconds). Blocking (reads the store): off the loops.
    public func applyRoomRequests(now: Date = Date()) {
        guard let history else { return }
        let requests: [RoomRequest]
        do {
            requests = try history.takeRoomRequests()
        } catch {
            logger.error("history: could not read chat-admin's room requests: \(error)")
            return
        }
        for request in requests { apply(request, now: now) }
    }

    private func apply(_ request: RoomRequest, now: Date) {
        guard let history else { return }
        let server = configuration.serverName
        let time = Relay.timestamp(now)
        switch request {
        case let .delete(folded):
            var removed = 0
            if let room = registry.room(named: folded) {
                let everyone = room.audience  // each member sees every KICK
                for entry in room.roster {
                    everyone.deliver(Relay(source: server, command: "KICK", parameters: [room.name, entry.session.nick, "Room deleted by the server's administrator"], time: time))
                    if room.leave(entry.session) { registry.remove(room) }
                    removed += 1
                }
            }
            history.deleteRoom(folded)
            // The other nodes of a cluster take the same request and remove their own members.
            cluster?.presence.removeRoom(folded)
            cluster?.forgetInvitations(room: folded)
            logger.notice("room deleted with chat-admin: \(removed) members removed", metadata: ["room": "\(folded)"])
        case let .setOwner(folded, account):
            if let room = registry.room(named: folded) {
                room.setOwner(account)
                if let member = room.member(named: account), room.setOperator(member, true) {
                    room.audience.deliver(Relay(source: server, command: "MODE", parameters: [room.name, "+o", member.nick], time: time))
                }
                history.saveRoom(room.record(now: Int(now.timeIntervalSince1970)), folded: room.folded)
            } else if var record = history.room(folded), record.owner != account {
                record.owner = account
                history.saveRoom(record, folded: folded)
            }
            logger.notice("room owner set with chat-admin", metadata: ["room": "\(folded)", "owner": "\(account)"])
        }
    }
}

import IRC
import NIOConcurrencyHelpers

/// A user logged in on another node, as this node knows them from the cluster's events.
public struct RemoteUser: Sendable, Equatable {
    public var nick: String
    public var username: String
    public var realname: String
    /// Tells two sessions of one account apart (a login replaces the older session).
    public var token: String
    /// The node the user is on.
    public var node: String
    /// The AWAY text, if away.
    public var away: String? = nil

    public var host: String { "user/" + nick }
    public var mask: String { "\(nick)!\(username)@\(host)" }
}

/// Who is on the other nodes and in which rooms: kept from the cluster's login, quit, join and
/// part events, and from the answers to a new node's hello. Touched per event, never per
/// delivered message.
// @unchecked Sendable: every stored `var` is only touched with `lock` held.
final class RemotePresence: @unchecked Sendable {
    private struct Entry {
        var user: RemoteUser
        var rooms: Set<String> = []
    }

    private let lock = NIOLock()
    private var users: [String: Entry] = [:]
    /// Folded room → folded nick → nick.
    private var rooms: [String: [String: String]] = [:]
    /// Folded room → folded nick → status ("o", "v", "ov"), as their node gave it.
    private var status: [String: [String: String]] = [:]
    /// Local logins whose event has not come back from the database yet.
    private var pending: Set<String> = []

    func user(named nick: String) -> RemoteUser? {
        lock.withLock { users[IRCName.fold(nick)]?.user }
    }

    /// The remote members of `room` (folded), sorted by nick.
    func members(of room: String) -> [RemoteUser] {
        lock.withLock {
            (rooms[room] ?? [:]).keys.sorted().compactMap { users[$0]?.user }
        }
    }

    /// The rooms (folded) a remote user is in.
    func rooms(of nick: String) -> Set<String> {
        lock.withLock { users[IRCName.fold(nick)]?.rooms ?? [] }
    }

    var count: Int { lock.withLock { users.count } }

    /// The rooms (folded) that have members on other nodes.
    var roomNames: [String] { lock.withLock { Array(rooms.keys) } }

    func loginPublished(_ folded: String) { lock.withLock { _ = pending.insert(folded) } }

    /// Our own login came back: it is now the newest for its nick. Returns the remote session it
    /// supersedes (its node ends it and says so), whose rooms must see it go.
    func ownLoginConfirmed(_ folded: String) -> (RemoteUser, Set<String>)? {
        lock.withLock {
            pending.remove(folded)
            return removeLocked(folded)
        }
    }

    /// Whether a local login of this nick is newer than any event that arrives now.
    func hasPendingLogin(_ folded: String) -> Bool { lock.withLock { pending.contains(folded) } }

    /// Adds or replaces a remote user; returns the one replaced and its rooms.
    @discardableResult
    func add(_ user: RemoteUser) -> (RemoteUser, Set<String>)? {
        let folded = IRCName.fold(user.nick)
        return lock.withLock {
            if let existing = users[folded], existing.user.token == user.token { return nil }
            let old = removeLocked(folded)
            users[folded] = Entry(user: user)
            return old
        }
    }

    /// Removes the user if `token` is the one known (an older session's quit is ignored).
    func remove(_ nick: String, token: String) -> (RemoteUser, Set<String>)? {
        let folded = IRCName.fold(nick)
        return lock.withLock {
            guard users[folded]?.user.token == token else { return nil }
            return removeLocked(folded)
        }
    }

    /// Removes every user of `node` (it died); returns them with their rooms.
    func removeNode(_ node: String) -> [(RemoteUser, Set<String>)] {
        lock.withLock {
            let gone = users.filter { $0.value.user.node == node }.map(\.key)
            return gone.compactMap { removeLocked($0) }
        }
    }

    private func removeLocked(_ folded: String) -> (RemoteUser, Set<String>)? {
        guard let entry = users.removeValue(forKey: folded) else { return nil }
        for room in entry.rooms { leaveLocked(folded, room) }
        return (entry.user, entry.rooms)
    }

    private func leaveLocked(_ folded: String, _ room: String) {
        rooms[room]?[folded] = nil
        if rooms[room]?.isEmpty == true { rooms[room] = nil }
        status[room]?[folded] = nil
        if status[room]?.isEmpty == true { status[room] = nil }
    }

    /// Records that `nick` (of `node`) joined `room`, with its status there ("o", "v", "ov" or
    /// ""); false if the user is unknown.
    @discardableResult
    func join(_ nick: String, room: String, node: String, status: String = "") -> Bool {
        let folded = IRCName.fold(nick)
        return lock.withLock {
            guard users[folded]?.user.node == node else { return false }
            users[folded]!.rooms.insert(room)
            rooms[room, default: [:]][folded] = nick
            self.status[room, default: [:]][folded] = status.isEmpty ? nil : status
            return true
        }
    }

    /// A MODE +o, -o, +v or -v of a remote member of `room` (ignored for anyone else).
    func setStatus(_ nick: String, room: String, flag: Character, adding: Bool) {
        let folded = IRCName.fold(nick)
        lock.withLock {
            guard rooms[room]?[folded] != nil else { return }
            var value = Set(status[room]?[folded] ?? "")
            if adding { value.insert(flag) } else { value.remove(flag) }
            status[room, default: [:]][folded] = value.isEmpty ? nil : String(value.sorted())
        }
    }

    /// The status prefix of a remote member, as NAMES and WHO show it ("@", "+", with
    /// multi-prefix "@+", or "").
    func prefix(of nick: String, in room: String, all: Bool) -> String {
        let value = lock.withLock { status[room]?[IRCName.fold(nick)] ?? "" }
        return Room.Entry.prefix(operator: value.contains("o"), voiced: value.contains("v"), all: all)
    }

    /// Sets or clears a remote user's AWAY text; returns the rooms they are in (to tell them).
    func setAway(_ nick: String, _ text: String?, node: String) -> Set<String> {
        let folded = IRCName.fold(nick)
        return lock.withLock {
            guard users[folded]?.user.node == node else { return [] }
            users[folded]!.user.away = text
            return users[folded]!.rooms
        }
    }

    func part(_ nick: String, room: String, node: String) {
        let folded = IRCName.fold(nick)
        lock.withLock {
            guard users[folded]?.user.node == node else { return }
            users[folded]!.rooms.remove(room)
            leaveLocked(folded, room)
        }
    }

    /// A room was deleted (chat-admin): every node removes its own members from it.
    func removeRoom(_ room: String) {
        lock.withLock {
            for folded in rooms.removeValue(forKey: room)?.keys ?? [:].keys { users[folded]?.rooms.remove(room) }
            status[room] = nil
        }
    }
}

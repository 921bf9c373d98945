import ChatHistory
import IRC
import NIOConcurrencyHelpers

/// Who is connected and which rooms exist. Touched at registration, join, part and private
/// messages, never per recipient of a room message.
// @unchecked Sendable: `sessions` and `rooms` are only touched with `lock` held.
public final class Registry: @unchecked Sendable {
    private let lock = NIOLock()
    private var sessions: [String: SessionHandle] = [:]
    private var rooms: [String: Room] = [:]
    private var peakUsers = 0
    /// WHOWAS: the most recent departures, newest last.
    struct Departure: Sendable {
        let nick: String
        let username: String
        let host: String
        let realname: String
        let time: Int
    }
    private var departures: [Departure] = []
    static let departuresKept = 1000

    /// MONITOR: folded nick → the sessions watching it.
    private var watchers: [String: [ObjectIdentifier: SessionHandle]] = [:]

    public init() {}

    /// Makes `session` the holder of its nick; returns the session it replaced, if any.
    func claim(_ session: SessionHandle) -> SessionHandle? {
        lock.withLock {
            let key = session.folded
            let old = sessions[key]
            sessions[key] = session
            peakUsers = max(peakUsers, sessions.count)
            return old === session ? nil : old
        }
    }

    /// Remembers that `session` left (WHOWAS).
    func departed(_ session: SessionHandle, at time: Int) {
        let entry = Departure(nick: session.nick, username: session.username, host: session.host, realname: session.realname, time: time)
        lock.withLock {
            if departures.count >= Self.departuresKept { departures.removeFirst(departures.count - Self.departuresKept + 1) }
            departures.append(entry)
        }
    }

    /// The departures of `nick`, newest first.
    func departures(of nick: String) -> [Departure] {
        let folded = IRCName.fold(nick)
        return lock.withLock { departures.filter { IRCName.fold($0.nick) == folded }.reversed() }
    }

    /// Starts `watcher` monitoring `nick`.
    func monitor(_ nick: String, by watcher: SessionHandle) {
        let folded = IRCName.fold(nick)
        lock.withLock {
            watchers[folded, default: [:]][ObjectIdentifier(watcher)] = watcher
            watcher.setMonitoring(folded, nick)
        }
    }

    /// Stops `watcher` monitoring the folded nicks given.
    func unmonitor(_ foldedNicks: [String], by watcher: SessionHandle) {
        lock.withLock {
            for folded in foldedNicks {
                watchers[folded]?[ObjectIdentifier(watcher)] = nil
                if watchers[folded]?.isEmpty == true { watchers[folded] = nil }
                watcher.setMonitoring(folded, nil)
            }
        }
    }

    /// The sessions monitoring `nick`.
    func watchers(of nick: String) -> [SessionHandle] {
        lock.withLock { watchers[IRCName.fold(nick)].map { Array($0.values) } ?? [] }
    }

    /// Forgets `session` if it still holds its nick.
    func release(_ session: SessionHandle) {
        lock.withLock {
            let key = session.folded
            if sessions[key] === session { sessions[key] = nil }
        }
    }

    func session(named nick: String) -> SessionHandle? {
        lock.withLock { sessions[IRCName.fold(nick)] }
    }

    /// Every logged-in session: for the rare server-wide acts (a new ban, WALLOPS).
    var allSessions: [SessionHandle] { lock.withLock { Array(sessions.values) } }

    public var userCount: Int { lock.withLock { sessions.count } }
    /// The most users logged in at once since the server started (LUSERS).
    public var peakUserCount: Int { lock.withLock { peakUsers } }
    public var roomCount: Int { lock.withLock { rooms.count } }

    func room(named name: String) -> Room? {
        lock.withLock { rooms[IRCName.fold(name)] }
    }

    /// The room called `name`, created if it does not exist: from `saved` when the room was
    /// saved (history on), else new.
    func roomForJoin(_ name: String, now: Int, saved: RoomRecord? = nil) -> Room {
        lock.withLock {
            let key = IRCName.fold(name)
            if let room = rooms[key] { return room }
            let room = saved.map { Room(saved: $0) } ?? Room(name: name, now: now)
            rooms[key] = room
            return room
        }
    }

    /// Forgets an empty room (only if it is still the one registered under its name).
    func remove(_ room: Room) {
        lock.withLock {
            if rooms[room.folded] === room { rooms[room.folded] = nil }
        }
    }

    var allRooms: [Room] { lock.withLock { Array(rooms.values) } }
}

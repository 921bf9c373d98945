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

/// One stored message or room event.
public struct StoredMessage: Sendable, Equatable {
    /// The IRCv3 `msgid`, the same one every recipient got.
    public var msgid: String
    /// Server time, milliseconds since 1970.
    public var time: Int64
    /// The conversation: a folded room name, or `HistoryTarget.privateKey` of two accounts.
    public var target: String
    /// The sender's account.
    public var sender: String
    /// PRIVMSG, NOTICE, TAGMSG (and, for event playback, JOIN, PART, QUIT, KICK, TOPIC, MODE).
    public var kind: String
    /// The message as relayed, without server tags: `[@client-tags ]:source COMMAND params`.
    public var line: String

    public init(msgid: String, time: Int64, target: String, sender: String, kind: String, line: String) {
        self.msgid = msgid
        self.time = time
        self.target = target
        self.sender = sender
        self.kind = kind
        self.line = line
    }
}

/// What is kept of a room across restarts and while it is empty.
public struct RoomRecord: Sendable, Equatable {
    /// The name as created ("#Lobby"); stored under its folded form.
    public var name: String
    public var topic: String?
    public var topicBy: String
    /// Unix time (seconds).
    public var topicTime: Int
    /// The flag modes among i, m, n, s, t ("nt").
    public var flags: String
    public var key: String?
    public var limit: Int?
    /// The owner's folded account: made operator whenever it joins.
    public var owner: String?
    /// Unix times (seconds).
    public var created: Int
    public var lastUsed: Int
    /// The ban list (`+b`), oldest first.
    public var bans: [Ban]

    /// A room ban as set: its text, who set it, when (Unix seconds).
    public struct Ban: Sendable, Equatable {
        public var mask: String
        public var setBy: String
        public var setAt: Int
        public init(mask: String, setBy: String, setAt: Int) {
            self.mask = mask
            self.setBy = setBy
            self.setAt = setAt
        }

        /// A ban list as stored: a "time<TAB>setter<TAB>mask" line per ban (masks have no spaces).
        public static func text(of bans: [Ban]) -> String {
            bans.map { "\($0.setAt)\t\($0.setBy)\t\($0.mask)" }.joined(separator: "\n")
        }

        public static func list(from text: String) -> [Ban] {
            text.split(separator: "\n").compactMap { line in
                let parts = line.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false)
                guard parts.count == 3, let time = Int(parts[0]), !parts[2].isEmpty else { return nil }
                return Ban(mask: String(parts[2]), setBy: String(parts[1]), setAt: time)
            }
        }
    }

    public init(name: String, topic: String? = nil, topicBy: String = "", topicTime: Int = 0, flags: String = "nt", key: String? = nil,
                limit: Int? = nil, owner: String? = nil, created: Int, lastUsed: Int, bans: [Ban] = []) {
        self.bans = bans
        self.name = name
        self.topic = topic
        self.topicBy = topicBy
        self.topicTime = topicTime
        self.flags = flags
        self.key = key
        self.limit = limit
        self.owner = owner
        self.created = created
        self.lastUsed = lastUsed
    }
}

extension HistoryStore {
    /// Messages only, no room events.
    public func query(_ query: HistoryQuery) throws -> [StoredMessage] {
        try self.query(query, events: false)
    }
}

/// The kinds of room events kept for IRCv3 draft/event-playback.
public enum HistoryEvent {
    public static let kinds: Set<String> = ["JOIN", "PART", "QUIT", "KICK", "TOPIC", "MODE"]
}

/// A change to a room made with chat-admin, for the running server to apply to the live room.
public enum RoomRequest: Sendable, Equatable {
    /// Forget the room (folded name); its members are removed from it.
    case delete(String)
    /// Hand the room (folded name) to an account (folded).
    case setOwner(String, account: String)
}

extension RoomRequest {
    /// Makes the change in `store`'s saved rooms (a running server applies it to the live room
    /// when it takes the request).
    public func apply(to store: some HistoryStore) {
        switch self {
        case let .delete(folded):
            store.deleteRoom(folded)
        case let .setOwner(folded, account):
            if var record = store.room(folded) {
                record.owner = account
                store.saveRoom(record, folded: folded)
            }
        }
    }
}

/// Conversation keys: a room's folded name, or two accounts for a private conversation.
public enum HistoryTarget {
    /// The key of the private conversation between two (folded) accounts, the same from either side.
    public static func privateKey(_ a: String, _ b: String) -> String {
        a < b ? "\(a),\(b)" : "\(b),\(a)"
    }

    /// The other party of a private conversation key, seen from `account`, or nil for a room.
    public static func otherParty(of key: String, for account: String) -> String? {
        guard !key.hasPrefix("#") else { return nil }
        let parts = key.split(separator: ",", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return nil }
        return parts[0] == account ? parts[1] : parts[0]
    }
}

/// Where a history request starts or ends: a time or a message.
public enum HistoryReference: Sendable, Equatable {
    /// Milliseconds since 1970.
    case time(Int64)
    case msgid(String)
}

/// A CHATHISTORY request, as the store answers it. Results are always oldest first.
public enum HistoryQuery: Sendable, Equatable {
    /// The most recent `limit`, only those after `after` when given.
    case latest(target: String, after: HistoryReference?, limit: Int)
    case before(target: String, HistoryReference, limit: Int)
    case after(target: String, HistoryReference, limit: Int)
    /// About half before and half after (the message itself included, for a msgid).
    case around(target: String, HistoryReference, limit: Int)
    /// Between the two, exclusive, the `limit` nearest the first.
    case between(target: String, HistoryReference, HistoryReference, limit: Int)

    /// The conversation it reads.
    public var target: String {
        switch self {
        case let .latest(target, _, _), let .before(target, _, _), let .after(target, _, _), let .around(target, _, _), let .between(target, _, _, _):
            return target
        }
    }
}

/// How long history is kept: messages older than `days` (0: no age limit), and at most
/// `messagesPerTarget` per room or conversation (0: no limit).
public struct HistoryRetention: Sendable, Equatable {
    public var days: Int
    public var messagesPerTarget: Int
    public init(days: Int, messagesPerTarget: Int) {
        self.days = days
        self.messagesPerTarget = messagesPerTarget
    }
}

/// A position in a conversation, as both stores order it: by time, then by the row's number.
public struct HistoryPosition: Sendable, Equatable, Comparable {
    public var time: Int64
    public var id: Int64
    public init(time: Int64, id: Int64) {
        self.time = time
        self.id = id
    }
    public static func < (a: Self, b: Self) -> Bool { (a.time, a.id) < (b.time, b.id) }
    /// After every message.
    public static let end = HistoryPosition(time: Int64.max, id: Int64.max)

    /// Where a time points: "after t" means time > t, "before t" means time < t.
    public static func time(_ t: Int64, lower: Bool) -> HistoryPosition { HistoryPosition(time: t, id: lower ? Int64.max : 0) }
}

extension HistoryQuery {
    /// Answers the query from a store's three reads, the same way for every store:
    /// - `position(reference, lower)`: where a reference points (nil: a msgid unknown in the
    ///   conversation); `lower` when it is used as "after it".
    /// - `before(p, limit, above)`: the `limit` latest before `p` (and after `above`), oldest first.
    /// - `after(p, limit, inclusive, below)`: the `limit` earliest after `p` (or from it, and
    ///   before `below`), oldest first.
    public func answer(position: (HistoryReference, _ lower: Bool) throws -> HistoryPosition?,
                       before: (HistoryPosition, _ limit: Int, _ above: HistoryPosition?) throws -> [StoredMessage],
                       after: (HistoryPosition, _ limit: Int, _ inclusive: Bool, _ below: HistoryPosition?) throws -> [StoredMessage]) throws -> [StoredMessage] {
        switch self {
        case let .latest(_, reference, limit):
            guard let reference else { return try before(.end, limit, nil) }
            guard let start = try position(reference, true) else { return [] }
            return try before(.end, limit, start)
        case let .before(_, reference, limit):
            guard let p = try position(reference, false) else { return [] }
            return try before(p, limit, nil)
        case let .after(_, reference, limit):
            guard let p = try position(reference, true) else { return [] }
            return try after(p, limit, false, nil)
        case let .around(_, reference, limit):
            guard let p = try position(reference, false) else { return [] }
            let earlier = try before(p, limit / 2, nil)
            return earlier + (try after(p, limit - earlier.count, true, nil))
        case let .between(_, first, second, limit):
            guard let a = try position(first, true), let b = try position(second, false) else { return [] }
            if a <= b { return try after(a, limit, false, b) }
            // Backwards: the `limit` nearest the first reference, oldest first.
            guard let upper = try position(first, false), let lower = try position(second, true) else { return [] }
            return try before(upper, limit, lower)
        }
    }
}

/// The history store: the server appends what it relays, off the event loops, and answers
/// CHATHISTORY. SQLite (`SQLiteHistory`) is the embedded default; the cluster adds PostgreSQL
/// behind the same protocol.
public protocol HistoryStore: Sendable {
    /// Queues a message for storing; never blocks on the disk.
    func append(_ message: StoredMessage)
    /// Answers a request, with room events (JOIN, PART, …) when `events`. Blocking: call off
    /// the event loops.
    func query(_ query: HistoryQuery, events: Bool) throws -> [StoredMessage]
    /// The conversations among `rooms` and the private ones of `account` with messages between
    /// the two times (ms), newest activity first: (key, time of the latest message).
    func targets(rooms: [String], account: String, from: Int64, to: Int64, limit: Int) throws -> [(key: String, latest: Int64)]
    /// When `account` was last seen (ms), for what it missed; nil if never.
    func lastSeen(_ account: String) throws -> Int64?
    /// Records when `account` left (queued like a message).
    func setLastSeen(_ account: String, time: Int64)
    /// The read marker (IRCv3 draft/read-marker) of `account` in conversation `target`: the time
    /// (ms) up to which it has read, or nil. From memory: safe on an event loop.
    func readMarker(account: String, target: String) -> Int64?
    /// Moves the marker forward (never back) and returns where it now is.
    func setReadMarker(account: String, target: String, time: Int64) -> Int64
    /// The saved state of the room whose folded name is `folded`. From memory.
    func room(_ folded: String) -> RoomRecord?
    /// Every saved room. From memory.
    var rooms: [RoomRecord] { get }
    /// Saves a room's state (queued like a message).
    func saveRoom(_ record: RoomRecord, folded: String)
    /// Forgets a room.
    func deleteRoom(_ folded: String)
    /// The rooms `account` is in (names as created, in the order joined), for rejoining at login.
    /// From memory.
    func memberships(of account: String) -> [String]
    /// Records that `account` joined (`true`) or left (`false`) a room (queued).
    func setMembership(account: String, room: String, member: Bool)
    /// What chat-admin asked to be done to rooms since the last call (taken: each is returned once).
    /// Blocking: call off the event loops.
    func takeRoomRequests() throws -> [RoomRequest]
    /// How many writes have been queued so far: a read that must see them waits for
    /// `waitUntilStored(sequence)` first.
    var sequence: Int { get }
    /// Returns once the first `sequence` writes are stored, or after `seconds`.
    func waitUntilStored(_ sequence: Int, within seconds: Double)
    /// The same, for a read of conversation `target` only: returns at once when none of those
    /// writes is a message of it, else hurries the writer and waits.
    func waitUntilStored(_ sequence: Int, target: String, within seconds: Double)
    /// Returns once everything appended before the call is stored (tests, shutdown).
    func flush()
    /// Stores what is queued and closes.
    func close()
    /// Asks the writer to delete what `retention` no longer keeps; returns at once.
    func purge(_ retention: HistoryRetention, now: Date)
    /// Where the history is, for the log ("history in …").
    var location: String { get }
    /// Whether other servers share this store (a cluster's database): then a message is stored
    /// once, by the server it was sent to, not by every server that delivers it.
    var isShared: Bool { get }
}

/// What chat-admin does to a history store besides what the server does.
public protocol HistoryAdministration: HistoryStore {
    /// Applies a change to a room at once and queues it for running servers (`takeRoomRequests`).
    func request(_ request: RoomRequest)
    /// The accounts whose rooms (rejoined at login) include `folded`. From memory.
    func members(of folded: String) -> [String]
    /// How many messages a conversation has kept, and the time (ms) of its latest one.
    func activity(of target: String) throws -> (messages: Int, latest: Int64?)
    /// Deletes the messages of `target` older than `before` (ms) now; returns how many.
    func delete(target: String, before: Int64) throws -> Int
    /// Every message of `target`, oldest first.
    func all(target: String, page: (StoredMessage) throws -> Void) throws
}

extension HistoryStore {
    public var isShared: Bool { false }

    /// Deletes what `retention` no longer keeps, as of now.
    public func purge(_ retention: HistoryRetention) { purge(retention, now: Date()) }
}

import ArgumentParser
import ChatAuth
import ChatCluster
import ChatHistory
import Foundation
import NIOPosix

struct RoomAdmin: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "room",
        abstract: "The kept rooms: list them, show one, delete one, or hand one to another owner.",
        discussion: """
        Rooms are kept in the history database (history on): the SQLite file, or in a cluster \
        (a "cluster" block in the config) PostgreSQL, for every node at once. The commands may be \
        used while the server runs: it applies a deletion or a new owner to the live room within \
        two seconds.
        """,
        subcommands: [RoomList.self, RoomShow.self, RoomDelete.self, RoomSetOwner.self])
}

/// Where the history database is (the config's, or --database).
struct RoomDatabase: ParsableArguments {
    @OptionGroup var location: Location
    @Option(help: "The history database (overrides the config's).") var database: String?

    /// The config's history: the cluster's database when the config has a "cluster" block (and
    /// no --database), else the SQLite file.
    func open() throws -> any HistoryAdministration {
        let settings = try location.settings()
        if database == nil, let cluster = settings.cluster {
            do {
                return try PostgresHistory(settings: cluster.postgres, node: "chat-admin", eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
                                           durabilityMilliseconds: 0)
            } catch {
                throw AdminError("cannot open the cluster's history in PostgreSQL \(cluster.postgres.description): \(error)")
            }
        }
        let path = database ?? settings.historyDatabase ?? "history.sqlite"
        guard FileManager.default.fileExists(atPath: path) else {
            throw AdminError("no history database at \(path) — is history on, and is this the server's config (--config, --database)?")
        }
        return try SQLiteHistory(path: path, durabilityMilliseconds: 0)
    }

    /// The folded key of a room name given with or without '#'.
    static func key(_ room: String) -> String {
        let name = room.hasPrefix("#") ? room : "#" + room
        return String(decoding: name.utf8.map { $0 >= 0x41 && $0 <= 0x5a ? $0 + 0x20 : $0 }, as: UTF8.self)
    }

    /// The kept room `key`, or an error that says how to find the rooms.
    static func record(_ key: String, in store: any HistoryAdministration) throws -> RoomRecord {
        guard let record = store.room(key) else { throw AdminError("no room \(key) is kept — `chat-admin room list` shows the rooms") }
        return record
    }

    static func date(_ seconds: Int) -> String { Timestamp.string(Date(timeIntervalSince1970: Double(seconds))) }
}

struct RoomList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the kept rooms: name, owner, members, messages, last used.")
    @OptionGroup var where_: RoomDatabase

    func run() throws {
        try reporting {
            let store = try where_.open()
            defer { store.close() }
            let rooms = store.rooms.sorted { $0.name.lowercased() < $1.name.lowercased() }
            if rooms.isEmpty { return print("no rooms kept in \(store.location)") }
            print("room\towner\tmembers\tmessages\tlast used (UTC)")
            for room in rooms {
                let key = RoomDatabase.key(room.name)
                let activity = try store.activity(of: key)
                let last = max(room.lastUsed, Int((activity.latest ?? 0) / 1000))
                print("\(room.name)\t\(room.owner ?? "-")\t\(store.members(of: key).count)\t\(activity.messages)\t\(RoomDatabase.date(last))")
            }
        }
    }
}

struct RoomShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a kept room: topic, modes, owner, members.")
    @OptionGroup var where_: RoomDatabase
    @Argument(help: "The room (# optional).") var room: String

    func run() throws {
        try reporting {
            let store = try where_.open()
            defer { store.close() }
            let key = RoomDatabase.key(room)
            let record = try RoomDatabase.record(key, in: store)
            let activity = try store.activity(of: key)
            var modes = "+" + record.flags + (record.key == nil ? "" : "k") + (record.limit == nil ? "" : "l")
            if let limit = record.limit { modes += " \(limit)" }
            print("room:     \(record.name)")
            print("owner:    \(record.owner ?? "nobody")")
            print("topic:    \(record.topic.map { "\($0) (set by \(record.topicBy), \(RoomDatabase.date(record.topicTime)))" } ?? "none")")
            print("modes:    \(modes)\(record.key == nil ? "" : " (key set)")")
            print("created:  \(RoomDatabase.date(record.created))")
            print("used:     \(RoomDatabase.date(max(record.lastUsed, Int((activity.latest ?? 0) / 1000))))")
            print("messages: \(activity.messages)")
            print("bans:     \(record.bans.isEmpty ? "none" : record.bans.map { "\($0.mask) (by \($0.setBy))" }.joined(separator: ", "))")
            print("members:  \(store.members(of: key).joined(separator: " "))")
        }
    }
}

struct RoomDelete: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Forget a room: its topic, modes, owner and members (its messages stay until purged).")
    @OptionGroup var where_: RoomDatabase
    @Argument(help: "The room (# optional).") var room: String

    func run() throws {
        try reporting {
            let store = try where_.open()
            defer { store.close() }
            let key = RoomDatabase.key(room)
            _ = try RoomDatabase.record(key, in: store)
            store.request(.delete(key))
            store.flush()
            print("deleted \(key); a running server removes its members within two seconds (messages stay: chat-admin history purge)")
        }
    }
}

struct RoomSetOwner: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-owner", abstract: "Hand a room to another account (made operator whenever it joins).")
    @OptionGroup var where_: RoomDatabase
    @Argument(help: "The room (# optional).") var room: String
    @Argument(help: "The account that will own it.") var account: String

    func run() throws {
        try reporting {
            let (users, _) = try where_.location.store()
            guard let found = try users.load().account(named: account) else { throw UsersFileError.noSuchAccount(account) }
            let store = try where_.open()
            defer { store.close() }
            let key = RoomDatabase.key(room)
            _ = try RoomDatabase.record(key, in: store)
            let owner = RoomDatabase.key(found.name).dropFirst()  // folded like the room's name
            store.request(.setOwner(key, account: String(owner)))
            store.flush()
            print("\(key) is now owned by \(found.name); a running server makes them operator there within two seconds")
        }
    }
}

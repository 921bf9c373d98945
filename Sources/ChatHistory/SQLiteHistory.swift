import CSQLite
import ChatSupport
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

/// A problem with the history database at start, worded for the operator: what and what to do.
public struct HistoryStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    init(_ text: String) { description = text }
}

/// The embedded history store: one SQLite database file in WAL mode.
///
/// Writes go through a `HistoryWriter` (group commit on its own thread, at most
/// `durabilityMilliseconds` late; with `synchronous=FULL`, a committed transaction is on disk).
/// Reads use their own connections, which WAL lets run beside the writer.
// @unchecked Sendable: the writer's connection is used only on the writer thread; reader
// connections are checked out of `readers` under `readersLock`, one thread at a time.
public final class SQLiteHistory: HistoryAdministration, @unchecked Sendable {
    public static let schemaVersion = 5
    public let path: String
    public var durabilityMilliseconds: Int { writer.durabilityMilliseconds }
    public var maximumPending: Int { writer.maximumPending }

    private var writer: HistoryWriter!
    private let memory = HistoryMemory()
    private let readersLock = Lock()
    private var readers: [SQLiteConnection] = []

    public typealias Retention = HistoryRetention

    public var location: String { "\(path) (durability window \(durabilityMilliseconds) ms)" }

    /// Deletes the messages of `target` older than `before` (ms) now, on the caller's connection
    /// (chat-admin). Returns how many.
    public func delete(target: String, before: Int64) throws -> Int {
        try withReader { db in
            try db.query("DELETE FROM messages WHERE target = ? AND time < ?", [.text(target), .int(before)])
            return db.changes
        }
    }

    /// Every message of `target`, oldest first, in pages (chat-admin export).
    public func all(target: String, page: (StoredMessage) throws -> Void) throws {
        try withReader { db in
            try db.query(Self.columns + " WHERE target = ? ORDER BY time, id", [.text(target)]) { row in
                try page(StoredMessage(msgid: row.text(0), time: row.int(1), target: row.text(2), sender: row.text(3), kind: row.text(4), line: row.text(5)))
            }
        }
    }

    /// Opens (or creates, mode 0600) the database at `path`, checks it and migrates its schema.
    /// Refuses a symbolic link, a file others may read, a database another program holds locked,
    /// and a damaged one, each with a line saying what to do.
    public init(path: String, durabilityMilliseconds: Int = 100, report: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.path = path
        try Self.checkFile(path)
        let writer: SQLiteConnection
        do {
            let existed = FileManager.default.fileExists(atPath: path)
            let previous = umask(0o077)
            defer { umask(previous) }
            writer = try SQLiteConnection(path: path)
            if !existed { chmod(path, 0o600) }
            try writer.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            try Self.migrate(writer)
            var markers: [String: [String: Int64]] = [:]
            var savedRooms: [String: RoomRecord] = [:]
            var memberOf: [String: [String]] = [:]
            try writer.query("SELECT account, target, time FROM read_markers") { row in
                markers[row.text(0), default: [:]][row.text(1)] = row.int(2)
            }
            try writer.query("SELECT folded, name, topic, topic_by, topic_time, flags, key, room_limit, owner, created, last_used, bans FROM rooms") { r in
                savedRooms[r.text(0)] = RoomRecord(name: r.text(1), topic: r.isNull(2) ? nil : r.text(2), topicBy: r.text(3), topicTime: Int(r.int(4)),
                                                   flags: r.text(5), key: r.isNull(6) ? nil : r.text(6), limit: r.isNull(7) ? nil : Int(r.int(7)),
                                                   owner: r.isNull(8) ? nil : r.text(8), created: Int(r.int(9)), lastUsed: Int(r.int(10)),
                                                   bans: Self.bans(from: r.text(11)))
            }
            try writer.query("SELECT account, room FROM memberships ORDER BY rowid") { r in memberOf[r.text(0), default: []].append(r.text(1)) }
            memory.replaceAll(rooms: savedRooms, memberships: memberOf, markers: markers)
            var ok = ""
            try writer.query("PRAGMA quick_check") { ok = $0.text(0) }
            if ok != "ok" { throw HistoryStoreError("history database \(path) is damaged (\(ok)) — restore a backup, or move it aside to start with an empty history") }
        } catch let error as SQLiteError {
            if error.isBusy {
                throw HistoryStoreError("history database \(path) is locked by another program (another chat-server?) — stop it, or set \"history.database\" to another file")
            }
            if error.isCorrupt {
                throw HistoryStoreError("history database \(path) is damaged or not a SQLite database (\(error)) — restore a backup, or move it aside to start with an empty history")
            }
            if error.isDiskFull {
                throw HistoryStoreError("history database \(path): the disk is full — free some space and start again")
            }
            throw HistoryStoreError("history database \(path): \(error)")
        }
        self.writer = HistoryWriter(durabilityMilliseconds: durabilityMilliseconds, name: "securechat-history", report: report) { batch in
            do {
                try Self.store(batch, writer)
            } catch {
                try? writer.execute("ROLLBACK")
                throw error
            }
        }
    }

    /// A symbolic link, something that is not a file, or a file others may read is refused.
    static func checkFile(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }  // created below
        if (info.st_mode & S_IFMT) == S_IFLNK {
            throw HistoryStoreError("history database \(path) is a symbolic link: refused — point \"history.database\" at the real file")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw HistoryStoreError("history database \(path) is not a regular file — point \"history.database\" at a file")
        }
        if info.st_mode & 0o077 != 0 {
            throw HistoryStoreError("history database \(path) can be read by other users (mode \(String(info.st_mode & 0o777, radix: 8))): refused — run: chmod 600 \(path)")
        }
    }

    static func migrate(_ db: SQLiteConnection) throws {
        try db.execute("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)")
        var version = 0
        try db.query("SELECT version FROM schema_version") { version = Int($0.int(0)) }
        if version > schemaVersion {
            throw HistoryStoreError("history database has schema version \(version), but this program knows only \(schemaVersion) — use the SecureChat release that wrote it")
        }
        /// One step: its SQL and the new version, in one transaction.
        func step(to next: Int, _ sql: String) throws {
            guard version < next else { return }
            try db.execute("BEGIN;\n\(sql)\nDELETE FROM schema_version;\nINSERT INTO schema_version VALUES (\(next));\nCOMMIT;")
        }
        try step(to: 1, """
            CREATE TABLE messages(id INTEGER PRIMARY KEY, msgid TEXT NOT NULL, time INTEGER NOT NULL, target TEXT NOT NULL,
                                  sender TEXT NOT NULL, kind TEXT NOT NULL, line TEXT NOT NULL);
            CREATE UNIQUE INDEX messages_msgid ON messages(msgid);
            CREATE INDEX messages_target_time ON messages(target, time, id);
            CREATE TABLE last_seen(account TEXT PRIMARY KEY, time INTEGER NOT NULL);
            CREATE TABLE read_markers(account TEXT NOT NULL, target TEXT NOT NULL, time INTEGER NOT NULL, PRIMARY KEY(account, target));
            """)
        try step(to: 2, """
            CREATE TABLE rooms(folded TEXT PRIMARY KEY, name TEXT NOT NULL, topic TEXT, topic_by TEXT NOT NULL, topic_time INTEGER NOT NULL,
                               flags TEXT NOT NULL, key TEXT, room_limit INTEGER, owner TEXT, created INTEGER NOT NULL, last_used INTEGER NOT NULL);
            CREATE TABLE memberships(account TEXT NOT NULL, room TEXT NOT NULL, folded TEXT NOT NULL, PRIMARY KEY(account, folded));
            """)
        // A QUIT is kept in each room the user was in, with the msgid everyone got.
        try step(to: 3, """
            DROP INDEX messages_msgid;
            CREATE UNIQUE INDEX messages_target_msgid ON messages(target, msgid);
            """)
        // What chat-admin asks a running server to do to its rooms (`RoomRequest`).
        try step(to: 4, "CREATE TABLE room_requests(id INTEGER PRIMARY KEY, action TEXT NOT NULL, room TEXT NOT NULL, account TEXT);")
        // A room's ban list, one "time<TAB>setter<TAB>mask" line per ban.
        try step(to: 5, "ALTER TABLE rooms ADD COLUMN bans TEXT NOT NULL DEFAULT '';")
    }

    // MARK: Writing

    public func append(_ message: StoredMessage) {
        writer.enqueue(.message(message))
    }

    public func setLastSeen(_ account: String, time: Int64) {
        writer.enqueue(.lastSeen(account, time))
    }

    public func purge(_ retention: Retention, now: Date) {
        writer.enqueue(.purge(retention, now: Int64(now.timeIntervalSince1970 * 1000)))
    }

    public func room(_ folded: String) -> RoomRecord? { memory.room(folded) }

    public var rooms: [RoomRecord] { memory.rooms }

    public func saveRoom(_ record: RoomRecord, folded: String) {
        if memory.setRoom(folded, record) { writer.enqueue(.room(folded, record)) }
    }

    public func deleteRoom(_ folded: String) {
        memory.setRoom(folded, nil)
        writer.enqueue(.room(folded, nil))
    }

    public func memberships(of account: String) -> [String] { memory.memberships(of: account) }

    public func setMembership(account: String, room: String, member: Bool) {
        if memory.setMembership(account: account, room: room, member: member) { writer.enqueue(.membership(account, room, member)) }
    }

    /// The accounts whose rooms (rejoined at login) include `folded`. From memory.
    public func members(of folded: String) -> [String] { memory.members(of: folded) }

    /// chat-admin's change to a room: made here at once (for the next start), and queued for a
    /// running server, which applies it to the live room within seconds (`takeRoomRequests`).
    public func request(_ request: RoomRequest) {
        request.apply(to: self)
        writer.enqueue(.request(request))
    }

    public func takeRoomRequests() throws -> [RoomRequest] {
        try withReader { db in
            var found: [RoomRequest] = []
            try db.execute("BEGIN IMMEDIATE")
            do {
                try db.query("SELECT action, room, account FROM room_requests ORDER BY id") { row in
                    switch row.text(0) {
                    case "delete": found.append(.delete(row.text(1)))
                    case "set-owner": found.append(.setOwner(row.text(1), account: row.text(2)))
                    default: break
                    }
                }
                if !found.isEmpty { try db.execute("DELETE FROM room_requests") }
                try db.execute("COMMIT")
            } catch {
                try? db.execute("ROLLBACK")
                throw error
            }
            return found
        }
    }

    /// How many messages a conversation has kept, and the time (ms) of its latest one.
    public func activity(of target: String) throws -> (messages: Int, latest: Int64?) {
        try withReader { db in
            var out: (Int, Int64?) = (0, nil)
            try db.query("SELECT COUNT(*), MAX(time) FROM messages WHERE target = ?", [.text(target)]) { row in
                out = (Int(row.int(0)), row.isNull(1) ? nil : row.int(1))
            }
            return out
        }
    }

    static func text(of bans: [RoomRecord.Ban]) -> String { RoomRecord.Ban.text(of: bans) }

    static func bans(from text: String) -> [RoomRecord.Ban] { RoomRecord.Ban.list(from: text) }

    static func fold(_ name: String) -> String { HistoryMemory.fold(name) }

    public func readMarker(account: String, target: String) -> Int64? { memory.readMarker(account: account, target: target) }

    public func setReadMarker(account: String, target: String, time: Int64) -> Int64 {
        let (now, moved) = memory.setReadMarker(account: account, target: target, time: time)
        if moved { writer.enqueue(.readMarker(account, target, now)) }
        return now
    }

    private static func store(_ batch: [HistoryWrite], _ db: SQLiteConnection) throws {
        try db.execute("BEGIN IMMEDIATE")
        for write in batch {
            switch write {
            case let .message(m):
                try db.query("INSERT OR IGNORE INTO messages(msgid, time, target, sender, kind, line) VALUES (?, ?, ?, ?, ?, ?)",
                             [.text(m.msgid), .int(m.time), .text(m.target), .text(m.sender), .text(m.kind), .text(m.line)])
            case let .readMarker(account, target, time):
                try db.query("INSERT INTO read_markers(account, target, time) VALUES (?, ?, ?) ON CONFLICT(account, target) DO UPDATE SET time = max(time, excluded.time)",
                             [.text(account), .text(target), .int(time)])
            case let .room(folded, record?):
                try db.query("""
                INSERT INTO rooms(folded, name, topic, topic_by, topic_time, flags, key, room_limit, owner, created, last_used, bans)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(folded) DO UPDATE SET name = excluded.name, topic = excluded.topic, topic_by = excluded.topic_by,
                  topic_time = excluded.topic_time, flags = excluded.flags, key = excluded.key, room_limit = excluded.room_limit,
                  owner = excluded.owner, created = excluded.created, last_used = excluded.last_used, bans = excluded.bans
                """, [.text(folded), .text(record.name), record.topic.map { .text($0) } ?? .null, .text(record.topicBy), .int(Int64(record.topicTime)),
                      .text(record.flags), record.key.map { .text($0) } ?? .null, record.limit.map { .int(Int64($0)) } ?? .null,
                      record.owner.map { .text($0) } ?? .null, .int(Int64(record.created)), .int(Int64(record.lastUsed)), .text(Self.text(of: record.bans))])
            case let .room(folded, nil):
                try db.query("DELETE FROM rooms WHERE folded = ?", [.text(folded)])
                try db.query("DELETE FROM memberships WHERE folded = ?", [.text(folded)])
            case let .membership(account, room, true):
                try db.query("INSERT OR IGNORE INTO memberships(account, room, folded) VALUES (?, ?, ?)", [.text(account), .text(room), .text(Self.fold(room))])
            case let .membership(account, room, false):
                try db.query("DELETE FROM memberships WHERE account = ? AND folded = ?", [.text(account), .text(Self.fold(room))])
            case let .purge(retention, now):
                if retention.days > 0 {
                    try db.query("DELETE FROM messages WHERE time < ?", [.int(now - Int64(retention.days) * 86_400_000)])
                }
                if retention.messagesPerTarget > 0 {
                    var over: [String] = []
                    try db.query("SELECT target FROM messages GROUP BY target HAVING COUNT(*) > ?", [.int(Int64(retention.messagesPerTarget))]) { over.append($0.text(0)) }
                    for target in over {
                        try db.query("""
                        DELETE FROM messages WHERE target = ? AND id <= (SELECT id FROM messages WHERE target = ? ORDER BY time DESC, id DESC LIMIT 1 OFFSET ?)
                        """, [.text(target), .text(target), .int(Int64(retention.messagesPerTarget))])
                    }
                }
            case let .request(.delete(room)):
                try db.query("INSERT INTO room_requests(action, room) VALUES ('delete', ?)", [.text(room)])
            case let .request(.setOwner(room, account)):
                try db.query("INSERT INTO room_requests(action, room, account) VALUES ('set-owner', ?, ?)", [.text(room), .text(account)])
            case let .lastSeen(account, time):
                try db.query("INSERT INTO last_seen(account, time) VALUES (?, ?) ON CONFLICT(account) DO UPDATE SET time = excluded.time",
                             [.text(account), .int(time)])
            }
        }
        try db.execute("COMMIT")
    }

    /// Transactions committed so far (group commit: far fewer than messages under load).
    public var commits: Int { writer.commits }

    public func flush() { writer.flush() }

    public var sequence: Int { writer.sequence }

    public func waitUntilStored(_ sequence: Int, within seconds: Double) {
        writer.waitUntilStored(sequence, within: seconds)
    }

    public func waitUntilStored(_ sequence: Int, target: String, within seconds: Double) {
        writer.waitUntilStored(sequence, target: target, within: seconds)
    }

    public func close() {
        writer.close()
        readersLock.lock()
        readers.removeAll()
        readersLock.unlock()
    }

    // MARK: Reading

    private func withReader<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        readersLock.lock()
        let reader = readers.popLast()
        readersLock.unlock()
        let connection = try reader ?? SQLiteConnection(path: path)
        defer {
            readersLock.lock()
            if readers.count < 4 { readers.append(connection) }
            readersLock.unlock()
        }
        return try body(connection)
    }

    private typealias Position = HistoryPosition

    private static let columns = "SELECT msgid, time, target, sender, kind, line, id FROM messages"

    private func rows(_ db: SQLiteConnection, _ sql: String, _ values: [SQLiteConnection.Value]) throws -> [StoredMessage] {
        var out: [StoredMessage] = []
        try db.query(sql, values) { row in
            out.append(StoredMessage(msgid: row.text(0), time: row.int(1), target: row.text(2), sender: row.text(3), kind: row.text(4), line: row.text(5)))
        }
        return out
    }

    /// Where a reference points in `target`: for a msgid, that message (nil if unknown there).
    private func position(_ reference: HistoryReference, in target: String, lower: Bool, _ db: SQLiteConnection) throws -> Position? {
        switch reference {
        case let .time(t):
            return .time(t, lower: lower)
        case let .msgid(id):
            var found: Position?
            try db.query("SELECT time, id FROM messages WHERE msgid = ? AND target = ?", [.text(id), .text(target)]) {
                found = Position(time: $0.int(0), id: $0.int(1))
            }
            return found
        }
    }

    /// The condition that leaves room events out (clients without draft/event-playback).
    static func kinds(_ events: Bool) -> String {
        events ? "" : " AND kind IN ('PRIVMSG', 'NOTICE', 'TAGMSG')"
    }

    private func before(_ p: Position, target: String, limit: Int, above: Position?, events: Bool, _ db: SQLiteConnection) throws -> [StoredMessage] {
        // Row values: SQLite walks the (target, time, id) index from the position, no further.
        var sql = Self.columns + " WHERE target = ? AND (time, id) < (?, ?)" + Self.kinds(events)
        var values: [SQLiteConnection.Value] = [.text(target), .int(p.time), .int(p.id)]
        if let above {
            sql += " AND (time, id) > (?, ?)"
            values += [.int(above.time), .int(above.id)]
        }
        sql += " ORDER BY time DESC, id DESC LIMIT ?"
        return try rows(db, sql, values + [.int(Int64(limit))]).reversed()
    }

    private func after(_ p: Position, target: String, limit: Int, inclusive: Bool, below: Position?, events: Bool, _ db: SQLiteConnection) throws -> [StoredMessage] {
        var sql = Self.columns + " WHERE target = ? AND (time, id) \(inclusive ? ">=" : ">") (?, ?)" + Self.kinds(events)
        var values: [SQLiteConnection.Value] = [.text(target), .int(p.time), .int(p.id)]
        if let below {
            sql += " AND (time, id) < (?, ?)"
            values += [.int(below.time), .int(below.id)]
        }
        sql += " ORDER BY time ASC, id ASC LIMIT ?"
        return try rows(db, sql, values + [.int(Int64(limit))])
    }

    public func query(_ query: HistoryQuery, events: Bool) throws -> [StoredMessage] {
        let target = query.target
        return try withReader { db in
            try query.answer(
                position: { try position($0, in: target, lower: $1, db) },
                before: { try before($0, target: target, limit: $1, above: $2, events: events, db) },
                after: { try after($0, target: target, limit: $1, inclusive: $2, below: $3, events: events, db) })
        }
    }

    public func targets(rooms: [String], account: String, from: Int64, to: Int64, limit: Int) throws -> [(key: String, latest: Int64)] {
        try withReader { db in
            var out: [(String, Int64)] = []
            let marks = Array(repeating: "?", count: rooms.count).joined(separator: ",")
            let roomClause = rooms.isEmpty ? "" : "target IN (\(marks)) OR "
            let sql = """
            SELECT target, MAX(time) AS latest FROM messages
            WHERE time > ? AND time < ?\(Self.kinds(false)) AND (\(roomClause)substr(target, 1, length(?) + 1) = ? || ',' OR substr(target, -length(?) - 1) = ',' || ?)
            GROUP BY target ORDER BY latest DESC LIMIT ?
            """
            let values: [SQLiteConnection.Value] = [.int(min(from, to)), .int(max(from, to))] + rooms.map { .text($0) }
                + [.text(account), .text(account), .text(account), .text(account), .int(Int64(limit))]
            try db.query(sql, values) { out.append(($0.text(0), $0.int(1))) }
            return out.map { (key: $0.0, latest: $0.1) }
        }
    }

    public func lastSeen(_ account: String) throws -> Int64? {
        try withReader { db in
            var time: Int64?
            try db.query("SELECT time FROM last_seen WHERE account = ?", [.text(account)]) { time = $0.int(0) }
            return time
        }
    }

    /// Stored messages, for tests and `chat-admin`.
    public func count() throws -> Int {
        try withReader { db in
            var n = 0
            try db.query("SELECT COUNT(*) FROM messages") { n = Int($0.int(0)) }
            return n
        }
    }
}

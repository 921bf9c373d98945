import ChatHistory
import Dispatch
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
import NIOConcurrencyHelpers
import NIOCore

/// The history store of a cluster: messages, room events, read markers, last-seen times, rooms
/// and who is in them, in the cluster's PostgreSQL, the same for every node.
///
/// - Room messages and private messages are stored by `ClusterBus` in the transaction that
///   publishes them, so the history has a message exactly when the nodes were told of it.
///   Everything else goes through a `HistoryWriter` (group commit on its own thread).
/// - Rooms, memberships and read markers are answered from memory (`HistoryMemory`), as the
///   protocol asks. Every write of them also sends `NODE KIND KEY` on `securechat_state` in its
///   transaction; the other nodes hear it (`changed`) and read the changed rows again, so a user
///   who marks a message read on one node and logs in on another finds the marker there. After a
///   lost listening connection, a node reads all of them again (`reloadAll`).
// @unchecked Sendable: `writer` is assigned once, in `init`, before any use, and immutable after;
// the listener's state is loop-bound (NIOLoopBoundBox on `eventLoop`); `requestCursor` and
// `unstored` are behind locks (NIOLockedValueBox); every other property is a `let` of a Sendable type.
public final class PostgresHistory: HistoryAdministration, @unchecked Sendable {
    public static let stateChannel = "securechat_state"

    public let settings: PostgresSettings
    public let node: String
    private let eventLoop: EventLoop
    let memory = HistoryMemory()
    let reader: PostgresSlot
    private var writer: HistoryWriter!
    private let report: @Sendable (String) -> Void
    private let listener: NIOLoopBoundBox<Listener>
    /// The last chat-admin room request this node has taken.
    private let requestCursor = NIOLockedValueBox<Int64>(0)
    /// This node's writes of rooms and memberships not yet stored ("room FOLDED", "member
    /// ACCOUNT" → how many), and the other nodes' changes heard meanwhile. Reading such a row
    /// again before our write is stored could bring back our own older value (a room saved at
    /// creation, then changed): the read waits until our writes of it are stored.
    private let unstored = NIOLockedValueBox<(counts: [String: Int], heard: Set<String>)>(([:], []))

    private struct Listener {
        var connection: PostgresConnection?
        var stopped = false
    }

    public var isShared: Bool { true }
    public var location: String { "PostgreSQL \(settings.description), shared by the cluster's nodes" }

    /// Connects and reads rooms, memberships and markers. Blocking: a node that cannot read its
    /// history does not start.
    /// - Parameter follows: listen for other nodes' changes on a connection of its own. A
    ///   cluster node passes false: its `ClusterBus` listens on its one connection and calls
    ///   `changed` and `reloadAll` (each listening connection costs PostgreSQL a wake-up per event).
    public init(settings: PostgresSettings, node: String, eventLoop: EventLoop, durabilityMilliseconds: Int = 100, follows: Bool = false,
                report: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.settings = settings
        self.node = node
        self.eventLoop = eventLoop
        self.report = report
        reader = PostgresSlot(settings: settings.purpose("history-read"), eventLoop: eventLoop)
        listener = NIOLoopBoundBox.makeBoxSendingValue(Listener(), eventLoop: eventLoop)
        let cursor = try reader.use { try $0.run("SELECT coalesce(max(id), 0) AS id FROM securechat_room_requests").value(0, "id") }
        requestCursor.withLockedValue { $0 = Int64(cursor ?? "0") ?? 0 }
        try loadAll()
        let writing = PostgresSlot(settings: settings.purpose("history-write"), eventLoop: eventLoop)
        let node = self.node
        writer = HistoryWriter(durabilityMilliseconds: durabilityMilliseconds, name: "securechat-history", report: report) { [weak self] batch in
            try writing.use { try Self.store(batch, node: node, $0) }
            self?.stored(batch)
        }
        if follows { try eventLoop.flatSubmit { self.listen() }.wait() }
    }

    // MARK: Keeping up with the other nodes

    /// Another node changed something (`NODE KIND KEY` on `stateChannel`): it is read again, in
    /// the order told, off the event loops.
    public func changed(_ payload: String) {
        let parts = payload.split(separator: " ", maxSplits: 2).map(String.init)
        guard parts.count == 3, parts[0] != node else { return }
        let key = "\(parts[1]) \(parts[2])"
        let later = unstored.withLockedValue { state -> Bool in
            guard state.counts[key] != nil else { return false }
            state.heard.insert(key)
            return true
        }
        if !later { reloadLater(key) }
    }

    /// Reads `KIND KEY` again, in order, off the event loops.
    private func reloadLater(_ key: String) {
        let parts = key.split(separator: " ", maxSplits: 1).map(String.init)
        following.async {
            do {
                try self.reload(parts[0], parts[1])
            } catch {
                self.report("history: could not read a change another node made (\(key)): \(error)")
            }
        }
    }

    /// The key of a write of a room or a membership (see `unstored`).
    private static func key(_ write: HistoryWrite) -> String? {
        switch write {
        case let .room(folded, _): return "room \(folded)"
        case let .membership(account, _, _): return "member \(account)"
        default: return nil
        }
    }

    /// Changes memory and queues the write of a room or a membership, noting first that its
    /// row is not stored yet (so that a read of it that is under way does not undo the change).
    private func change(_ write: HistoryWrite, _ apply: () -> Bool) {
        let key = Self.key(write)!
        unstored.withLockedValue { $0.counts[key, default: 0] += 1 }
        if apply() {
            writer.enqueue(write)
        } else {
            stored([write])
        }
    }

    /// A batch is stored: rows other nodes changed meanwhile are read now.
    private func stored(_ batch: [HistoryWrite]) {
        let due = unstored.withLockedValue { state -> [String] in
            var due: [String] = []
            for key in batch.compactMap(Self.key) {
                let left = (state.counts[key] ?? 1) - 1
                state.counts[key] = left > 0 ? left : nil
                if left <= 0, state.heard.remove(key) != nil { due.append(key) }
            }
            return due
        }
        for key in due { reloadLater(key) }
    }

    /// Reads every room, membership and marker again (after the listening connection was lost:
    /// what changed meanwhile).
    public func reloadAll() {
        following.async {
            do {
                try self.loadAll()
            } catch {
                self.report("history: could not read the rooms and read markers again: \(error)")
            }
        }
    }

    /// Reads every room, membership and marker again, now. Blocking. A node calls it once its
    /// bus listens: a change another node stored between this store's first read and the
    /// LISTEN would otherwise be missed until the row changes again.
    public func reloadAllNow() throws { try loadAll() }

    private let following = DispatchQueue(label: "securechat-history-follow")

    /// On the loop: connects the listener and LISTENs, then reads everything; on a lost
    /// connection, tries again every second.
    private func listen() -> EventLoopFuture<Void> {
        PostgresConnection.connect(settings.purpose("history-follow"), on: eventLoop) { channel, payload in
            guard channel == Self.stateChannel else { return }
            self.changed(payload)
        }.flatMap { connection in
            connection.query("LISTEN \(Self.stateChannel)").map { _ in
                guard !self.listener.value.stopped else {
                    _ = connection.close()
                    return
                }
                self.reloadAll()
                self.listener.value.connection = connection
                connection.channel.closeFuture.whenComplete { _ in
                    guard !self.listener.value.stopped else { return }
                    self.report("history: lost the connection that follows other nodes' rooms and read markers; trying again every second")
                    self.retry()
                }
            }
        }
    }

    private func retry() {
        eventLoop.scheduleTask(in: .seconds(1)) {
            guard !self.listener.value.stopped else { return }
            self.listen().whenFailure { _ in self.retry() }
        }
    }

    /// Reads every room, membership and marker into memory. Blocking.
    private func loadAll() throws {
        let (rooms, members, markers) = try reader.use { c in
            (try c.run("SELECT \(Self.roomColumns) FROM securechat_rooms"),
             try c.run("SELECT account, room FROM securechat_memberships ORDER BY joined"),
             try c.run("SELECT account, target, at_ms FROM securechat_read_markers"))
        }
        var saved: [String: RoomRecord] = [:]
        for row in rooms.rows { if let (folded, record) = Self.room(row) { saved[folded] = record } }
        var memberOf: [String: [String]] = [:]
        for row in members.rows { if let account = row[0], let room = row[1] { memberOf[account, default: []].append(room) } }
        var marks: [String: [String: Int64]] = [:]
        for row in markers.rows {
            if let account = row[0], let target = row[1], let time = row[2].flatMap({ Int64($0) }) { marks[account, default: [:]][target] = time }
        }
        memory.replaceAll(rooms: saved, memberships: memberOf, markers: marks)
    }

    /// Reads one changed thing again. Blocking.
    private func reload(_ kind: String, _ key: String) throws {
        /// Applies what was read unless this node has changed the row since (its write, queued,
        /// will be read again once stored).
        func apply(_ body: () -> Void) {
            unstored.withLockedValue { state in
                guard state.counts["\(kind) \(key)"] == nil else {
                    state.heard.insert("\(kind) \(key)")
                    return
                }
                body()
            }
        }
        switch kind {
        case "room":
            let result = try reader.use { try $0.run("SELECT \(Self.roomColumns) FROM securechat_rooms WHERE folded = $1", [key]) }
            apply { memory.setRoom(key, result.rows.first.flatMap { Self.room($0)?.1 }) }
        case "member":
            let result = try reader.use { try $0.run("SELECT room FROM securechat_memberships WHERE account = $1 ORDER BY joined", [key]) }
            apply { memory.setMemberships(of: key, result.rows.compactMap { $0[0] }) }
        case "marker":
            let result = try reader.use { try $0.run("SELECT target, at_ms FROM securechat_read_markers WHERE account = $1", [key]) }
            for row in result.rows {
                if let target = row[0], let time = row[1].flatMap({ Int64($0) }) { _ = memory.setReadMarker(account: key, target: target, time: time) }
            }
        default:
            break
        }
    }

    // MARK: Writing

    /// Stores a batch in one transaction, its statements pipelined, and tells the other nodes
    /// what changed when it commits.
    static func store(_ batch: [HistoryWrite], node: String, _ c: PostgresConnection) throws {
        var pending = [c.query("BEGIN")]
        var changed: Set<String> = []
        func run(_ sql: String, _ parameters: [String?]) { pending.append(c.query(sql, parameters)) }
        for write in batch {
            switch write {
            case let .message(m):
                run("INSERT INTO securechat_history (msgid, at_ms, target, sender, kind, line) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (target, msgid) DO NOTHING",
                    [m.msgid, "\(m.time)", m.target, m.sender, m.kind, m.line])
            case let .lastSeen(account, time):
                run("INSERT INTO securechat_last_seen (account, at_ms) VALUES ($1, $2) ON CONFLICT (account) DO UPDATE SET at_ms = excluded.at_ms",
                    [account, "\(time)"])
            case let .readMarker(account, target, time):
                run("""
                    INSERT INTO securechat_read_markers (account, target, at_ms) VALUES ($1, $2, $3)
                    ON CONFLICT (account, target) DO UPDATE SET at_ms = greatest(securechat_read_markers.at_ms, excluded.at_ms)
                    """, [account, target, "\(time)"])
                changed.insert("marker \(account)")
            case let .room(folded, record?):
                run("""
                    INSERT INTO securechat_rooms (folded, name, topic, topic_by, topic_time, flags, key, room_limit, owner, created, last_used, bans)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                    ON CONFLICT (folded) DO UPDATE SET name = $2, topic = $3, topic_by = $4, topic_time = $5, flags = $6, key = $7,
                      room_limit = $8, owner = $9, created = $10, last_used = $11, bans = $12
                    """,
                    [folded, record.name, record.topic, record.topicBy, "\(record.topicTime)", record.flags, record.key, record.limit.map { "\($0)" },
                     record.owner, "\(record.created)", "\(record.lastUsed)", RoomRecord.Ban.text(of: record.bans)])
                changed.insert("room \(folded)")
            case let .room(folded, nil):
                run("DELETE FROM securechat_rooms WHERE folded = $1", [folded])
                run("DELETE FROM securechat_memberships WHERE folded = $1", [folded])
                run("DELETE FROM securechat_invitations WHERE room = $1", [folded])
                changed.insert("room \(folded)")
            case let .membership(account, room, member):
                if member {
                    run("INSERT INTO securechat_memberships (account, room, folded) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                        [account, room, HistoryMemory.fold(room)])
                } else {
                    run("DELETE FROM securechat_memberships WHERE account = $1 AND folded = $2", [account, HistoryMemory.fold(room)])
                }
                changed.insert("member \(account)")
            case let .purge(retention, now):
                // Every node asks at its start and hourly; one at a time does it (schema 8).
                run("SELECT securechat_purge_history($1, $2, $3)", ["\(retention.days)", "\(retention.messagesPerTarget)", "\(now)"])
            case let .request(.delete(room)):
                run("INSERT INTO securechat_room_requests (action, room) VALUES ('delete', $1)", [room])
            case let .request(.setOwner(room, account)):
                run("INSERT INTO securechat_room_requests (action, room, account) VALUES ('set-owner', $1, $2)", [room, account])
            }
        }
        for change in changed.sorted() {
            run("SELECT pg_notify($1, $2)", [stateChannel, "\(node) \(change)"])
        }
        pending.append(c.query("COMMIT"))
        // Every statement's answer, the first failure kept: after it the transaction is void.
        var failure: Error?
        for future in pending {
            do { _ = try future.wait() } catch { failure = failure ?? error }
        }
        if let failure {
            _ = try? c.run("ROLLBACK")
            throw failure
        }
    }

    public func append(_ message: StoredMessage) { writer.enqueue(.message(message)) }

    public func setLastSeen(_ account: String, time: Int64) { writer.enqueue(.lastSeen(account, time)) }

    public func purge(_ retention: HistoryRetention, now: Date) {
        writer.enqueue(.purge(retention, now: Int64(now.timeIntervalSince1970 * 1000)))
    }

    public func room(_ folded: String) -> RoomRecord? { memory.room(folded) }

    public var rooms: [RoomRecord] { memory.rooms }

    public func saveRoom(_ record: RoomRecord, folded: String) {
        change(.room(folded, record)) { memory.setRoom(folded, record) }
    }

    /// A room's state as another node saved it (it is in the database already): memory only.
    public func remember(_ record: RoomRecord, folded: String) {
        memory.setRoom(folded, record)
    }

    public func deleteRoom(_ folded: String) {
        change(.room(folded, nil)) { memory.setRoom(folded, nil); return true }
    }

    public func memberships(of account: String) -> [String] { memory.memberships(of: account) }

    public func setMembership(account: String, room: String, member: Bool) {
        change(.membership(account, room, member)) { memory.setMembership(account: account, room: room, member: member) }
    }

    public func readMarker(account: String, target: String) -> Int64? { memory.readMarker(account: account, target: target) }

    public func setReadMarker(account: String, target: String, time: Int64) -> Int64 {
        let (now, moved) = memory.setReadMarker(account: account, target: target, time: time)
        if moved { writer.enqueue(.readMarker(account, target, now)) }
        return now
    }

    /// chat-admin's change to a room: made in the database at once, and taken by every running
    /// node within seconds (`takeRoomRequests`).
    public func request(_ request: RoomRequest) {
        request.apply(to: self)
        writer.enqueue(.request(request))
    }

    /// The requests chat-admin made since this node last looked; every node takes each one.
    public func takeRoomRequests() throws -> [RoomRequest] {
        let after = requestCursor.withLockedValue { $0 }
        let result = try reader.use {
            try $0.run("SELECT id, action, room, account FROM securechat_room_requests WHERE id > $1 ORDER BY id", ["\(after)"])
        }
        var found: [RoomRequest] = []
        for row in result.rows {
            if let id = row[0].flatMap({ Int64($0) }) { requestCursor.withLockedValue { $0 = max($0, id) } }
            switch (row[1], row[2], row[3]) {
            case let ("delete", room?, _): found.append(.delete(room))
            case let ("set-owner", room?, account?): found.append(.setOwner(room, account: account))
            default: break
            }
        }
        return found
    }

    public var sequence: Int { writer.sequence }

    public func waitUntilStored(_ sequence: Int, within seconds: Double) { writer.waitUntilStored(sequence, within: seconds) }

    public func waitUntilStored(_ sequence: Int, target: String, within seconds: Double) {
        writer.waitUntilStored(sequence, target: target, within: seconds)
    }

    public func flush() { writer.flush() }

    public func close() {
        writer.close()
        let connection = try? eventLoop.submit { () -> PostgresConnection? in
            self.listener.value.stopped = true
            return self.listener.value.connection
        }.wait()
        if let connection { _ = try? connection.close().wait() }
        reader.close()
    }

    /// Stored messages (tests, chat-admin).
    public func count() throws -> Int {
        Int(try reader.use { try $0.run("SELECT count(*) AS n FROM securechat_history") }.value(0, "n") ?? "0") ?? 0
    }
}

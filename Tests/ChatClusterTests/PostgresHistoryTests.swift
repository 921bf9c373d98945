import ChatHistory
import ChatTesting
import Foundation
import NIOPosix
import Testing
@testable import ChatCluster

/// The cluster's history store answers like SQLite's, and what one node changes (read markers,
/// rooms, who is in them, chat-admin's requests) reaches the others.
@Suite(.enabled(if: postgresPresent), .serialized) struct PostgresHistoryTests {
    static func store(_ node: String, _ database: ThrowawayPostgres) throws -> PostgresHistory {
        try PostgresHistory(settings: PostgresConnectionTests.settings(database), node: node, eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
                            durabilityMilliseconds: 0, follows: true)
    }

    @Test func everyQueryFormTargetsAndRetentionAnswerLikeSQLite() throws {
        let database = try ThrowawayPostgres.start()
        defer { database.stop() }
        let store = try Self.store("a", database)
        defer { store.close() }
        #expect(store.isShared)
        let forms = try HistoryStoreChecks.queryForms(store)
        #expect(forms.isEmpty, "\(forms)")
        #expect(try store.count() == 13)
        // The same message stored twice (two nodes) is kept once.
        store.append(StoredMessage(msgid: "m1", time: 1, target: "#room", sender: "alice", kind: "PRIVMSG", line: "again"))
        store.flush()
        #expect(try store.count() == 13)
        let targets = try HistoryStoreChecks.targets(store)
        #expect(targets.isEmpty, "\(targets)")
        // Last: purging by age empties everything older.
        let retention = try HistoryStoreChecks.retention(store)
        #expect(retention.isEmpty, "\(retention)")
    }

    @Test func whatOneNodeChangesReachesTheOthers() async throws {
        let database = try ThrowawayPostgres.start()
        defer { database.stop() }
        let a = try Self.store("a", database)
        defer { a.close() }
        let b = try Self.store("b", database)
        defer { b.close() }
        #expect(a.setReadMarker(account: "alice", target: "#team", time: 5_000) == 5_000)
        a.setMembership(account: "alice", room: "#Team", member: true)
        a.setMembership(account: "alice", room: "#ops", member: true)
        let record = RoomRecord(name: "#Team", topic: "plans", topicBy: "alice", topicTime: 7, flags: "mnt", key: "sesame", limit: 9, owner: "alice",
                                created: 1, lastUsed: 2, bans: [.init(mask: "*!*@spam", setBy: "alice", setAt: 3)])
        a.saveRoom(record, folded: "#team")
        a.setLastSeen("alice", time: 1_234)
        #expect(await waitUntil(timeout: 30) {
            b.readMarker(account: "alice", target: "#team") == 5_000 && b.memberships(of: "alice") == ["#Team", "#ops"] && b.room("#team") == record
        })
        #expect(try b.lastSeen("alice") == 1_234)
        // A marker only moves forward, whichever node moves it.
        #expect(b.setReadMarker(account: "alice", target: "#team", time: 9_000) == 9_000)
        #expect(await waitUntil(timeout: 30) { a.readMarker(account: "alice", target: "#team") == 9_000 })
        #expect(a.setReadMarker(account: "alice", target: "#team", time: 100) == 9_000)
        b.setMembership(account: "alice", room: "#ops", member: false)
        #expect(await waitUntil(timeout: 30) { a.memberships(of: "alice") == ["#Team"] })
        // chat-admin's request reaches every node once; the room is gone from both.
        #expect(try a.takeRoomRequests().isEmpty && b.takeRoomRequests().isEmpty)
        let admin = try Self.store("chat-admin", database)
        admin.request(.delete("#team"))
        admin.close()
        #expect(try a.takeRoomRequests() == [.delete("#team")])
        #expect(try b.takeRoomRequests() == [.delete("#team")])
        #expect(try a.takeRoomRequests().isEmpty)
        #expect(await waitUntil(timeout: 30) { a.room("#team") == nil && b.room("#team") == nil && b.memberships(of: "alice").isEmpty })
        // A node started now reads the state as it is.
        let c = try Self.store("c", database)
        defer { c.close() }
        #expect(c.readMarker(account: "alice", target: "#team") == 9_000 && c.room("#team") == nil)
    }
}

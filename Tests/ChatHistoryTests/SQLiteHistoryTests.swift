@testable import ChatHistory
import ChatAuth
import ChatTesting
import Foundation
import Testing

func temporaryDatabase() -> String {
    let folder = NSTemporaryDirectory() + "securechat-history-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    return folder + "/history.sqlite"
}

/// The SQLite history store: what goes in comes out in order, every query form, last seen, the
/// file checks, and group commit.
@Suite struct SQLiteHistoryTests {
    func ids(_ messages: [StoredMessage]) -> [String] { messages.map(\.msgid) }

    @Test func aReadWaitsOnlyForItsOwnConversationAndHurriesTheWriter() throws {
        // A group-commit window of ten minutes: nothing is stored unless a read hurries it.
        let store = try SQLiteHistory(path: temporaryDatabase(), durabilityMilliseconds: 600_000)
        defer { store.close() }
        store.append(StoredMessage(msgid: "a1", time: 1_000, target: "#a", sender: "alice", kind: "PRIVMSG", line: ":alice!alice@user/alice PRIVMSG #a :hi"))
        let sequence = store.sequence
        // A read of another conversation does not wait: #a's message is still not stored.
        store.waitUntilStored(sequence, target: "#b", within: 60)
        #expect(try store.query(.latest(target: "#a", after: nil, limit: 10)).isEmpty)
        // A read of #a has it stored at once, well before the window or the time limit ends.
        store.waitUntilStored(sequence, target: "#a", within: 60)
        #expect(ids(try store.query(.latest(target: "#a", after: nil, limit: 10))) == ["a1"])
    }

    @Test func everyQueryFormOldestFirst() throws {
        let store = try SQLiteHistory(path: temporaryDatabase(), durabilityMilliseconds: 0)
        defer { store.close() }
        let differences = try HistoryStoreChecks.queryForms(store)
        #expect(differences.isEmpty, "\(differences)")
        #expect(try store.count() == 13)
    }

    @Test func targetsAndPrivateConversations() throws {
        let store = try SQLiteHistory(path: temporaryDatabase(), durabilityMilliseconds: 0)
        defer { store.close() }
        #expect(HistoryTarget.privateKey("bob", "alice") == "alice,bob" && HistoryTarget.otherParty(of: "alice,bob", for: "bob") == "alice")
        let differences = try HistoryStoreChecks.targets(store)
        #expect(differences.isEmpty, "\(differences)")
    }

    @Test func lastSeenAndReopening() throws {
        let path = temporaryDatabase()
        var store = try SQLiteHistory(path: path, durabilityMilliseconds: 50)
        #expect(try store.lastSeen("alice") == nil)
        store.setLastSeen("alice", time: 42)
        store.setLastSeen("alice", time: 43)
        HistoryStoreChecks.fill(store, count: 3)
        store.close()
        var info = stat()
        stat(path, &info)
        #expect(info.st_mode & 0o777 == 0o600)
        store = try SQLiteHistory(path: path)
        defer { store.close() }
        #expect(try store.lastSeen("alice") == 43)
        #expect(try store.count() == 3)
    }

    @Test func unsafeFilesAreRefusedWithWhatToDo() throws {
        let path = temporaryDatabase()
        try SQLiteHistory(path: path).close()
        chmod(path, 0o644)
        #expect { try SQLiteHistory(path: path) } throws: { "\($0)".contains("can be read by other users (mode 644): refused — run: chmod 600") }
        chmod(path, 0o600)
        let link = path + "-link"
        symlink(path, link)
        #expect { try SQLiteHistory(path: link) } throws: { "\($0)".contains("is a symbolic link: refused") }
        let garbage = temporaryDatabase()
        _ = FileManager.default.createFile(atPath: garbage, contents: Data(repeating: 0x41, count: 8192), attributes: [.posixPermissions: 0o600])
        #expect { try SQLiteHistory(path: garbage) } throws: { "\($0)".contains("is damaged or not a SQLite database") }
    }

    @Test func aVersion2DatabaseIsMigratedAndAQuitIsKeptInEachRoomUnderOneMsgid() throws {
        let path = temporaryDatabase()
        do {
            // The version 2 schema, as an earlier release left it, with a message in it.
            let db = try SQLiteConnection(path: path)
            try db.execute("""
            CREATE TABLE schema_version(version INTEGER NOT NULL); INSERT INTO schema_version VALUES (2);
            CREATE TABLE messages(id INTEGER PRIMARY KEY, msgid TEXT NOT NULL, time INTEGER NOT NULL, target TEXT NOT NULL,
                                  sender TEXT NOT NULL, kind TEXT NOT NULL, line TEXT NOT NULL);
            CREATE UNIQUE INDEX messages_msgid ON messages(msgid);
            CREATE INDEX messages_target_time ON messages(target, time, id);
            CREATE TABLE last_seen(account TEXT PRIMARY KEY, time INTEGER NOT NULL);
            CREATE TABLE read_markers(account TEXT NOT NULL, target TEXT NOT NULL, time INTEGER NOT NULL, PRIMARY KEY(account, target));
            CREATE TABLE rooms(folded TEXT PRIMARY KEY, name TEXT NOT NULL, topic TEXT, topic_by TEXT NOT NULL, topic_time INTEGER NOT NULL,
                               flags TEXT NOT NULL, key TEXT, room_limit INTEGER, owner TEXT, created INTEGER NOT NULL, last_used INTEGER NOT NULL);
            CREATE TABLE memberships(account TEXT NOT NULL, room TEXT NOT NULL, folded TEXT NOT NULL, PRIMARY KEY(account, folded));
            INSERT INTO messages(msgid, time, target, sender, kind, line) VALUES ('old', 1000, '#a', 'bob', 'PRIVMSG', ':bob!bob@user/bob PRIVMSG #a :before');
            """)
        }
        chmod(path, 0o600)
        let store = try SQLiteHistory(path: path, durabilityMilliseconds: 0)
        defer { store.close() }
        for room in ["#a", "#b"] {
            store.append(StoredMessage(msgid: "q1", time: 2000, target: room, sender: "bob", kind: "QUIT", line: ":bob!bob@user/bob QUIT :bye"))
        }
        store.flush()
        #expect(ids(try store.query(.latest(target: "#a", after: nil, limit: 10), events: true)) == ["old", "q1"])
        #expect(ids(try store.query(.latest(target: "#b", after: nil, limit: 10), events: true)) == ["q1"])
        #expect(ids(try store.query(.latest(target: "#a", after: nil, limit: 10))) == ["old"])  // no events unless asked
        var version = ""
        try SQLiteConnection(path: path).query("SELECT version FROM schema_version") { version = $0.text(0) }
        #expect(version == "\(SQLiteHistory.schemaVersion)")
    }

    @Test func aBurstIsStoredInFewTransactions() throws {
        let store = try SQLiteHistory(path: temporaryDatabase(), durabilityMilliseconds: 200)
        defer { store.close() }
        // 2,000 appends from the caller's thread return at once; flush waits for the disk.
        for i in 0..<2000 {
            store.append(StoredMessage(msgid: "b\(i)", time: Int64(i), target: "#burst", sender: "a", kind: "PRIVMSG", line: ":a!a@user/a PRIVMSG #burst :\(i)"))
        }
        store.flush()
        #expect(try store.count() == 2000)
        #expect(try store.query(.latest(target: "#burst", after: nil, limit: 1)).first?.msgid == "b1999")
        #expect(store.commits <= 5, "\(store.commits) transactions for one burst")
    }

    @Test func retentionByAgeAndByCount() throws {
        let store = try SQLiteHistory(path: temporaryDatabase(), durabilityMilliseconds: 0)
        defer { store.close() }
        let differences = try HistoryStoreChecks.retention(store)
        #expect(differences.isEmpty, "\(differences)")
        // Deleting a room's older messages, as chat-admin does.
        #expect(try store.delete(target: "#old", before: 97 * 86_400_000) == 2)
        var exported: [String] = []
        try store.all(target: "#old") { exported.append($0.msgid) }
        #expect(exported == ["d7", "d8", "d9"])
    }
}

/// chat-admin history purge and export, as an operator types them, next to a users file.
@Suite(.serialized) struct ChatAdminHistoryTests {
    @Test func exportAndPurgeARoom() throws {
        let path = temporaryDatabase()
        let folder = (path as NSString).deletingLastPathComponent
        let store = try SQLiteHistory(path: path, durabilityMilliseconds: 0)
        for (i, day) in ["2026-11-01T10:00:00Z", "2026-11-20T10:00:00Z", "2026-12-02T10:00:00Z"].enumerated() {
            store.append(StoredMessage(msgid: "x\(i)", time: Int64(Timestamp.parse(day)!) * 1000 + 7, target: "#lobby", sender: "alice", kind: "PRIVMSG",
                                       line: ":alice!alice@user/alice PRIVMSG #Lobby :said \(i)"))
        }
        store.flush()
        store.close()
        let admin = TestBinaries.path("chat-admin")
        let export = ChildProcess.run([admin, "history", "export", "--room", "Lobby", "--users-file", folder + "/users.json"])
        #expect(export.status == 0, "\(export.output)")
        let lines = export.output.split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(lines.count == 3)
        #expect(lines.first == #"{"account":"alice","kind":"PRIVMSG","line":":alice!alice@user/alice PRIVMSG #Lobby :said 0","msgid":"x0","time":"2026-11-01T10:00:00.007Z"}"#)
        let purge = ChildProcess.run([admin, "history", "purge", "--room", "#lobby", "--before", "2026-12-01", "--users-file", folder + "/users.json"])
        #expect(purge.output.contains("deleted 2 messages of #lobby from before 2026-12-01T00:00:00Z"), "\(purge.output)")
        let bad = ChildProcess.run([admin, "history", "purge", "--room", "#lobby", "--before", "last week", "--users-file", folder + "/users.json"])
        #expect(bad.status == 1 && bad.output.contains("is not a date: use 2026-12-01"))
        let missing = ChildProcess.run([admin, "history", "export", "--room", "x", "--database", folder + "/none.sqlite"])
        #expect(missing.status == 1 && missing.output.contains("no history database at"))
    }
}

import ChatAuth
import ChatSupport
import ChatTesting
import Foundation
import NIOPosix
import Testing
@testable import ChatCluster

@Suite(.enabled(if: postgresPresent), .serialized) struct PostgresAccountStoreTests {
    static func account(_ name: String, hash: String = "$scrypt$ln=4,r=8,p=1$c2FsdA$aGFzaA") -> Account {
        Account(name: name, hash: hash, created: "2026-12-04T10:00:00Z", updated: "2026-12-04T10:00:00Z")
    }

    @Test func accountsAndBansRoundTripAndEveryChangeBumpsTheVersion() throws {
        let server = try ThrowawayPostgres.start()
        defer { server.stop() }
        let store = PostgresAccountStore(settings: PostgresConnectionTests.settings(server))
        defer { store.close() }
        #expect(try store.load() == UsersDatabase())
        let empty = store.version()
        #expect(empty != nil)
        try store.update { database in
            try database.add(Self.account("alice"))
            try database.add(Self.account("Bob"))
            try database.modify("bob") { $0.isOperator = true; $0.certificates = ["ab:cd", "ef:01"] }
        }
        let first = store.version()
        #expect(first != empty)
        let loaded = try store.load()
        #expect(loaded.account(named: "BOB")?.isOperator == true)
        #expect(loaded.account(named: "bob")?.certificates == ["ab:cd", "ef:01"])
        #expect(loaded.account(named: "bob")?.name == "Bob")
        // A second store (another node) sees the same, and its changes reach the first.
        let other = PostgresAccountStore(settings: PostgresConnectionTests.settings(server))
        defer { other.close() }
        #expect(try other.load() == loaded)
        let ban = ServerBan(target: .account("alice"), reason: "spam", setBy: "Bob", created: Date(timeIntervalSince1970: 1_800_000_000), expires: nil)
        try other.update { database in
            try database.remove("bob")
            _ = database.addBan(ban, at: Date())
        }
        #expect(store.version() != first)
        let after = try store.load()
        #expect(after.accounts.map(\.name) == ["alice"])
        #expect(after.bans == [ban])
        // A change that throws writes nothing.
        let before = store.version()
        #expect(throws: UsersFileError.self) { try store.update { database in try database.add(Self.account("carol")); try database.add(Self.account("ALICE")) } }
        #expect(try store.load().account(named: "carol") == nil)
        #expect(store.version() == before)
    }

    @Test func concurrentWritersLoseNothing() async throws {
        let server = try ThrowawayPostgres.start()
        defer { server.stop() }
        let settings = PostgresConnectionTests.settings(server)
        // Two "nodes", 20 accounts each, added one by one at the same time.
        await withTaskGroup(of: Void.self) { group in
            for node in ["a", "b"] {
                group.addTask {
                    await withCheckedContinuation { continuation in
                        Thread.detachNewThread {
                            let store = PostgresAccountStore(settings: settings)
                            for i in 0..<20 { try? store.update { try $0.add(Self.account("\(node)\(i)")) } }
                            store.close()
                            continuation.resume()
                        }
                    }
                }
            }
        }
        let store = PostgresAccountStore(settings: settings)
        defer { store.close() }
        #expect(try store.load().accounts.count == 40)
    }

    @Test func theSchemaIsMigratedOnceAndANewerOneIsRefused() async throws {
        let server = try ThrowawayPostgres.start()
        defer { server.stop() }
        let connection = try await PostgresConnection.connect(PostgresConnectionTests.settings(server), on: MultiThreadedEventLoopGroup.singleton.next()).get()
        try await Task.detached {
            #expect(try ClusterSchema.migrate(connection) == 0)
            #expect(try ClusterSchema.migrate(connection) == ClusterSchema.currentVersion)
            _ = try connection.run("UPDATE securechat_schema SET version = 99")
            do {
                try ClusterSchema.migrate(connection)
                Issue.record("a newer schema was accepted")
            } catch {
                #expect("\(error)".contains("schema version 99"))
            }
        }.value
        try await connection.close().get()
    }

    @Test func anUnreachableDatabaseIsAClearLoadError() {
        let settings = PostgresSettings(host: "127.0.0.1", port: FreePort.loopback(), user: "x", database: "x", security: .disable)
        let store = PostgresAccountStore(settings: settings)
        #expect(store.version() == nil)
        do {
            _ = try store.load()
            Issue.record("loaded from nowhere")
        } catch {
            #expect("\(error)".contains("cannot read accounts in PostgreSQL x@127.0.0.1"))
        }
    }
}

import ChatAuth
import ChatSupport
import ChatTesting
import Foundation
import IRC
import Testing
@testable import ChatServer

/// Finding 10 of issue 13: what an operator does with chat-admin reaches live sessions within a
/// second; and the server refuses a users file that others may change (finding 8).
@Suite struct AccountChangeTests {
    static let people = [alice, bob]

    @Test(arguments: ["lock", "deluser", "passwd"])
    func anOperatorsChangeEndsTheAccountsSessions(_ change: String) async throws {
        let server = try await TestServer.start(accounts: Self.people)
        let clients = try await server.loggedIn([alice, bob], joining: "#r")
        let (a, b) = (clients[0], clients[1])
        let fresh = try PasswordHash.make(password: Password("a new password"), parameters: TestServer.testHashing).phc
        try server.store.update { database in
            switch change {
            case "lock": try database.modify("alice") { $0.locked = true }
            case "deluser": try database.remove("alice")
            default: try database.modify("alice") { $0.hash = fresh }
            }
        }
        let expected = change == "lock" ? "Account locked by the server's operator"
            : change == "deluser" ? "Account deleted by the server's operator" : "Password changed: log in again with the new password"
        #expect(try await a.next("ERROR").parameters == [expected])
        #expect(try await b.next("alice's QUIT") { $0.command == "QUIT" }.parameters == [expected])
        #expect(server.logs.contains("ending the session: \(expected) account=alice"))
        // bob's account did not change: he stays.
        try await b.send("PING still")
        #expect(try await b.next("PONG").parameters.last == "still")
        await server.stop()
    }

    @Test func aUsersFileOthersCanWriteStopsTheServerAtStart() async throws {
        let folder = NSTemporaryDirectory() + "securechat-perm-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let store = UsersStore(path: folder + "/users.json")
        try store.update { try $0.add(Account(name: "alice", hash: "$scrypt$ln=4,r=8,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", created: "t", updated: "t")) }
        chmod(store.path, 0o666)
        let certs = TestServer.certificates
        let configuration = ServerConfiguration(path: folder + "/server.json",
                                                tls: .init(certificateChain: certs.certificatePath, privateKey: certs.keyPath), usersFile: store.path)
        #expect(throws: UsersFileError.writableByOthers(path: store.path, mode: UInt32(S_IFREG | 0o666))) {
            _ = try Server(configuration: configuration, logger: .init(label: "t"), group: .singletonMultiThreadedEventLoopGroup)
        }
    }
}

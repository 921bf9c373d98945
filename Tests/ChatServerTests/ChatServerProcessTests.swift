import ChatSupport
import ChatAuth
import ChatTesting
import Foundation
import Testing

/// The chat-server executable itself: start-up checks, SIGHUP and SIGTERM.
@Suite(.serialized) struct ChatServerProcessTests {
    static var binary: String { TestBinaries.path("chat-server") }

    final class Server: @unchecked Sendable {
        let child: ChildProcess

        init(config: String) throws {
            child = try ChildProcess([ChatServerProcessTests.binary, "--config", config])
        }

        var log: String { child.output }

        func waitForLog(_ text: String, timeout: Double = 20) async -> Bool {
            await waitUntil(timeout: timeout) { log.contains(text) }
        }

        /// The exit status, or nil if the server was still running after `timeout` seconds.
        func exitStatus(timeout: Double = 15) async -> Int32? {
            await child.exitStatus(timeout: timeout)
        }
    }

    func writeConfig(port: Int) throws -> (config: String, folder: String) {
        let folder = NSTemporaryDirectory() + "securechat-process-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let certs = TestServer.certificates
        let config = folder + "/server.json"
        try """
        { "listeners": [ { "host": "127.0.0.1", "port": \(port) } ],
          "tls": { "certificateChain": "\(certs.certificatePath)", "privateKey": "\(certs.keyPath)" },
          "usersFile": "users.json", "passwordHashing": { "ln": 4, "r": 8, "p": 1 } }
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let store = UsersStore(path: folder + "/users.json")
        let hash = try PasswordHash.make(password: Password("alice password"), parameters: TestServer.testHashing)
        try store.update { try $0.add(Account(name: "alice", hash: hash.phc, created: "t", updated: "t")) }
        return (config, folder)
    }

    static func freePort() -> Int { FreePort.loopback() }

    /// Ports for servers in other processes come from below the ephemeral range, where no
    /// outgoing connection can take one before the server binds it, and never twice.
    @Test func freePortsAreOutsideTheEphemeralRangeAndNeverTwice() throws {
        let range = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
        let low = try #require(range.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) })
        let ports = (0..<200).map { _ in FreePort.loopback() }
        #expect(Set(ports).count == ports.count)
        #expect(ports.allSatisfy { $0 >= 1024 && $0 < low }, "\(ports.filter { $0 >= low })")
    }

    @Test func sighupReloadsAndSigtermStopsGracefully() async throws {
        let port = Self.freePort()
        let (config, folder) = try writeConfig(port: port)
        let server = try Server(config: config)
        #expect(await server.waitForLog("listening on 127.0.0.1:\(port)"))
        #expect(await server.waitForLog("users file"))  // the last of the start-up lines
        #expect(server.log.contains("certificate \(TestServer.certificates.certificatePath): CN=localhost"))
        #expect(server.log.contains("users file \(folder)/users.json: 1 accounts"))
        let client = try await TestIRCClient.connect(port: port, caPath: TestServer.certificates.caCertificatePath)
        #expect(try await client.register(account: "alice", password: "alice password").command == "001")

        server.child.signal(SIGHUP)
        #expect(await server.waitForLog("SIGHUP: reloading the users file and the certificate"))
        #expect(await server.waitForLog("reloaded certificate: CN=localhost"))

        let started = Date()
        server.child.signal(SIGTERM)
        #expect(try await client.next("ERROR").parameters == ["Server shutting down"])
        #expect(await client.waitUntilClosed())
        #expect(await server.exitStatus() == 0)
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(server.log.contains("stopped"))
    }

    @Test func badConfigurationStopsAtStartWithOneClearLine() async throws {
        let folder = NSTemporaryDirectory() + "securechat-badconfig-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "{ \"tls\": { \"certificateChain\": \"missing.crt\", \"privateKey\": \"missing.key\" } }".write(toFile: folder + "/server.json", atomically: true, encoding: .utf8)
        let server = try Server(config: folder + "/server.json")
        #expect(await server.exitStatus() == 1)
        #expect(server.log.contains("chat-server: error: certificate chain file \(folder)/missing.crt does not exist"))
    }

    /// Issue 16: `chat-admin room list|show|set-owner|delete` against the database of a running
    /// server, which applies the change to the live room.
    @Test func chatAdminManagesTheRoomsOfARunningServer() async throws {
        let port = Self.freePort()
        let (config, folder) = try writeConfig(port: port)
        let hash = try PasswordHash.make(password: Password("bob password"), parameters: TestServer.testHashing)
        try UsersStore(path: folder + "/users.json").update { try $0.add(Account(name: "bob", hash: hash.phc, created: "t", updated: "t")) }
        let admin = TestBinaries.path("chat-admin")
        func room(_ arguments: String...) -> (status: Int32, output: String) {
            ChildProcess.run([admin, "room"] + arguments + ["--config", config])
        }
        let server = try Server(config: config)
        #expect(await server.waitForLog("listening on"), "\(server.log)")
        let certs = TestServer.certificates
        let a = try await TestIRCClient.connect(port: port, caPath: certs.caCertificatePath)
        #expect(try await a.register(account: "alice", password: "alice password").command == "001")
        let b = try await TestIRCClient.connect(port: port, caPath: certs.caCertificatePath)
        #expect(try await b.register(account: "bob", password: "bob password").command == "001")
        try await a.send("JOIN #Club")
        try await a.next("366")
        try await a.send("TOPIC #Club :weekly")
        try await a.next("TOPIC")
        try await b.send("JOIN #club")
        try await b.next("366")
        // The store writes within its durability window: wait until the listing shows both.
        #expect(await waitUntil(timeout: 20) { room("list").output.contains("#Club\talice\t2\t") }, "\(room("list").output)")
        let shown = room("show", "club")
        #expect(shown.status == 0 && shown.output.contains("owner:    alice") && shown.output.contains("topic:    weekly (set by alice"))
        #expect(shown.output.contains("members:  alice bob") && shown.output.contains("bans:     none"))
        // A new owner: bob is made operator in the live room.
        let handed = room("set-owner", "#club", "Bob")
        #expect(handed.status == 0 && handed.output.contains("#club is now owned by bob"), "\(handed.output)")
        let op = try await b.next("MODE +o bob", timeout: 20) { $0.command == "MODE" && $0.parameters == ["#Club", "+o", "bob"] }
        #expect(op.source == "localhost")
        #expect(room("show", "club").output.contains("owner:    bob"))
        // Deleted: both are removed from the live room, and it is no longer kept.
        #expect(room("delete", "club").status == 0)
        let kicked = try await a.next("KICK", timeout: 20)
        #expect(kicked.parameters.first == "#Club" && kicked.parameters.last == "Room deleted by the server's administrator")
        #expect(await waitUntil(timeout: 20) { room("list").output.contains("no rooms kept") }, "\(room("list").output)")
        let missing = room("show", "nowhere")
        #expect(missing.status == 1 && missing.output.contains("no room #nowhere is kept — `chat-admin room list` shows the rooms"))
        #expect(room("set-owner", "club", "nobody").output.contains("nobody"))
        server.child.signal(SIGTERM)
        #expect(await server.exitStatus() == 0)
        #expect(server.log.contains("room deleted with chat-admin"))
    }

    /// Issue 16: SIGKILL in the middle of a message storm. Every message the database had
    /// committed before the kill is there afterwards, the database passes SQLite's integrity
    /// check, and the server starts on it again. Read with the `sqlite3` tool (apt-get install
    /// sqlite3), as an operator would.
    @Test func sigkillDuringAStormKeepsWhatWasCommittedAndTheDatabaseWhole() async throws {
        let port = Self.freePort()
        let (_, folder) = try writeConfig(port: port)
        let config = folder + "/storm.json"
        let certs = TestServer.certificates
        try """
        { "listeners": [ { "host": "127.0.0.1", "port": \(port) } ],
          "tls": { "certificateChain": "\(certs.certificatePath)", "privateKey": "\(certs.keyPath)" },
          "usersFile": "users.json", "passwordHashing": { "ln": 4, "r": 8, "p": 1 },
          "limits": { "messagesPerSecond": 100000, "messageBurst": 100000 },
          "history": { "durabilityMilliseconds": 100 } }
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let database = folder + "/history.sqlite"
        func sql(_ query: String) -> String {
            ChildProcess.run(["sqlite3", "-readonly", database, query]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let server = try Server(config: config)
        #expect(await server.waitForLog("listening on"), "\(server.log)")
        let a = try await TestIRCClient.connect(port: port, caPath: certs.caCertificatePath)
        #expect(try await a.register(account: "alice", password: "alice password", capabilities: ["echo-message"]).command == "001")
        try await a.send("JOIN #storm")
        try await a.next("366")
        for i in 1...300 { try await a.send("PRIVMSG #storm :m\(i)") }
        _ = try await a.next("the echo of the 300th", timeout: 30) { $0.command == "PRIVMSG" && $0.parameters.last == "m300" }
        // Delivered; committed once the writer's window has passed: wait for the database to say so.
        #expect(await waitUntil(timeout: 30) { sql("SELECT count(*) FROM messages WHERE kind = 'PRIVMSG'") == "300" }, "stored: \(sql("SELECT count(*) FROM messages WHERE kind = 'PRIVMSG'"))")
        // A second storm, killed in the middle.
        for i in 301...800 { try? await a.send("PRIVMSG #storm :m\(i)") }
        server.child.signal(SIGKILL)
        _ = await server.exitStatus()
        #expect(sql("PRAGMA integrity_check") == "ok")
        let kept = Int(sql("SELECT count(*) FROM messages WHERE kind = 'PRIVMSG'")) ?? 0
        #expect(kept >= 300 && kept <= 800, "kept \(kept)")
        #expect(sql("SELECT count(*) FROM messages WHERE line LIKE '% #storm m300'") == "1")
        // And the server starts on it again.
        let again = try Server(config: config)
        #expect(await again.waitForLog("history in"), "\(again.log)")
        again.child.signal(SIGTERM)
        _ = await again.exitStatus()
    }
}

import ChatAuth
import ChatSupport
import ChatTesting
import Foundation
import NIOPosix
import Testing
@testable import ChatCluster

/// chat-server processes as nodes of one cluster, and chat-admin against its database.
@Suite(.enabled(if: postgresPresent), .serialized) struct ClusterNodesTests {
    /// A folder with a node config per name, all on `server`, and the password file they share.
    struct Cluster {
        let folder: String
        let server: ThrowawayPostgres

        init(server: ThrowawayPostgres) throws {
            self.server = server
            folder = NSTemporaryDirectory() + "securechat-cluster-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try (server.password + "\n").write(toFile: folder + "/pg-password", atomically: true, encoding: .utf8)
            chmod(folder + "/pg-password", 0o600)
        }

        /// Writes NODE.json for a node listening on `port`; returns its path.
        func config(node: String, port: Int, heartbeat: String = "", history: Bool = false, host: String = "127.0.0.1") throws -> String {
            let certs = TestServer.certificates
            let path = folder + "/\(node).json"
            try """
            { "listeners": [ { "host": "\(host)", "port": \(port) } ],
              "tls": { "certificateChain": "\(certs.certificatePath)", "privateKey": "\(certs.keyPath)" },
              "usersFile": "users-\(node).json", "history": { "enabled": \(history) },
              "passwordHashing": { "ln": 4, "r": 8, "p": 1 },
              "cluster": { "node": "\(node)", "database": "postgresql://\(server.user)@127.0.0.1:\(server.port)/postgres",
                           "tls": "disable", "passwordFile": "pg-password"\(heartbeat) } }
            """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
    }

    static func admin(_ arguments: [String], input: String? = nil) -> (status: Int32, output: String) {
        do {
            let child = try ChildProcess([TestBinaries.path("chat-admin")] + arguments, input: true)
            if let input { child.write(input) }
            child.closeInput()
            let status = child.finish(timeout: 60)
            return (status, child.output)
        } catch {
            return (-1, "\(error)")
        }
    }

    static func startNode(_ config: String) async throws -> ChildProcess {
        let node = try ChildProcess([TestBinaries.path("chat-server"), "--config", config])
        let started = await waitUntil(timeout: 60) { node.output.contains("listening on") || node.status != nil }
        #expect(started && node.status == nil, "\(node.output)")
        return node
    }

    /// A users file moved in with `chat-admin users import`, accounts added with chat-admin on
    /// one node's config: every node logs them in, and a lock made through one node's config
    /// ends the session on another.
    @Test func accountsAreSharedByEveryNode() async throws {
        let server = try ThrowawayPostgres.start()
        defer { server.stop() }
        let cluster = try Cluster(server: server)
        let (portA, portB) = (FreePort.loopback(), FreePort.loopback())
        let configA = try cluster.config(node: "a", port: portA)
        let configB = try cluster.config(node: "b", port: portB)

        // A single server's users file, moved into the cluster.
        let hash = try PasswordHash.make(password: Password("alice password"), parameters: TestServer.testHashing)
        try UsersStore(path: cluster.folder + "/old-users.json").update { try $0.add(Account(name: "alice", hash: hash.phc, created: "t", updated: "t")) }
        let imported = Self.admin(["users", "import", cluster.folder + "/old-users.json", "--config", configA])
        #expect(imported.status == 0, "\(imported.output)")
        #expect(imported.output.contains("imported 1 accounts and 0 bans"))
        #expect(Self.admin(["users", "import", cluster.folder + "/old-users.json", "--config", configB]).output.contains("already exists"))

        let a = try await Self.startNode(configA)
        defer { a.signal(SIGTERM); a.finish() }
        let b = try await Self.startNode(configB)
        defer { b.signal(SIGTERM); b.finish() }
        #expect(a.output.contains("cluster node a: accounts in PostgreSQL"))

        // bob is added through node a's config, while both nodes run.
        let added = Self.admin(["adduser", "bob", "--config", configA, "--password-stdin"], input: "bob password\n")
        #expect(added.status == 0, "\(added.output)")
        let ca = TestServer.certificates.caCertificatePath
        let bobOnB = try await TestIRCClient.connect(port: portB, caPath: ca)
        #expect(try await bobOnB.register(account: "bob", password: "bob password").command == "001")
        let aliceOnA = try await TestIRCClient.connect(port: portA, caPath: ca)
        #expect(try await aliceOnA.register(account: "alice", password: "alice password").command == "001")
        let wrong = try await TestIRCClient.connect(port: portB, caPath: ca)
        #expect(try await wrong.register(account: "alice", password: "not her password").command == "ERROR")
        #expect(wrong.received.contains { $0.command == "904" })

        // Locked through node b's config: node a notices and ends alice's session.
        let locked = Self.admin(["lock", "alice", "--config", configB])
        #expect(locked.status == 0, "\(locked.output)")
        let error = try await aliceOnA.next("ERROR")
        #expect(error.parameters.last?.contains("locked") == true)
        let listed = Self.admin(["list", "--config", configB])
        #expect(listed.output.contains("alice") && listed.output.contains("bob"), "\(listed.output)")
    }

    /// Three nodes on their own loopback addresses (127.0.0.2, .3 and .4) behave for their
    /// clients like one server: a room and private messages across all three, NAMES and WHOIS
    /// of every node, history asked on one node of what was said on the others, one login per
    /// account, and a node killed with SIGKILL seen to go by the other two.
    @Test func threeNodesOnTheirOwnAddressesBehaveLikeOneServer() async throws {
        let server = try ThrowawayPostgres.start()
        defer { server.stop() }
        let cluster = try Cluster(server: server)
        let hash = try PasswordHash.make(password: Password("pw-12345678"), parameters: TestServer.testHashing).phc
        try PostgresAccountStore(settings: PostgresConnectionTests.settings(server)).update { users in
            for name in ["alice", "bob", "carol"] { try users.add(Account(name: name, hash: hash, created: "t", updated: "t")) }
        }
        let heartbeat = #", "heartbeatSeconds": 0.2, "heartbeatTimeoutSeconds": 1"#
        let hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        let ports = hosts.map { _ in FreePort.loopback() }
        var nodes: [ChildProcess] = []
        for (i, name) in ["n2", "n3", "n4"].enumerated() {
            nodes.append(try await Self.startNode(try cluster.config(node: name, port: ports[i], heartbeat: heartbeat, history: true, host: hosts[i])))
        }
        defer { for node in nodes { node.signal(SIGTERM); node.finish() } }
        let ca = TestServer.certificates.caCertificatePath
        var clients: [TestIRCClient] = []
        for (i, name) in ["alice", "bob", "carol"].enumerated() {
            let client = try await TestIRCClient.connect(host: hosts[i], port: ports[i], caPath: ca)
            #expect(try await client.register(account: name, password: "pw-12345678", capabilities: ["draft/chathistory", "batch", "server-time"]).command == "001")
            try await client.send("JOIN #all")
            _ = try await client.next("366")
            clients.append(client)
        }
        let (alice, bob, carol) = (clients[0], clients[1], clients[2])
        // Who is logged in where, as operators see it (written with each heartbeat).
        let sql = try await PostgresConnection.connect(PostgresConnectionTests.settings(server), on: MultiThreadedEventLoopGroup.singleton.next()).get()
        defer { _ = sql.close() }
        // (Each check waits for the next heartbeat to write the change.)
        func sessions() async -> String {
            let rows = (try? await sql.query("SELECT account, node FROM securechat_sessions ORDER BY account").get().rows) ?? []
            return rows.map { "\($0[0] ?? "")@\($0[1] ?? "")" }.joined(separator: " ")
        }
        #expect(await waitUntil(timeout: 30) { await sessions() == "alice@n2 bob@n3 carol@n4" })
        // Everyone sees everyone's join, then a message from each node reaches the other two.
        _ = try await alice.next("carol's join") { $0.command == "JOIN" && $0.source?.hasPrefix("carol!") == true }
        for (sender, text) in [(alice, "from n2"), (bob, "from n3"), (carol, "from n4")] {
            try await sender.send("PRIVMSG #all :\(text)")
            for receiver in clients where receiver !== sender {
                _ = try await receiver.next(text) { $0.command == "PRIVMSG" && $0.parameters == ["#all", text] }
            }
        }
        try await bob.send("PRIVMSG carol :just for you")
        _ = try await carol.next("bob's private message") { $0.command == "PRIVMSG" && $0.parameters == ["carol", "just for you"] }
        try await carol.send("NAMES #all")
        let names = try await carol.next("353").parameters.last?.split(separator: " ").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "@+")) }
        #expect(names?.sorted() == ["alice", "bob", "carol"])
        try await carol.send("WHOIS alice")
        #expect(try await carol.next("311").parameters.prefix(2) == ["carol", "alice"])
        // History asked on n4: what was said on n2 and n3.
        try await carol.send("CHATHISTORY LATEST #all * 10")
        _ = try await carol.next("BATCH")
        var said: [String] = []
        while said.count < 3 { said.append(try await carol.next("PRIVMSG").parameters.last ?? "") }
        #expect(said == ["from n2", "from n3", "from n4"])
        // alice logs in again on n4: her session on n2 ends, and the room sees one alice.
        let again = try await TestIRCClient.connect(host: hosts[2], port: ports[2], caPath: ca)
        #expect(try await again.register(account: "alice", password: "pw-12345678").command == "001")
        _ = try await alice.next("ERROR")
        _ = try await bob.next("alice's old session quits") { $0.command == "QUIT" && $0.source?.hasPrefix("alice!") == true }
        #expect(await waitUntil(timeout: 30) { await sessions() == "alice@n4 bob@n3 carol@n4" })
        // n3 is killed: alice (now on n4) and carol see bob go.
        nodes[1].signal(SIGKILL)
        nodes[1].finish()
        let quit = try await carol.next("bob's quit") { $0.command == "QUIT" && $0.source?.hasPrefix("bob!") == true }
        #expect(quit.parameters.last == "Node n3 lost")
        #expect(await waitUntil(timeout: 30) { await sessions() == "alice@n4 carol@n4" })
    }

    /// chat-admin room and history, given either node's config, act on the cluster's database:
    /// both nodes see the rooms' owners and members, and a new owner or a deleted room reaches
    /// the live rooms on every node.
    @Test func chatAdminRoomsAndHistoryActOnTheWholeCluster() async throws {
        let server = try ThrowawayPostgres.start()
        defer { server.stop() }
        let cluster = try Cluster(server: server)
        let (portA, portB) = (FreePort.loopback(), FreePort.loopback())
        let configA = try cluster.config(node: "a", port: portA, history: true)
        let configB = try cluster.config(node: "b", port: portB, history: true)
        let hashes = try ["alice", "bob"].map { ($0, try PasswordHash.make(password: Password("\($0) password"), parameters: TestServer.testHashing).phc) }
        try PostgresAccountStore(settings: PostgresConnectionTests.settings(server)).update { users in
            for (name, hash) in hashes { try users.add(Account(name: name, hash: hash, created: "t", updated: "t")) }
        }
        let a = try await Self.startNode(configA)
        defer { a.signal(SIGTERM); a.finish() }
        let b = try await Self.startNode(configB)
        defer { b.signal(SIGTERM); b.finish() }
        #expect(a.output.contains("history in PostgreSQL"), "\(a.output)")
        let ca = TestServer.certificates.caCertificatePath
        let alice = try await TestIRCClient.connect(port: portA, caPath: ca)
        #expect(try await alice.register(account: "alice", password: "alice password").command == "001")
        let bob = try await TestIRCClient.connect(port: portB, caPath: ca)
        #expect(try await bob.register(account: "bob", password: "bob password").command == "001")
        func admin(_ arguments: String...) -> (status: Int32, output: String) { Self.admin(arguments) }
        try await alice.send("JOIN #Club")
        _ = try await alice.next("366")
        // alice's room is in the database (and its claim went before it) before bob joins on
        // node b: alice owns it whichever node bob's join finds it on.
        #expect(await waitUntil(timeout: 30) { admin("room", "list", "--config", configB).output.contains("#Club\talice\t1\t") })
        try await bob.send("JOIN #club")
        _ = try await bob.next("366")
        try await alice.send("PRIVMSG #club :hello from a")
        _ = try await bob.next("alice's message") { $0.command == "PRIVMSG" }
        // Listed through node b's config: alice's room, both members, the message said on node a
        // and the two joins (kept for event playback).
        #expect(await waitUntil(timeout: 30) { admin("room", "list", "--config", configB).output.contains("#Club\talice\t2\t3\t") },
                "\(admin("room", "list", "--config", configB).output)")
        let exported = admin("history", "export", "--room", "club", "--config", configB)
        #expect(exported.status == 0 && exported.output.contains("hello from a"), "\(exported.output)")
        // Handed to bob through node a's config: bob, on node b, is made operator there.
        #expect(admin("room", "set-owner", "#club", "bob", "--config", configA).status == 0)
        _ = try await bob.next("MODE +o bob", timeout: 30) { $0.command == "MODE" && $0.parameters == ["#Club", "+o", "bob"] }
        // Deleted: the members on both nodes are removed.
        #expect(admin("room", "delete", "club", "--config", configB).status == 0)
        for client in [alice, bob] {
            let kicked = try await client.next("KICK", timeout: 30) { $0.command == "KICK" }
            #expect(kicked.parameters.last == "Room deleted by the server's administrator")
        }
        #expect(admin("room", "list", "--config", configA).output.contains("no rooms kept"))
        // Older messages deleted through either config are gone for both.
        let purged = admin("history", "purge", "--room", "club", "--before", "2100-01-01", "--config", configA)
        #expect(purged.output.contains("deleted 3 messages of #club"), "\(purged.output)")
        let empty = admin("history", "export", "--room", "club", "--config", configB)
        #expect(empty.output.contains("exported 0 messages of #club"), "\(empty.output)")
    }

    /// A node's name is its own while it lives: a second node under that name is refused at
    /// start; a node killed with SIGKILL frees it at once (its connection, and the lock on the
    /// name, die with it); a clean stop removes the node's row.
    @Test func nodeNamesAreUniqueAmongLiveNodes() async throws {
        let server = try ThrowawayPostgres.start()
        defer { server.stop() }
        let cluster = try Cluster(server: server)
        let first = try await Self.startNode(try cluster.config(node: "a", port: FreePort.loopback()))
        let twin = try ChildProcess([TestBinaries.path("chat-server"), "--config", try cluster.config(node: "a", port: FreePort.loopback())])
        #expect(await twin.exitStatus(timeout: 60) == 1)
        #expect(twin.output.contains("another node named 'a' is running"), "\(twin.output)")

        let connection = try await PostgresConnection.connect(PostgresConnectionTests.settings(server), on: MultiThreadedEventLoopGroup.singleton.next()).get()
        func nodes() async throws -> [String] {
            try await connection.query("SELECT name FROM securechat_nodes ORDER BY name").get().rows.map { $0[0] ?? "" }
        }
        #expect(try await nodes() == ["a"])
        first.signal(SIGKILL)
        first.finish()
        let again = try await Self.startNode(try cluster.config(node: "a", port: FreePort.loopback()))
        let b = try await Self.startNode(try cluster.config(node: "b", port: FreePort.loopback()))
        #expect(try await nodes() == ["a", "b"])
        b.signal(SIGTERM)
        #expect(b.finish(timeout: 30) == 0)
        #expect(try await nodes() == ["a"])
        again.signal(SIGTERM)
        again.finish()
        try await connection.close().get()
    }

    /// A node killed with SIGKILL: the others notice within the heartbeat timeout, and its
    /// users' rooms see them quit.
    @Test func aDeadNodesUsersAreShownAsGone() async throws {
        let server = try ThrowawayPostgres.start()
        defer { server.stop() }
        let cluster = try Cluster(server: server)
        let hash = try PasswordHash.make(password: Password("pw-12345678"), parameters: TestServer.testHashing)
        try UsersStore(path: cluster.folder + "/old-users.json").update {
            try $0.add(Account(name: "alice", hash: hash.phc, created: "t", updated: "t"))
            try $0.add(Account(name: "bob", hash: hash.phc, created: "t", updated: "t"))
        }
        let heartbeat = #", "heartbeatSeconds": 0.2, "heartbeatTimeoutSeconds": 1"#
        let (portA, portB) = (FreePort.loopback(), FreePort.loopback())
        let configA = try cluster.config(node: "a", port: portA, heartbeat: heartbeat)
        #expect(Self.admin(["users", "import", cluster.folder + "/old-users.json", "--config", configA]).status == 0)
        let a = try await Self.startNode(configA)
        defer { a.signal(SIGTERM); a.finish() }
        let b = try await Self.startNode(try cluster.config(node: "b", port: portB, heartbeat: heartbeat))
        let ca = TestServer.certificates.caCertificatePath
        let alice = try await TestIRCClient.connect(port: portA, caPath: ca)
        #expect(try await alice.register(account: "alice", password: "pw-12345678").command == "001")
        let bob = try await TestIRCClient.connect(port: portB, caPath: ca)
        #expect(try await bob.register(account: "bob", password: "pw-12345678").command == "001")
        try await alice.send("JOIN #team")
        _ = try await alice.next("366")
        try await bob.send("JOIN #team")
        _ = try await alice.next("JOIN")
        b.signal(SIGKILL)
        b.finish()
        let quit = try await alice.next("QUIT")
        #expect(quit.source?.hasPrefix("bob!") == true)
        #expect(quit.parameters.last == "Node b lost")
        #expect(a.output.contains("node b stopped answering"), "\(a.output)")
    }

    @Test func aNodeThatCannotReachTheDatabaseDoesNotStart() async throws {
        let server = try ThrowawayPostgres.start()
        let cluster = try Cluster(server: server)
        let config = try cluster.config(node: "a", port: FreePort.loopback())
        server.stop()
        let node = try ChildProcess([TestBinaries.path("chat-server"), "--config", config])
        #expect(await node.exitStatus(timeout: 60) == 1)
        #expect(node.output.contains("cannot read accounts in PostgreSQL"), "\(node.output)")
    }
}

import ChatAuth
import ChatHistory
@testable import ChatServer
import ChatSupport
import ChatTesting
import Foundation
import IRC
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import ChatCluster

/// Nodes in one process, on one PostgreSQL: what their clients see of each other.
@Suite(.enabled(if: postgresPresent), .serialized) struct ClusterMessagingTests {
    static let accounts = [("alice", "alice password"), ("bob", "bob password"), ("carol", "carol password"), ("dave", "dave password")]

    static func node(_ name: String, _ database: ThrowawayPostgres) async throws -> TestServer {
        try await TestServer.start(accounts: accounts) { configuration in
            configuration.cluster = ClusterSettings(node: name, postgres: PostgresConnectionTests.settings(database))
        }
    }

    static func client(_ account: String, on node: TestServer) async throws -> TestIRCClient {
        let client = try await TestIRCClient.connect(port: node.port, caPath: TestServer.certificates.caCertificatePath)
        let welcome = try await client.register(account: account, password: account + " password", capabilities: ["echo-message", "message-tags", "server-time"])
        #expect(welcome.command == "001")
        return client
    }

    /// Room messages from senders on two nodes reach members on both, and every member sees
    /// them in the same order, with the same msgid and time.
    @Test func roomMessagesCrossNodesInOneOrder() async throws {
        let database = try ThrowawayPostgres.start()
        defer { database.stop() }
        let a = try await Self.node("a", database)
        let b = try await Self.node("b", database)
        let alice = try await Self.client("alice", on: a)
        let carol = try await Self.client("carol", on: a)
        let bob = try await Self.client("bob", on: b)
        for client in [alice, carol, bob] {
            try await client.send("JOIN #team")
            _ = try await client.next("366")
        }
        let perSender = 40
        async let fromAlice: Void = { for i in 0..<perSender { try await alice.send("PRIVMSG #team :alice \(i)") } }()
        async let fromBob: Void = { for i in 0..<perSender { try await bob.send("PRIVMSG #team :bob \(i)") } }()
        _ = try await (fromAlice, fromBob)

        func messages(_ client: TestIRCClient) async -> [IRCMessage] {
            _ = await waitUntil(timeout: 60) { client.received.filter { $0.command == "PRIVMSG" }.count >= 2 * perSender }
            return client.received.filter { $0.command == "PRIVMSG" }
        }
        let seen = [await messages(alice), await messages(carol), await messages(bob)]
        for list in seen { #expect(list.count == 2 * perSender) }
        func key(_ m: IRCMessage) -> String {
            "\(m.tags.first { $0.key == "msgid" }?.value ?? "?") \(m.tags.first { $0.key == "time" }?.value ?? "?") \(m.parameters.last ?? "")"
        }
        #expect(seen[0].map(key) == seen[1].map(key))
        #expect(seen[0].map(key) == seen[2].map(key))
        // Each sender's own messages keep their order.
        let texts = seen[2].map { $0.parameters.last ?? "" }
        #expect(texts.filter { $0.hasPrefix("alice") } == (0..<perSender).map { "alice \($0)" })
        #expect(texts.filter { $0.hasPrefix("bob") } == (0..<perSender).map { "bob \($0)" })
        await a.stop()
        await b.stop()
    }

    /// Joins, parts, quits, NAMES, WHO, WHOIS, ISON and private messages see users of every node.
    @Test func presenceAndPrivateMessagesCrossNodes() async throws {
        let database = try ThrowawayPostgres.start()
        defer { database.stop() }
        let a = try await Self.node("a", database)
        let b = try await Self.node("b", database)
        let alice = try await Self.client("alice", on: a)
        let bob = try await Self.client("bob", on: b)
        try await alice.send("JOIN #team")
        _ = try await alice.next("366")
        // Node b learns of alice's join from the database, a moment later.
        #expect(await waitUntil(timeout: 30) { b.server.core.cluster?.presence.rooms(of: "alice").contains("#team") == true })
        try await bob.send("JOIN #team")
        _ = try await bob.next("366")
        // alice sees bob arrive, and both see each other in NAMES.
        let join = try await alice.next("JOIN")
        #expect(join.source?.hasPrefix("bob!") == true && join.parameters.first == "#team")
        #expect(bob.received.contains { $0.command == "353" && $0.parameters.last?.split(separator: " ").contains { $0.hasSuffix("alice") } == true })
        try await alice.send("NAMES #team")
        let names = try await alice.next("353")
        #expect(names.parameters.last?.split(separator: " ").map { String($0).trimmingCharacters(in: CharacterSet(charactersIn: "@+")) }.sorted() == ["alice", "bob"])
        try await alice.send("WHOIS bob")
        let server = try await alice.next("312")
        #expect(server.parameters[2] == "b")
        try await alice.send("ISON bob carol")
        #expect(try await alice.next("303").parameters.last == "bob")
        try await alice.send("WHO #team")
        let who = try await alice.next("315")
        #expect(alice.received.filter { $0.command == "352" }.map { $0.parameters[5] }.sorted() == ["alice", "bob"], "\(who)")
        // Private messages, both ways.
        try await alice.send("PRIVMSG bob :hello from a")
        let pm = try await bob.next("PRIVMSG")
        #expect(pm.parameters == ["bob", "hello from a"] && pm.source?.hasPrefix("alice!") == true)
        try await bob.send("PRIVMSG alice :hello from b")
        let reply = try await alice.next("bob's message") { $0.command == "PRIVMSG" && $0.source?.hasPrefix("bob!") == true }
        #expect(reply.parameters == ["alice", "hello from b"])
        #expect(alice.received.contains { $0.command == "PRIVMSG" && $0.parameters == ["bob", "hello from a"] })  // her echo
        // AWAY, across nodes: in WHOIS, in answer to a private message.
        try await bob.send("AWAY :at lunch")
        _ = try await bob.next("306")
        #expect(await waitUntil(timeout: 30) { a.server.core.cluster?.presence.user(named: "bob")?.away == "at lunch" })
        try await alice.send("WHOIS bob")
        #expect(try await alice.next("301").parameters.last == "at lunch")
        try await alice.send("PRIVMSG bob :are you there?")
        #expect(try await alice.next("301").parameters.last == "at lunch")
        try await bob.send("AWAY")
        _ = try await bob.next("305")
        // Leaving is seen too.
        try await bob.send("PART #team :bye")
        #expect(try await alice.next("PART").parameters == ["#team", "bye"])
        try await bob.send("JOIN #team")
        _ = try await alice.next("JOIN")
        try await bob.send("QUIT :gone home")
        let quit = try await alice.next("QUIT")
        #expect(quit.source?.hasPrefix("bob!") == true && quit.parameters.last?.contains("gone home") == true)
        try await alice.send("ISON bob")
        _ = await waitUntil(timeout: 30) { alice.received.last { $0.command == "303" }?.parameters.last == "" }
        #expect(alice.received.last { $0.command == "303" }?.parameters.last == "")
        await a.stop()
        await b.stop()
    }

    /// One login per account across the cluster: a login on node b ends the session on node a,
    /// whose rooms see it go; a node started later learns who is already there.
    @Test func aLoginOnAnotherNodeReplacesTheSessionAndNewNodesLearnWhoIsThere() async throws {
        let database = try ThrowawayPostgres.start()
        defer { database.stop() }
        let a = try await Self.node("a", database)
        let b = try await Self.node("b", database)
        let alice = try await Self.client("alice", on: a)
        let carol = try await Self.client("carol", on: b)
        for client in [alice, carol] {
            try await client.send("JOIN #team")
            _ = try await client.next("366")
        }
        _ = try await alice.next("JOIN")  // carol's
        let again = try await Self.client("alice", on: b)
        let error = try await alice.next("ERROR")
        #expect(error.parameters.last?.contains("logged in from another connection") == true)
        #expect(await alice.waitUntilClosed())
        _ = try await carol.next("QUIT")
        // The new session on b is the one that counts, there and on a.
        try await again.send("JOIN #team")
        _ = try await again.next("366")
        let c = try await Self.node("c", database)
        let bob = try await Self.client("bob", on: c)
        #expect(await waitUntil(timeout: 30) {
            let presence = c.server.core.cluster?.presence
            return presence?.rooms(of: "alice").contains("#team") == true && presence?.rooms(of: "carol").contains("#team") == true
        })
        try await bob.send("JOIN #team")
        _ = try await bob.next("366")
        let names = bob.received.filter { $0.command == "353" }.flatMap { $0.parameters.last?.split(separator: " ").map { String($0).trimmingCharacters(in: CharacterSet(charactersIn: "@+")) } ?? [] }
        #expect(Set(names) == ["alice", "bob", "carol"])
        #expect(c.server.core.cluster?.presence.user(named: "alice")?.node == "b")
        await a.stop()
        await b.stop()
        await c.stop()
    }

    /// PostgreSQL stopped and started during a stream of messages: every message its sender was
    /// not told had failed reaches the other node, once, in order; those sent while it was away
    /// get FAIL (never silence).
    @Test func theDatabaseRestartingLosesNoCommittedMessage() async throws {
        let database = try ThrowawayPostgres.start()
        defer { database.stop() }
        let a = try await Self.node("a", database)
        let b = try await Self.node("b", database)
        let alice = try await Self.client("alice", on: a)
        let bob = try await Self.client("bob", on: b)
        for client in [alice, bob] {
            try await client.send("JOIN #team")
            _ = try await client.next("366")
        }
        _ = try await alice.next("JOIN")
        func blocking(_ work: @escaping @Sendable () throws -> Void) async throws {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
            }
        }
        let total = 60
        var failed: Set<String> = []
        for i in 0..<total {
            if i == 20 {
                try await blocking { database.pause() }
                // Everyone on the node is told, and new logins are refused with the reason.
                let notice = try await alice.next("the notice of the lost database") { $0.command == "NOTICE" && $0.parameters.last?.contains("lost its database") == true }
                #expect(notice.parameters.last?.contains("refused until it is back") == true)
                let carol = try await TestIRCClient.connect(port: a.port, caPath: TestServer.certificates.caCertificatePath)
                // The server closes at once: the client's CAP END may find the connection gone.
                _ = try? await carol.register(account: "carol", password: "carol password")
                #expect(await carol.waitUntilClosed())
                #expect(carol.received.contains { $0.command == "904" && $0.parameters.last?.contains("cannot reach its database") == true })
            }
            if i == 30 { try await blocking { try database.resume() } }
            let text = "m\(i)"
            try await alice.send("PRIVMSG #team :\(text)")
            // Each message comes back (echo-message) or is refused with FAIL.
            let answer = try await alice.next("the echo of \(text) or FAIL") {
                ($0.command == "PRIVMSG" && $0.parameters.last == text) || $0.command == "FAIL"
            }
            if answer.command == "FAIL" {
                #expect(answer.parameters.prefix(2) == ["PRIVMSG", "CANNOT_SEND"])
                failed.insert(text)
            }
        }
        #expect(await waitUntil(timeout: 60) { alice.received.contains { $0.command == "NOTICE" && $0.parameters.last?.contains("database is back") == true } })
        #expect(failed.count >= 1 && failed.count <= 20, "\(failed.sorted()) \(a.logs.all.filter { $0.contains("cluster") }.suffix(5))")
        let expected = (0..<total).map { "m\($0)" }.filter { !failed.contains($0) }
        let arrived = await waitUntil(timeout: 60) {
            Set(bob.received.filter { $0.command == "PRIVMSG" }.compactMap(\.parameters.last)).isSuperset(of: expected)
        }
        #expect(arrived)
        let seen = bob.received.filter { $0.command == "PRIVMSG" }.compactMap(\.parameters.last)
        #expect(seen.count == Set(seen).count, "a message arrived twice")
        // In the order sent (one that failed at the sender may still have been committed).
        #expect(seen.compactMap { Int($0.dropFirst()) } == seen.compactMap { Int($0.dropFirst()) }.sorted())
        await a.stop()
        await b.stop()
    }

    /// The nodes share one history in PostgreSQL: history asked on one node shows what was said on
    /// another, a message to someone offline reaches them on any node, each message is stored once,
    /// and a user's rooms and read markers follow them from node to node.
    @Test func theNodesShareOneHistory() async throws {
        let database = try ThrowawayPostgres.start()
        defer { database.stop() }
        let a = try await Self.node("a", database)
        let b = try await Self.node("b", database)
        let alice = try await Self.client("alice", on: a)
        let bob = try await Self.client("bob", on: b)
        for client in [alice, bob] {
            try await client.send("JOIN #team")
            _ = try await client.next("366")
        }
        try await alice.send("PRIVMSG carol :for carol, who is away")
        try await alice.send("PRIVMSG #team :said on a")
        // Node b has both once bob has the second: events are kept before they are delivered.
        _ = try await bob.next("the room message") { $0.command == "PRIVMSG" && $0.parameters.last == "said on a" }
        let carol = try await TestIRCClient.connect(port: b.port, caPath: TestServer.certificates.caCertificatePath)
        #expect(try await carol.register(account: "carol", password: "carol password", capabilities: ["draft/chathistory", "batch", "server-time", "message-tags"]).command == "001")
        try await carol.send("JOIN #team")
        _ = try await carol.next("366")
        try await carol.send("CHATHISTORY LATEST #team * 10")
        _ = try await carol.next("BATCH")
        let kept = try await carol.next("PRIVMSG")
        #expect(kept.parameters == ["#team", "said on a"] && kept.source?.hasPrefix("alice!") == true)
        try await carol.send("CHATHISTORY LATEST alice * 10")
        _ = try await carol.next("BATCH")
        #expect(try await carol.next("PRIVMSG").parameters == ["carol", "for carol, who is away"])
        // One history for the cluster: each message is stored once, by the transaction that sent it.
        let sql = try await PostgresConnection.connect(PostgresConnectionTests.settings(database), on: MultiThreadedEventLoopGroup.singleton.next()).get()
        let stored = try await sql.query("SELECT count(*) AS n FROM securechat_history WHERE kind = 'PRIVMSG'").get()
        #expect(stored.value(0, "n") == "2")
        _ = try? await sql.close().get()
        // Alice's read marker and rooms follow her to the other node.
        let marking = try await TestIRCClient.connect(port: a.port, caPath: TestServer.certificates.caCertificatePath)
        #expect(try await marking.register(account: "alice", password: "alice password", capabilities: ["draft/read-marker"]).command == "001")
        _ = try await alice.next("the older session ends") { $0.command == "ERROR" }
        _ = try await marking.next("the rejoin") { $0.command == "JOIN" && $0.parameters.first == "#team" }
        // After a JOIN, the server says where the marker is: nowhere yet.
        #expect(try await marking.next("MARKREAD").parameters == ["#team", "*"])
        try await marking.send("MARKREAD #team timestamp=2026-12-04T10:00:00.000Z")
        #expect(try await marking.next("MARKREAD").parameters == ["#team", "timestamp=2026-12-04T10:00:00.000Z"])
        // Node b hears of the marker once node a's writer has stored it (its durability window).
        #expect(await waitUntil(timeout: 30) { b.server.history?.readMarker(account: "alice", target: "#team") == 1_796_378_400_000 })
        let moved = try await TestIRCClient.connect(port: b.port, caPath: TestServer.certificates.caCertificatePath)
        #expect(try await moved.register(account: "alice", password: "alice password", capabilities: ["draft/read-marker"]).command == "001")
        _ = try await moved.next("the rejoin on node b") { $0.command == "JOIN" && $0.parameters.first == "#team" }
        #expect(try await moved.next("MARKREAD").parameters == ["#team", "timestamp=2026-12-04T10:00:00.000Z"])
        await a.stop()
        await b.stop()
    }

    @Test func serverTimeReadsBackAsMilliseconds() {
        let now = Date(timeIntervalSince1970: 1_796_380_496.789)
        #expect(ClusterLink.milliseconds(Relay.timestamp(now)) == 1_796_380_496_789)
        #expect(ClusterLink.milliseconds("2000-02-29T23:59:59.999Z") == 951_868_799_999)
        #expect(ClusterLink.milliseconds("1970-01-01T00:00:00.000Z") == 0)
    }

    /// A room's settings are the same on every node: its owner (operator on any node), topic and
    /// modes, set on one node, seen and enforced on the others.
    @Test func roomSettingsAreShared() async throws {
        let database = try ThrowawayPostgres.start()
        defer { database.stop() }
        let a = try await Self.node("a", database)
        let b = try await Self.node("b", database)
        let alice = try await Self.client("alice", on: a)
        let bob = try await Self.client("bob", on: b)
        try await alice.send("JOIN #team")
        _ = try await alice.next("366")
        // Node b learns the new room's owner before bob joins it there.
        #expect(await waitUntil(timeout: 30) { b.server.history?.room("#team")?.owner == "alice" })
        try await bob.send("JOIN #team")
        let names = try await bob.next("353")
        #expect(names.parameters.last?.split(separator: " ").contains("bob") == true, "bob is no operator: \(names)")
        try await alice.send("TOPIC #team :plans for friday")
        let topic = try await bob.next("TOPIC")
        #expect(topic.parameters == ["#team", "plans for friday"] && topic.source?.hasPrefix("alice!") == true)
        try await alice.send("MODE #team +m")
        let mode = try await bob.next("MODE")
        #expect(mode.parameters.prefix(2) == ["#team", "+m"])
        // Enforced on node b: bob, not voiced, cannot speak.
        try await bob.send("PRIVMSG #team :can I talk?")
        let refused = try await bob.next("404")
        #expect(refused.parameters.last?.contains("moderated") == true)
        try await bob.send("TOPIC #team")
        #expect(try await bob.next("332").parameters.last == "plans for friday")
        // LIST counts the members of every node, and shows rooms only another node has.
        try await bob.send("JOIN #b-only")
        _ = try await bob.next("366")
        #expect(await waitUntil(timeout: 30) { a.server.core.cluster?.presence.roomNames.contains("#b-only") == true })
        try await alice.send("LIST")
        _ = try await alice.next("323")
        let listed = Dictionary(alice.received.filter { $0.command == "322" }.map { ($0.parameters[1], $0.parameters[2]) }, uniquingKeysWith: { a, _ in a })
        #expect(listed == ["#team": "2", "#b-only": "1"], "\(listed)")
        await a.stop()
        await b.stop()
    }

    /// The wire form keeps every part of a relay.
    @Test func eventsRoundTrip() {
        var relay = Relay(source: "alice!alice@host", command: "PRIVMSG", parameters: ["#team", "hi; there :)"], time: "2026-12-04T10:00:00.000Z",
                          account: "alice", clientTags: [IRCTag("+draft/reply", "abc")], msgid: "m1")
        relay.fromBot = true
        let event = ClusterEvent.room(relay, room: "#team", operatorsOnly: true, except: "alice", requiring: [.messageTags])
        let decoded = ClusterLink.decode(ClusterLink.encode(event, origin: "node-1"))
        #expect(decoded?.origin == "node-1")
        #expect(decoded?.event == event)
        let join = Relay(source: "bob!bob@user/bob", command: "JOIN", parameters: ["#team"], time: "2026-12-04T10:00:00.000Z", account: "bob",
                         extendedJoinParameters: ["#team", "bob", "Bob B"], msgid: "m2")
        let invite = Relay(source: "alice!alice@user/alice", command: "INVITE", parameters: ["bob", "#team"], time: "2026-12-04T10:00:00.000Z", msgid: "m4")
        for other in [ClusterEvent.join(join, room: "#team", status: ""), .join(join, room: "#team", status: "o"), .part(relay, room: "#team", nick: "alice"),
                      .quit(relay, nick: "alice", token: "t1"), .privateMessage(relay, target: "bob", requiring: []), .hello,
                      .member(room: "#team", nick: "bob", status: ""), .member(room: "#team", nick: "bob", status: "ov"),
                      .invite(invite, room: "#team", target: "bob", admit: true), .invite(invite, room: "#team", target: "bob", admit: false),
                      .login(RemoteUser(nick: "bob", username: "bob", realname: "Bob B: the builder", token: "x.y", node: "n2"), snapshot: true)] {
            #expect(ClusterLink.decode(ClusterLink.encode(other, origin: "n2"))?.event == other)
        }
        // What another node sends is checked as a client's input would be.
        #expect(ClusterLink.decode("1 login n2 bad\u{1}nick bob t 0\nname") == nil)
        #expect(ClusterLink.decode("1 login n2 bob bob t 0\nname\rwith CR") == nil)
        let record = RoomRecord(name: "#Team", topic: "hello \"there\"", topicBy: "alice!alice@user/alice", topicTime: 5, flags: "mnt", key: "k",
                                limit: 9, owner: "alice", created: 1, lastUsed: 2, bans: [RoomRecord.Ban(mask: "*!*@evil", setBy: "alice", setAt: 3)])
        for state in [ClusterEvent.roomState(record, relay: relay), .roomState(record, relay: nil)] {
            #expect(ClusterLink.decode(ClusterLink.encode(state, origin: "n2"))?.event == state)
        }
        let away = Relay(source: "bob!bob@user/bob", command: "AWAY", parameters: ["lunch"], time: "2026-12-04T10:00:00.000Z", msgid: "m3")
        #expect(ClusterLink.decode(ClusterLink.encode(.away(away, nick: "bob"), origin: "n2"))?.event == .away(away, nick: "bob"))
        // Only o and v count as a member's status.
        #expect(ClusterLink.decode("1 member n2 #team bob o\u{1}x\n")?.event == .member(room: "#team", nick: "bob", status: "o"))
        #expect(ClusterReceiver.statusChanges(["+kov-lbv", "key", "alice", "bob", "*!*@x", "carol"]).map { "\($0.0)\($0.1)\($0.2)" }
                == ["otruealice", "vtruebob", "vfalsecarol"])
        #expect(ClusterLink.decode("2 room x") == nil)
        #expect(ClusterLink.decode("1 room a #x a * 0\nnot an irc line") == nil)
    }

    /// MONITOR sees logins and logouts on every node.
    @Test func monitorSeesEveryNode() async throws {
        let database = try ThrowawayPostgres.start()
        defer { database.stop() }
        let a = try await Self.node("a", database)
        let b = try await Self.node("b", database)
        let carol = try await Self.client("carol", on: a)
        let dave = try await Self.client("dave", on: b)
        // dave is on node b already; bob is not logged in anywhere.
        #expect(await waitUntil(timeout: 30) { a.server.core.cluster?.presence.user(named: "dave") != nil })
        try await carol.send("MONITOR + dave,bob")
        #expect(try await carol.next("730").parameters.last?.hasPrefix("dave!") == true)
        #expect(try await carol.next("731").parameters.last == "bob")
        let bob = try await Self.client("bob", on: b)
        #expect(try await carol.next("bob online") { $0.command == "730" }.parameters.last?.hasPrefix("bob!") == true)
        try await bob.send("QUIT :bye")
        #expect(try await carol.next("bob offline") { $0.command == "731" }.parameters.last == "bob")
        try await carol.send("MONITOR S")
        #expect(try await carol.next("730").parameters.last?.hasPrefix("dave!") == true)
        await a.stop()
        await b.stop()
    }
}

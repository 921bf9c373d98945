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

    /// What operators do to members on other nodes: MODE +o and +v change their status on their
    /// node (and NAMES and WHO everywhere show it), KICK removes them there, INVITE reaches them
    /// and lets them past +i.
    @Test func operatorsActOnMembersOfOtherNodes() async throws {
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
        try await alice.send("MODE #team +t")
        _ = try await bob.next("MODE +t") { $0.command == "MODE" }
        // Bob, on node b, is made operator by alice on node a: he may now set the topic (+t).
        try await alice.send("MODE #team +ov bob bob")
        let op = try await bob.next("MODE +ov") { $0.command == "MODE" }
        #expect(op.parameters == ["#team", "+ov", "bob", "bob"])
        try await bob.send("TOPIC #team :set by bob")
        #expect(try await alice.next("TOPIC").parameters == ["#team", "set by bob"])
        try await alice.send("NAMES #team")
        #expect(try await alice.next("353").parameters.last?.split(separator: " ").contains("@bob") == true)
        try await alice.send("WHO #team")
        let who = try await alice.next("bob's WHO line") { $0.command == "352" && $0.parameters[5] == "bob" }
        #expect(who.parameters[6] == "H@" && who.parameters[4] == "b")
        _ = try await alice.next("315")
        // Kicked by alice on node a: removed from the room on node b.
        try await alice.send("KICK #team bob :enough")
        let kick = try await bob.next("KICK")
        #expect(kick.parameters == ["#team", "bob", "enough"] && kick.source?.hasPrefix("alice!") == true)
        try await bob.send("TOPIC #team :still here?")
        let refused = try await bob.next("the refusal") { $0.command.first?.isNumber == true }
        #expect(["442", "403"].contains(refused.command) && refused.parameters.contains("#team"), "\(refused)")
        try await alice.send("NAMES #team")
        #expect(try await alice.next("353").parameters.last == "@alice")
        // +i: only alice's invitation, given on node a, lets bob back in on node b.
        try await alice.send("MODE #team +i")
        _ = try await alice.next("MODE")
        // Node b has the room's +i once the change has come through the database.
        #expect(await waitUntil(timeout: 30) { b.server.history?.room("#team")?.flags.contains("i") == true })
        try await bob.send("JOIN #team")
        _ = try await bob.next("473")
        try await alice.send("INVITE bob #team")
        _ = try await alice.next("341")
        #expect(try await bob.next("INVITE").parameters == ["bob", "#team"])
        try await bob.send("JOIN #team")
        _ = try await bob.next("366")
        await a.stop()
        await b.stop()
    }

    /// An operator's invitation is kept in the database with its INVITE: a node that starts
    /// later lets the invitee in, once; the join uses it up on every node and in the database.
    @Test func invitationsOutliveTheNodeThatHeardThem() async throws {
        let database = try ThrowawayPostgres.start()
        defer { database.stop() }
        let a = try await Self.node("a", database)
        let b = try await Self.node("b", database)
        let alice = try await Self.client("alice", on: a)
        try await alice.send("JOIN #club")
        _ = try await alice.next("366")
        try await alice.send("MODE #club +i")
        _ = try await alice.next("MODE")
        let bob = try await Self.client("bob", on: b)
        #expect(await waitUntil(timeout: 30) { a.server.core.cluster?.presence.user(named: "bob") != nil })
        try await alice.send("INVITE bob #club")
        _ = try await alice.next("341")
        _ = try await bob.next("INVITE")
        let sql = try await PostgresConnection.connect(PostgresConnectionTests.settings(database), on: MultiThreadedEventLoopGroup.singleton.next()).get()
        defer { _ = sql.close() }
        func stored() async throws -> [String] {
            try await sql.query("SELECT room, nick, invited_by FROM securechat_invitations").get().rows.map { $0.map { $0 ?? "" }.joined(separator: " ") }
        }
        #expect(try await stored() == ["#club bob alice"])
        // Node b goes; bob comes back on node c, which started after the invitation.
        await b.stop()
        let c = try await Self.node("c", database)
        // Node c has the room's +i (node a stores it a moment after the MODE).
        #expect(await waitUntil(timeout: 30) { c.server.history?.room("#club")?.flags.contains("i") == true })
        let bobAgain = try await Self.client("bob", on: c)
        try await bobAgain.send("JOIN #club")
        _ = try await bobAgain.next("366")
        // Used up: in the database, and on node a, where alice gave it.
        #expect(await waitUntil(timeout: 30) { (try? await stored()) == [] })
        #expect(await waitUntil(timeout: 30) { a.server.core.cluster?.isInvited(room: "#club", nick: "bob") == false })
        try await bobAgain.send("PART #club")
        _ = try await bobAgain.next("PART")
        try await bobAgain.send("JOIN #club")
        _ = try await bobAgain.next("473")
        _ = bob
        await a.stop()
        await c.stop()
    }

    /// A client's reading waits while 64 of its messages are on their way through the
    /// database, and goes on when they are back: nothing it sent is lost or reordered.
    @Test func aSendersReadingWaitsWhileItsWindowIsFull() async throws {
        let database = try ThrowawayPostgres.start()
        defer { database.stop() }
        let a = try await TestServer.start(accounts: Self.accounts) { configuration in
            configuration.cluster = ClusterSettings(node: "a", postgres: PostgresConnectionTests.settings(database))
            configuration.limits.messagesPerSecond = 1_000_000
            configuration.limits.messageBurst = 1_000_000
        }
        let b = try await Self.node("b", database)
        let alice = try await Self.client("alice", on: a)
        let bob = try await Self.client("bob", on: b)
        for client in [alice, bob] {
            try await client.send("JOIN #team")
            _ = try await client.next("366")
        }
        let cluster = try #require(a.server.core.cluster)
        #expect(await waitUntil(timeout: 30) { cluster.eventsOnTheirWay == 0 })
        // Publishing waits for this lock: alice's messages stay on their way until it goes.
        let blocker = try await PostgresConnection.connect(PostgresConnectionTests.settings(database), on: MultiThreadedEventLoopGroup.singleton.next()).get()
        _ = try await blocker.query("BEGIN").get()
        _ = try await blocker.query("SELECT pg_advisory_xact_lock(7283003)").get()
        let window = ClientConnection.publishWindow
        // One at a time, so that each line is read on its own.
        for i in 1...window {
            try await alice.send("PRIVMSG #team :m\(i)")
            #expect(await waitUntil(timeout: 30) { cluster.eventsOnTheirWay == i })
        }
        // The window is full: the next line is not read (a server that read it would have it on
        // its way within milliseconds).
        try await alice.send("PRIVMSG #team :m\(window + 1)")
        try await alice.send("PING :after")
        #expect(await waitUntil(timeout: 3) { cluster.eventsOnTheirWay > window } == false)
        #expect(!alice.received.contains { $0.command == "PONG" })
        _ = try await blocker.query("COMMIT").get()
        _ = try? await blocker.close().get()
        _ = try await alice.next("PONG")
        #expect(await waitUntil(timeout: 60) { bob.received.filter { $0.command == "PRIVMSG" }.count == window + 1 })
        #expect(bob.received.filter { $0.command == "PRIVMSG" }.map { $0.parameters.last ?? "" } == (1...(window + 1)).map { "m\($0)" })
        await a.stop()
        await b.stop()
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

    /// Two nodes make the same new room at once: the first claim in the database's order stands
    /// on every node, whichever node's own claim it is.
    @Test func ofTwoClaimsToANewRoomTheFirstStandsEverywhere() throws {
        let alices = RoomRecord(name: "#New", flags: "nt", owner: "alice", created: 1, lastUsed: 1)
        let bobs = RoomRecord(name: "#new", flags: "nt", owner: "bob", created: 1, lastUsed: 1)
        var owners: [String?] = []
        // Node a sees bob's claim (from b) first, then its own; node b sees its own first.
        for (node, order) in [("a", [("b", bobs), ("a", alices)]), ("b", [("b", bobs), ("a", alices)])] {
            let history = try SQLiteHistory(path: NSTemporaryDirectory() + "securechat-claims-\(UUID().uuidString).sqlite", durabilityMilliseconds: 0)
            defer { history.close() }
            // The node's own claim was saved as it made the room.
            history.saveRoom(node == "a" ? alices : bobs, folded: "#new")
            let receiver = ClusterReceiver(node: node, serverName: "localhost", registry: Registry(), presence: RemotePresence(), history: history,
                                           invitations: NIOLockedValueBox([]))
            for (origin, record) in order { receiver.receive(.roomCreated(record), from: origin, answer: nil) }
            owners.append(history.room("#new")?.owner)
        }
        #expect(owners == ["bob", "bob"])
        #expect(ClusterLink.decode(ClusterLink.encode(.roomCreated(alices), origin: "a"))?.event == .roomCreated(alices))
    }

    /// A node that hears of another node's new room late (after that node made it +i) leaves the
    /// shared row alone: storing the first record again would undo the +i for every node.
    @Test func aLateClaimDoesNotUndoTheRoomsLaterChanges() throws {
        let database = try ThrowawayPostgres.start()
        defer { database.stop() }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let settings = PostgresConnectionTests.settings(database)
        let a = try PostgresHistory(settings: settings, node: "a", eventLoop: loop, durabilityMilliseconds: 0)
        defer { a.close() }
        let b = try PostgresHistory(settings: settings, node: "b", eventLoop: loop, durabilityMilliseconds: 0)
        defer { b.close() }
        let created = RoomRecord(name: "#club", flags: "nt", owner: "alice", created: 1, lastUsed: 1)
        var locked = created
        locked.flags = "int"
        a.saveRoom(created, folded: "#club")
        a.saveRoom(locked, folded: "#club")
        a.flush()
        let receiver = ClusterReceiver(node: "b", serverName: "localhost", registry: Registry(), presence: RemotePresence(), history: b,
                                       invitations: NIOLockedValueBox([]))
        receiver.receive(.roomCreated(created), from: "a", answer: nil)
        b.flush()
        try a.reloadAllNow()
        #expect(a.room("#club")?.flags == "int")
    }

    /// Two nodes make one room at the same instant (the database holds both claims until both
    /// rooms exist): both end with the same owner, and only the owner is operator on either
    /// node (the other node's first member, made operator by its own claim, loses that).
    @Test func twoNodesMakingOneRoomAtOnceAgreeOnItsOwnerAndOperator() async throws {
        let database = try ThrowawayPostgres.start()
        defer { database.stop() }
        let a = try await Self.node("a", database)
        let b = try await Self.node("b", database)
        let alice = try await Self.client("alice", on: a)
        let bob = try await Self.client("bob", on: b)
        // Publishing waits for this lock: neither node hears of the other's room before both exist.
        let blocker = try await PostgresConnection.connect(PostgresConnectionTests.settings(database), on: MultiThreadedEventLoopGroup.singleton.next()).get()
        _ = try await blocker.query("BEGIN").get()
        _ = try await blocker.query("SELECT pg_advisory_xact_lock(7283003)").get()
        for client in [alice, bob] {
            try await client.send("JOIN #same")
            _ = try await client.next("366")
        }
        _ = try await blocker.query("COMMIT").get()
        _ = try? await blocker.close().get()
        func owners() -> [String?] {
            [a.server.history?.room("#same")?.owner, b.server.history?.room("#same")?.owner,
             a.server.core.registry.room(named: "#same")?.owner, b.server.core.registry.room(named: "#same")?.owner]
        }
        let agreed = await waitUntil(timeout: 30) { owners()[0] != nil && Set(owners()).count == 1 }
        #expect(agreed, "history a, history b, room a, room b: \(owners())")
        let owner = try #require(a.server.history?.room("#same")?.owner)
        let (winner, loser, loserNick) = owner == "alice" ? (alice, bob, "bob") : (bob, alice, "alice")
        // If the other node made its own room before it heard of this one, its member was made
        // operator there and loses it (MODE -o); if it heard first (the owner's row can reach it
        // through the shared history before the claim), it was never operator. Either way both
        // nodes end showing only the owner as operator.
        let expected = ["@" + owner, loserNick].sorted()
        // The loser's node has dropped the status (or never gave it), the owner's node has heard
        // so, and the loser's node has heard of the owner's join: then NAMES on each shows only
        // the owner as operator.
        let (winnerNode, loserNode) = owner == "alice" ? (a, b) : (b, a)
        #expect(await waitUntil(timeout: 30) {
            loserNode.server.core.registry.room(named: "#same")?.roster.first { $0.session.nick == loserNick }?.isOperator == false
                && winnerNode.server.core.cluster?.presence.members(of: "#same").contains { $0.nick == loserNick } == true
                && winnerNode.server.core.cluster?.presence.prefix(of: loserNick, in: "#same", all: true) == ""
                && loserNode.server.core.cluster?.presence.prefix(of: owner, in: "#same", all: true) == "@"
        })
        for client in [winner, loser] {
            try await client.send("NAMES #same")
            let names = try await client.next("353").parameters.last?.split(separator: " ").map(String.init).sorted()
            #expect(names == expected)
        }
        await a.stop()
        await b.stop()
    }
}

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

/// Rooms across nodes, on one PostgreSQL: operators, invitations, a sender's window, and who owns
/// a room two nodes make at once.
@Suite(.enabled(if: postgresPresent), .serialized) struct ClusterRoomTests {
    /// What operators do to members on other nodes: MODE +o and +v change their status on their
    /// node (and NAMES and WHO everywhere show it), KICK removes them there, INVITE reaches them
    /// and lets them past +i.
    @Test func operatorsActOnMembersOfOtherNodes() async throws {
        let database = try ThrowawayPostgres.start()
        defer { database.stop() }
        let a = try await ClusterMessagingTests.node("a", database)
        let b = try await ClusterMessagingTests.node("b", database)
        let alice = try await ClusterMessagingTests.client("alice", on: a)
        let bob = try await ClusterMessagingTests.client("bob", on: b)
        try await alice.send("JOIN #team")
        _ = try await alice.next("366")
        // Node b learns the room's owner before bob joins there. Otherwise node b makes a room of
        // its own for him, with him as operator, and he loses that when alice's claim arrives
        // (twoNodesMakingOneRoomAtOnceAgreeOnItsOwnerAndOperator): a MODE -o this test is not about.
        #expect(await waitUntil(timeout: 30) { b.server.history?.room("#team")?.owner == "alice" })
        try await bob.send("JOIN #team")
        _ = try await bob.next("366")
        try await alice.send("MODE #team +t")
        _ = try await bob.next("MODE +t") { $0.command == "MODE" && $0.parameters == ["#team", "+t"] }
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
        let a = try await ClusterMessagingTests.node("a", database)
        let b = try await ClusterMessagingTests.node("b", database)
        let alice = try await ClusterMessagingTests.client("alice", on: a)
        try await alice.send("JOIN #club")
        _ = try await alice.next("366")
        try await alice.send("MODE #club +i")
        _ = try await alice.next("MODE")
        let bob = try await ClusterMessagingTests.client("bob", on: b)
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
        let c = try await ClusterMessagingTests.node("c", database)
        // Node c has the room's +i (node a stores it a moment after the MODE).
        #expect(await waitUntil(timeout: 30) { c.server.history?.room("#club")?.flags.contains("i") == true })
        let bobAgain = try await ClusterMessagingTests.client("bob", on: c)
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
        let a = try await TestServer.start(accounts: ClusterMessagingTests.accounts) { configuration in
            configuration.cluster = ClusterSettings(node: "a", postgres: PostgresConnectionTests.settings(database))
            configuration.limits.messagesPerSecond = 1_000_000
            configuration.limits.messageBurst = 1_000_000
        }
        let b = try await ClusterMessagingTests.node("b", database)
        let alice = try await ClusterMessagingTests.client("alice", on: a)
        let bob = try await ClusterMessagingTests.client("bob", on: b)
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
        let a = try await ClusterMessagingTests.node("a", database)
        let b = try await ClusterMessagingTests.node("b", database)
        let alice = try await ClusterMessagingTests.client("alice", on: a)
        let bob = try await ClusterMessagingTests.client("bob", on: b)
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

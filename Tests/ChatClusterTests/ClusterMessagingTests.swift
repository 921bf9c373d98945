import ChatAuth
@testable import ChatServer
import ChatSupport
import ChatTesting
import Foundation
import IRC
import Testing
@testable import ChatCluster

/// Nodes in one process, on one PostgreSQL: what their clients see of each other.
@Suite(.enabled(if: postgresPresent), .serialized) struct ClusterMessagingTests {
    static let accounts = [("alice", "alice password"), ("bob", "bob password"), ("carol", "carol password")]

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

    /// The wire form keeps every part of a relay.
    @Test func eventsRoundTrip() {
        var relay = Relay(source: "alice!alice@host", command: "PRIVMSG", parameters: ["#team", "hi; there :)"], time: "2026-12-04T10:00:00.000Z",
                          account: "alice", clientTags: [IRCTag("+draft/reply", "abc")], msgid: "m1")
        relay.fromBot = true
        let event = ClusterEvent.room(relay, room: "#team", operatorsOnly: true, except: "alice", requiring: [.messageTags])
        let decoded = ClusterLink.decode(ClusterLink.encode(event, origin: "node-1"))
        #expect(decoded?.origin == "node-1")
        #expect(decoded?.event == event)
        #expect(ClusterLink.decode("2 room x") == nil)
        #expect(ClusterLink.decode("1 room a #x a * 0\nnot an irc line") == nil)
    }
}

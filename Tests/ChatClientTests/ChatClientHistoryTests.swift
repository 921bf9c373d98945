import ChatTesting
import Foundation
import Testing

/// chat-client on a server that keeps history: the backlog on joining, the line where unread
/// messages begin (from the read marker it keeps up to date), /history, and private messages
/// that came while it was away.
@Suite struct ChatClientHistoryTests {
    func client(_ server: TestServer, _ account: (String, String), room: String) throws -> ClientProcess {
        try ClientProcess(["--host", "localhost", "--port", "\(server.port)", "--ca", server.caPath, "--user", account.0, "--room", room], password: account.1)
    }

    /// Waits until everything `client` sent before has been handled by the server.
    func sync(_ client: TestIRCClient) async throws {
        try await client.send("PING sync")
        try await client.next("PONG") { $0.command == "PONG" }
    }

    @Test func backlogNewSinceYouWereLastHereHistoryAndMissedPrivateMessages() async throws {
        let server = try await TestServer.start(accounts: [alice, bob])
        let b = try await server.loggedIn(bob.0, bob.1)
        try await b.send("JOIN #lobby")
        for i in 1...51 { try await b.send("PRIVMSG #lobby :m\(i)") }
        try await b.send("PRIVMSG alice :while you were away")
        try await sync(b)

        // First visit: the 50 messages before the JOIN, no "new since" line (nothing read yet).
        let first = try client(server, alice, room: "lobby")
        try await first.waitFor("#lobby <bob> m51")
        #expect(first.lines.contains { $0.hasSuffix("#lobby <bob> m2") })
        #expect(!first.lines.contains { $0.hasSuffix("#lobby <bob> m1") })
        #expect(!first.lines.contains { $0.contains("new since you were last here") })
        // The private message sent while alice was away (no read marker yet: the latest ones).
        try await first.waitFor("@bob <bob> while you were away")
        // /history: one more, the one before the oldest shown.
        first.type("/history 1")
        try await first.waitFor("-!- 1 earlier messages in #lobby:")
        try await first.waitFor("end of earlier messages in #lobby")
        let shown = first.lines
        let heading = try #require(shown.firstIndex { $0.contains("1 earlier messages in #lobby") })
        #expect(shown[heading + 1].hasSuffix("#lobby <bob> m1") && shown.filter { $0.hasSuffix("<bob> m1") }.count == 1)
        first.type("/history 5")
        try await first.waitFor("no earlier messages in #lobby")
        first.endInput()
        #expect(await first.exitStatus() == 0)
        // Quitting told the server what was read: the newest message of each conversation.
        #expect(await waitUntil { server.server.history?.readMarker(account: "alice", target: "#lobby") != nil })

        // Said while alice was away.
        try await b.send("PRIVMSG #lobby :three")
        try await b.send("PRIVMSG #lobby :four")
        try await b.send("PRIVMSG alice :second private")
        try await sync(b)

        let second = try client(server, alice, room: "lobby")
        try await second.waitFor("#lobby <bob> four")
        let lines = second.lines
        let marker = try #require(lines.firstIndex { $0.contains("#lobby -!- new since you were last here") })
        #expect(lines[marker + 1].hasSuffix("#lobby <bob> three"))
        #expect(lines[marker - 1].hasSuffix("#lobby <bob> m51"))
        // Only what came after the private read marker.
        try await second.waitFor("@bob <bob> second private")
        #expect(!second.lines.contains { $0.contains("while you were away") })
        second.endInput()
        #expect(await second.exitStatus() == 0)
        await server.stop()
    }

    @Test func twentyFiveRoomsAllGetTheirBacklogWithinTheServersRequestBudget() async throws {
        let server = try await TestServer.start(accounts: [alice, bob])
        let b = try await server.loggedIn(bob.0, bob.1)
        let rooms = (1...25).map { "#r\($0)" }
        for room in rooms {
            try await b.send("JOIN \(room)")
            try await b.send("PRIVMSG \(room) :said in \(room)")
        }
        try await sync(b)
        let a = try client(server, alice, room: "r1")
        for room in rooms.dropFirst() { a.type("/join \(room)") }
        // More history requests than the server takes at once (20): the client paces them.
        for room in rooms { try await a.waitFor("\(room) <bob> said in \(room)", timeout: 30) }
        #expect(!a.lines.contains { $0.contains("Too many history requests") })
        a.endInput()
        #expect(await a.exitStatus() == 0)
        await server.stop()
    }

    @Test func withoutHistoryTheCommandSaysWhy() async throws {
        let server = try await TestServer.start(accounts: [alice]) { $0.history.database = nil }
        let a = try client(server, alice, room: "lobby")
        try await a.waitFor("#lobby -!- alice joined")
        a.type("/history")
        try await a.waitFor("this server keeps no history for clients to fetch")
        a.endInput()
        #expect(await a.exitStatus() == 0)
        await server.stop()
    }
}

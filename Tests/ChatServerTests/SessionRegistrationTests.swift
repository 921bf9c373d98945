@testable import ChatServer
import ChatTesting
import Foundation
import IRC
import Testing

/// Registration through the session state machine: the welcome burst, logins, replacement,
/// leaving. In memory, no sockets or clocks (`SessionHarness`).
@Suite struct SessionRegistrationTests {
    let accounts = ["alice": "alice password", "bob": "bob password", "carol": "carol password"]

    @Test func passLoginGivesTheWelcomeBurstInOrder() {
        let harness = SessionHarness(accounts: accounts)
        let client = harness.connect()
        client.send("PASS alice:alice password")
        client.send("NICK ally")
        #expect(client.received.isEmpty)
        client.send("USER al 0 * :Alice Liddell")
        let commands = client.received.map(\.command)
        #expect(commands == ["NICK", "001", "002", "003", "004"] + Array(repeating: "005", count: commands.filter { $0 == "005" }.count)
            + ["251", "254", "255", "265", "266", "375", "372", "376"])
        #expect(client.received("251").first?.parameters == ["alice", "There are 0 users and 1 invisible on 1 servers"])
        #expect(client.received("266").first?.parameters == ["alice", "1", "1", "Current global users 1, max 1"])
        #expect(client.received[0].source == "ally!alice@user/alice" && client.received[0].parameters == ["alice"])
        #expect(client.received[1].parameters == ["alice", "Welcome to the SecureChat network, alice!alice@user/alice"])
        #expect(client.received("005").allSatisfy { $0.parameters.last == "are supported by this server" })
        #expect(client.received("372").first?.parameters.last == "- Test server.")
        #expect(client.session.phase == .registered)
        #expect(client.handle?.nick == "alice")
    }

    @Test func saslPlainLoginAndCapabilities() {
        let harness = SessionHarness(accounts: accounts)
        let client = harness.connect()
        client.send("CAP LS 302")
        #expect(client.take().first?.parameters.last?.contains("sasl=PLAIN") == true)
        client.send("CAP REQ :sasl server-time")
        #expect(client.take().first?.parameters == ["*", "ACK", "sasl server-time"])
        client.send("NICK alice")
        client.send("USER alice 0 * :Alice")
        #expect(client.take().isEmpty)  // waits for CAP END
        client.send("AUTHENTICATE PLAIN")
        #expect(client.take() == [IRCMessage(command: "AUTHENTICATE", parameters: ["+"])])
        client.send("AUTHENTICATE " + SASLPlain.encode(account: "alice", password: Array("alice password".utf8)))
        #expect(client.take().map(\.command) == ["900", "903"])
        client.send("CAP END")
        #expect(client.received.first?.command == "001")
        #expect(client.session.capabilities == [.sasl, .serverTime, .capNotify])
    }

    @Test func wrongPasswordGets464AndCloses() {
        let harness = SessionHarness(accounts: accounts)
        let client = harness.connect()
        client.send("PASS alice:wrong")
        client.send("NICK alice")
        client.send("USER a 0 * :A")
        #expect(client.received.map(\.command) == ["464", "ERROR"])
        #expect(client.isClosed)
        #expect(harness.core.registry.userCount == 0)
    }

    @Test func commandsBeforeLoginGet451AndNoLoginNoChat() {
        let harness = SessionHarness(accounts: accounts)
        let client = harness.connect()
        client.send("JOIN #lobby")
        #expect(client.take().first?.command == "451")
        client.send("PING x")
        #expect(client.take().first?.parameters == ["localhost", "x"])
        client.send("NICK alice")
        client.send("USER a 0 * :A")
        #expect(client.received.map(\.command) == ["464", "ERROR"])
        #expect(client.session.phase == .closed)
    }

    @Test func whileAPasswordIsCheckedTheSessionSaysItIsWaiting() {
        let harness = SessionHarness(accounts: accounts)
        harness.logins.holding = true
        let client = harness.connect()
        client.send("PASS alice:alice password")
        client.send("NICK alice")
        client.send("USER a 0 * :A")
        #expect(client.session.isAwaitingLogin)
        #expect(client.received.isEmpty)
        client.finishLogins()
        #expect(!client.session.isAwaitingLogin)
        #expect(client.received.first?.command == "001")
    }

    @Test func aNewLoginReplacesTheOldOneAndItsRoomsSeeItQuit() {
        let harness = SessionHarness(accounts: accounts)
        let first = harness.login("alice")
        let bob = harness.login("bob")
        first.send("JOIN #room")
        bob.send("JOIN #room")
        bob.clear()
        let second = harness.login("alice")
        #expect(first.closedWith == "Closing link: logged in from another connection")
        #expect(bob.received("QUIT").first?.source == "alice!alice@user/alice")
        #expect(harness.core.registry.session(named: "alice") === second.handle)
        second.send("PRIVMSG bob :still here")
        #expect(bob.received("PRIVMSG").last?.parameters == ["bob", "still here"])
    }

    @Test func quitTellsTheRoomsOnceAndFreesTheNick() {
        let harness = SessionHarness(accounts: accounts)
        let a = harness.login("alice")
        let b = harness.login("bob")
        for room in ["#one", "#two"] { a.send("JOIN \(room)"); b.send("JOIN \(room)") }
        b.clear()
        a.send("QUIT :bye now")
        #expect(a.received.last == IRCMessage(command: "ERROR", parameters: ["Quit: bye now"]))
        #expect(b.received("QUIT").map(\.parameters) == [["Quit: bye now"]])  // once, though two rooms are shared
        #expect(harness.core.registry.session(named: "alice") == nil)
        #expect(b.handle!.rooms.values.allSatisfy { $0.memberCount == 1 })
    }

    @Test func aDroppedConnectionQuitsWithConnectionClosed() {
        let harness = SessionHarness(accounts: accounts)
        let a = harness.login("alice")
        let b = harness.login("bob")
        a.send("JOIN #r"); b.send("JOIN #r")
        b.clear()
        a.drop()
        #expect(b.received("QUIT").first?.parameters == ["Connection closed"])
        #expect(a.session.closeReason == "Connection closed")
        a.drop()  // a second close changes nothing
        #expect(b.received("QUIT").count == 1)
    }

    @Test func timeoutsAndShutdownCloseWithTheirReason() {
        let harness = SessionHarness(accounts: accounts)
        let a = harness.login("alice")
        a.close(reason: SessionEvent.pingTimedOut(seconds: 90).reason)
        #expect(a.closedWith == "Ping timeout: 90 seconds")
        #expect(SessionEvent.registrationTimedOut(seconds: 1.5).reason == "Registration timed out: log in within 1.5 seconds")
        #expect(SessionEvent.shutdown.reason == "Server shutting down")
    }

    @Test func reregistrationAndIdentityChangesAreRefused() {
        let harness = SessionHarness(accounts: accounts)
        let a = harness.login("alice")
        a.send("USER x 0 * :X")
        a.send("PASS x")
        a.send("AUTHENTICATE PLAIN")
        a.send("NICK bob")
        a.send("NICK ALICE")
        #expect(a.received.map(\.command) == ["462", "462", "907", "432"])
        a.clear()
        a.send("FROBNICATE")
        #expect(a.received.first?.parameters == ["alice", "FROBNICATE", "Unknown command"])
    }

    @Test func badLinesGetClearRepliesAndNothingIsRelayed() {
        let harness = SessionHarness(accounts: accounts)
        let a = harness.login("alice")
        let b = harness.login("bob")
        a.send("JOIN #r"); b.send("JOIN #r")
        b.clear(); a.clear()
        a.sendRaw(Array("PRIVMSG #r :bad ".utf8) + [0xff])
        #expect(a.received.first?.parameters[0...1] == ["PRIVMSG", "INVALID_UTF8"])
        a.send("PRIVMSG #r :" + String(repeating: "x", count: 600))
        #expect(a.received.last?.command == "417")
        a.send("PRIVMSG #r :" + String(repeating: "x", count: 400))  // fits: delivered
        #expect(b.received.map(\.command) == ["PRIVMSG"])
    }
}

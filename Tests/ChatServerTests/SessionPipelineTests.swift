import ChatTesting
import Foundation
import IRC
import IRCFraming
import Logging
import NIOCore
import NIOEmbedded
import Testing
@testable import ChatServer

/// The whole pipeline above TLS (`Server.addSessionHandlers`) in `EmbeddedChannel`s that share
/// one server core: timeouts on a virtual clock, seen by the client and by its rooms.
@Suite struct SessionPipelineTests {
    final class Client {
        let channel = EmbeddedChannel()
        var loop: EmbeddedEventLoop { channel.embeddedEventLoop }

        init(core: ServerCore) throws {
            try Server.addSessionHandlers(to: channel.pipeline.syncOperations, core: core, eventLoop: channel.embeddedEventLoop, address: "192.0.2.9")
            try channel.connect(to: SocketAddress(ipAddress: "192.0.2.9", port: 1)).wait()
        }

        func send(_ lines: String...) throws {
            try channel.writeInbound(ByteBufferAllocator().buffer(string: lines.map { $0 + "\r\n" }.joined()))
            loop.run()
        }

        /// What the client was sent since the last call, as lines.
        func lines() throws -> [String] {
            loop.run()
            var text = ""
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
            return text.split(separator: "\r\n").map(String.init)
        }
    }

    static func core(_ configure: (inout ServerConfiguration) -> Void = { _ in }) -> ServerCore {
        var configuration = ServerConfiguration(path: "/nonexistent/server.json", tls: .init(certificateChain: "unused", privateKey: "unused"),
                                                usersFile: "/nonexistent/users.json")
        // The virtual clock stands still unless a test moves it: relays would wait for the flush
        // interval forever. The tests of that interval set it themselves.
        configuration.limits.flushIntervalMilliseconds = 0
        configure(&configuration)
        return ServerCore(configuration: configuration, logins: TestLogins(accounts: ["alice": "pa", "bob": "pb"]),
                          logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    @Test func registrationTimesOutWithAClearError() throws {
        let client = try Client(core: Self.core { $0.limits.registrationTimeoutSeconds = 1.5 })
        try client.send("NICK alice")
        client.loop.advanceTime(by: .milliseconds(1499))
        #expect(try client.lines().isEmpty)
        client.loop.advanceTime(by: .milliseconds(1))
        #expect(try client.lines() == ["ERROR :Registration timed out: log in within 1.5 seconds"])
        #expect(!client.channel.isActive)
    }

    @Test func aVanishedClientTimesOutAndItsRoomSeesItLeave() throws {
        let core = Self.core {
            $0.limits.pingIntervalSeconds = 90
            $0.limits.pingTimeoutSeconds = 120
        }
        let alice = try Client(core: core)
        let bob = try Client(core: core)
        try alice.send("PASS alice:pa", "NICK alice", "USER a 0 * :A", "JOIN #keepalive")
        try bob.send("PASS bob:pb", "NICK bob", "USER b 0 * :B", "JOIN #keepalive")
        _ = try alice.lines()
        _ = try bob.lines()
        // bob says nothing more and answers no PING; alice answers hers.
        bob.loop.advanceTime(by: .seconds(90))
        #expect(try bob.lines() == ["PING localhost"])
        alice.loop.advanceTime(by: .seconds(90))
        #expect(try alice.lines() == ["PING localhost"])
        try alice.send("PONG localhost")
        bob.loop.advanceTime(by: .seconds(119))
        #expect(try alice.lines().isEmpty)
        bob.loop.advanceTime(by: .seconds(1))
        #expect(try bob.lines() == ["ERROR :Ping timeout: 120 seconds"])
        #expect(try alice.lines() == [":bob!bob@user/bob QUIT :Ping timeout: 120 seconds"])
        #expect(core.registry.session(named: "bob") == nil)
        #expect(core.registry.room(named: "#keepalive")?.memberCount == 1)
    }

    @Test func floodControlDelaysCommandsButAnswersAllInOrder() throws {
        let client = try Client(core: Self.core {
            $0.limits.messagesPerSecond = 20
            $0.limits.messageBurst = 5
        })
        try client.send("PASS alice:pa", "NICK alice", "USER a 0 * :A")
        client.loop.advanceTime(by: .seconds(1))  // tokens back after registration
        _ = try client.lines()
        try client.channel.writeInbound(ByteBufferAllocator().buffer(string: (0..<30).map { "PING n\($0)\r\n" }.joined()))
        #expect(try client.lines().count == 5)  // the burst
        client.loop.advanceTime(by: .milliseconds(500))
        #expect(try client.lines().count == 10)  // 20 per second
        client.loop.advanceTime(by: .seconds(2))
        let rest = try client.lines()
        #expect(rest.count == 15)
        #expect(rest.last == ":localhost PONG localhost n29")
    }

    @Test func relaysUnderLoadWaitForTheFlushIntervalAndLeaveTogether() throws {
        let core = Self.core { $0.limits.flushIntervalMilliseconds = 4 }
        let alice = try Client(core: core)
        let bob = try Client(core: core)
        try alice.send("PASS alice:pa", "NICK alice", "USER a 0 * :A", "JOIN #r")
        try bob.send("PASS bob:pb", "NICK bob", "USER b 0 * :B", "JOIN #r")
        _ = try bob.lines()
        alice.loop.advanceTime(by: .milliseconds(10))
        _ = try alice.lines()
        // A quiet loop writes at once.
        try bob.send("PRIVMSG #r :number one")
        #expect(try alice.lines() == [":bob!bob@user/bob PRIVMSG #r :number one"])
        // Within the interval of that write, the next ones wait for it, then leave in one flush
        // (so, above TLS, in one record and one system call).
        try bob.send("PRIVMSG #r :number two")
        try bob.send("PRIVMSG #r :number three")
        #expect(try alice.lines().isEmpty)
        alice.loop.advanceTime(by: .milliseconds(3))
        #expect(try alice.lines().isEmpty)
        alice.loop.advanceTime(by: .milliseconds(1))
        #expect(try alice.lines() == [":bob!bob@user/bob PRIVMSG #r :number two", ":bob!bob@user/bob PRIVMSG #r :number three"])
        // Answers to the client's own commands never wait.
        try alice.send("PING now")
        #expect(try alice.lines() == [":localhost PONG localhost now"])
    }

    @Test func withAZeroFlushIntervalRelaysLeaveAtTheEndOfEachTurn() throws {
        let core = Self.core { $0.limits.flushIntervalMilliseconds = 0 }
        let alice = try Client(core: core)
        let bob = try Client(core: core)
        try alice.send("PASS alice:pa", "NICK alice", "USER a 0 * :A", "JOIN #r")
        try bob.send("PASS bob:pb", "NICK bob", "USER b 0 * :B", "JOIN #r")
        _ = try alice.lines()
        for n in 1...3 {
            try bob.send("PRIVMSG #r :number \(n)")
            #expect(try alice.lines() == [":bob!bob@user/bob PRIVMSG #r :number \(n)"])
        }
    }

    @Test func shutdownSaysGoodbyeToTheClientAndItsRooms() throws {
        let core = Self.core()
        let alice = try Client(core: core)
        let bob = try Client(core: core)
        try alice.send("PASS alice:pa", "NICK alice", "USER a 0 * :A", "JOIN #r")
        try bob.send("PASS bob:pb", "NICK bob", "USER b 0 * :B", "JOIN #r")
        _ = try alice.lines()
        bob.channel.pipeline.fireUserInboundEventTriggered(SessionEvent.shutdown)
        #expect(try bob.lines().last == "ERROR :Server shutting down")
        #expect(try alice.lines() == [":bob!bob@user/bob QUIT :Server shutting down"])
    }
}

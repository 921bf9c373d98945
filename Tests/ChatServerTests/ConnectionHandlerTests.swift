import ChatTesting
import Foundation
import IRC
import IRCFraming
import Logging
import NIOCore
import NIOEmbedded
import Testing
@testable import ChatServer

/// The single-job handlers and `ClientConnection`, each in an `EmbeddedChannel` with a virtual
/// clock (`advanceTime`): no sockets, no sleeps, nothing that depends on the machine's speed.
@Suite struct ConnectionHandlerTests {
    static func line(_ text: String) -> InboundLine {
        .line(ByteBufferAllocator().buffer(string: text))
    }

    /// Everything written to the channel so far, as text.
    static func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    /// Collects the events the handlers send towards ClientConnection.
    final class EventRecorder: ChannelInboundHandler {
        typealias InboundIn = InboundLine
        var events: [SessionEvent] = []
        var lines: [String] = []
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case let .line(buffer) = unwrapInboundIn(data) { lines.append(String(buffer: buffer)) }
        }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? SessionEvent { events.append(event) }
        }
    }

    /// A `ConnectionGuard` and a recorder in an `EmbeddedChannel`, with the loop's clock.
    /// Registration times out after an hour unless `settings` says otherwise.
    static func guarded(_ settings: ConnectionGuard.Settings, _ recorder: EventRecorder, loop: EmbeddedEventLoop = EmbeddedEventLoop(),
                        clock: ConnectionClock? = nil) -> (EmbeddedChannel, ConnectionGuard, ConnectionClock) {
        let clock = clock ?? ConnectionClock(eventLoop: loop, settings: settings)
        let guard_ = ConnectionGuard(clock: clock)
        return (EmbeddedChannel(handlers: [guard_, recorder], loop: loop), guard_, clock)
    }

    static func settings(registration: Double = 3600, ping: Double = 90, pong: Double = 120, perSecond: Double = 4, burst: Int = 20,
                         maximumQueued: Int = 4096) -> ConnectionGuard.Settings {
        .init(serverName: "s", registrationTimeoutSeconds: registration, pingIntervalSeconds: ping, pingTimeoutSeconds: pong,
              messagesPerSecond: perSecond, messageBurst: burst, maximumQueued: maximumQueued)
    }

    // MARK: Keepalive

    @Test func registrationTimesOutOnTheVirtualClock() throws {
        let recorder = EventRecorder()
        let (channel, _, clock) = Self.guarded(Self.settings(registration: 60), recorder)
        #expect(clock.interval == .seconds(1))
        channel.embeddedEventLoop.advanceTime(by: .seconds(59))
        #expect(recorder.events.isEmpty)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(recorder.events == [.registrationTimedOut(seconds: 60)])
        channel.embeddedEventLoop.advanceTime(by: .seconds(600))
        #expect(recorder.events == [.registrationTimedOut(seconds: 60)])  // once
        _ = try channel.finish()
    }

    @Test func pingAfterSilenceAndTimeoutWithoutAnswer() throws {
        let recorder = EventRecorder()
        let (channel, _, _) = Self.guarded(Self.settings(registration: 60), recorder)
        let loop = channel.embeddedEventLoop
        channel.pipeline.fireUserInboundEventTriggered(SessionRegistered())
        loop.advanceTime(by: .seconds(60))
        #expect(recorder.events.isEmpty)  // the registration deadline is gone
        loop.advanceTime(by: .seconds(20))
        try channel.writeInbound(Self.line("PRIVMSG #r :talking"))  // input at 80 s: idle again from here
        loop.advanceTime(by: .seconds(89))
        #expect(try Self.written(channel).isEmpty)
        loop.advanceTime(by: .seconds(1))
        #expect(try Self.written(channel) == "PING s\r\n")
        try channel.writeInbound(Self.line("PONG s"))  // answered: no timeout
        loop.advanceTime(by: .seconds(150))  // 320 s
        #expect(recorder.events.isEmpty)
        #expect(try Self.written(channel) == "PING s\r\n")  // the next round, at 260 s: 90 s after the PONG
        loop.advanceTime(by: .seconds(59))  // 379 s
        #expect(recorder.events.isEmpty)
        loop.advanceTime(by: .seconds(1))
        #expect(recorder.events == [.pingTimedOut(seconds: 120)])
        #expect(recorder.lines == ["PRIVMSG #r :talking", "PONG s"])  // lines pass through
        _ = try channel.finish()
    }

    /// One clock for every connection of a loop: connections that leave drop out of it (the
    /// others keep their deadlines), and its timer stops when the last one goes.
    @Test func oneClockKeepsTheDeadlinesOfEveryConnectionOnItsLoop() throws {
        let loop = EmbeddedEventLoop()
        let settings = Self.settings(registration: 10)
        let clock = ConnectionClock(eventLoop: loop, settings: settings)
        let recorders = (0..<4).map { _ in EventRecorder() }
        let channels = recorders.map { Self.guarded(settings, $0, loop: loop, clock: clock).0 }
        #expect(clock.count == 4 && clock.isTicking)
        // close, not finish: finish would cancel every task of the shared loop.
        try channels[0].close().wait()  // leaves: the last one moves into its place
        channels[2].pipeline.fireUserInboundEventTriggered(SessionRegistered())  // logs in: no registration deadline
        #expect(clock.count == 3)
        loop.advanceTime(by: .seconds(10))
        #expect(recorders.map(\.events) == [[], [.registrationTimedOut(seconds: 10)], [], [.registrationTimedOut(seconds: 10)]])
        loop.advanceTime(by: .seconds(80))  // 90 s: the one logged in is pinged
        #expect(try Self.written(channels[2]) == "PING s\r\n")
        for channel in channels.dropFirst() { try channel.close().wait() }
        #expect(clock.count == 0 && !clock.isTicking)
        loop.advanceTime(by: .seconds(3600))
        #expect(recorders[2].events.isEmpty)
    }

    @Test func theClockLooksMoreOftenForShortTimeouts() {
        let loop = EmbeddedEventLoop()
        #expect(ConnectionClock(eventLoop: loop, settings: Self.settings()).interval == .seconds(1))
        #expect(ConnectionClock(eventLoop: loop, settings: Self.settings(ping: 0.2)).interval == .milliseconds(50))
    }

    // MARK: Flood control

    @Test func floodControlHoldsLinesAndReadsInOrderLosingNothing() throws {
        let recorder = EventRecorder()
        let (channel, flood, _) = Self.guarded(Self.settings(perSecond: 2, burst: 3), recorder)
        let loop = channel.embeddedEventLoop
        for i in 0..<10 { try channel.writeInbound(Self.line("PING \(i)")) }
        #expect(recorder.lines == ["PING 0", "PING 1", "PING 2"])
        #expect(flood.queuedCount == 7)
        loop.advanceTime(by: .milliseconds(500))
        #expect(recorder.lines.count == 4)
        loop.advanceTime(by: .seconds(3))
        #expect(recorder.lines == (0..<10).map { "PING \($0)" })
        #expect(flood.queuedCount == 0)
        #expect(recorder.events.isEmpty)
        _ = try channel.finish()
    }

    @Test func floodControlPausesReadingWhileLinesWait() throws {
        final class ReadCounter: ChannelOutboundHandler {
            typealias OutboundIn = NIOAny
            var reads = 0
            func read(context: ChannelHandlerContext) { reads += 1; context.read() }
        }
        // Flood control decides; ClientConnection, at the tail where reads start, holds them.
        let counter = ReadCounter()
        let (channel, _) = try Self.connection(TestLogins(accounts: [:]))
        let clock = ConnectionClock(eventLoop: channel.embeddedEventLoop, settings: Self.settings(perSecond: 1, burst: 1))
        try channel.pipeline.syncOperations.addHandler(counter, position: .first)
        try channel.pipeline.syncOperations.addHandler(ConnectionGuard(clock: clock), position: .after(counter))
        channel.read()
        #expect(counter.reads == 1)
        try channel.writeInbound(Self.line("PING a"))
        try channel.writeInbound(Self.line("PING b"))  // waits for a token: reading pauses
        channel.read()
        #expect(counter.reads == 1)  // held back
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(counter.reads == 2)  // released once the queue drained
        #expect(try Self.written(channel).hasSuffix(":localhost PONG localhost b\r\n"))
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func excessFloodClosesAndDropsTheQueue() throws {
        let recorder = EventRecorder()
        let (channel, _, _) = Self.guarded(Self.settings(perSecond: 1, burst: 1, maximumQueued: 5), recorder)
        for i in 0..<10 { try channel.writeInbound(Self.line("x\(i)")) }
        #expect(recorder.events == [.excessFlood])
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(recorder.lines == ["x0"])
        _ = try channel.finish()
    }

    // MARK: Send queue

    @Test func aClientThatStopsReadingIsToldAfterTheGrace() throws {
        let recorder = EventRecorder()
        let (channel, _, _) = Self.guarded(Self.settings(), recorder)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        channel.isWritable = true  // it caught up: no action
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        #expect(recorder.events.isEmpty)
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(recorder.events.isEmpty)  // within the 2-second grace
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(recorder.events == [.sendQueueExceeded])
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    // MARK: ClientConnection

    static func connection(_ logins: TestLogins, logs: LogRecorder = LogRecorder()) throws -> (EmbeddedChannel, ServerCore) {
        var configuration = ServerConfiguration(path: "/nonexistent/server.json", tls: .init(certificateChain: "unused", privateKey: "unused"),
                                                usersFile: "/nonexistent/users.json")
        configuration.motd = "Hi."
        let core = ServerCore(configuration: configuration, logins: logins, logger: Logger(label: "test", factory: { _ in logs }))
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ClientConnection(core: core, eventLoop: channel.embeddedEventLoop, address: "192.0.2.7"))
        try channel.connect(to: SocketAddress(ipAddress: "192.0.2.7", port: 1)).wait()
        return (channel, core)
    }

    @Test func linesPipelinedBehindALoginWaitAndAreProcessedInOrder() throws {
        let logins = TestLogins(accounts: ["alice": "pw"])
        logins.holding = true
        let (channel, core) = try Self.connection(logins)
        for text in ["PASS alice:pw", "NICK alice", "USER a 0 * :A", "JOIN #bots", "PRIVMSG #bots :ready"] {
            try channel.writeInbound(Self.line(text))
        }
        #expect(try Self.written(channel).isEmpty)
        logins.finishHeld()
        channel.embeddedEventLoop.run()
        let output = try Self.written(channel)
        #expect(!output.contains(" 451 "))  // nothing refused as "not registered"
        #expect(output.contains(" 001 alice "))
        #expect(output.contains(":alice!alice@user/alice JOIN #bots\r\n"))
        #expect(core.registry.room(named: "#bots")?.memberCount == 1)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func readingPausesWhileAPasswordIsChecked() throws {
        final class ReadCounter: ChannelOutboundHandler {
            typealias OutboundIn = NIOAny
            var reads = 0
            func read(context: ChannelHandlerContext) { reads += 1; context.read() }
        }
        let logins = TestLogins(accounts: ["alice": "pw"])
        logins.holding = true
        let (channel, _) = try Self.connection(logins)
        let counter = ReadCounter()
        try channel.pipeline.syncOperations.addHandler(counter, position: .first)
        for text in ["PASS alice:pw", "NICK alice", "USER a 0 * :A"] { try channel.writeInbound(Self.line(text)) }
        channel.read()
        #expect(counter.reads == 0)
        logins.finishHeld()
        channel.embeddedEventLoop.run()
        #expect(counter.reads == 1)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func everyDisconnectionIsLoggedOnceWithReasonAndDuration() throws {
        let logs = LogRecorder()
        let (channel, _) = try Self.connection(TestLogins(accounts: ["alice": "pw"]), logs: logs)
        for text in ["PASS alice:pw", "NICK alice", "USER a 0 * :A"] { try channel.writeInbound(Self.line(text)) }
        channel.embeddedEventLoop.run()
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        try channel.writeInbound(Self.line("QUIT :bye"))
        channel.embeddedEventLoop.run()
        let lines = logs.all.filter { $0.contains("disconnected") }
        #expect(lines == ["info disconnected account=alice address=192.0.2.7 duration=5.0s reason=Quit: bye"])
    }

    @Test func eventsFromTheHandlersCloseWithTheirReason() throws {
        let logs = LogRecorder()
        let (channel, _) = try Self.connection(TestLogins(accounts: ["alice": "pw"]), logs: logs)
        for text in ["PASS alice:pw", "NICK alice", "USER a 0 * :A"] { try channel.writeInbound(Self.line(text)) }
        channel.embeddedEventLoop.run()
        _ = try Self.written(channel)
        channel.pipeline.fireUserInboundEventTriggered(SessionEvent.sendQueueExceeded)
        #expect(try Self.written(channel) == "ERROR :SendQ exceeded\r\n")
        #expect(logs.contains("send queue exceeded account=alice"))
        #expect(logs.all.last?.contains("reason=SendQ exceeded") == true)
    }

    @Test func socketErrorsAreWordedWithoutStrayPunctuation() {
        let reset = ClientConnection.describe(IOError(errnoCode: ECONNRESET, reason: "read(descriptor:pointer:size:)"))
        #expect(reset == "connection error: Connection reset by peer")
    }
}

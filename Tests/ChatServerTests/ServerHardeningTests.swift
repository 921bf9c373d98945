import ChatAuth
import ChatSupport
import ChatTesting
import Foundation
import IRC
import NIOCore
import NIOPosix
import Testing
import TLS
@testable import ChatServer

/// Broken peers and floods against a running server: every other client keeps chatting.
@Suite struct ServerHardeningTests {
    /// Two logged-in clients in #ok; returns them after checking that they can talk.
    func bystanders(_ server: TestServer) async throws -> (TestIRCClient, TestIRCClient) {
        let clients = try await server.loggedIn([alice, bob], joining: "#ok")
        return (clients[0], clients[1])
    }

    func stillChatting(_ a: TestIRCClient, _ b: TestIRCClient, _ text: String) async throws {
        try await a.send("PRIVMSG #ok :\(text)")
        try await b.next("message '\(text)'", timeout: 20) { $0.command == "PRIVMSG" && $0.parameters.last == text }
    }

    @Test func resetConnectionsLeaveCleanly() async throws {
        let server = try await TestServer.start(accounts: [alice, bob, carol])
        let (a, b) = try await bystanders(server)
        let c = try await server.loggedIn(carol.0, carol.1)
        try await c.send("JOIN #ok")
        try await c.next("366")
        // SO_LINGER 0: close() sends RST instead of FIN, no TLS close_notify.
        try await c.channel.eventLoop.flatSubmit {
            (c.channel as! SocketOptionProvider).setSoLinger(linger(l_onoff: 1, l_linger: 0))
        }.get()
        try await c.channel.pipeline.removeHandler(name: "tls").get()
        try await c.channel.close()
        #expect(try await a.next("carol's QUIT", timeout: 20) { $0.command == "QUIT" }.source?.hasPrefix("carol!") == true)
        try await stillChatting(a, b, "after the reset")
        await server.stop()
    }

    @Test func halfClosedClientIsCleanedUp() async throws {
        let server = try await TestServer.start(accounts: [alice, bob, carol])
        let (a, b) = try await bystanders(server)
        let c = try await server.loggedIn(carol.0, carol.1)
        try await c.send("JOIN #ok")
        try await c.next("366")
        try await c.channel.close(mode: .output)  // close_notify and FIN, still reading
        #expect(try await a.next("carol's QUIT", timeout: 20) { $0.command == "QUIT" }.source?.hasPrefix("carol!") == true)
        try await stillChatting(a, b, "after the half close")
        await server.stop()
    }

    @Test func megabyteWithoutNewlineIsDiscardedAndTheConnectionLives() async throws {
        let server = try await TestServer.start(accounts: [alice, bob])
        let (a, b) = try await bystanders(server)
        try await a.sendRaw(Array(repeating: UInt8(ascii: "x"), count: 1 << 20))
        try await a.next("417")
        try await a.sendRaw(Array("\r\nPING after\r\n".utf8))
        #expect(try await a.next("PONG").parameters.last == "after")
        try await stillChatting(b, a, "after the flood")
        #expect(a.received.filter { $0.command == "417" }.count == 1)  // one reply per overlong line
        await server.stop()
    }

    /// The test client answers the server's PING, as real clients do, so a long test on a busy
    /// machine does not lose its clients to the keepalive. A second PING proves the first was
    /// answered: unanswered, the server closes the connection after the timeout instead.
    @Test func testClientsAnswerTheKeepalive() async throws {
        let server = try await TestServer.start(accounts: [alice, bob]) {
            $0.limits.pingIntervalSeconds = 0.2
            $0.limits.pingTimeoutSeconds = 60
        }
        let (a, b) = try await bystanders(server)
        let first = try await a.next("PING")
        let second = try await a.next("PING")
        #expect(first.command == "PING" && second.command == "PING" && !a.isClosed)
        try await stillChatting(a, b, "after two keepalive rounds")
        await server.stop()
    }

    @Test func aThousandConnectionsThatNeverStartTLSAreClosedAndCostNobody() async throws {
        // Short enough to wait for, long enough for the bystanders' own handshakes on a busy
        // machine (ThreadSanitizer, the whole suite in parallel): they have the same limit.
        let server = try await TestServer.start(accounts: [alice, bob]) { $0.limits.handshakeTimeoutSeconds = 8 }
        final class Closed: ChannelInboundHandler, @unchecked Sendable {
            typealias InboundIn = ByteBuffer
            let counter: SharedCounter
            init(_ counter: SharedCounter) { self.counter = counter }
            func channelInactive(context: ChannelHandlerContext) { counter.add() }
        }
        let closed = SharedCounter()
        // Logged in first, then a thousand connections arrive and sit idle.
        let (a, b) = try await bystanders(server)
        var idle: [Channel] = []
        for _ in 0..<1000 {
            idle.append(try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { $0.pipeline.addHandler(Closed(closed)) }
                .connect(host: "127.0.0.1", port: server.port).get())
        }
        try await stillChatting(a, b, "with a thousand idle sockets")  // chat goes on while they sit idle
        #expect(await waitUntil { closed.value == 1000 })  // each closed by the handshake timeout
        // The server frees a connection's slot when its own close completes, which may be a
        // moment after the client has seen it (ThreadSanitizer: 16 still to go).
        #expect(await waitUntil { server.server.limiter.current == 2 }, "\(server.server.limiter.current) connections counted")
        for channel in idle { channel.close(promise: nil) }
        await server.stop()
    }

    @Test func loginFloodIsThrottledAndTheLoopsStayResponsive() async throws {
        let server = try await TestServer.start(accounts: [alice, bob]) { $0.limits.loginQueue = 1000 }
        let (a, b) = try await bystanders(server)
        let authenticator = try #require(server.server.core.logins as? Authenticator)
        let checksBefore = authenticator.passwordChecks
        let results = try await withThrowingTaskGroup(of: [String].self) { group in
            for i in 0..<40 {
                group.addTask {
                    let client = try await server.client()
                    try? await client.send("CAP LS 302")
                    try? await client.send("CAP REQ :sasl standard-replies")
                    var codes: [String] = []
                    for attempt in 0..<3 {
                        // A throttled connection is closed by the server: stop there.
                        guard (try? await client.send("AUTHENTICATE PLAIN")) != nil else { break }
                        guard (try? await client.next("AUTHENTICATE", timeout: 20) { $0.command == "AUTHENTICATE" }) != nil else { break }
                        guard (try? await client.send("AUTHENTICATE " + SASLPlain.encode(account: "alice", password: Array("guess \(i)-\(attempt)".utf8)))) != nil else { break }
                        guard let fail = try? await client.next("FAIL", timeout: 20, where: { $0.command == "FAIL" }) else {
                            codes.append("no answer")
                            break
                        }
                        codes.append(fail.parameters[1])
                        if client.isClosed { break }
                    }
                    await client.close()
                    return codes
                }
            }
            // Meanwhile the bystanders still get answers quickly.
            let started = Date()
            try await stillChatting(a, b, "during the login flood")
            #expect(Date().timeIntervalSince(started) < 10)
            var all: [String] = []
            for try await codes in group { all += codes }
            return all
        }
        #expect(results.contains("RATE_LIMITED"))
        #expect(!results.contains("SERVER_BUSY"))
        // Throttled attempts run no scrypt: each hash is one INVALID_CREDENTIALS (plus, at most,
        // one per attempt whose answer never came), and each RATE_LIMITED is none.
        let checks = authenticator.passwordChecks - checksBefore
        let invalid = results.filter { $0 == "INVALID_CREDENTIALS" }.count
        let unanswered = results.filter { $0 == "no answer" }.count
        #expect(checks >= invalid && checks <= invalid + unanswered, "\(checks) checks for \(results)")
        #expect(checks < results.count, "\(checks) checks for \(results.count) attempts")
        await server.stop()
    }
}

import ChatAuth
import ChatTesting
import Foundation
import IRC
import NIOCore
import NIOPosix
import Testing
import TLS
@testable import ChatServer

/// Bad input and faults: each gets a clear reply or a clean close, nothing else is disturbed.
@Suite struct ServerFaultTests {
    @Test func overlongLineGets417AndTheConnectionLives() async throws {
        let server = try await TestServer.start(accounts: [alice])
        let a = try await server.loggedIn(alice.0, alice.1)
        try await a.send("PRIVMSG #x :" + String(repeating: "y", count: 600))
        try await a.next("417")
        try await a.send("PRIVMSG #x :" + String(repeating: "z", count: 20_000))  // beyond the decoder's limit
        try await a.next("417")
        try await a.send("PING alive")
        #expect(try await a.next("PONG").parameters.last == "alive")
        await server.stop()
    }

    @Test func invalidUTF8IsNeverRelayed() async throws {
        let server = try await TestServer.start(accounts: [alice, bob])
        let a = try await server.loggedIn(alice.0, alice.1)
        let b = try await server.loggedIn(bob.0, bob.1)
        for client in [a, b] {
            try await client.send("JOIN #utf")
            try await client.next("366")
        }
        try await a.sendRaw(Array("PRIVMSG #utf :bad ".utf8) + [0xff, 0xfe] + Array("\r\n".utf8))
        let fail = try await a.next("FAIL")
        #expect(fail.parameters[0...1] == ["PRIVMSG", "INVALID_UTF8"])
        try await a.sendRaw(Array("PRIVMSG #utf :controls \u{1}ACTION waves\u{1} ok\r\n".utf8))
        let relayed = try await b.next("PRIVMSG")
        #expect(relayed.parameters.last == "controls \u{1}ACTION waves\u{1} ok")
        #expect(b.received.filter { $0.command == "PRIVMSG" }.count == 1)
        await server.stop()
    }

    @Test func plaintextOnTheTLSPortIsToldAndClosed() async throws {
        // A long handshake timeout: on a busy machine the test's own write may come late, and the
        // server must still be waiting for it (the reply comes at once either way).
        let server = try await TestServer.start { $0.limits.handshakeTimeoutSeconds = 300 }
        let received = try await rawExchange(port: server.port, send: "NICK alice\r\nUSER a 0 * :A\r\n")
        #expect(received.hasPrefix("ERROR :This port speaks TLS only"))
        #expect(server.logs.contains("the peer sent plaintext"))
        await server.stop()
    }

    @Test func aClientThatRejectsTheCertificateLeavesOneTLSLineAndOneDisconnection() async throws {
        let server = try await TestServer.start()
        // A client that trusts only the system's CAs: it refuses the development certificate.
        let context = try TLSContext(configuration: .client(trust: .system))
        _ = try? await TestIRCClient.connect(port: server.port, context: context)
        #expect(await waitUntil { server.logs.contains("disconnected") })
        let lines = server.logs.all.filter { $0.contains("TLS") || $0.contains("disconnected") }.filter { !$0.contains("listening") }
        // With the handshake step on the loop the reason is the client's alert ("tlsv1 alert
        // unknown ca"); with it offloaded, the close usually wins the race, and the line says what
        // that can mean.
        let tlsLines = lines.filter { $0.hasPrefix("info TLS: ") }
        #expect(tlsLines.count == 1, "\(lines)")
        #expect(tlsLines.allSatisfy { $0.contains("alert unknown ca") || $0.contains("does not trust this certificate") }, "\(lines)")
        #expect(lines.filter { $0.hasPrefix("info disconnected account=- address=127.0.0.1") && $0.contains("reason=TLS: ") }.count == 1, "\(lines)")
        #expect(!lines.contains { $0.contains("(errno") || $0.contains("))") })
        await server.stop()
    }

    @Test func stalledHandshakeIsClosed() async throws {
        let server = try await TestServer.start { $0.limits.handshakeTimeoutSeconds = 0.3 }
        let received = try await rawExchange(port: server.port, send: "\u{16}\u{03}\u{01}")
        #expect(received.isEmpty)
        #expect(server.logs.contains("TLS handshake did not finish within 300 ms"))
        await server.stop()
    }

    @Test func slowReaderIsDisconnectedAndOthersKeepReceiving() async throws {
        let server = try await TestServer.start(accounts: [alice, bob, carol]) {
            // Room for a fast reader that a busy machine stalls for a moment; far less than the flood.
            $0.limits.sendQueueBytes = 256 * 1024
            $0.limits.messagesPerSecond = 1_000_000
            $0.limits.messageBurst = 1_000_000
        }
        let sender = try await server.loggedIn(alice.0, alice.1)
        // A small receive buffer, so the kernel does not soak up megabytes for the slow reader.
        let slow = try await TestIRCClient.connect(port: server.port, caPath: server.caPath, receiveBuffer: 4096)
        try await slow.register(account: bob.0, password: bob.1)
        let fast = try await server.loggedIn(carol.0, carol.1)
        for client in [sender, slow, fast] {
            try await client.send("JOIN #flood")
            try await client.next("366")
        }
        try await slow.channel.setOption(ChannelOptions.autoRead, value: false).get()
        let line = String(repeating: "m", count: 400)
        let total = 20_000  // about 8 MB: more than the kernel buffers and the 256 KiB queue
        Task {
            for batch in stride(from: 0, to: total, by: 100) {
                let lines = (batch..<min(batch + 100, total)).map { "PRIVMSG #flood :\($0) \(line)\r\n" }.joined()
                try? await sender.sendRaw(Array(lines.utf8))
            }
        }
        let last = try await fast.next("the last message", timeout: 120) { $0.command == "PRIVMSG" && $0.parameters.last?.hasPrefix("\(total - 1) ") == true }
        #expect(last.source?.hasPrefix("alice!") == true)
        #expect(fast.received.filter { $0.command == "PRIVMSG" }.count == total)
        // The slow reader was disconnected with a reason (within the 2-second grace after it
        // passed the limit, which may be after the flood); the room saw it leave.
        _ = await waitUntil { fast.received.contains { $0.command == "QUIT" } }
        let quit = fast.received.first { $0.command == "QUIT" }
        #expect(quit?.source?.hasPrefix("bob!") == true)
        #expect(quit?.parameters == ["SendQ exceeded"])
        #expect(server.logs.contains("send queue exceeded account=bob"))
        await server.stop()
    }

    @Test func connectionLimitsApplyBeforeTLS() async throws {
        let server = try await TestServer.start { $0.limits.maxClientsPerAddress = 2; $0.limits.maxClients = 10 }
        let one = try await server.client()
        let two = try await server.client()
        await #expect(throws: (any Error).self) { _ = try await server.client() }
        #expect(server.logs.contains("too many connections from this address"))
        await one.close()
        await two.close()
        await server.stop()
    }

    @Test func gracefulShutdownSaysGoodbyeAndClosesTLSCleanly() async throws {
        let server = try await TestServer.start(accounts: [alice, bob])
        let a = try await server.loggedIn(alice.0, alice.1)
        let b = try await server.loggedIn(bob.0, bob.1)
        let started = Date()
        await server.stop()
        for client in [a, b] {
            #expect(try await client.next("ERROR").parameters == ["Server shutting down"])
            #expect(await client.waitUntilClosed())
            #expect(!client.errors.contains { ($0 as? TLSError) == .uncleanShutdown })
        }
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test func reloadPicksUpUsersAndCertificateAndKeepsTheOldOnBadInput() async throws {
        // A server with its own certificate files, so that the test can replace them.
        let folder = NSTemporaryDirectory() + "securechat-reload-\(UUID().uuidString)"
        let certs = DevelopmentCertificates(directory: folder)
        let first = try certs.create()
        let server = try await TestServer.start(accounts: [alice]) {
            $0.tls.certificateChain = certs.certificatePath
            $0.tls.privateKey = certs.keyPath
        }
        let context = try TLSContext(configuration: .client(trust: .caFile(certs.caCertificatePath)))
        let before = try await TestIRCClient.connect(port: server.port, context: context)
        #expect(server.server.currentCertificate?.sha256Fingerprint == first.sha256Fingerprint)
        await before.close()

        let second = try certs.create()  // new leaf, same CA
        server.server.reload()
        #expect(server.server.currentCertificate?.sha256Fingerprint == second.sha256Fingerprint)
        #expect(server.logs.contains("reloaded certificate"))

        // A deleted certificate: refused, the old one kept, a log line.
        try FileManager.default.removeItem(atPath: certs.certificatePath)
        server.server.reload()
        #expect(server.server.currentCertificate?.sha256Fingerprint == second.sha256Fingerprint)
        #expect(server.logs.contains("certificate reload refused, keeping the old one"))
        let after = try await TestIRCClient.connect(port: server.port, context: context)
        #expect(try await after.register(account: alice.0, password: alice.1).command == "001")

        // Users file replaced by garbage: the last good copy stays in use.
        try "garbage".write(toFile: server.store.path, atomically: true, encoding: .utf8)
        server.server.reload()
        #expect(server.logs.contains("keeping the last good copy"))
        let again = try await TestIRCClient.connect(port: server.port, context: context)
        #expect(try await again.register(account: alice.0, password: alice.1).command == "001")
        await server.stop()
    }
}

/// Connects without TLS, sends `text`, and returns what came back before the server closed.
func rawExchange(port: Int, send text: String) async throws -> String {
    final class Sink: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var bytes: [UInt8] = []
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            bytes += unwrapInboundIn(data).readableBytesView
        }
    }
    let sink = Sink()
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelInitializer { $0.pipeline.addHandler(sink) }
        .connect(host: "127.0.0.1", port: port).get()
    // The server may close first (a short handshake timeout on a busy machine): that is fine.
    try? await channel.writeAndFlush(channel.allocator.buffer(string: text))
    try await channel.closeFuture.get()
    return try await channel.eventLoop.submit { String(decoding: sink.bytes, as: UTF8.self) }.get()
}

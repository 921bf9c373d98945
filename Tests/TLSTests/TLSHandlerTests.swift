import Foundation
import NIOCore
import NIOPosix
import Testing
import TLS

/// The handler in real NIO pipelines over loopback sockets.
@Suite struct TLSHandlerTests {
    let pki = TestPKI.shared

    @Test func echoThroughRealSockets() async throws {
        let server = try await EchoServer(context: pki.serverContext())
        let client = try await TestClient.connect(port: server.port, context: pki.clientContext())
        let info = try await client.recorder.handshake.futureResult.get()
        #expect(info.version == "TLSv1.3")
        try await client.send("hello over TLS\r\n")
        let echoed = try await client.recorder.bytes(16, on: client.channel.eventLoop).get()
        #expect(String(buffer: echoed) == "hello over TLS\r\n")
        try await client.channel.close()
        try await server.stop()
    }

    @Test func writesBeforeTheHandshakeAreHeldAndSent() async throws {
        let server = try await EchoServer(context: pki.serverContext())
        let context = try pki.clientContext()
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let recorder = Recorder(eventLoop: eventLoop)
        let written = eventLoop.makePromise(of: Void.self)
        let channel = try await ClientBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TLSHandler(context: context, serverName: "127.0.0.1"))
                    try channel.pipeline.syncOperations.addHandler(recorder)
                    // Written from the initializer: long before the handshake can complete.
                    channel.writeAndFlush(channel.allocator.buffer(string: "early\r\n"), promise: written)
                }
            }
            .connect(host: "127.0.0.1", port: server.port).get()
        try await written.futureResult.get()
        #expect(try await eventLoop.submit { recorder.handshakeDone }.get())
        let echoed = try await recorder.bytes(7, on: eventLoop).get()
        #expect(String(buffer: echoed) == "early\r\n")
        try await channel.close()
        try await server.stop()
    }

    @Test func sixteenMebibytesEachWayWithMixedWrites() async throws {
        let server = try await EchoServer(context: pki.serverContext())
        let client = try await TestClient.connect(port: server.port, context: pki.clientContext())
        _ = try await client.recorder.handshake.futureResult.get()
        let total = 16 * 1024 * 1024
        let data = patternBytes(total, seed: 7)
        let sizes = [1, 7, 100, 512, 1500, 16_383, 16_384, 16_385, 65_536, 300_000]
        let channel = client.channel
        let lastWrite = try await channel.eventLoop.submit { () -> EventLoopFuture<Void> in
            var offset = 0
            var index = 0
            var last: EventLoopFuture<Void> = channel.eventLoop.makeSucceededVoidFuture()
            while offset < total {
                let size = min(sizes[index % sizes.count], total - offset)
                last = channel.write(channel.allocator.buffer(bytes: data[offset..<(offset + size)]))
                offset += size
                index += 1
                if index % 8 == 0 { channel.flush() }
            }
            channel.flush()
            return last
        }.get()
        let echoed = try await client.recorder.bytes(total, on: channel.eventLoop).get()
        try await lastWrite.get()
        #expect(echoed.readableBytes == total)
        #expect(echoed.getBytes(at: echoed.readerIndex, length: total)! == data)
        try await channel.close()
        try await server.stop()
    }

    /// `enqueue` (the server's relay path, which skips the pipeline) puts a write in the same
    /// queue, in the same order, as a pipeline write.
    @Test(.timeLimit(.minutes(1))) func enqueuedWritesKeepTheirPlaceAmongPipelineWrites() async throws {
        let server = try await EchoServer(context: pki.serverContext())
        let client = try await TestClient.connect(port: server.port, context: pki.clientContext())
        _ = try await client.recorder.handshake.futureResult.get()
        let channel = client.channel
        let tls = try await channel.pipeline.handler(type: TLSHandler.self).get()
        var expected = ""
        let lastPromised = try await channel.eventLoop.submit { () -> EventLoopFuture<Void> in
            var last = channel.eventLoop.makeSucceededVoidFuture()
            for i in 0..<300 {
                let line = "line \(i)\r\n"
                expected += line
                switch i % 3 {
                case 0: tls.enqueue(channel.allocator.buffer(string: line))
                case 1: channel.write(channel.allocator.buffer(string: line), promise: nil)
                default: last = channel.write(channel.allocator.buffer(string: line))
                }
                if i % 50 == 49 { channel.flush() }
            }
            channel.flush()
            return last
        }.get()
        try await lastPromised.get()
        let echoed = try await client.recorder.bytes(expected.utf8.count, on: channel.eventLoop).get()
        #expect(String(buffer: echoed) == expected)
        try await channel.close()
        try await server.stop()
    }

    @Test func cleanShutdownIsToldFromUncleanEOF() async throws {
        let server = try await EchoServer(context: pki.serverContext())
        // Clean: our close sends close_notify, the server answers, no error on either side.
        let clean = try await TestClient.connect(port: server.port, context: pki.clientContext())
        _ = try await clean.recorder.handshake.futureResult.get()
        try await clean.send("x")
        _ = try await clean.recorder.bytes(1, on: clean.channel.eventLoop).get()
        try await clean.channel.close()
        try await clean.recorder.closed.futureResult.get()
        #expect(try await clean.channel.eventLoop.submit { clean.recorder.errors.isEmpty && clean.recorder.sawShutdownEvent }.get())

        // Unclean: a raw TCP close under the TLS session.
        let unclean = try await TestClient.connect(port: server.port, context: pki.clientContext())
        _ = try await unclean.recorder.handshake.futureResult.get()
        try await unclean.channel.pipeline.removeHandler(name: "tls").get()
        try await unclean.channel.close()
        let seen = await server.errors.wait { ($0 as? TLSError) == .uncleanShutdown }
        #expect(seen != nil)
        #expect(!server.errors.all.contains { ($0 as? TLSError) != .uncleanShutdown })
        try await server.stop()
    }

    @Test func serverAnswersCloseNotify() async throws {
        let server = try await EchoServer(context: pki.serverContext())
        let client = try await TestClient.connect(port: server.port, context: pki.clientContext(), closeTimeout: .seconds(60))
        _ = try await client.recorder.handshake.futureResult.get()
        let started = Date()
        try await client.channel.close()
        try await client.recorder.closed.futureResult.get()
        // The server answered with close_notify: the client did not wait out its 60 s timeout.
        #expect(Date().timeIntervalSince(started) < 30)
        #expect(try await client.channel.eventLoop.submit { client.recorder.errors.isEmpty }.get())
        try await server.stop()
    }

    // MARK: Refusals, each with its readable error

    @Test func unknownCAIsRefused() async throws {
        let server = try await EchoServer(context: pki.serverContext())
        let client = try await TestClient.connect(port: server.port, context: pki.clientContext(trust: .system))
        let error = try await client.recorder.firstError.futureResult.get()
        guard case let .certificateVerifyFailed(_, reason, hint)? = error as? TLSError else {
            Issue.record("expected a verify failure, got \(error)")
            return
        }
        #expect(reason == "unable to get local issuer certificate")
        #expect("\(error)" == "certificate verify failed: unable to get local issuer certificate — is the server's CA in --ca?")
        #expect(hint.contains("--ca"))
        try await client.recorder.closed.futureResult.get()
        // The server hears why: the client's alert.
        let serverSide = await server.errors.wait { "\($0)".contains("unknown ca") }
        #expect(serverSide.map { "\($0)" }?.contains("does not trust this side's certificate") == true)
        try await server.stop()
    }

    @Test func hostnameMismatchNamesTheCertificatesNames() async throws {
        let issued = try pki.issue("other-host", names: ["chat.example.org"])
        let context = try TLSContext(configuration: .server(certificateChainFile: issued.cert, privateKeyFile: issued.key))
        let server = try await EchoServer(context: context)
        let client = try await TestClient.connect(port: server.port, context: pki.clientContext())
        let error = try await client.recorder.firstError.futureResult.get()
        #expect("\(error)".contains("the server's certificate is for chat.example.org, not localhost"), "\(error)")
        try await server.stop()
    }

    @Test func ipAddressMismatchIsRefused() async throws {
        let issued = try pki.issue("only-dns", names: ["localhost"])
        let context = try TLSContext(configuration: .server(certificateChainFile: issued.cert, privateKeyFile: issued.key))
        let server = try await EchoServer(context: context)
        let client = try await TestClient.connect(port: server.port, context: pki.clientContext(), serverName: "127.0.0.1")
        let error = try await client.recorder.firstError.futureResult.get()
        #expect("\(error)".contains("not 127.0.0.1"), "\(error)")
        try await server.stop()
    }

    @Test func expiredServerCertificateIsRefusedByTheClient() async throws {
        let issued = try pki.issue("expired-server", names: ["localhost"], validFrom: -10 * 86400, validFor: 86400)
        // The server would refuse to load it; start it with a clock from the middle of the day it was
        // valid (not its last second: a slow machine would cross the boundary between issue and load).
        let context = try TLSContext(
            configuration: .server(certificateChainFile: issued.cert, privateKeyFile: issued.key),
            now: Int(Date().timeIntervalSince1970) - 9 * 86400 - 43200)
        let server = try await EchoServer(context: context)
        let client = try await TestClient.connect(port: server.port, context: pki.clientContext())
        let error = try await client.recorder.firstError.futureResult.get()
        #expect("\(error)".hasPrefix("certificate verify failed: certificate has expired — the server's certificate expired on "), "\(error)")
        try await server.stop()
    }

    @Test func plaintextOnTheTLSPortIsClosedAtOnceWithAReply() async throws {
        // A long handshake timeout, so a quick close proves the plaintext was detected.
        let server = try await EchoServer(context: pki.serverContext(), handshakeTimeout: .seconds(60), plaintextReply: "ERROR :TLS only\r\n")
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let recorder = Recorder(eventLoop: eventLoop)
        let channel = try await ClientBootstrap(group: eventLoop)
            .channelInitializer { $0.pipeline.addHandler(recorder) }
            .connect(host: "127.0.0.1", port: server.port).get()
        let started = Date()
        try await channel.writeAndFlush(channel.allocator.buffer(string: "NICK alice\r\nUSER a 0 * :A\r\n"))
        try await recorder.closed.futureResult.get()
        #expect(Date().timeIntervalSince(started) < 30)
        #expect(String(buffer: recorder.received) == "ERROR :TLS only\r\n")
        let error = await server.errors.wait { if case .plaintextPeer? = $0 as? TLSError { return true } else { return false } }
        #expect(error.map { "\($0)" } == "the peer sent plaintext (\"NICK alice..USER\") instead of a TLS handshake — it must connect with TLS turned on")
        try await server.stop()
    }

    @Test func stalledHandshakeTimesOut() async throws {
        let server = try await EchoServer(context: pki.serverContext(), handshakeTimeout: .milliseconds(300))
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let recorder = Recorder(eventLoop: eventLoop)
        // The server's timeout starts when it accepts: measure from before connecting.
        let started = Date()
        let channel = try await ClientBootstrap(group: eventLoop)
            .channelInitializer { $0.pipeline.addHandler(recorder) }
            .connect(host: "127.0.0.1", port: server.port).get()
        // Half a ClientHello, then silence. (On a slow machine the server may already have closed.)
        try? await channel.writeAndFlush(channel.allocator.buffer(bytes: [0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))
        try await recorder.closed.futureResult.get()
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed > 0.2)  // closed by the timeout, not at once (the error below says which)
        let error = await server.errors.wait { ($0 as? TLSError) == .handshakeTimedOut(milliseconds: 300) }
        #expect(error.map { "\($0)" } == "TLS handshake did not finish within 300 ms — the peer stalled or is not speaking TLS")
        try await server.stop()
    }

    @Test func aThousandConcurrentConnectionsAreAllServed() async throws {
        let server = try await EchoServer(context: pki.serverContext())
        let context = try pki.clientContext()
        let count = 1000
        let served = try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<count {
                group.addTask {
                    let client = try await TestClient.connect(port: server.port, context: context)
                    let message = "client \(i)\r\n"
                    try await client.send(message)
                    let echoed = try await client.recorder.bytes(message.utf8.count, on: client.channel.eventLoop).get()
                    try await client.channel.close()
                    return String(buffer: echoed) == message
                }
            }
            var served = 0
            for try await ok in group where ok { served += 1 }
            return served
        }
        #expect(served == count)
        #expect(server.errors.all.isEmpty, "\(server.errors.all.prefix(3))")
        try await server.stop()
    }
}

import ChatTesting
import Foundation
import NIOCore
import NIOPosix
import Testing
import TLS

/// Runs handshake steps on its own thread after a delay and counts them, or refuses them all.
final class TestHandshakeExecutor: TLSHandshakeExecutor, @unchecked Sendable {
    private let queue = DispatchQueue(label: "test-handshake-steps")
    private let delay: Double
    private let refuse: Bool
    private let lock = NSLock()
    private var taken = 0
    private var turnedAway = 0
    private var done = 0

    /// When set, each step waits for it before running (so a test decides when a step ends).
    let gate: DispatchSemaphore?

    init(delay: Double = 0, refuse: Bool = false, gate: DispatchSemaphore? = nil) {
        self.delay = delay
        self.refuse = refuse
        self.gate = gate
    }

    var steps: Int { lock.withLock { taken } }
    var refused: Int { lock.withLock { turnedAway } }
    /// Steps that ran to their end.
    var finished: Int { lock.withLock { done } }

    func execute(_ job: @escaping @Sendable () -> Void) -> Bool {
        lock.withLock { if refuse { turnedAway += 1 } else { taken += 1 } }
        if refuse { return false }
        queue.asyncAfter(deadline: .now() + delay) {
            self.gate?.wait()
            job()
            self.lock.withLock { self.done += 1 }
        }
        return true
    }
}

/// A server whose handshake steps run away from the event loop (`TLSHandshakeExecutor`).
@Suite struct HandshakeOffloadTests {
    let pki = TestPKI.shared

    /// Sends `line` (written before the handshake can complete) and waits for its echo; with
    /// `tls12`, the client offers nothing newer. Returns what the handshake negotiated.
    func lineIsEchoed(port: Int, _ line: String = "early\r\n", tls12: Bool = false) async throws -> TLSSessionInfo {
        let context = try pki.clientContext()
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let recorder = Recorder(eventLoop: eventLoop)
        let channel = try await ClientBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let engine = try TLSEngine(context: context, serverName: "127.0.0.1")
                    if tls12 { _ = SSL_set_max_proto_version_for_tests(engine) }
                    try channel.pipeline.syncOperations.addHandler(TLSHandler(engine: engine))
                    try channel.pipeline.syncOperations.addHandler(recorder)
                    channel.writeAndFlush(channel.allocator.buffer(string: line), promise: nil)
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let info = try await recorder.handshake.futureResult.get()
        let echoed = try await recorder.bytes(line.utf8.count, on: eventLoop).get()
        #expect(String(buffer: echoed) == line)
        try await channel.close()
        return info
    }

    @Test func stepsRunOnTheExecutorAndDataRightBehindFinishedIsDelivered() async throws {
        let executor = TestHandshakeExecutor(delay: 0.05)
        let server = try await EchoServer(context: pki.serverContext(), handshakeExecutor: executor)
        for _ in 0..<3 { #expect(try await lineIsEchoed(port: server.port).version == "TLSv1.3") }
        // One step per connection runs there: the ClientHello's, which makes the server's flight
        // (key exchange, signature). Checking the client's Finished is cheap and runs on the loop.
        #expect(executor.steps == 3)
        try await server.stop()
    }

    @Test func tls12NeedsMoreRoundTripsAndStillWorks() async throws {
        let executor = TestHandshakeExecutor(delay: 0.02)
        let server = try await EchoServer(context: pki.serverContext(), handshakeExecutor: executor)
        #expect(try await lineIsEchoed(port: server.port, "twelve\r\n", tls12: true).version == "TLSv1.2")
        // The server's first flight (with the signature) there; the client's key exchange and
        // Finished on the loop.
        #expect(executor.steps == 1)
        try await server.stop()
    }

    @Test func aHelloRetryRequestDoesNotCountAsTheServersFlight() async throws {
        // openssl s_client sends a key share for X448 first, which this server does not take: the
        // first step answers with a HelloRetryRequest, and the expensive step (key exchange and
        // signature) is the second ClientHello's. Both must run on the executor.
        let executor = TestHandshakeExecutor()
        let server = try await EchoServer(context: pki.serverContext(), handshakeExecutor: executor)
        let client = try Subprocess([
            "openssl", "s_client", "-connect", "127.0.0.1:\(server.port)", "-tls1_3", "-groups", "X448:X25519",
            "-CAfile", pki.caPath, "-verify_return_error", "-servername", "localhost", "-quiet", "-no_ign_eof",
        ])
        defer { client.stop() }
        client.write("after a retry\n")
        #expect(await client.waitFor("after a retry"), "\(client.text)")
        client.closeInput()
        #expect(await client.waitForExit() == 0)
        #expect(executor.steps == 2)
        try await server.stop()
    }

    @Test func aFullExecutorLeavesTheStepToTheEventLoop() async throws {
        let executor = TestHandshakeExecutor(refuse: true)
        let server = try await EchoServer(context: pki.serverContext(), handshakeExecutor: executor)
        #expect(try await lineIsEchoed(port: server.port).version == "TLSv1.3")
        #expect(executor.refused >= 2)
        #expect(executor.steps == 0)
        try await server.stop()
    }

    @Test func aStepStillOutWhenTheHandshakeTimesOutIsDropped() async throws {
        // The first step (the ClientHello) is held until the handshake has timed out: event by
        // event, whatever the machine's speed. The timeout is long enough for the ClientHello to
        // arrive on a busy machine.
        let gate = DispatchSemaphore(value: 0)
        let executor = TestHandshakeExecutor(gate: gate)
        let server = try await EchoServer(context: pki.serverContext(), handshakeTimeout: .seconds(3), handshakeExecutor: executor)
        let connecting = Task { try? await TestClient.connect(port: server.port, context: pki.clientContext()) }
        #expect(await waitUntil { executor.steps == 1 })
        let error = await server.errors.wait(seconds: 60) { ($0 as? TLSError).map { if case .handshakeTimedOut = $0 { return true } else { return false } } ?? false }
        #expect(error != nil)
        gate.signal()
        // The late step comes back to a handler that already closed, and is dropped there.
        #expect(await waitUntil { executor.finished == 1 })
        #expect(executor.steps == 1)
        if let client = await connecting.value { _ = try? await client.recorder.handshake.futureResult.get() }
        try await server.stop()
    }
}

import ChatTesting
import Foundation
import NIOCore
import NIOPosix
import TLS

/// Certificates made once per test process in a temporary folder: a CA, a server certificate for
/// localhost/127.0.0.1/::1, and files for the failure cases.
struct TestPKI: Sendable {
    let directory: String
    let caPath: String
    let certificatePath: String
    let keyPath: String

    static let shared: TestPKI = {
        let directory = NSTemporaryDirectory() + "securechat-tls-tests-\(getpid())"
        let certs = DevelopmentCertificates(directory: directory)
        try! certs.create()
        return TestPKI(directory: directory, caPath: certs.caCertificatePath, certificatePath: certs.certificatePath, keyPath: certs.keyPath)
    }()

    var ca: CertificateAuthority {
        try! CertificateAuthority.load(certificatePath: caPath, keyPath: directory + "/ca.key")
    }

    /// Writes a certificate and key issued by the shared CA and returns their paths.
    func issue(_ name: String, names: [String], validFrom: Int = -3600, validFor: Int = 86400) throws -> (cert: String, key: String) {
        let leaf = try ca.issueServerCertificate(names: names, validFrom: validFrom, validFor: validFor)
        let cert = directory + "/\(name).crt"
        let key = directory + "/\(name).key"
        try SecretFile.writeAtomically(Array(leaf.certificate.pem().utf8), to: cert, mode: 0o644)
        try SecretFile.writeAtomically(Array(leaf.key.pem().utf8), to: key, mode: 0o600)
        return (cert, key)
    }

    func serverContext(minimum: TLSVersion = .tls12, alpn: [String] = []) throws -> TLSContext {
        var configuration = TLSConfiguration.server(certificateChainFile: certificatePath, privateKeyFile: keyPath)
        configuration.minimumVersion = minimum
        configuration.applicationProtocols = alpn
        return try TLSContext(configuration: configuration)
    }

    func clientContext(trust: TLSConfiguration.Trust? = nil, minimum: TLSVersion = .tls12, alpn: [String] = []) throws -> TLSContext {
        var configuration = TLSConfiguration.client(trust: trust ?? .caFile(caPath))
        configuration.minimumVersion = minimum
        configuration.applicationProtocols = alpn
        return try TLSContext(configuration: configuration)
    }
}

/// Collects what a TLS channel delivers, confined to the channel's event loop.
final class Recorder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let handshake: EventLoopPromise<TLSSessionInfo>
    let firstError: EventLoopPromise<Error>
    let closed: EventLoopPromise<Void>
    let echo: Bool
    private(set) var received: ByteBuffer
    private(set) var sawShutdownEvent = false
    private(set) var handshakeDone = false
    private(set) var errors: [Error] = []
    private var waiter: (count: Int, promise: EventLoopPromise<ByteBuffer>)?

    init(eventLoop: EventLoop, echo: Bool = false) {
        handshake = eventLoop.makePromise()
        firstError = eventLoop.makePromise()
        closed = eventLoop.makePromise()
        received = ByteBufferAllocator().buffer(capacity: 0)
        self.echo = echo
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if echo {
            context.writeAndFlush(NIOAny(buffer), promise: nil)
        } else {
            var copy = buffer
            received.writeBuffer(&copy)
            checkWaiter()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event as? TLSEvent {
        case let .handshakeCompleted(info)?:
            handshakeDone = true
            handshake.succeed(info)
        case .shutdownCompleted?: sawShutdownEvent = true
        case nil: break
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        errors.append(error)
        firstError.succeed(error)
        handshake.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshake.fail(ChannelError.ioOnClosedChannel)
        firstError.fail(ChannelError.ioOnClosedChannel)
        waiter?.promise.fail(ChannelError.ioOnClosedChannel)
        waiter = nil
        closed.succeed(())
    }

    /// A future for the first `count` bytes received.
    func bytes(_ count: Int, on eventLoop: EventLoop) -> EventLoopFuture<ByteBuffer> {
        eventLoop.flatSubmit {
            let promise = eventLoop.makePromise(of: ByteBuffer.self)
            self.waiter = (count, promise)
            self.checkWaiter()
            return promise.futureResult
        }
    }

    private func checkWaiter() {
        if let waiter, received.readableBytes >= waiter.count {
            self.waiter = nil
            waiter.promise.succeed(received.getSlice(at: received.readerIndex, length: waiter.count)!)
        }
    }
}

/// A TLS echo server on 127.0.0.1 with a free port.
final class EchoServer: @unchecked Sendable {
    let channel: Channel
    let context: TLSContext
    /// Errors from every server-side connection, in order.
    let errors = NIOLockedErrors()
    var port: Int { channel.localAddress!.port! }

    init(context: TLSContext, handshakeTimeout: TimeAmount = .seconds(120), plaintextReply: String? = nil, handshakeExecutor: TLSHandshakeExecutor? = nil) async throws {
        self.context = context
        let errors = self.errors
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 2048)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let tls = try TLSHandler(context: context, handshakeTimeout: handshakeTimeout, plaintextReply: plaintextReply, handshakeExecutor: handshakeExecutor)
                    try channel.pipeline.syncOperations.addHandler(tls)
                    try channel.pipeline.syncOperations.addHandler(Recorder(eventLoop: channel.eventLoop, echo: true))
                    try channel.pipeline.syncOperations.addHandler(ErrorSink(errors))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func stop() async throws {
        try await channel.close()
    }
}

/// Stores errors that reach the end of a pipeline.
final class ErrorSink: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let errors: NIOLockedErrors
    init(_ errors: NIOLockedErrors) { self.errors = errors }
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        errors.append(error)
    }
}

/// A lock-protected list of errors.
final class NIOLockedErrors: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [Error] = []
    func append(_ error: Error) { lock.lock(); list.append(error); lock.unlock() }
    var all: [Error] { lock.lock(); defer { lock.unlock() }; return list }

    /// Waits up to `seconds` for an error matching `predicate`.
    func wait(seconds: Double = 10, _ predicate: (Error) -> Bool) async -> Error? {
        _ = await waitUntil(timeout: seconds) { all.contains(where: predicate) }
        return all.first(where: predicate)
    }
}

/// A connected TLS client with its recorder.
struct TestClient {
    let channel: Channel
    let recorder: Recorder

    static func connect(
        port: Int, context: TLSContext, serverName: String? = "localhost", host: String = "127.0.0.1",
        closeTimeout: TimeAmount = .seconds(3)
    ) async throws -> TestClient {
        let group = MultiThreadedEventLoopGroup.singleton
        let eventLoop = group.next()
        let recorder = Recorder(eventLoop: eventLoop)
        let channel = try await ClientBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        TLSHandler(context: context, serverName: serverName, handshakeTimeout: .seconds(120), closeTimeout: closeTimeout),
                        name: "tls")
                    try channel.pipeline.syncOperations.addHandler(recorder)
                }
            }
            .connect(host: host, port: port).get()
        return TestClient(channel: channel, recorder: recorder)
    }

    func send(_ text: String) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(string: text))
    }
}

/// Runs a command-line program (looked up on PATH) and captures its output, bounded in time.
final class Subprocess: @unchecked Sendable {
    private let child: ChildProcess

    init(_ arguments: [String]) throws {
        child = try ChildProcess(arguments, input: true)
    }

    var text: String { child.output }
    func write(_ text: String) { child.write(text) }
    func closeInput() { child.closeInput() }

    /// Waits up to `seconds` for the output to contain `needle`.
    @discardableResult
    func waitFor(_ needle: String, seconds: Double = 10) async -> Bool {
        await waitUntil(timeout: seconds) { text.contains(needle) }
    }

    /// Waits up to `seconds` for the process to exit; kills it after that.
    func waitForExit(seconds: Double = 10) async -> Int32 {
        await child.waitForExit(timeout: seconds)
    }

    func stop() {
        child.signal(SIGTERM)
        child.finish(timeout: 5)
    }
}

/// A TCP port that was free a moment ago on 127.0.0.1.
func freePort() throws -> Int {
    let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: 0).wait()
    let port = channel.localAddress!.port!
    try channel.close().wait()
    return port
}

/// Bytes 0..<count in a repeating, position-dependent pattern.
func patternBytes(_ count: Int, seed: UInt8 = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ ($0 >> 8) &+ Int(seed)) }
}

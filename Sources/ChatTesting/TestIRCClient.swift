import ChatServer
import Foundation
import IRC
import IRCFraming
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TLS

/// A bare IRC-over-TLS client for tests and benchmarks: send raw lines, wait for replies.
///
/// Every wait is bounded in time and fails with what was received so far, so a broken server
/// fails a test instead of hanging it.
// @unchecked Sendable: `channel` is Sendable and immutable; what it received lives in `state`,
// behind its lock.
public final class TestIRCClient: @unchecked Sendable {
    public let channel: Channel
    private let state: NIOLockedValueBox<State>

    struct State {
        var messages: [IRCMessage] = []
        var cursor = 0
        var closed = false
        var errors: [Error] = []
    }

    public struct Timeout: Error, CustomStringConvertible {
        public let waitingFor: String
        public let received: [String]
        public var description: String { "timed out waiting for \(waitingFor); received:\n" + received.suffix(20).joined(separator: "\n") }
        public init(waitingFor: String, received: [String]) {
            self.waitingFor = waitingFor
            self.received = received
        }
    }

    init(channel: Channel, state: NIOLockedValueBox<State>) {
        self.channel = channel
        self.state = state
    }

    /// Connects over TLS, trusting `caPath`, and waits for the handshake.
    public static func connect(host: String = "127.0.0.1", port: Int, caPath: String, serverName: String = "localhost",
                               receiveBuffer: Int? = nil, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> TestIRCClient {
        let context = try TLSContext(configuration: .client(trust: .caFile(caPath)))
        return try await connect(host: host, port: port, context: context, serverName: serverName, receiveBuffer: receiveBuffer, group: group)
    }

    /// - Parameter receiveBuffer: SO_RCVBUF for the socket (tests of slow readers).
    public static func connect(host: String = "127.0.0.1", port: Int, context: TLSContext, serverName: String = "localhost",
                               receiveBuffer: Int? = nil, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> TestIRCClient {
        let state = NIOLockedValueBox(State())
        let eventLoop = group.next()
        let handshake = eventLoop.makePromise(of: Void.self)
        var bootstrap = ClientBootstrap(group: eventLoop)
        if let receiveBuffer { bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBuffer)) }
        let channel = try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TLSHandler(context: context, serverName: serverName, handshakeTimeout: .seconds(120)), name: "tls")
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineDecoder(maximumLength: 1 << 16)))
                    try channel.pipeline.syncOperations.addHandler(Collector(state: state, handshake: handshake))
                }
            }
            .connect(host: host, port: port).get()
        try await handshake.futureResult.get()
        return TestIRCClient(channel: channel, state: state)
    }

    /// Sends one line (CR LF added).
    public func send(_ line: String) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(string: line + "\r\n"))
    }

    /// Sends bytes as they are.
    public func sendRaw(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
    }

    /// Every message received so far.
    public var received: [IRCMessage] { state.withLockedValue { $0.messages } }
    public var isClosed: Bool { state.withLockedValue { $0.closed } }
    public var errors: [Error] { state.withLockedValue { $0.errors } }

    /// The next message after the cursor that matches, moving the cursor past it.
    @discardableResult
    public func next(_ description: String = "a matching message", timeout: Double = 60, where predicate: (IRCMessage) -> Bool) async throws -> IRCMessage {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let (found, closed) = state.withLockedValue { state -> (IRCMessage?, Bool) in
                if let index = state.messages[state.cursor...].firstIndex(where: predicate) {
                    state.cursor = index + 1
                    return (state.messages[index], state.closed)
                }
                return (nil, state.closed)
            }
            if let found { return found }
            if closed || Date() > deadline {
                throw Timeout(waitingFor: description + (closed ? " (connection closed)" : ""), received: received.map { String(decoding: $0.serialized().dropLast(2), as: UTF8.self) })
            }
            try await Task.sleep(nanoseconds: 5_000_000)
        }
    }

    /// The next message with this command (or numeric).
    @discardableResult
    public func next(_ command: String, timeout: Double = 60) async throws -> IRCMessage {
        try await next(command, timeout: timeout) { $0.command == command }
    }

    /// Waits until the server closes the connection.
    public func waitUntilClosed(timeout: Double = 60) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while !isClosed && Date() < deadline { try? await Task.sleep(nanoseconds: 5_000_000) }
        return isClosed
    }

    /// Registers with SASL PLAIN (or PASS) and waits for 001. Throws with the transcript if
    /// registration fails.
    @discardableResult
    public func register(account: String, password: String, nick: String? = nil, capabilities: [String] = [], usePASS: Bool = false) async throws -> IRCMessage {
        let nick = nick ?? account
        if usePASS {
            try await send("PASS \(account):\(password)")
            try await send("NICK \(nick)")
            try await send("USER \(nick) 0 * :Test \(nick)")
        } else {
            var login = SASLClientLogin(account: account, password: Array(password.utf8), nick: nick, realname: "Test \(nick)", capabilities: capabilities)
            for line in login.opening { try await send(line) }
            // Until the SASL exchange ends either way; then CAP END, so a failed login also ends
            // registration (the server then refuses it).
            var done = false
            while !done {
                let reply = try await next("the SASL exchange") { ["CAP", "AUTHENTICATE", "FAIL", "903", "904", "905", "906", "ERROR"].contains($0.command) }
                switch login.receive(reply) {
                case .wait: break
                case let .send(lines):
                    for line in lines { try await send(line) }
                    done = lines == ["CAP END"]
                case .failed(.disconnected): return reply
                case .failed, .welcome:
                    try await send("CAP END")
                    done = true
                }
            }
        }
        return try await next("001 (welcome)") { $0.command == "001" || $0.command == "ERROR" }
    }

    public func close() async {
        try? await channel.close()
    }
}

/// Parses lines into the client's state.
// @unchecked Sendable: immutable (`let`s only); the state it fills is behind its lock, and its
// methods are loop-bound (the channel's event loop).
final class Collector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = InboundLine
    let state: NIOLockedValueBox<TestIRCClient.State>
    let handshake: EventLoopPromise<Void>

    init(state: NIOLockedValueBox<TestIRCClient.State>, handshake: EventLoopPromise<Void>) {
        self.state = state
        self.handshake = handshake
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case let .line(buffer) = unwrapInboundIn(data),
              let message = try? IRCMessage.parse(buffer.readableBytesView, maximumTagBytes: 8191, maximumLineBytes: 1 << 16) else { return }
        state.withLockedValue { $0.messages.append(message) }
        // Answer the server's keepalive as every client does, so a test that runs longer than
        // the ping interval and timeout (ThreadSanitizer on a busy machine) keeps its clients.
        if message.command == "PING" {
            let pong = IRCMessage(command: "PONG", parameters: message.parameters.isEmpty ? [] : [message.parameters[message.parameters.count - 1]])
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: pong.serialized())), promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSEvent { handshake.succeed(()) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        state.withLockedValue { $0.errors.append(error) }
        handshake.fail(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        state.withLockedValue { $0.closed = true }
        handshake.fail(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }
}

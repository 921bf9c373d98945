import ChatSupport
import Foundation
import IRC
import IRCFraming
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TLS

/// How to reach a server and whom to log in as.
public struct ChatClientOptions: Sendable {
    public var host: String
    public var port: Int
    public var account: String
    public var password: Password
    /// Whom to trust for the server's certificate.
    public var trust: TLSConfiguration.Trust
    /// No certificate verification at all (an explicit, loudly announced choice).
    public var insecure: Bool
    /// Seconds for TCP, TLS and login together.
    public var loginTimeout: Double
    /// A client certificate and its key (PEM files): log in with SASL EXTERNAL instead of the
    /// password, when the certificate is registered with the account (`chat-admin cert add`).
    public var clientCertificate: (certificateFile: String, keyFile: String)?

    public init(host: String, port: Int, account: String, password: Password, trust: TLSConfiguration.Trust = .system, insecure: Bool = false, loginTimeout: Double = 30) {
        self.host = host
        self.port = port
        self.account = account
        self.password = password
        self.trust = trust
        self.insecure = insecure
        self.loginTimeout = loginTimeout
    }
}

/// A logged-in connection to a SecureChat (or any IRC-over-TLS) server: connect, verify the
/// server, log in with SASL PLAIN, then send commands and read `events`.
///
/// Used by `chat-client`, by the tests and by the load generator.
public final class ChatConnection: Sendable {
    /// The nick the server gave us (the account name as registered).
    public let nick: String
    /// What the server says, in order, until the connection closes.
    public let events: AsyncStream<ChatEvent>
    /// What TLS negotiated.
    public let tls: TLSSessionInfo
    /// The IRCv3 capabilities the server granted.
    public let capabilities: Set<String>
    private let channel: Channel

    /// Asked for when the server lists them: history (a backlog on joining, `/history`) and
    /// the read marker that follows the account across clients.
    public static let optionalCapabilities = ["batch", "message-tags", "draft/chathistory", "draft/read-marker"]

    /// Whether the server keeps history this client can fetch (CHATHISTORY in batches).
    public var fetchesHistory: Bool { capabilities.isSuperset(of: ["batch", "draft/chathistory"]) }

    private init(nick: String, events: AsyncStream<ChatEvent>, tls: TLSSessionInfo, capabilities: Set<String>, channel: Channel) {
        self.nick = nick
        self.events = events
        self.tls = tls
        self.capabilities = capabilities
        self.channel = channel
    }

    /// Connects and logs in; throws a `ChatClientError` that says what failed.
    public static func connect(_ options: ChatClientOptions, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> ChatConnection {
        var configuration = TLSConfiguration.client(trust: options.trust)
        if options.insecure { configuration.verification = .none }
        if let identity = options.clientCertificate {
            configuration.certificateChainFile = identity.certificateFile
            configuration.privateKeyFile = identity.keyFile
        }
        let context: TLSContext
        do { context = try TLSContext(configuration: configuration) } catch { throw ChatClientError.tls(error) }
        let (stream, continuation) = AsyncStream<IRCMessage>.makeStream()
        let eventLoop = group.next()
        let handshake = eventLoop.makePromise(of: TLSSessionInfo.self)
        let inbox = Inbox(continuation: continuation, handshake: handshake)
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(.seconds(Int64(max(1, options.loginTimeout))))
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(TLSHandler(context: context, serverName: options.host, handshakeTimeout: .seconds(15)))
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineDecoder(maximumLength: 1 << 16)))
                        try channel.pipeline.syncOperations.addHandler(inbox)
                    }
                }
                .connect(host: options.host, port: options.port).get()
        } catch {
            handshake.fail(error)
            throw ChatClientError.connectionFailed(host: options.host, port: options.port, reason: Self.describe(error))
        }
        let info: TLSSessionInfo
        do {
            info = try await handshake.futureResult.get()
        } catch let error as TLSError {
            try? await channel.close()
            throw ChatClientError.tls(error)
        } catch {
            try? await channel.close()
            throw ChatClientError.disconnected("the connection closed during the TLS handshake")
        }
        let messages = IteratorBox(stream.makeAsyncIterator())
        let nick: String
        let capabilities: Set<String>
        do {
            (nick, capabilities) = try await withThrowingTaskGroup(of: (String, Set<String>).self) { group in
                group.addTask { try await login(options, channel: channel, messages: messages) }
                group.addTask {
                    try await Task.sleep(nanoseconds: UInt64(options.loginTimeout * 1e9))
                    throw ChatClientError.timedOut("waiting for the server to accept the login")
                }
                let result = try await group.next()!
                group.cancelAll()
                return result
            }
        } catch {
            try? await channel.close()
            throw error
        }
        let (events, sink) = AsyncStream<ChatEvent>.makeStream()
        Task {
            var translator = EventTranslator(nick: nick)
            while let message = await messages.next() {
                for event in translator.translate(message) { sink.yield(event) }
            }
            sink.finish()
        }
        return ChatConnection(nick: nick, events: events, tls: info, capabilities: capabilities, channel: channel)
    }

    private static func describe(_ error: Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)).lowercased() }
        if let connection = error as? NIOConnectionError {
            if let first = connection.connectionErrors.first { return describe(first.error) }
            if connection.dnsAError != nil || connection.dnsAAAAError != nil { return "the host name could not be resolved" }
        }
        if case ChannelError.connectTimeout = error { return "no answer (timed out)" }
        return "\(error)"
    }

    private static func send(_ line: String, on channel: Channel) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(string: line + "\r\n"))
    }

    /// CAP, NICK, USER, SASL PLAIN, CAP END (`SASLClientLogin`); returns the nick from 001 and
    /// the capabilities granted.
    private static func login(_ options: ChatClientOptions, channel: Channel, messages: IteratorBox) async throws -> (String, Set<String>) {
        var login = SASLClientLogin(account: options.account, password: options.clientCertificate == nil ? options.password.bytes : nil,
                                    capabilities: ["server-time", "echo-message", "away-notify"], optionalCapabilities: optionalCapabilities)
        for line in login.opening { try await send(line, on: channel) }
        while let m = await messages.next() {
            switch login.receive(m) {
            case .wait:
                continue
            case let .send(lines):
                for line in lines { try await send(line, on: channel) }
            case let .welcome(nick):
                return (nick, login.acknowledged)
            case let .failed(failure):
                switch failure {
                case .saslUnavailable: throw ChatClientError.loginRefused("the server does not offer SASL PLAIN")
                case .invalidCredentials: throw ChatClientError.wrongPassword
                case let .accountLocked(text): throw ChatClientError.accountLocked(text)
                case let .serverBusy(text): throw ChatClientError.serverBusy(text)
                case let .rateLimited(text): throw ChatClientError.rateLimited(text)
                case let .refused(text): throw ChatClientError.loginRefused(text)
                case let .disconnected(text): throw ChatClientError.disconnected(text)
                }
            }
        }
        throw ChatClientError.disconnected("the connection closed during login")
    }

    /// Sends one IRC line (CR LF added).
    public func send(_ line: String) async throws {
        try await Self.send(line, on: channel)
    }

    public func send(_ message: IRCMessage) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: message.serialized()))
    }

    /// Sends QUIT and waits up to `timeout` seconds for the server to close (it answers with
    /// ERROR and a TLS close_notify); then closes.
    public func quit(reason: String = "Leaving", timeout: Double = 3) async {
        try? await send(IRCMessage(command: "QUIT", parameters: [reason]))
        let closed = channel.closeFuture
        let deadline = Date().addingTimeInterval(timeout)
        while channel.isActive && Date() < deadline { try? await Task.sleep(nanoseconds: 10_000_000) }
        try? await channel.close()
        try? await closed.get()
    }

    /// Closes without QUIT.
    public func close() async {
        try? await channel.close()
    }

    public var isConnected: Bool { channel.isActive }
}

/// One consumer at a time: login, then the event task.
// @unchecked Sendable: no lock; the login finishes before the event task starts, so the iterator
// is never used by two tasks at once.
final class IteratorBox: @unchecked Sendable {
    private var iterator: AsyncStream<IRCMessage>.AsyncIterator
    init(_ iterator: AsyncStream<IRCMessage>.AsyncIterator) { self.iterator = iterator }
    func next() async -> IRCMessage? { await iterator.next() }
}

/// Parses lines, answers PING at once, and hands messages to the stream.
// @unchecked Sendable: immutable (its stored properties are `let`s of Sendable types) and
// loop-bound (its methods run on the channel's event loop only).
final class Inbox: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = InboundLine
    typealias OutboundOut = ByteBuffer
    let continuation: AsyncStream<IRCMessage>.Continuation
    let handshake: EventLoopPromise<TLSSessionInfo>

    init(continuation: AsyncStream<IRCMessage>.Continuation, handshake: EventLoopPromise<TLSSessionInfo>) {
        self.continuation = continuation
        self.handshake = handshake
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case let .line(buffer) = unwrapInboundIn(data),
              let message = try? IRCMessage.parse(buffer.readableBytesView, maximumTagBytes: 8191, maximumLineBytes: 1 << 16) else { return }
        if message.command == "PING" {
            let reply = IRCMessage(command: "PONG", parameters: message.parameters)
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: reply.serialized())), promise: nil)
            return
        }
        continuation.yield(message)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case let .handshakeCompleted(info)? = event as? TLSEvent { handshake.succeed(info) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        handshake.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshake.fail(ChannelError.ioOnClosedChannel)
        continuation.finish()
        context.fireChannelInactive()
    }
}

import ChatSupport
import NIOCore
import NIOPosix
import TLS

/// Where a PostgreSQL server is and how to log in to it.
public struct PostgresSettings: Sendable, Equatable {
    /// How the connection is protected.
    public enum Security: Sendable, Equatable {
        /// Plain TCP: only for a database on the same machine or a private network you trust.
        case disable
        /// TLS, and the server's certificate must chain to `trust` and match `host` (the default).
        case verifyFull(TLSConfiguration.Trust)
    }

    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    /// Never printed; zeroed when the last copy goes.
    public var password: Password?
    public var security: Security
    public var applicationName = "securechat"
    public var connectTimeoutSeconds = 10.0
    /// A query that has not answered after this long closes the connection (its callers get
    /// `timedOut`), so that a hung database cannot hang a caller for ever.
    public var queryTimeoutSeconds = 30.0

    public init(host: String, port: Int = 5432, user: String, database: String, password: Password? = nil, security: Security = .verifyFull(.system)) {
        self.host = host
        self.port = port
        self.user = user
        self.database = database
        self.password = password
        self.security = security
    }

    public static func == (a: PostgresSettings, b: PostgresSettings) -> Bool {
        a.host == b.host && a.port == b.port && a.user == b.user && a.database == b.database && a.security == b.security
            && a.password?.bytes == b.password?.bytes && a.applicationName == b.applicationName
            && a.connectTimeoutSeconds == b.connectTimeoutSeconds && a.queryTimeoutSeconds == b.queryTimeoutSeconds
    }

    /// The same settings for a connection with this purpose, which `pg_stat_activity` shows in
    /// `application_name` ("securechat a events-listen"): operators see what each connection of
    /// a node is for, and cluster-bench splits PostgreSQL's CPU by it.
    public func purpose(_ purpose: String) -> PostgresSettings {
        var settings = self
        settings.applicationName += " " + purpose
        return settings
    }

    /// `user@host:port/database`, for logs and messages (never the password).
    public var description: String { "\(user)@\(host):\(port)/\(database)" }
}

/// The rows a statement returned, every value as PostgreSQL's text form (nil for NULL).
public struct PostgresResult: Sendable, Equatable {
    public var columns: [String] = []
    public var rows: [[String?]] = []
    /// The command tag, e.g. `INSERT 0 1` or `SELECT 3`.
    public var tag = ""

    /// The number in the command tag's end (rows inserted, updated, deleted or selected).
    public var affectedRows: Int { Int(tag.split(separator: " ").last ?? "") ?? 0 }

    /// The value of column `name` in row `row`.
    public func value(_ row: Int, _ name: String) -> String? {
        guard let column = columns.firstIndex(of: name) else { return nil }
        return rows[row][column]
    }
}

/// One connection to PostgreSQL over SwiftNIO, TLS through the project's own OpenSSL layer.
///
/// Queries are pipelined: each is sent at once and answered in order. A notification
/// (`LISTEN`/`NOTIFY`) goes to the handler given at `connect`, on the connection's event loop.
/// Blocking callers (worker threads, `chat-admin`) use `wait()` on the futures; never call it on
/// an event loop.
public final class PostgresConnection: Sendable {
    public let channel: Channel
    private let handler: NIOLoopBound<PostgresHandler>

    private init(channel: Channel, handler: PostgresHandler) {
        self.channel = channel
        self.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop)
    }

    /// Connects, switches to TLS if asked, logs in and waits until the server is ready.
    public static func connect(
        _ settings: PostgresSettings,
        on eventLoop: EventLoop,
        onNotification: @escaping @Sendable (_ channel: String, _ payload: String) -> Void = { _, _ in }
    ) -> EventLoopFuture<PostgresConnection> {
        let tlsContext: TLSContext?
        if case let .verifyFull(trust) = settings.security {
            do {
                tlsContext = try TLSContext(configuration: .client(trust: trust))
            } catch {
                return eventLoop.makeFailedFuture(PostgresError.tls("\(error)"))
            }
        } else {
            tlsContext = nil
        }
        let ready = eventLoop.makePromise(of: Void.self)
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(Int64(settings.connectTimeoutSeconds * 1000)))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = PostgresHandler(settings: settings, tlsContext: tlsContext, ready: ready, onNotification: onNotification)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: settings.host, port: settings.port)
            .flatMapError { error in
                ready.fail(PostgresError.connectFailed("\(settings.host):\(settings.port): \(error)"))
                return eventLoop.makeFailedFuture(PostgresError.connectFailed("\(settings.host):\(settings.port): \(error)"))
            }
            .flatMap { channel in
                let timeout = eventLoop.scheduleTask(in: .milliseconds(Int64(settings.connectTimeoutSeconds * 1000))) {
                    ready.fail(PostgresError.timedOut("login to \(settings.description)"))
                    channel.close(promise: nil)
                }
                return ready.futureResult.flatMapThrowing {
                    timeout.cancel()
                    let handler = try channel.pipeline.syncOperations.handler(type: PostgresHandler.self)
                    return PostgresConnection(channel: channel, handler: handler)
                }.flatMapErrorThrowing { error in
                    timeout.cancel()
                    channel.close(promise: nil)
                    throw error
                }
            }
    }

    /// Runs one statement with text parameters `$1`, `$2`, …
    public func query(_ sql: String, _ parameters: [String?] = []) -> EventLoopFuture<PostgresResult> {
        let handler = self.handler
        return channel.eventLoop.flatSubmit { handler.value.enqueue(.extendedQuery(sql: sql, parameters: parameters)) }
    }

    /// Runs a script of several statements without parameters (schema changes).
    public func script(_ sql: String) -> EventLoopFuture<PostgresResult> {
        let handler = self.handler
        return channel.eventLoop.flatSubmit { handler.value.enqueue(.simpleQuery(sql)) }
    }

    /// The statement's rows, waiting for them. Blocking: never on an event loop.
    public func run(_ sql: String, _ parameters: [String?] = []) throws -> PostgresResult {
        try query(sql, parameters).wait()
    }

    /// Whether the connection is still open.
    public var isOpen: Bool { channel.isActive }

    /// Says goodbye to the server and closes.
    public func close() -> EventLoopFuture<Void> {
        let handler = self.handler
        return channel.eventLoop.flatSubmit { handler.value.terminate() }
    }
}

/// The connection's protocol state machine, on its event loop.
final class PostgresHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case connecting, awaitingTLSAnswer, tlsHandshake, authenticating, awaitingReady, ready, closed
    }

    private struct Pending {
        var promise: EventLoopPromise<PostgresResult>
        var result = PostgresResult()
        var error: PostgresError?
        /// The SQL this query prepares as a named statement: forgotten if the server refuses
        /// to parse it (no ParseComplete came).
        var prepared: String?
        var parsed = false
    }

    /// Statements prepared on this connection, by SQL: each is parsed (and planned) once, not
    /// at every call. Names are never reused (a failed one is forgotten and made again).
    private var statements: [String: String] = [:]
    private var statementsMade = 0
    static let mostStatements = 100

    private let settings: PostgresSettings
    private let tlsContext: TLSContext?
    private let ready: EventLoopPromise<Void>
    private let onNotification: @Sendable (String, String) -> Void
    private var state = State.connecting
    private var pending = CircularBuffer<Pending>()
    private var received: ByteBuffer?
    private var scram: SCRAMClient?
    private var context: ChannelHandlerContext?
    private var sent = 0
    private var answered = 0

    init(settings: PostgresSettings, tlsContext: TLSContext?, ready: EventLoopPromise<Void>, onNotification: @escaping @Sendable (String, String) -> Void) {
        self.settings = settings
        self.tlsContext = tlsContext
        self.ready = ready
        self.onNotification = onNotification
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard case .connecting = state else { return }
        if tlsContext != nil {
            state = .awaitingTLSAnswer
            send(.sslRequest, context: context)
        } else {
            sendStartup(context: context)
        }
    }

    private func sendStartup(context: ChannelHandlerContext) {
        state = .authenticating
        send(.startup(user: settings.user, database: settings.database, applicationName: settings.applicationName), context: context)
    }

    private func send(_ message: PostgresMessage.Frontend, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        message.write(into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    /// Sends a query; its future completes when the server is ready again.
    func enqueue(_ message: PostgresMessage.Frontend) -> EventLoopFuture<PostgresResult> {
        guard let context, case .ready = state else {
            return ready.futureResult.eventLoop.makeFailedFuture(PostgresError.connectionClosed)
        }
        let promise = context.eventLoop.makePromise(of: PostgresResult.self)
        var message = message
        var prepared: String?
        if case let .extendedQuery(sql, parameters, _, _) = message {
            if let name = statements[sql] {
                message = .extendedQuery(sql: sql, parameters: parameters, statement: name, parse: false)
            } else if statements.count < Self.mostStatements {
                statementsMade += 1
                let name = "securechat_\(statementsMade)"
                statements[sql] = name
                prepared = sql
                message = .extendedQuery(sql: sql, parameters: parameters, statement: name, parse: true)
            }
        }
        pending.append(Pending(promise: promise, prepared: prepared))
        sent += 1
        let number = sent
        send(message, context: context)
        let seconds = settings.queryTimeoutSeconds
        context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(seconds * 1000))) { [weak self] in
            guard let self, self.answered < number, case .ready = self.state else { return }
            self.fail(.timedOut("a query took more than \(Int(seconds)) s"), context: context)
        }
        return promise.futureResult
    }

    func terminate() -> EventLoopFuture<Void> {
        guard let context, context.channel.isActive else { return ready.futureResult.eventLoop.makeSucceededVoidFuture() }
        if case .ready = state { send(.terminate, context: context) }
        return context.close()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if case .awaitingTLSAnswer = state {
            guard let answer: UInt8 = bytes.readInteger() else { return }
            guard answer == UInt8(ascii: "S"), let tlsContext else {
                fail(.tls("the server at \(settings.host):\(settings.port) does not offer TLS — set ssl = on in its postgresql.conf, or \"tls\": \"disable\" in the cluster block for a database on this machine"), context: context)
                return
            }
            state = .tlsHandshake
            do {
                let tls = try TLSHandler(context: tlsContext, serverName: settings.host, handshakeTimeout: .milliseconds(Int64(settings.connectTimeoutSeconds * 1000)))
                try context.pipeline.syncOperations.addHandler(tls, position: .before(self))
            } catch {
                fail(.tls("\(error)"), context: context)
            }
            return
        }
        if received == nil { received = bytes } else { received!.writeBuffer(&bytes) }
        do {
            while var buffer = received, let message = try PostgresMessage.Backend.read(from: &buffer) {
                received = buffer.readableBytes == 0 ? nil : buffer
                try handle(message, context: context)
                if case .closed = state { return }
            }
        } catch {
            fail(error, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSEvent, case .tlsHandshake = state {
            sendStartup(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func handle(_ message: PostgresMessage.Backend, context: ChannelHandlerContext) throws(PostgresError) {
        switch message {
        case .authenticationOK:
            state = .awaitingReady
        case .cleartextPasswordRequested:
            guard let password = settings.password else { throw .authentication("the server wants a password and none is configured (cluster.passwordFile or cluster.passwordEnvironment)") }
            guard tlsContext != nil || isLoopback(settings.host) else {
                throw .authentication("the server asks for the password in clear text over an unencrypted connection: refused — use TLS, or scram-sha-256 in pg_hba.conf")
            }
            send(.password(password.bytes), context: context)
        case .md5PasswordRequested:
            throw .authentication("the server asks for an MD5 password, which SecureChat does not send — use scram-sha-256 in pg_hba.conf (PostgreSQL's default since version 14)")
        case let .saslMechanisms(names):
            guard names.contains("SCRAM-SHA-256") else { throw .authentication("the server offers \(names.joined(separator: ", ")); SecureChat speaks SCRAM-SHA-256") }
            guard let password = settings.password else { throw .authentication("the server wants a password and none is configured (cluster.passwordFile or cluster.passwordEnvironment)") }
            let client = try SCRAMClient(password: password)
            scram = client
            send(.saslInitial(mechanism: "SCRAM-SHA-256", data: client.firstMessage()), context: context)
        case let .saslContinue(data):
            guard var client = scram else { throw .protocolViolation("SASL data without a SASL login") }
            let answer = try client.finalMessage(serverFirst: data)
            scram = client
            send(.saslResponse(answer), context: context)
        case let .saslFinal(data):
            guard let client = scram else { throw .protocolViolation("SASL data without a SASL login") }
            try client.verify(serverFinal: data)
            scram = nil
        case let .otherAuthentication(code):
            throw .authentication("the server asks for login method \(code), which SecureChat does not speak — use scram-sha-256 in pg_hba.conf")
        case .readyForQuery:
            switch state {
            case .awaitingReady:
                state = .ready
                ready.succeed(())
            case .ready:
                guard let done = pending.popFirst() else { throw .protocolViolation("ReadyForQuery with no query waiting") }
                answered += 1
                if let error = done.error {
                    if let sql = done.prepared, !done.parsed { statements[sql] = nil }
                    done.promise.fail(error)
                } else {
                    done.promise.succeed(done.result)
                }
            default:
                throw .protocolViolation("ReadyForQuery before the login finished")
            }
        case let .rowDescription(names):
            if !pending.isEmpty { pending[pending.startIndex].result.columns = names }
        case let .dataRow(values):
            if !pending.isEmpty { pending[pending.startIndex].result.rows.append(values) }
        case let .commandComplete(tag):
            if !pending.isEmpty { pending[pending.startIndex].result.tag = tag }
        case let .error(fields):
            switch state {
            case .ready where !pending.isEmpty:
                if pending[pending.startIndex].error == nil { pending[pending.startIndex].error = .server(fields) }
            case .authenticating where fields.code == "28P01" || fields.code == "28000":
                throw .authentication("\(fields.message) (check cluster.database's user and the password file; the server's log says more)")
            default:
                throw .server(fields)
            }
        case let .notification(channel, payload):
            onNotification(channel, payload)
        case .parseComplete:
            if !pending.isEmpty { pending[pending.startIndex].parsed = true }
        case .parameterStatus, .backendKeyData, .notice, .emptyQuery, .bindComplete, .noData, .portalSuspended, .other:
            break
        }
    }

    private func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "::1" || host.hasPrefix("/")
    }

    private func fail(_ error: PostgresError, context: ChannelHandlerContext) {
        guard !isClosed else { return }
        state = .closed
        ready.fail(error)
        while let waiting = pending.popFirst() { waiting.promise.fail(error) }
        context.close(promise: nil)
    }

    private var isClosed: Bool { if case .closed = state { return true } else { return false } }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let error = error as? TLSError {
            fail(.tls("\(error)"), context: context)
        } else {
            fail(.connectFailed("\(error)"), context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(.connectionClosed, context: context)
        context.fireChannelInactive()
    }
}

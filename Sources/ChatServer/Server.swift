import ChatSupport
import ChatAuth
import ChatCluster
import ChatHistory
import ChatWeb
import Dispatch
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IRC
import IRCFraming
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TLS

/// The chat server: listeners, TLS, sessions, reload and graceful shutdown.
///
/// `start()` checks everything first (certificate and key, users file) and refuses to start with
/// a message that says what to fix; then it binds every listener. `reload()` (SIGHUP) re-reads the
/// users file and the certificate; `shutdown()` (SIGTERM, SIGINT) says goodbye to every client.
public final class Server: Sendable {
    public let configuration: ServerConfiguration
    public let logger: Logger
    public let group: EventLoopGroup
    public let core: ServerCore
    public let limiter: ConnectionLimiter
    private let tlsBox: NIOLockedValueBox<TLSContext>
    private let listeners = NIOLockedValueBox<[Channel]>([])
    private let connections = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])
    /// The web app and WebSocket endpoint (nil: web off); rebuilt when the bound ports or the
    /// certificate's names change the default origins.
    private let web = NIOLockedValueBox<WebEndpoint?>(nil)
    public let pool: WorkerPool
    /// Server handshake steps, in the background like hashing: a reconnect storm of hundreds of
    /// clients slows their handshakes, not the chat of those already connected.
    let handshakes: WorkerPool
    public let directory: AccountDirectory
    /// This node's registration in the cluster's database; nil for a single server.
    public let clusterNode: ClusterNode?
    /// The history store, when history is on.
    public let history: (any HistoryStore)?
    /// Looks at the users file (one `stat`) twice a second, off the event loops, so changes
    /// made with chat-admin reach live sessions within a second.
    private let accountWatchQueue = DispatchQueue(label: "securechat-users-file")
    private let watchingAccounts = NIOLockedValueBox(false)
    static let accountCheckInterval = DispatchTimeInterval.milliseconds(500)
    /// Turns of the users-file check: chat-admin's room requests are read every fourth.
    /// Only touched on `accountWatchQueue`.
    nonisolated(unsafe) private var roomRequestTicks = 0

    /// The plaintext line sent to a client that connects without TLS, before closing.
    static let plaintextReply = "ERROR :This port speaks TLS only: turn TLS on in your IRC client (irssi: /connect -tls; WeeChat: /set irc.server.NAME.ssl on, or .tls on in WeeChat 4)\r\n"

    /// Builds the server: creates development certificates if asked and missing, checks the TLS
    /// files, loads the users file, prepares the login pool. Blocking; call before serving.
    public init(configuration: ServerConfiguration, logger: Logger, group: EventLoopGroup) throws {
        self.configuration = configuration
        self.logger = logger
        self.group = group
        let tls = configuration.tls
        if tls.createDevelopmentCertificates && !(SecretFile.exists(tls.certificateChain) && SecretFile.exists(tls.privateKey)) {
            let folder = Paths.folder(of: tls.certificateChain)
            let certs = DevelopmentCertificates(directory: folder)
            guard certs.certificatePath == tls.certificateChain, certs.keyPath == tls.privateKey else {
                throw ConfigurationError(path: configuration.path, message: "\"tls.createDevelopmentCertificates\" needs \"tls.certificateChain\" to be FOLDER/server.crt and \"tls.privateKey\" FOLDER/server.key")
            }
            let info = try certs.create(extraNames: configuration.serverName == "localhost" ? [] : [configuration.serverName])
            logger.notice("created a development CA and server certificate in \(folder) for \(info.names.joined(separator: ", ")); clients must trust \(certs.caCertificatePath) (chat-client --ca, or your IRC client's CA setting)")
        }
        let context = try Self.makeTLSContext(configuration)
        tlsBox = NIOLockedValueBox(context)
        let report: @Sendable (String) -> Void = { logger.warning("\($0)") }
        let accounts: any AccountStore
        var clusterNode: ClusterNode?
        // The heartbeat reports silent nodes to the link, which is made further down.
        let lostBox = NIOLockedValueBox<ClusterLink?>(nil)
        if let cluster = configuration.cluster {
            let store = PostgresAccountStore(settings: cluster.postgres, eventLoop: group.next())
            // The database must answer now: a node that cannot reach it must not start half-way.
            do {
                _ = try store.load()
            } catch {
                throw ConfigurationError(path: configuration.path, message: "\"cluster\": \(error)")
            }
            do {
                clusterNode = try ClusterNode.start(cluster, on: group.next(), report: { logger.warning("\($0)") }, onLost: { nodes in
                    guard let link = lostBox.withLockedValue({ $0 }) else { return }
                    for node in nodes { link.nodeLost(node, at: Relay.timestamp()) }
                })
            } catch {
                throw ConfigurationError(path: configuration.path, message: "\"cluster\": \(error)")
            }
            logger.notice("cluster node \(cluster.node): accounts in PostgreSQL \(cluster.postgres.description)")
            accounts = store
        } else {
            accounts = UsersStore(path: configuration.usersFile)
        }
        self.clusterNode = clusterNode
        directory = try AccountDirectory(store: accounts, report: report)
        if !configuration.passwordHashing.meetsOWASPFloor {
            logger.warning("passwordHashing \(configuration.passwordHashing) is below OWASP's minimum (for example ln=15,r=8,p=3); use it only for tests")
        }
        // Hashing threads run at a lower priority than the event loops: under a login storm the
        // logins wait, the chat does not.
        pool = WorkerPool(threads: System.coreCount, queueLimit: configuration.limits.loginQueue, scheduling: .background)
        // Past its queue, steps run on the event loops: a handshake always makes progress.
        handshakes = WorkerPool(threads: System.coreCount, queueLimit: 4096, scheduling: .background, name: "securechat-tls")
        let authenticator = try Authenticator(
            directory: directory, policy: configuration.passwordHashing, pool: pool,
            throttle: LoginThrottle(now: { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }),
            perNetwork: configuration.limits.loginQueuePerNetwork, report: report)
        var history: (any HistoryStore)?
        if let cluster = configuration.cluster, configuration.history.database != nil {
            // A cluster's nodes share one history, in its database.
            do {
                history = try PostgresHistory(settings: cluster.postgres, node: cluster.node, eventLoop: group.next(),
                                              durabilityMilliseconds: configuration.history.durabilityMilliseconds, report: { logger.error("\($0)") })
            } catch {
                throw ConfigurationError(path: configuration.path, message: "\"cluster\": the history in PostgreSQL: \(error)")
            }
        } else if let database = configuration.history.database {
            do {
                history = try SQLiteHistory(path: database, durabilityMilliseconds: configuration.history.durabilityMilliseconds,
                                            report: { logger.error("\($0)") })
            } catch {
                throw ConfigurationError(path: configuration.path, message: "\(error) (or turn history off: \"history\": {\"enabled\": false})")
            }
        }
        self.history = history
        let registry = Registry()
        var link: ClusterLink?
        if let cluster = configuration.cluster {
            do {
                link = try ClusterLink(settings: cluster, serverName: configuration.serverName, registry: registry, history: history, sessions: clusterNode,
                                       eventLoop: group.next(), report: { logger.warning("\($0)") })
            } catch {
                throw ConfigurationError(path: configuration.path, message: "\"cluster\": \(error)")
            }
        }
        lostBox.withLockedValue { $0 = link }
        let core = ServerCore(configuration: configuration, registry: registry, logins: authenticator, policy: directory, history: history,
                              cluster: link, logger: logger)
        self.core = core
        // An operator's change takes effect at once: a locked or deleted account's sessions end,
        // and so do those of an account whose password changed or that a new ban covers.
        directory.setChangeHandler { changes in core.apply(changes) }

        limiter = ConnectionLimiter(maximum: configuration.limits.maxClients, maximumPerAddress: configuration.limits.maxClientsPerAddress)
    }

    static func makeTLSContext(_ configuration: ServerConfiguration) throws -> TLSContext {
        var tls = TLSConfiguration.server(certificateChainFile: configuration.tls.certificateChain, privateKeyFile: configuration.tls.privateKey)
        tls.minimumVersion = configuration.tls.minimumVersion
        tls.clientCAFile = configuration.tls.clientCA
        // Clients may present a certificate (self-signed is fine) to log in with SASL EXTERNAL.
        tls.acceptsAnyClientCertificate = true
        return try TLSContext(configuration: tls)
    }

    /// The ports the listeners are bound to (useful with port 0).
    public var boundPorts: [Int] { listeners.withLockedValue { $0.compactMap { $0.localAddress?.port } } }

    /// Binds every listener and logs where the server listens, with which certificate and users file.
    public func start() async throws {
        watchingAccounts.withLockedValue { $0 = true }
        watchUsersFile()
        purgeHistory()
        updateWebEndpoint(ports: configuration.listeners.map(\.port))
        for listener in configuration.listeners {
            let channel: Channel
            do {
                channel = try await bootstrap().bind(host: listener.host, port: listener.port).get()
            } catch {
                throw ConfigurationError(path: configuration.path, message: "cannot listen on \(listener.host):\(listener.port): \(error) — is another server using the port, or does binding below 1024 need privileges?")
            }
            listeners.withLockedValue { $0.append(channel) }
        }
        if configuration.listeners.contains(where: { $0.port == 0 }) { updateWebEndpoint(ports: boundPorts) }
        let leaf = tlsBox.withLockedValue { $0.certificateChain.first?.info }
        let where_ = listeners.withLockedValue { $0 }.compactMap { $0.localAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } }.joined(separator: ", ")
        logger.notice("listening on \(where_) (TLS \(configuration.tls.minimumVersion.rawValue)+)")
        if let leaf {
            logger.notice("certificate \(configuration.tls.certificateChain): \(leaf.subject), for \(leaf.names.joined(separator: ", ")), expires \(CertificateInfo.formatDate(leaf.notAfter))")
        }
        logger.notice("users file \(configuration.usersFile): \(directory.count) accounts")
        if let endpoint = web.withLockedValue({ $0 }) {
            let origins = endpoint.allowedOrigins.sorted()
            let host = leaf?.names.first { !$0.hasPrefix("*") } ?? configuration.serverName
            let port = boundPorts.first ?? 0
            logger.notice("web app: open https://\(host.contains(":") ? "[\(host)]" : host)\(port == 443 ? "" : ":\(port)")/ in a browser (IRC over WebSocket on the same port; pages of \(origins.prefix(4).joined(separator: ", "))\(origins.count > 4 ? " and \(origins.count - 4) more" : "") may connect: web.allowedOrigins)")
        }
        if let history {
            logger.notice("history in \(history.location) (replay on join \(configuration.history.replayOnJoin))")
        } else {
            logger.notice("history is off")
        }
    }

    /// The origins a page may connect from when `web.allowedOrigins` is empty: https:// with every
    /// name of the certificate (and the server name), on every listener port.
    static func defaultOrigins(names: [String], ports: [Int]) -> [String] {
        var origins: [String] = []
        for name in names where !name.hasPrefix("*") {
            let host = name.contains(":") ? "[\(name)]" : name
            for port in ports where !origins.contains(port == 443 ? "https://\(host)" : "https://\(host):\(port)") {
                origins.append(port == 443 ? "https://\(host)" : "https://\(host):\(port)")
            }
        }
        return origins
    }

    private func updateWebEndpoint(ports: [Int]) {
        let settings = configuration.web
        guard settings.enabled else { return }
        var origins = settings.allowedOrigins
        if origins.isEmpty {
            let names = tlsBox.withLockedValue { $0.certificateChain.first?.info.names } ?? []
            origins = Self.defaultOrigins(names: names + [configuration.serverName], ports: ports)
        }
        let endpoint = WebEndpoint(allowedOrigins: origins, maximumLineBytes: configuration.limits.lineLength + IRCMessage.Limits.clientTags + 2,
                                   hstsSeconds: settings.hstsSeconds)
        web.withLockedValue { $0 = endpoint }
    }

    private func bootstrap() -> ServerBootstrap {
        let core = self.core
        let web = self.web
        let limiter = self.limiter
        let tlsBox = self.tlsBox
        let connections = self.connections
        let limits = configuration.limits
        let logger = self.logger
        let handshakeExecutor = HandshakePool(pool: handshakes)
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            // Every connection keeps its last receive buffer for the next read, idle or not:
            // SwiftNIO's default starts it at 2 KiB, a tenth of an idle connection. IRC lines are
            // short; a busy connection's reads grow it as before.
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: Self.initialReceiveBuffer, maximum: 65536))
            .childChannelOption(.writeBufferWaterMark, value: .init(low: limits.sendQueueBytes / 2, high: limits.sendQueueBytes))
            .childChannelInitializer { channel in
                let address = channel.remoteAddress?.ipAddress ?? "unknown"
                // Limits first: a refused connection costs no TLS handshake.
                switch limiter.admit(address) {
                case .admitted:
                    break
                case let verdict:
                    logger.notice("connection refused: \(verdict == .serverFull ? "server full (limits.maxClients)" : "too many connections from this address (limits.maxClientsPerAddress)")", metadata: ["address": "\(address)"])
                    return channel.close()
                }
                let id = ObjectIdentifier(channel)
                connections.withLockedValue { $0[id] = channel }
                channel.closeFuture.whenComplete { _ in
                    limiter.release(address)
                    connections.withLockedValue { $0[id] = nil }
                }
                return channel.eventLoop.makeCompletedFuture {
                    let context = tlsBox.withLockedValue { $0 }
                    let tls = try TLSHandler(
                        context: context, handshakeTimeout: .nanoseconds(Int64(limits.handshakeTimeoutSeconds * 1e9)),
                        closeTimeout: .seconds(2), plaintextReply: Server.plaintextReply,
                        handshakeExecutor: handshakeExecutor)
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(tls)
                    let eventLoop = channel.eventLoop
                    if let endpoint = web.withLockedValue({ $0 }) {
                        // A browser or an IRC client: the first bytes after the handshake tell.
                        // Until they do, the sniffer reports how a connection ended, as a session would.
                        let started = eventLoop.now
                        var failure: String?
                        try sync.addHandler(TransportSniffer(
                            web: endpoint, timeout: .nanoseconds(Int64(limits.registrationTimeoutSeconds * 1e9)),
                            installIRC: { pipeline in
                                try Server.addSessionHandlers(to: pipeline, core: core, eventLoop: eventLoop, address: address)
                            },
                            onError: { error in failure = failure ?? ClientConnection.log(error, logger, account: "-", address: address) },
                            onClose: {
                                let seconds = Double((eventLoop.now - started).nanoseconds) / 1e9
                                ClientConnection.logDisconnected(logger, account: "-", address: address, reason: failure ?? "Connection closed", seconds: seconds)
                            }))
                    } else {
                        try Server.addSessionHandlers(to: sync, core: core, eventLoop: eventLoop, address: address)
                    }
                }
            }
    }

    static let purgeInterval = DispatchTimeInterval.seconds(3600)
    /// Bytes of the first receive buffer of a connection (see `bootstrap`): 2,000 idle clients
    /// took 22.0 KiB each with SwiftNIO's 2,048, 21.0 with 1,024 and 20.7 with 512.
    static let initialReceiveBuffer = 512

    /// Deletes what the retention settings no longer keep: at start, then every hour.
    private func purgeHistory() {
        guard let history, watchingAccounts.withLockedValue({ $0 }) else { return }
        let settings = configuration.history
        history.purge(HistoryRetention(days: settings.retentionDays, messagesPerTarget: settings.maxMessagesPerRoom))
        core.expireRooms()
        accountWatchQueue.asyncAfter(deadline: .now() + Self.purgeInterval) { [weak self] in self?.purgeHistory() }
    }

    private func watchUsersFile() {
        accountWatchQueue.asyncAfter(deadline: .now() + Self.accountCheckInterval) { [weak self] in
            guard let self, self.watchingAccounts.withLockedValue({ $0 }) else { return }
            self.directory.refreshIfChanged()
            self.roomRequestTicks += 1
            if self.roomRequestTicks % 4 == 0 { self.core.applyRoomRequests() }  // chat-admin room …, every 2 s
            self.watchUsersFile()
        }
    }

    /// Adds what sits above TLS in every client's pipeline: the line decoder, the guard
    /// (keepalive, flood control, send queue) and the connection that runs the session.
    public static func addSessionHandlers(to pipeline: ChannelPipeline.SynchronousOperations, core: ServerCore, eventLoop: EventLoop,
                                          address: String, now: @escaping () -> Date = Date.init) throws {
        let limits = core.configuration.limits
        let decoder = LineFramer(maximumLength: limits.lineLength + IRCMessage.Limits.clientTags + 2)
        try pipeline.addHandler(decoder)
        try pipeline.addHandler(ConnectionGuard(clock: core.clock(for: eventLoop)))
        let connection = ClientConnection(core: core, eventLoop: eventLoop, address: address, now: now)
        try pipeline.addHandler(connection)
        // Relayed messages enter the pipeline just above TLS: the handlers in between only look
        // at what comes in, and passing each of thousands of writes a second through them cost
        // reference counting per handler (BENCHMARKS.md).
        // Over WebSocket, below the bridge: the relay frames each message once per loop.
        if let entry = WebSocketFraming.relayEntry(in: pipeline) {
            connection.relayContext = entry.context
            connection.relayFrames = entry.binary ? .binary : .text
        } else {
            connection.relayContext = try pipeline.context(handler: decoder)
            // Over TLS, straight into the TLS layer's queue: the same place, without a pass
            // through the pipeline per recipient.
            connection.relayTLS = try? pipeline.handler(type: TLSHandler.self)
        }
    }

    /// Re-reads the users file and the certificate and key (SIGHUP). A bad new certificate is
    /// refused with a log line and the old one kept; new connections use the new one.
    public func reload() {
        directory.reload()
        logger.notice("reloaded users file \(configuration.usersFile): \(directory.count) accounts")
        do {
            let context = try Self.makeTLSContext(configuration)
            tlsBox.withLockedValue { $0 = context }
            updateWebEndpoint(ports: boundPorts)
            if let leaf = context.certificateChain.first?.info {
                logger.notice("reloaded certificate: \(leaf.subject), expires \(CertificateInfo.formatDate(leaf.notAfter))")
            }
        } catch {
            logger.error("certificate reload refused, keeping the old one: \(error)")
        }
    }

    /// The certificate new connections get.
    public var currentCertificate: CertificateInfo? { tlsBox.withLockedValue { $0.certificateChain.first?.info } }

    /// Stops listening, tells every client `ERROR :Server shutting down`, closes each TLS session
    /// cleanly, and waits up to `timeout` for them to go.
    public func shutdown(timeout: TimeAmount = .seconds(3)) async {
        logger.notice("shutting down: \(limiter.current) connections")
        let bound = listeners.withLockedValue { listeners in
            defer { listeners.removeAll() }
            return listeners
        }
        for listener in bound { try? await listener.close() }
        let open = connections.withLockedValue { Array($0.values) }
        for channel in open {
            // ClientConnection tells the client and its rooms, then closes.
            channel.pipeline.fireUserInboundEventTriggered(SessionEvent.shutdown)
        }
        let deadline = NIODeadline.now() + timeout
        while connections.withLockedValue({ !$0.isEmpty }) && NIODeadline.now() < deadline {
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        for channel in connections.withLockedValue({ Array($0.values) }) { try? await channel.close() }
        watchingAccounts.withLockedValue { $0 = false }
        core.historyReaders?.shutdown()
        history?.close()
        pool.shutdown()
        handshakes.shutdown()
        let (link, node) = (core.cluster, clusterNode)
        if node != nil || link != nil {
            await Task.detached { link?.stop(); node?.stop() }.value
        }
    }
}

/// Runs TLS handshake steps on a worker pool.
struct HandshakePool: TLSHandshakeExecutor {
    let pool: WorkerPool
    func execute(_ job: @escaping @Sendable () -> Void) -> Bool { pool.enqueue(job) }
}

import ChatSupport
import ChatAuth
import ChatCluster
import ChatServer
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import TLS

/// An in-process `ChatServer` on 127.0.0.1 and a free port, with its own users file and the
/// shared test certificates, for tests and benchmarks. Stop it with `stop()`.
// @unchecked Sendable: immutable (`let`s of thread-safe types: the server, the users store and the
// log recorder each guard themselves with a lock).
public final class TestServer: @unchecked Sendable {
    public let server: Server
    public let folder: String
    public let store: UsersStore
    public let logs: LogRecorder
    public var port: Int { server.boundPorts[0] }
    public var caPath: String { Self.certificates.caCertificatePath }

    /// Fast hashing for tests (far below OWASP's floor: never use it for real accounts).
    public static let testHashing = ScryptParameters(ln: 4, r: 8, p: 1)

    /// One development CA and certificate per test process.
    public static let certificates: DevelopmentCertificates = {
        let certs = DevelopmentCertificates(directory: NSTemporaryDirectory() + "securechat-test-certs-\(getpid())")
        if !certs.exist { try! certs.create() }
        return certs
    }()

    /// Starts a server with `accounts` (name, password), the accounts in `operators` given the
    /// operator role, and the configuration changes in `configure`.
    /// - Parameter logLevel: `.trace` records every command clients send (interop tests).
    public static func start(accounts: [(String, String)] = [], operators: Set<String> = [], logLevel: Logger.Level = .debug,
                             configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> TestServer {
        let folder = NSTemporaryDirectory() + "securechat-server-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let certs = certificates
        var configuration = ServerConfiguration(
            path: folder + "/server.json",
            tls: .init(certificateChain: certs.certificatePath, privateKey: certs.keyPath, clientCA: nil, minimumVersion: .tls12, createDevelopmentCertificates: false),
            usersFile: folder + "/users.json")
        configuration.listeners = [ServerConfiguration.Listener(host: "127.0.0.1", port: 0)]
        configuration.passwordHashing = testHashing
        configuration.motd = "Test server."
        configuration.limits.maxClientsPerAddress = 5000
        configuration.limits.messagesPerSecond = 1000
        configuration.limits.messageBurst = 1000
        configure(&configuration)
        let store = UsersStore(path: configuration.usersFile)
        let hashed = try accounts.map { name, password in
            Account(name: name, hash: try PasswordHash.make(password: Password(password), parameters: testHashing).phc, created: "t", updated: "t",
                    isOperator: operators.contains(name))
        }
        try store.update { database in for account in hashed { try database.add(account) } }
        if let cluster = configuration.cluster {
            // Cluster nodes share accounts in the database: each node's test adds those missing.
            let shared = PostgresAccountStore(settings: cluster.postgres)
            try shared.update { database in
                for account in hashed where database.account(named: account.name) == nil { try database.add(account) }
            }
            shared.close()
        }
        let logs = LogRecorder()
        var logger = Logger(label: "test-server", factory: { _ in logs })
        logger.logLevel = logLevel
        let server = try Server(configuration: configuration, logger: logger, group: MultiThreadedEventLoopGroup.singleton)
        try await server.start()
        return TestServer(server: server, folder: folder, store: store, logs: logs)
    }

    init(server: Server, folder: String, store: UsersStore, logs: LogRecorder) {
        self.server = server
        self.folder = folder
        self.store = store
        self.logs = logs
    }

    /// Adds an account while the server runs (as chat-admin would).
    public func addAccount(_ name: String, password: String, locked: Bool = false) throws {
        let hash = try PasswordHash.make(password: Password(password), parameters: Self.testHashing).phc
        try store.update { try $0.add(Account(name: name, hash: hash, created: "t", updated: "t", locked: locked)) }
    }

    /// A connected (not yet registered) client.
    public func client() async throws -> TestIRCClient {
        try await TestIRCClient.connect(port: port, caPath: caPath)
    }

    /// A client logged in as `account`, past 001.
    public func loggedIn(_ account: String, _ password: String, capabilities: [String] = []) async throws -> TestIRCClient {
        let client = try await client()
        let welcome = try await client.register(account: account, password: password, capabilities: capabilities)
        guard welcome.command == "001" else { throw TestIRCClient.Timeout(waitingFor: "001 for \(account)", received: ["\(welcome)"]) }
        try await client.next("end of MOTD") { $0.command == "376" || $0.command == "422" }
        return client
    }

    /// Clients logged in as `accounts` (name, password), each past the JOIN of `room`.
    public func loggedIn(_ accounts: [(String, String)], joining room: String) async throws -> [TestIRCClient] {
        var clients: [TestIRCClient] = []
        for (name, password) in accounts {
            let client = try await loggedIn(name, password)
            try await client.send("JOIN \(room)")
            try await client.next("366")
            clients.append(client)
        }
        return clients
    }

    public func stop() async {
        await server.shutdown(timeout: .seconds(2))
        try? FileManager.default.removeItem(atPath: folder)
    }
}

/// A swift-log handler that keeps every line, for tests that check what was logged.
// @unchecked Sendable: the lines are behind a lock; `metadata` and `logLevel` are set when the
// logger is made, before it is shared, and only read afterwards.
public final class LogRecorder: LogHandler, @unchecked Sendable {
    private let lines = NIOLockedValueBox<[String]>([])
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .debug

    public init() {}

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let meta = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        lines.withLockedValue { $0.append("\(event.level) \(event.message)\(meta.isEmpty ? "" : " " + meta)") }
    }

    public var all: [String] { lines.withLockedValue { $0 } }

    public func contains(_ text: String) -> Bool { all.contains { $0.contains(text) } }
}

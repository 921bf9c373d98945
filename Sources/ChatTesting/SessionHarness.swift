import ChatSupport
import ChatAuth
import ChatHistory
import ChatServer
import Foundation
import IRC
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded

/// Drives `Session` values in memory, several at once, sharing one registry: no sockets, no
/// threads, no clock. Each `TestSession` carries out its session's actions the way
/// `ClientConnection` does, synchronously, so a test reads every reply and every delivery as soon
/// as `send` returns.
///
/// Use from one thread (a synchronous test): delivery runs on an `EmbeddedEventLoop`.
public final class SessionHarness {
    public let core: ServerCore
    public let logins: TestLogins
    /// Operator roles and server bans; changes act on the sessions as the server's do.
    public let policy: MemoryPolicy
    public let loop = EmbeddedEventLoop()
    /// The time every session sees; advance it to test idle times and timestamps.
    public var now = Date(timeIntervalSince1970: 1_800_000_000)

    /// - Parameters:
    ///   - accounts: account name → password, for the injected login checker.
    ///   - operators: the accounts with the operator role.
    ///   - history: the history store, if the test keeps history.
    public init(accounts: [String: String] = [:], operators: Set<String> = [], history: (any HistoryStore)? = nil,
                configure: (inout ServerConfiguration) -> Void = { _ in }) {
        var configuration = ServerConfiguration(path: "/nonexistent/server.json", tls: .init(certificateChain: "unused", privateKey: "unused"),
                                                usersFile: "/nonexistent/users.json")
        configuration.motd = "Test server."
        configure(&configuration)
        logins = TestLogins(accounts: accounts)
        policy = MemoryPolicy(operators: operators, accounts: Set(accounts.keys))
        let core = ServerCore(configuration: configuration, logins: logins, policy: policy, history: history,
                              logger: Logger(label: "harness", factory: { _ in SwiftLogNoOpLogHandler() }))
        self.core = core
        policy.onChange = { [weak core] changes in core?.apply(changes) }
    }

    /// A connection that has not registered yet.
    public func connect(address: String = "192.0.2.1") -> TestSession {
        TestSession(harness: self, address: address)
    }

    /// A session logged in with PASS as `account` (its password from `accounts`), past the
    /// welcome burst, with `capabilities` requested first. Its received lines are cleared.
    public func login(_ account: String, capabilities: [String] = [], address: String = "192.0.2.1") -> TestSession {
        let session = connect(address: address)
        if !capabilities.isEmpty {
            session.send("CAP LS 302")
            session.send("CAP REQ :\(capabilities.joined(separator: " "))")
        }
        session.send("PASS \(account):\(logins.password(of: account) ?? "")")
        session.send("NICK \(account)")
        session.send("USER \(account) 0 * :\(account.capitalized)")
        if !capabilities.isEmpty { session.send("CAP END") }
        precondition(session.session.phase == .registered, "\(account) did not register: \(session.received)")
        session.clear()
        return session
    }
}

/// A login checker with fixed accounts, for tests: answers at once, or holds the answers until
/// `finishHeld()` when `holding` is set (to test what happens while a password is checked).
public final class TestLogins: LoginChecker, Sendable {
    private let accounts: [String: String]
    private let state = NIOLockedValueBox<(holding: Bool, held: [@Sendable () -> Void], attempts: Int, certificates: [String: String])>((false, [], 0, [:]))

    public init(accounts: [String: String]) {
        self.accounts = accounts
    }

    public func password(of account: String) -> String? { accounts[account] }

    /// Client certificates by SHA-256 fingerprint → account, for SASL EXTERNAL.
    public var certificates: [String: String] {
        get { state.withLockedValue { $0.certificates } }
        set { state.withLockedValue { $0.certificates = newValue } }
    }

    public func login(certificate fingerprint: String, account: String?, address: String) -> LoginOutcome {
        guard let owner = certificates[fingerprint], account.map({ $0.lowercased() == owner.lowercased() }) ?? true else { return .invalidCredentials }
        return .success(account: owner)
    }

    /// When true, answers wait for `finishHeld()`.
    public var holding: Bool {
        get { state.withLockedValue { $0.holding } }
        set { state.withLockedValue { $0.holding = newValue } }
    }

    /// How many logins were checked.
    public var attempts: Int { state.withLockedValue { $0.attempts } }

    @discardableResult
    public func login(account: String, password: Password, address: String, completion: @escaping @Sendable (LoginOutcome) -> Void) -> LoginQueue.Ticket? {
        let name = accounts.keys.first { $0.lowercased() == account.lowercased() }
        let outcome: LoginOutcome = name.map { Array(accounts[$0]!.utf8) == password.bytes ? .success(account: $0) : .invalidCredentials }
            ?? .invalidCredentials
        let answer: @Sendable () -> Void = { completion(outcome) }
        let now = state.withLockedValue { state -> Bool in
            state.attempts += 1
            if state.holding { state.held.append(answer) }
            return !state.holding
        }
        if now { answer() }
        return nil
    }

    /// Gives every held answer, in order.
    public func finishHeld() {
        let held = state.withLockedValue { state -> [@Sendable () -> Void] in
            defer { state.held.removeAll() }
            return state.held
        }
        for answer in held { answer() }
    }
}

/// One client of a `SessionHarness`: feed it lines, read what it received.
public final class TestSession: DeliveryTarget {
    public private(set) var session: Session!
    unowned let harness: SessionHarness
    /// Everything this client was sent (replies and deliveries), in order, since `clear()`.
    public private(set) var received: [IRCMessage] = []
    /// The reason given in `ERROR` when the session closed.
    public private(set) var closedWith: String?
    private var pendingLogins: [(Registration.Method, NIOLockedValueBox<LoginOutcome?>)] = []

    init(harness: SessionHarness, address: String) {
        self.harness = harness
        self.session = Session(core: harness.core, address: address, eventLoop: harness.loop, target: self)
    }

    public var handle: SessionHandle? { session.handle }
    public var isClosed: Bool { closedWith != nil }

    /// The TLS handshake ended with this client certificate (its SHA-256 fingerprint).
    public func presentCertificate(_ fingerprint: String) {
        session.tlsEstablished(clientCertificate: fingerprint)
    }

    /// Sends one line (without CR LF) as the client would.
    public func send(_ line: String) {
        var buffer = ByteBufferAllocator().buffer(capacity: line.utf8.count)
        buffer.writeString(line)
        perform(session.receive(.line(buffer), now: harness.now))
    }

    /// Sends raw bytes as one line (for invalid UTF-8, NUL and the like).
    public func sendRaw(_ bytes: [UInt8]) {
        perform(session.receive(.line(ByteBufferAllocator().buffer(bytes: bytes)), now: harness.now))
    }

    /// What was received since the last call, and forgets it.
    @discardableResult
    public func take() -> [IRCMessage] {
        defer { received.removeAll() }
        return received
    }

    public func clear() { received.removeAll() }

    /// The received messages with `command` (a numeric's code or a command).
    public func received(_ command: String) -> [IRCMessage] { received.filter { $0.command == command } }

    /// Ends the session as a timeout or shutdown would.
    public func close(reason: String) {
        perform(session.close(reason: reason, now: harness.now))
    }

    /// The connection drops without a goodbye.
    public func drop() {
        perform(session.connectionLost(now: harness.now))
    }

    /// Completes logins that `TestLogins` held.
    public func finishLogins() {
        harness.logins.finishHeld()
        let finished = pendingLogins.filter { $0.1.withLockedValue { $0 } != nil }
        pendingLogins.removeAll { $0.1.withLockedValue { $0 } != nil }
        for (method, box) in finished {
            perform(session.loginFinished(box.withLockedValue { $0 }!, via: method, now: harness.now))
        }
    }

    private func perform(_ actions: [Session.Action]) {
        for action in actions {
            switch action {
            case let .send(message):
                received.append(message)
            case let .deliver(relay, audience, except, requiring):
                audience.deliver(relay, except: except, requiring: requiring)
            case let .publish(event, _):
                _ = harness.core.cluster?.publish(event)
            case let .verifyCertificate(fingerprint, account):
                perform(session.loginFinished(harness.logins.login(certificate: fingerprint, account: account, address: session.address), via: .sasl, now: harness.now))
            case let .verify(account, password, method):
                let box = NIOLockedValueBox<LoginOutcome?>(nil)
                harness.logins.login(account: account, password: password, address: session.address) { outcome in
                    box.withLockedValue { $0 = outcome }
                }
                if let outcome = box.withLockedValue({ $0 }) {
                    perform(session.loginFinished(outcome, via: method, now: harness.now))
                } else {
                    pendingLogins.append((method, box))
                }
            case .registered:
                break
            case let .replace(old):
                old.end(reason: Session.replacedReason)
            case let .close(reason):
                received.append(IRCMessage(command: "ERROR", parameters: [reason]))
                closedWith = reason
            case let .verifyOper(password):
                let box = NIOLockedValueBox<LoginOutcome?>(nil)
                harness.logins.login(account: session.handle?.nick ?? "", password: password, address: session.address) { outcome in
                    box.withLockedValue { $0 = outcome }
                }
                perform(session.operFinished(box.withLockedValue { $0 } ?? .busy, now: harness.now))
            case let .administer(task, label):
                perform(session.adminFinished(harness.core.perform(task, now: harness.now), label: label))
            case let .history(job, label):
                // Synchronous here: everything stored so far is read back.
                harness.core.history?.flush()
                perform(session.historyFinished(job, harness.core.perform(job, account: session.handle?.folded ?? ""), label: label))
            }
        }
        harness.loop.run()
    }

    public func deliver(_ relay: Relay, cache: inout Relay.Cache, requiring: Capabilities) {
        guard !isClosed, session.capabilities.isSuperset(of: requiring) else { return }
        received.append(relay.message(for: session.capabilities))
    }

    public func end(reason: String) {
        close(reason: reason)
    }
}

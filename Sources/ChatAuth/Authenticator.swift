import ChatSupport
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

/// The answer to a login attempt.
///
/// An unknown account and a wrong password give the same answer (`.invalidCredentials`) after the
/// same work. `.locked` is told only to someone who gave the right password.
public enum LoginOutcome: Sendable, Equatable {
    /// The password is right; `account` is the name as registered (its case may differ from what
    /// was typed).
    case success(account: String)
    /// Unknown account or wrong password.
    case invalidCredentials
    /// The password is right but an operator locked the account.
    case locked(account: String)
    /// Too many recent failures from this address or for this account; try again later.
    case throttled(retryAfter: Double)
    /// Every hashing thread is busy and the queue is full.
    case busy
    /// A server ban covers the account or the address; `message` says why and until when.
    case banned(message: String)
    /// This server cannot take logins now (a cluster node without its database); `reason`
    /// says so to the person.
    case unavailable(reason: String)
}

/// Checks passwords for the server: scrypt on a bounded worker pool, never on an event loop;
/// throttling per address and per account; re-hashing of records below the current policy.
public final class Authenticator: Sendable {
    public let directory: AccountDirectory
    public let policy: ScryptParameters
    public let pool: WorkerPool
    public let throttle: LoginThrottle
    /// Where checks wait for a hashing thread, fairly (see `LoginQueue`).
    public let queue: LoginQueue
    /// Passwords checked with scrypt so far (a throttled or refused attempt runs none).
    public var passwordChecks: Int { checks.value }
    private let checks = SharedCounter()
    private let dummy: PasswordHash
    private let now: @Sendable () -> Date
    private let report: @Sendable (String) -> Void

    /// - Parameters:
    ///   - policy: parameters for new hashes; records below them are re-hashed at login.
    ///   - perNetwork: checks one network (/24, /64) may have waiting (see `LoginQueue`).
    ///   - report: receives log lines (malformed records, re-hash results); never passwords.
    public init(directory: AccountDirectory, policy: ScryptParameters, pool: WorkerPool, throttle: LoginThrottle, perNetwork: Int = 16,
                now: @escaping @Sendable () -> Date = Date.init,
                report: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.directory = directory
        self.policy = policy
        self.pool = pool
        self.throttle = throttle
        self.queue = LoginQueue(pool: pool, capacity: pool.queueLimit, perNetwork: perNetwork)
        self.now = now
        self.report = report
        // Unknown accounts are checked against this, so they cost what a real account costs.
        var random = [UInt8](repeating: 0, count: 24)
        arc4random_buf(&random, random.count)
        dummy = try PasswordHash.make(password: Password(bytes: random), parameters: policy)
    }

    /// Checks `password` for `account` from `address` (an IP address string).
    public func login(account: String, password: Password, address: String) async -> LoginOutcome {
        await withCheckedContinuation { continuation in
            login(account: account, password: password, address: address) { continuation.resume(returning: $0) }
        }
    }

    /// Checks `password` for `account` from `address` and hands the outcome to `completion`, on a
    /// hashing thread (or at once on the calling thread when throttled or busy). Returns the
    /// queued check, which the caller cancels if its client leaves before the check runs.
    ///
    /// The attempt is charged to the address and the account before it is queued (see
    /// `LoginThrottle.admit`), and waits its turn in `queue`.
    ///
    /// The server uses this form: the outcome goes straight from the hashing thread to the
    /// connection's event loop, with no other thread woken on the way (an async hop wakes
    /// Swift's executor threads, which can preempt an event loop during a login storm).
    @discardableResult
    public func login(account: String, password: Password, address: String,
                      completion: @escaping @Sendable (LoginOutcome) -> Void) -> LoginQueue.Ticket? {
        let wait = throttle.admit(address: address, account: account)
        if wait > 0 {
            completion(.throttled(retryAfter: wait))
            return nil
        }
        let throttle = self.throttle
        let refuse: @Sendable () -> Void = {
            throttle.refund(address: address, account: account)
            completion(.busy)
        }
        let ticket = queue.submit(address: address, account: account, priority: throttle.isKnown(address: address, account: account), run: { [self] in
            // The address's own failures are checked now, at its turn (it has no other check
            // running, so the count is exact).
            let wait = throttle.addressWait(address)
            if wait > 0 {
                throttle.refund(address: address, account: account)
                return completion(.throttled(retryAfter: wait))
            }
            let record = directory.lookup(account)
            var hash = dummy
            if let record {
                do {
                    hash = try PasswordHash(phc: record.hash)
                } catch {
                    report("account '\(record.name)' has a \(error) — reset it with 'chat-admin passwd \(record.name)'")
                }
            }
            checks.add()
            let valid = ((try? hash.verify(password)) ?? false) && record != nil && hash != dummy
            completion(outcome(record: valid ? record : nil, weak: hash.parameters.isWeaker(than: policy),
                               account: account, password: password, address: address))
        }, refuse: refuse, cancelled: {
            // Dropped before its turn (the client left): never checked, so not charged.
            throttle.refund(address: address, account: account)
        })
        if ticket == nil { refuse() }
        return ticket
    }

    /// A login with a client certificate (SASL EXTERNAL): the account that registered the
    /// certificate's fingerprint, if `account` (the authorization identity, when the client gave
    /// one) names it. No hashing and no throttling: the TLS handshake proved the client holds the
    /// certificate's key, and a fingerprint cannot be guessed. Answers at once.
    public func login(certificate fingerprint: String, account: String?, address: String) -> LoginOutcome {
        guard let record = directory.lookup(certificate: fingerprint),
              account.map({ AccountName.folded($0) == AccountName.folded(record.name) }) ?? true
        else { return .invalidCredentials }
        if record.locked { return .locked(account: record.name) }
        throttle.recordKnown(address: address, account: record.name)
        return .success(account: record.name)
    }

    /// What a finished check means: `record` is the account when the password was right.
    private func outcome(record: Account?, weak: Bool, account: String, password: Password, address: String) -> LoginOutcome {
        guard let record else {
            throttle.recordAdmittedFailure(address: address)  // the account was charged when admitted
            return .invalidCredentials
        }
        if record.locked { return .locked(account: record.name) }
        throttle.recordSuccess(address: address, account: account)
        if weak { upgrade(record, password: password) }
        return .success(account: record.name)
    }

    /// Re-hashes a record below the policy, in the background, if the pool has room.
    private func upgrade(_ record: Account, password: Password) {
        let store = directory.store
        let policy = self.policy
        let now = self.now
        let report = self.report
        let directory = self.directory
        _ = pool.enqueue {
            do {
                let fresh = try PasswordHash.make(password: password, parameters: policy)
                try store.update { database in
                    // Only if nobody changed the password meanwhile.
                    try database.modify(record.name) { account in
                        if account.hash == record.hash {
                            account.hash = fresh.phc
                            account.updated = Timestamp.string(now())
                        }
                    }
                }
                directory.refreshIfChanged()
                report("re-hashed the password of '\(record.name)' with scrypt \(policy)")
            } catch {
                report("could not re-hash the password of '\(record.name)': \(error)")
            }
        }
    }
}

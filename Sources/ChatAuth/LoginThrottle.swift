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

/// Growing delays after failed logins, per client address and per account.
///
/// The first few failures are free; after that each one doubles the time the next attempt must
/// wait, up to a cap, and the count is forgotten after a quiet period. An attempt made too soon
/// is refused without running scrypt, so a guessing flood costs the server almost nothing.
/// Unknown accounts are throttled exactly like real ones. Time comes from the injected clock.
///
/// `admit` charges an attempt to its account as a failure when it is let through, before its
/// hash runs, so attempts made in parallel cannot all slip in before the first result; a
/// success refunds it. The address's own limit is checked again when the check gets its turn
/// (`addressWait`), which is exact because one address never has two checks running (see
/// `LoginQueue`), and its failures are recorded with the result. An address that logged in to an account before is *known* for that account (for
/// `knownFor` seconds): failures from elsewhere never slow it down, so guessing from many
/// addresses cannot keep the owner out, and its checks go first (`isKnown`).
// @unchecked Sendable: every stored `var` is only touched with `lock` held.
public final class LoginThrottle: @unchecked Sendable {
    public struct Policy: Sendable, Equatable {
        /// Failures allowed before any delay.
        public var freeFailures: Int
        /// The first delay, in seconds; it doubles with each further failure.
        public var baseDelay: Double
        /// The longest delay, in seconds.
        public var maximumDelay: Double
        /// Failures are forgotten this many seconds after the last one.
        public var forgetAfter: Double

        public init(freeFailures: Int, baseDelay: Double, maximumDelay: Double, forgetAfter: Double) {
            self.freeFailures = freeFailures
            self.baseDelay = baseDelay
            self.maximumDelay = maximumDelay
            self.forgetAfter = forgetAfter
        }

        /// Per account: 5 free failures, then 1 s, 2 s, 4 s … up to 5 minutes.
        public static let account = Policy(freeFailures: 5, baseDelay: 1, maximumDelay: 300, forgetAfter: 3600)
        /// Per address: 10 free failures (several people behind one NAT), then 1 s … 5 minutes.
        public static let address = Policy(freeFailures: 10, baseDelay: 1, maximumDelay: 300, forgetAfter: 3600)
    }

    private struct Entry {
        var failures: Int
        var last: Double
    }

    private let lock = Lock()
    private var byAddress: [String: Entry] = [:]
    private var byAccount: [String: Entry] = [:]
    /// "account NUL address" → time of the last successful login from there.
    private var known: [String: Double] = [:]
    /// How long an address stays known for an account after a successful login (30 days).
    public let knownFor: Double = 30 * 24 * 3600
    private let addressPolicy: Policy
    private let accountPolicy: Policy
    private let maximumEntries: Int
    private let now: @Sendable () -> Double

    /// - Parameter now: seconds on a monotonic clock.
    public init(address: Policy = .address, account: Policy = .account, maximumEntries: Int = 100_000,
                now: @escaping @Sendable () -> Double) {
        self.addressPolicy = address
        self.accountPolicy = account
        self.maximumEntries = maximumEntries
        self.now = now
    }

    /// Seconds until an attempt for `account` from `address` is allowed; 0 when it is allowed now.
    /// The account's own limit does not apply to an address known for it.
    public func wait(address: String, account: String) -> Double {
        let key = AccountName.folded(account)
        let t = now()
        lock.lock()
        defer { lock.unlock() }
        return waitLocked(address: address, key: key, t: t)
    }

    private func waitLocked(address: String, key: String, t: Double) -> Double {
        let accountWait = isKnownLocked(address: address, key: key, t: t) ? 0 : remaining(byAccount[key], accountPolicy, t)
        return max(remaining(byAddress[address], addressPolicy, t), accountWait)
    }

    /// Lets an attempt through (returns 0) and charges it to the account as a failure at once
    /// (unless the address is known for it), or returns the seconds to wait. Then exactly one
    /// of `recordFailure`, `recordSuccess` or `refund` follows.
    public func admit(address: String, account: String) -> Double {
        let key = AccountName.folded(account)
        let t = now()
        lock.lock()
        defer { lock.unlock() }
        let wait = waitLocked(address: address, key: key, t: t)
        if wait > 0 { return wait }
        if !isKnownLocked(address: address, key: key, t: t) { bump(&byAccount, key, accountPolicy, t) }
        return 0
    }

    /// Seconds until the address may try again (its own failures only).
    public func addressWait(_ address: String) -> Double {
        let t = now()
        lock.lock()
        defer { lock.unlock() }
        return remaining(byAddress[address], addressPolicy, t)
    }

    /// Takes back the charge of an admitted attempt whose password was never checked (the
    /// server was busy, the client left before its turn, or the address had to wait).
    public func refund(address: String, account: String) {
        let key = AccountName.folded(account)
        let t = now()
        lock.lock()
        defer { lock.unlock() }
        if !isKnownLocked(address: address, key: key, t: t) { unbump(&byAccount, key) }
    }

    /// An admitted attempt failed: the address's count goes up (the account's was charged by
    /// `admit`).
    public func recordAdmittedFailure(address: String) {
        let t = now()
        lock.lock()
        defer { lock.unlock() }
        bump(&byAddress, address, addressPolicy, t)
    }

    /// Whether `address` logged in to `account` successfully within `knownFor`.
    public func isKnown(address: String, account: String) -> Bool {
        let key = AccountName.folded(account)
        let t = now()
        lock.lock()
        defer { lock.unlock() }
        return isKnownLocked(address: address, key: key, t: t)
    }

    private func isKnownLocked(address: String, key: String, t: Double) -> Bool {
        guard let last = known[key + "\u{0}" + address] else { return false }
        return t - last < knownFor
    }

    private func unbump(_ table: inout [String: Entry], _ key: String) {
        guard var entry = table[key] else { return }
        entry.failures -= 1
        table[key] = entry.failures > 0 ? entry : nil
    }

    public func recordFailure(address: String, account: String) {
        let key = AccountName.folded(account)
        let t = now()
        lock.lock()
        defer { lock.unlock() }
        bump(&byAddress, address, addressPolicy, t)
        bump(&byAccount, key, accountPolicy, t)
    }

    /// A successful login: its charge is refunded and the address becomes known for the
    /// account. The account's other failures stay: clearing them would give an attacker a fresh
    /// budget each time the owner logs in (measured: 14 guesses a minute instead of 10). The
    /// owner does not need them cleared, since failures never slow a known address.
    public func recordSuccess(address: String, account: String) {
        let key = AccountName.folded(account)
        let t = now()
        lock.lock()
        defer { lock.unlock() }
        if !isKnownLocked(address: address, key: key, t: t) { unbump(&byAccount, key) }
        rememberLocked(key: key, address: address, t: t)
    }

    /// A login that was never charged (a client certificate) makes the address known too.
    public func recordKnown(address: String, account: String) {
        let key = AccountName.folded(account)
        let t = now()
        lock.lock()
        defer { lock.unlock() }
        rememberLocked(key: key, address: address, t: t)
    }

    private func rememberLocked(key: String, address: String, t: Double) {
        known[key + "\u{0}" + address] = t
        if known.count > maximumEntries {
            known = known.filter { t - $0.value < knownFor }
            if known.count > maximumEntries {
                known = Dictionary(uniqueKeysWithValues: known.sorted { $0.value > $1.value }.prefix(maximumEntries / 2).map { ($0.key, $0.value) })
            }
        }
    }

    /// Number of addresses and accounts being tracked.
    public var trackedCount: (addresses: Int, accounts: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (byAddress.count, byAccount.count)
    }

    private func remaining(_ entry: Entry?, _ policy: Policy, _ t: Double) -> Double {
        guard let entry, t - entry.last < policy.forgetAfter, entry.failures >= policy.freeFailures else { return 0 }
        let exponent = Double(entry.failures - policy.freeFailures)
        let delay = min(policy.baseDelay * pow(2, min(exponent, 30)), policy.maximumDelay)
        return max(0, entry.last + delay - t)
    }

    private func bump(_ table: inout [String: Entry], _ key: String, _ policy: Policy, _ t: Double) {
        if var entry = table[key], t - entry.last < policy.forgetAfter {
            entry.failures += 1
            entry.last = t
            table[key] = entry
        } else {
            table[key] = Entry(failures: 1, last: t)
        }
        if table.count > maximumEntries {
            // Forget stale entries first, then the oldest half: memory stays bounded under a flood.
            table = table.filter { t - $0.value.last < policy.forgetAfter }
            if table.count > maximumEntries {
                let keep = table.sorted { $0.value.last > $1.value.last }.prefix(maximumEntries / 2)
                table = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
            }
        }
    }
}

import Foundation

/// Growing delays after failed logins, per client address and per account.
///
/// The first few failures are free; after that each one doubles the time the next attempt must
/// wait, up to a cap, and the count is forgotten after a quiet period. An attempt made too soon
/// is refused without running scrypt, so a guessing flood costs the server almost nothing.
/// Unknown accounts are throttled exactly like real ones. Time comes from the injected clock.
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

    private let lock = NSLock()
    private var byAddress: [String: Entry] = [:]
    private var byAccount: [String: Entry] = [:]
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
    public func wait(address: String, account: String) -> Double {
        let key = AccountName.folded(account)
        let t = now()
        lock.lock()
        defer { lock.unlock() }
        return max(remaining(byAddress[address], addressPolicy, t), remaining(byAccount[key], accountPolicy, t))
    }

    public func recordFailure(address: String, account: String) {
        let key = AccountName.folded(account)
        let t = now()
        lock.lock()
        defer { lock.unlock() }
        bump(&byAddress, address, addressPolicy, t)
        bump(&byAccount, key, accountPolicy, t)
    }

    /// A successful login clears the account's failures (the address keeps its own).
    public func recordSuccess(address: String, account: String) {
        let key = AccountName.folded(account)
        lock.lock()
        defer { lock.unlock() }
        byAccount[key] = nil
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

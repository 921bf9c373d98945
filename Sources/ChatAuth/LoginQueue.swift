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

/// Fair scheduling of password checks onto the hashing threads.
///
/// Checks wait here, not in the pool, and go to the pool only when a thread is free, chosen so
/// that no client can crowd out the others:
/// - a check from an address that logged in to that account before (`priority`) goes first, and
///   may push out a waiting check of someone else when the queue is full;
/// - the others take turns by network (an IPv4 /24, an IPv6 /64): one network with many
///   connections gets one turn like any other, and at most `perNetwork` of its checks wait;
/// - at most one check per account and one per address runs at a time, so parallel guesses
///   are checked one after the other and each one's result counts before the next runs.
/// A check whose connection closed is dropped before it costs a hash (`LoginQueue.Ticket.cancel`).
// @unchecked Sendable: every stored `var` is only touched with `lock` held.
public final class LoginQueue: @unchecked Sendable {
    /// A queued check; `cancel()` drops it if it has not started (a closed connection).
    public final class Ticket: @unchecked Sendable {
        fileprivate let id: UInt64
        fileprivate weak var queue: LoginQueue?
        fileprivate init(id: UInt64, queue: LoginQueue) {
            self.id = id
            self.queue = queue
        }

        /// Drops the check if it is still waiting; returns whether it was.
        @discardableResult
        public func cancel() -> Bool { queue?.cancel(id) ?? false }
    }

    private struct Job {
        let id: UInt64
        let network: String
        let address: String
        let account: String
        let priority: Bool
        let run: @Sendable () -> Void
        let refuse: @Sendable () -> Void
        let cancelled: @Sendable () -> Void
    }

    private let lock = Lock()
    private let pool: WorkerPool
    /// Checks that may wait in all (beyond the running ones).
    public let capacity: Int
    /// Checks one network may have waiting.
    public let perNetwork: Int
    private var priority: [Job] = []
    private var byNetwork: [String: [Job]] = [:]
    private var turns: [String] = []
    private var waiting = 0
    private var running = 0
    private var runningAccounts = Set<String>()
    private var runningAddresses = Set<String>()
    private var nextID: UInt64 = 0

    public init(pool: WorkerPool, capacity: Int, perNetwork: Int = 16) {
        self.pool = pool
        self.capacity = max(0, capacity)
        self.perNetwork = max(1, perNetwork)
    }

    /// Checks waiting and running.
    public var counts: (waiting: Int, running: Int) {
        lock.withLock { (waiting, running) }
    }

    /// Queues `run` (the hash and its answer) for `account` from `address`. `refuse` is called
    /// instead when there is no room later (pushed out by a priority check, or the pool is full
    /// of other work), `cancelled` when the ticket is cancelled before its turn. Returns nil,
    /// calling neither, when there is no room now.
    public func submit(address: String, account: String, priority isPriority: Bool,
                       run: @escaping @Sendable () -> Void, refuse: @escaping @Sendable () -> Void,
                       cancelled: @escaping @Sendable () -> Void = {}) -> Ticket? {
        var refused: [Job] = []
        let ticket: Ticket? = lock.withLock {
            nextID += 1
            let job = Job(id: nextID, network: Self.network(of: address), address: address, account: AccountName.folded(account),
                          priority: isPriority, run: run, refuse: refuse, cancelled: cancelled)
            if isPriority {
                if waiting >= capacity {
                    // Room for the owner: push out the newest check of the busiest network.
                    guard let victim = removeNewestOfBusiestNetwork() else { return nil }
                    refused.append(victim)
                }
                priority.append(job)
            } else {
                let queued = byNetwork[job.network]?.count ?? 0
                guard waiting < capacity, queued < perNetwork else { return nil }
                if queued == 0 { turns.append(job.network) }
                byNetwork[job.network, default: []].append(job)
            }
            waiting += 1
            return Ticket(id: job.id, queue: self)
        }
        for job in refused { job.refuse() }
        dispatch()
        return ticket
    }

    fileprivate func cancel(_ id: UInt64) -> Bool {
        let removed: Job? = lock.withLock {
            if let index = priority.firstIndex(where: { $0.id == id }) {
                waiting -= 1
                return priority.remove(at: index)
            }
            for (network, jobs) in byNetwork {
                guard let index = jobs.firstIndex(where: { $0.id == id }) else { continue }
                let job = jobs[index]
                removeJob(network: network, at: index)
                return job
            }
            return nil
        }
        removed?.cancelled()
        return removed != nil
    }

    /// Starts waiting checks while hashing threads are free.
    private func dispatch() {
        while true {
            let next: Job? = lock.withLock {
                guard running < pool.threadCount, let job = takeNext() else { return nil }
                running += 1
                runningAccounts.insert(job.account)
                runningAddresses.insert(job.address)
                return job
            }
            guard let job = next else { return }
            let accepted = pool.enqueue { [self] in
                job.run()
                finished(job)
            }
            if !accepted {
                // The pool is full with other work (background re-hashing): nothing of ours runs
                // to wake the waiting checks later, so every one of them is told "busy" now.
                finished(job, dispatchMore: false)
                let waitingJobs: [Job] = lock.withLock {
                    let all = priority + byNetwork.values.flatMap { $0 }
                    priority.removeAll()
                    byNetwork.removeAll()
                    turns.removeAll()
                    waiting = 0
                    return all
                }
                job.refuse()
                for other in waitingJobs { other.refuse() }
                return
            }
        }
    }

    private func finished(_ job: Job, dispatchMore: Bool = true) {
        lock.withLock {
            running -= 1
            runningAccounts.remove(job.account)
            runningAddresses.remove(job.address)
        }
        if dispatchMore { dispatch() }
    }

    /// The next check that may run: priority first, then networks in turn; skips checks whose
    /// account or address already has one running.
    private func takeNext() -> Job? {
        if let index = priority.firstIndex(where: isRunnable) {
            waiting -= 1
            return priority.remove(at: index)
        }
        for _ in 0..<turns.count {
            let network = turns.removeFirst()
            turns.append(network)
            if let jobs = byNetwork[network], let index = jobs.firstIndex(where: isRunnable) {
                let job = jobs[index]
                removeJob(network: network, at: index)
                return job
            }
        }
        return nil
    }

    private func isRunnable(_ job: Job) -> Bool {
        !runningAccounts.contains(job.account) && !runningAddresses.contains(job.address)
    }

    private func removeJob(network: String, at index: Int) {
        byNetwork[network]!.remove(at: index)
        waiting -= 1
        if byNetwork[network]!.isEmpty {
            byNetwork[network] = nil
            turns.removeAll { $0 == network }
        }
    }

    private func removeNewestOfBusiestNetwork() -> Job? {
        guard let network = byNetwork.max(by: { $0.value.count < $1.value.count })?.key else { return nil }
        let job = byNetwork[network]!.last!
        removeJob(network: network, at: byNetwork[network]!.count - 1)
        return job
    }

    /// The network an address belongs to, for taking turns: the /24 of an IPv4 address, the
    /// /64 of an IPv6 one (IPv4-mapped IPv6 counts as IPv4), the address itself otherwise.
    public static func network(of address: String) -> String {
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 {
            let bytes = withUnsafeBytes(of: v4.s_addr) { Array($0) }
            return "\(bytes[0]).\(bytes[1]).\(bytes[2]).0/24"
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, address, &v6) == 1 {
            let bytes = withUnsafeBytes(of: v6) { Array($0) }
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
                return "\(bytes[12]).\(bytes[13]).\(bytes[14]).0/24"
            }
            return stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(separator: ":") + "::/64"
        }
        return address
    }
}

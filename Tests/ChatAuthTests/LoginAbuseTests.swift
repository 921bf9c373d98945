import ChatSupport
import ChatTesting
import Foundation
import Testing
@testable import ChatAuth

/// The attacks of issue 13 against logins (findings 1–3), each against the real Authenticator,
/// throttle and queue, with scrypt on real threads and a hand-moved clock.
@Suite struct LoginAbuseTests {
    /// Collects outcomes from the callback form of `login`.
    final class Outcomes: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [String: LoginOutcome] = [:]
        func set(_ key: String, _ outcome: LoginOutcome) { lock.withLock { stored[key] = outcome } }
        subscript(_ key: String) -> LoginOutcome? { lock.withLock { stored[key] } }
        var all: [LoginOutcome] { lock.withLock { Array(stored.values) } }
    }

    @Test func parallelGuessesAreChargedWhenQueuedNotWhenHashed() async throws {
        let f = try Fixture(threads: 2, queue: 64)
        let outcomes = await withTaskGroup(of: LoginOutcome.self) { group in
            for i in 0..<20 { group.addTask { await f.login("alice", "guess \(i)", from: "192.0.2.10") } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let checked = outcomes.filter { $0 == .invalidCredentials }.count
        // The account's free failures (5) and no more were hashed; the rest were refused unhashed.
        #expect(checked == LoginThrottle.Policy.account.freeFailures)
        #expect(outcomes.allSatisfy { $0 == .invalidCredentials || { if case .throttled = $0 { return true } else { return false } }($0) })
    }

    @Test func guessingFromManyAddressesCannotKeepTheOwnerOut() async throws {
        let f = try Fixture()
        #expect(await f.login("alice", "correct horse", from: "198.51.100.7") == .success(account: "alice"))
        for i in 0..<12 { _ = await f.login("alice", "guess \(i)", from: "203.0.113.\(i)") }
        // A new address is slowed by the account's failures...
        if case .throttled = await f.login("alice", "correct horse", from: "203.0.113.200") {} else { Issue.record("a new address should be throttled") }
        // ...the owner's usual address is not.
        #expect(await f.login("alice", "correct horse", from: "198.51.100.7") == .success(account: "alice"))
        #expect(f.authenticator.throttle.isKnown(address: "198.51.100.7", account: "ALICE"))
        // The owner's login does not hand the attacker a fresh budget.
        if case .throttled = await f.login("alice", "guess again", from: "203.0.113.77") {} else { Issue.record("the owner's success reset the attacker's budget") }
    }

    @Test func theOwnerGetsInThroughAFullQueue() async throws {
        let f = try Fixture(threads: 1, queue: 8)
        #expect(await f.login("alice", "correct horse", from: "198.51.100.7") == .success(account: "alice"))
        let gate = DispatchSemaphore(value: 0)
        #expect(f.pool.enqueue { gate.wait() })  // the only hashing thread is busy
        #expect(await waitUntil { f.pool.statistics.started >= 2 })
        let outcomes = Outcomes()
        // 10 unknown accounts from 10 networks: 1 taken to the pool, 8 wait, 1 refused at once.
        for i in 0..<10 {
            f.authenticator.login(account: "nobody\(i)", password: Password("x"), address: "10.\(i).0.1") { outcomes.set("flood\(i)", $0) }
        }
        #expect(outcomes["flood9"] == .busy)
        f.authenticator.login(account: "alice", password: Password("correct horse"), address: "198.51.100.7") { outcomes.set("owner", $0) }
        #expect(outcomes.all.filter { $0 == .busy }.count == 2)  // a waiting check gave the owner its place
        gate.signal()
        #expect(await waitUntil { outcomes["owner"] != nil })
        #expect(outcomes["owner"] == .success(account: "alice"))
    }

    @Test func oneNetworkCannotFillTheQueueAndClosedConnectionsCostNoHash() async throws {
        let f = try Fixture(threads: 1, queue: 64)
        let gate = DispatchSemaphore(value: 0)
        #expect(f.pool.enqueue { gate.wait() })
        #expect(await waitUntil { f.pool.statistics.started == 1 })
        let outcomes = Outcomes()
        var tickets: [LoginQueue.Ticket] = []
        // 20 connections from one /24 (different addresses): 16 wait, the rest are told busy.
        for i in 0..<20 {
            if let ticket = f.authenticator.login(account: "nobody\(i)", password: Password("x"), address: "192.0.2.\(i + 1)", completion: { outcomes.set("n\(i)", $0) }) {
                tickets.append(ticket)
            }
        }
        #expect(tickets.count == 1 + f.authenticator.queue.perNetwork)  // one taken to the pool, 16 waiting
        #expect(outcomes.all.filter { $0 == .busy }.count == 20 - tickets.count)
        // Someone from another network still gets a place and is checked.
        f.authenticator.login(account: "alice", password: Password("correct horse"), address: "198.51.100.9") { outcomes.set("other", $0) }
        #expect(outcomes["other"] == nil)
        // The flooding connections hang up: their waiting checks go without being hashed.
        let cancelled = tickets.filter { $0.cancel() }.count
        #expect(cancelled == f.authenticator.queue.perNetwork)
        let started = f.pool.statistics.started
        gate.signal()
        #expect(await waitUntil { outcomes["other"] != nil })
        #expect(outcomes["other"] == .success(account: "alice"))
        #expect(f.pool.statistics.started - started <= 2)  // the one already in the pool, and alice's
        // Cancelled checks were not charged: the address may try again at once.
        #expect(f.authenticator.throttle.wait(address: "192.0.2.2", account: "nobody1") == 0)
    }

    @Test func networksAreSlash24AndSlash64() {
        #expect(LoginQueue.network(of: "192.0.2.77") == "192.0.2.0/24")
        #expect(LoginQueue.network(of: "::ffff:192.0.2.77") == "192.0.2.0/24")
        #expect(LoginQueue.network(of: "2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64")
        #expect(LoginQueue.network(of: "2001:db8:1:2::9") == LoginQueue.network(of: "2001:db8:1:2:ffff::1"))
        #expect(LoginQueue.network(of: "unknown") == "unknown")
    }
}

import ChatSupport
import ChatTesting
import Foundation
import Testing
@testable import ChatAuth

/// A clock the tests move by hand.
final class FakeClock: @unchecked Sendable {
    private let lock = NSLock()
    private var seconds: Double = 1000
    func now() -> Double { lock.lock(); defer { lock.unlock() }; return seconds }
    func advance(_ delta: Double) { lock.lock(); seconds += delta; lock.unlock() }
}

final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    func append(_ line: String) { lock.lock(); stored.append(line); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return stored }
}

struct Fixture {
    let store: UsersStore
    let directory: AccountDirectory
    let authenticator: Authenticator
    let clock: FakeClock
    let pool: WorkerPool
    let lines: Lines

    static let policy = ScryptParameters(ln: 8, r: 8, p: 1)

    init(accounts: [(String, String, Bool)] = [("alice", "correct horse", false), ("Locked", "right password", true)],
         threads: Int = 2, queue: Int = 8, accountPolicy: LoginThrottle.Policy = .account) throws {
        store = UsersStore(path: temporaryFolder() + "/users.json")
        for (name, password, locked) in accounts {
            let hash = try PasswordHash.make(password: Password(password), parameters: Self.policy)
            try store.update { try $0.add(Account(name: name, hash: hash.phc, created: "t", updated: "t", locked: locked)) }
        }
        let lines = Lines()
        self.lines = lines
        directory = try AccountDirectory(store: store, report: { lines.append($0) })
        clock = FakeClock()
        let clock = self.clock
        pool = WorkerPool(threads: threads, queueLimit: queue)
        authenticator = try Authenticator(
            directory: directory, policy: Self.policy, pool: pool,
            throttle: LoginThrottle(account: accountPolicy, now: { clock.now() }), report: { lines.append($0) })
    }

    func login(_ name: String, _ password: String, from address: String = "127.0.0.1") async -> LoginOutcome {
        await authenticator.login(account: name, password: Password(password), address: address)
    }
}

@Suite struct AuthenticatorTests {
    @Test func successUsesTheRegisteredName() async throws {
        let f = try Fixture()
        #expect(await f.login("ALICE", "correct horse") == .success(account: "alice"))
    }

    @Test func unknownAccountAndWrongPasswordAreIndistinguishable() async throws {
        let f = try Fixture()
        let before = f.pool.statistics.started
        let wrong = await f.login("alice", "wrong horse")
        let unknown = await f.login("mallory", "wrong horse")
        #expect(wrong == .invalidCredentials && unknown == wrong)
        // Both ran one scrypt on the pool: the unknown account against the dummy hash.
        #expect(f.pool.statistics.started - before == 2)
    }

    @Test func lockedIsToldOnlyWithTheRightPassword() async throws {
        let f = try Fixture()
        #expect(await f.login("locked", "right password") == .locked(account: "Locked"))
        #expect(await f.login("locked", "wrong password") == .invalidCredentials)
    }

    @Test func failuresAreThrottledWithGrowingDelays() async throws {
        let policy = LoginThrottle.Policy(freeFailures: 2, baseDelay: 4, maximumDelay: 60, forgetAfter: 600)
        let f = try Fixture(accountPolicy: policy)
        #expect(await f.login("alice", "bad 1") == .invalidCredentials)
        #expect(await f.login("alice", "bad 2") == .invalidCredentials)
        // Third attempt, even with the right password: too soon.
        let started = f.pool.statistics.started
        #expect(await f.login("alice", "correct horse") == .throttled(retryAfter: 4))
        #expect(f.pool.statistics.started == started)  // no scrypt ran
        f.clock.advance(4)
        #expect(await f.login("alice", "bad 3") == .invalidCredentials)
        #expect(await f.login("alice", "correct horse") == .throttled(retryAfter: 8))
        f.clock.advance(8)
        #expect(await f.login("alice", "correct horse") == .success(account: "alice"))
        // Unknown accounts are throttled the same way.
        #expect(await f.login("ghost", "x1") == .invalidCredentials)
        #expect(await f.login("ghost", "x2") == .invalidCredentials)
        #expect(await f.login("ghost", "x3") == .throttled(retryAfter: 4))
    }

    @Test func addressThrottleCoversManyAccounts() {
        let clock = FakeClock()
        let throttle = LoginThrottle(address: .init(freeFailures: 3, baseDelay: 1, maximumDelay: 10, forgetAfter: 100), now: { clock.now() })
        for i in 0..<3 { throttle.recordFailure(address: "192.0.2.1", account: "user\(i)") }
        #expect(throttle.wait(address: "192.0.2.1", account: "someone-else") == 1)
        #expect(throttle.wait(address: "192.0.2.2", account: "someone-else") == 0)
        clock.advance(200)
        #expect(throttle.wait(address: "192.0.2.1", account: "someone-else") == 0)
    }

    @Test func throttleMemoryIsBounded() {
        let clock = FakeClock()
        let throttle = LoginThrottle(maximumEntries: 100, now: { clock.now() })
        for i in 0..<1000 { throttle.recordFailure(address: "10.0.\(i / 250).\(i % 250)", account: "u\(i)") }
        #expect(throttle.trackedCount.addresses <= 100 && throttle.trackedCount.accounts <= 100)
    }

    @Test func weakRecordsAreRehashedAfterASuccessfulLogin() async throws {
        let f = try Fixture(accounts: [])
        let weak = try PasswordHash.make(password: Password("old password"), parameters: ScryptParameters(ln: 4, r: 8, p: 1))
        try f.store.update { try $0.add(Account(name: "old", hash: weak.phc, created: "t", updated: "t")) }
        #expect(await f.login("old", "old password") == .success(account: "old"))
        // The re-hash runs in the background after the login's answer.
        #expect(await waitUntil { (try? PasswordHash(phc: f.store.load().account(named: "old")!.hash).parameters) == Fixture.policy })
        let hash = try PasswordHash(phc: try f.store.load().account(named: "old")!.hash)
        #expect(hash.parameters == Fixture.policy)
        #expect(try hash.verify(Password("old password")))
        #expect(await f.login("old", "old password") == .success(account: "old"))
    }

    @Test func malformedRecordFailsTheLoginAndNamesTheAccount() async throws {
        let f = try Fixture(accounts: [])
        try f.store.update { try $0.add(Account(name: "broken", hash: "$scrypt$nonsense", created: "t", updated: "t")) }
        #expect(await f.login("broken", "anything at all") == .invalidCredentials)
        #expect(f.lines.all.contains { $0.contains("account 'broken'") && $0.contains("chat-admin passwd broken") })
    }

    @Test func fullPoolAnswersBusyAtOnce() async throws {
        let f = try Fixture(threads: 1, queue: 0)
        let gate = DispatchSemaphore(value: 0)
        #expect(f.pool.enqueue { gate.wait() })
        #expect(await waitUntil { f.pool.statistics.started == 1 })  // the thread picked it up
        #expect(await f.login("alice", "correct horse") == .busy)
        gate.signal()
    }

    @Test func poolRefusesBeyondItsQueue() async throws {
        let pool = WorkerPool(threads: 1, queueLimit: 1)
        let gate = DispatchSemaphore(value: 0)
        let done = Lines()
        #expect(pool.enqueue { gate.wait(); done.append("a") })
        #expect(await waitUntil { pool.statistics.started == 1 })
        #expect(pool.enqueue { done.append("b") })
        #expect(!pool.enqueue { done.append("c") })
        await #expect(throws: WorkerPoolError.busy) { try await pool.run { 1 } }
        gate.signal()
        #expect(await waitUntil { done.all.count == 2 })
        #expect(done.all == ["a", "b"])
        #expect(pool.statistics.rejected == 2)
        #expect(try await pool.run { 42 } == 42)
    }

    @Test func aFinishedJobKeepsNothingItCaptured() async throws {
        final class Secret: @unchecked Sendable { let bytes = [UInt8](repeating: 7, count: 32) }
        let pool = WorkerPool(threads: 1, queueLimit: 4)
        weak var watched: Secret?
        do {
            let secret = Secret()
            watched = secret
            #expect(try await pool.run { secret.bytes.count } == 32)
        }
        // The queue slot no longer holds the job: what it captured (a password) is gone.
        #expect(await waitUntil { watched == nil })
        #expect(watched == nil)
    }

    @Test func backgroundPoolThreadsRunAtNice19() async throws {
        let background = WorkerPool(threads: 2, queueLimit: 4, scheduling: .background)
        let normal = WorkerPool(threads: 1, queueLimit: 4)
        let which = __priority_which_t(PRIO_PROCESS.rawValue)
        let ownNice = getpriority(which, 0)
        // Each thread of the background pool is at nice 19 under the normal scheduler (SCHED_OTHER
        // is 0); the rest of the process keeps its own priority.
        let seen = try await withThrowingTaskGroup(of: [Int32].self) { group in
            for _ in 0..<6 { group.addTask { try await background.run { [getpriority(which, 0), sched_getscheduler(0)] } } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(seen == Array(repeating: [19, 0], count: 6))
        #expect(try await normal.run { getpriority(which, 0) } == ownNice)
        #expect(getpriority(which, 0) == ownNice)
    }
}

@Suite struct AccountDirectoryTests {
    @Test func changesAreSeenAtTheNextLookupWithoutSignals() throws {
        let store = UsersStore(path: temporaryFolder() + "/users.json")
        let directory = try AccountDirectory(store: store)
        #expect(directory.lookup("alice") == nil)
        try store.update { try $0.add(account("alice")) }
        #expect(directory.lookup("alice")?.name == "alice")
        try store.update { try $0.modify("alice") { $0.locked = true } }
        #expect(directory.lookup("alice")?.locked == true)
        try store.update { try $0.remove("alice") }
        #expect(directory.lookup("alice") == nil)
    }

    @Test func garbageKeepsTheLastGoodCopyAndSaysSoOnce() throws {
        let store = UsersStore(path: temporaryFolder() + "/users.json")
        try store.update { try $0.add(account("alice")) }
        let lines = Lines()
        let directory = try AccountDirectory(store: store, report: { lines.append($0) })
        try "garbage".write(toFile: store.path, atomically: true, encoding: .utf8)
        #expect(directory.lookup("alice")?.name == "alice")
        #expect(directory.lookup("alice")?.name == "alice")
        #expect(lines.all.count == 1)
        #expect(lines.all[0].contains("keeping the last good copy (1 accounts)"))
        #expect(directory.currentProblem != nil)
        #expect(throws: UsersFileError.self) { try store.update { _ in } }  // never overwrites it
        // The operator restores a good file: picked up at the next lookup.
        try Data(UsersDatabase(accounts: [account("alice"), account("bob")]).encoded()).write(to: URL(fileURLWithPath: store.path))
        #expect(directory.lookup("bob")?.name == "bob")
        #expect(directory.currentProblem == nil)
        #expect(lines.all.contains { $0.contains("readable again: 2 accounts") })
    }
}

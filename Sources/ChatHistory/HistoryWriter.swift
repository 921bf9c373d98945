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

/// A change to a history store, queued for its writer.
public enum HistoryWrite: Sendable {
    case message(StoredMessage)
    case lastSeen(String, Int64)
    case readMarker(String, String, Int64)
    case purge(HistoryRetention, now: Int64)
    /// A room's saved state, or nil to forget it (and its memberships).
    case room(String, RoomRecord?)
    case membership(String, String, Bool)
    case request(RoomRequest)
}

/// The writing half of a history store, the same for SQLite and PostgreSQL.
///
/// Writes never happen on the caller's thread: `enqueue` queues, and one writer thread stores
/// what has queued in one transaction (group commit), at most `durabilityMilliseconds` after the
/// first write of the batch arrived, sooner when a read of the same conversation waits for it.
/// If storing fails (a full disk, a lost database), the batch is kept in memory (up to
/// `maximumPending` writes) and retried every second; `report` hears of it at most once a minute.
// @unchecked Sendable: every variable is guarded by the `condition` lock; `store` runs only on
// the writer thread.
public final class HistoryWriter: @unchecked Sendable {
    public let durabilityMilliseconds: Int
    public let maximumPending: Int
    private let store: ([HistoryWrite]) throws -> Void
    private let report: @Sendable (String) -> Void

    private let condition = Condition()
    private var queue: [HistoryWrite] = []
    private var appended = 0
    private var stored = 0
    /// The conversations of the messages being stored now (taken from `queue`, not yet counted
    /// in `stored`).
    private var inFlight: Set<String> = []
    private var inFlightCount = 0
    /// A read waits for a message of its conversation: store without gathering more.
    private var hurry = false
    private var transactions = 0
    private var running = true
    private var writerDone = false
    private var lastReport: Date?

    /// Starts the writer thread. `store` stores a batch in one transaction, or throws and stores
    /// nothing of it.
    public init(durabilityMilliseconds: Int, maximumPending: Int = 100_000, name: String, report: @escaping @Sendable (String) -> Void,
                store: @escaping ([HistoryWrite]) throws -> Void) {
        self.durabilityMilliseconds = durabilityMilliseconds
        self.maximumPending = maximumPending
        self.report = report
        self.store = store
        Threads.start(name: name) { [self] in self.writeLoop() }
    }

    public func enqueue(_ write: HistoryWrite) {
        condition.lock()
        if running {
            if queue.count >= maximumPending { queue.removeFirst(queue.count - maximumPending + 1) }
            queue.append(write)
            appended += 1
            // Only an idle writer needs waking; one gathering a batch looks again at its deadline.
            if queue.count == 1 { condition.broadcast() }
        }
        condition.unlock()
    }

    private func writeLoop() {
        while true {
            condition.lock()
            while queue.isEmpty && running { condition.wait() }
            if queue.isEmpty && !running {
                writerDone = true
                condition.broadcast()
                condition.unlock()
                return
            }
            // Group commit: let a burst gather for up to the durability window, then store it all.
            if durabilityMilliseconds > 0 {
                let deadline = Deadline.after(seconds: Double(durabilityMilliseconds) / 1000 / 2)
                while running && !hurry && Deadline.now() < deadline { condition.wait(until: deadline) }
            }
            hurry = false
            let batch = queue
            queue.removeAll(keepingCapacity: true)
            inFlight = Self.targets(of: batch[...])
            inFlightCount = batch.count
            condition.unlock()
            do {
                try store(batch)
                condition.lock()
                inFlight = []
                inFlightCount = 0
                stored += batch.count
                transactions += 1
                condition.broadcast()
                condition.unlock()
            } catch {
                complain("history: could not store \(batch.count) messages: \(error) — they are kept in memory and retried; live chat goes on")
                condition.lock()
                inFlight = []
                inFlightCount = 0
                queue.insert(contentsOf: batch, at: 0)
                if queue.count > maximumPending {
                    let dropped = queue.count - maximumPending
                    queue.removeFirst(dropped)
                    stored += dropped  // given up: flush() must not wait for them
                }
                let stillRunning = running
                condition.unlock()
                if stillRunning { Threads.sleep(seconds: 1) } else {
                    condition.lock()
                    stored += queue.count
                    queue.removeAll()
                    condition.unlock()
                }
            }
        }
    }

    private func complain(_ text: String) {
        let now = Date()
        condition.lock()
        let due = lastReport.map { now.timeIntervalSince($0) >= 60 } ?? true
        if due { lastReport = now }
        condition.unlock()
        if due { report(text) }
    }

    /// Transactions committed so far (group commit: far fewer than messages under load).
    public var commits: Int {
        condition.lock()
        defer { condition.unlock() }
        return transactions
    }

    /// Returns once everything queued before the call is stored.
    public func flush() {
        condition.lock()
        let target = appended
        condition.unlock()
        wait(until: target, within: nil)
    }

    /// How many writes have been queued so far.
    public var sequence: Int {
        condition.lock()
        defer { condition.unlock() }
        return appended
    }

    public func waitUntilStored(_ sequence: Int, within seconds: Double) {
        wait(until: sequence, within: seconds)
    }

    public func waitUntilStored(_ sequence: Int, target: String, within seconds: Double) {
        condition.lock()
        // Of the first `sequence` writes, those not stored yet: in flight, then the queue's head.
        let waiting = sequence - stored - inFlightCount
        let pending = inFlight.contains(target) || Self.targets(of: queue.prefix(max(0, waiting))).contains(target)
        if pending {
            hurry = true
            condition.broadcast()
        }
        condition.unlock()
        if pending { wait(until: sequence, within: seconds) }
    }

    /// The conversations that messages among `writes` belong to.
    private static func targets(of writes: ArraySlice<HistoryWrite>) -> Set<String> {
        var targets: Set<String> = []
        for case let .message(m) in writes { targets.insert(m.target) }
        return targets
    }

    private func wait(until target: Int, within seconds: Double?) {
        let deadline = seconds.map { Deadline.after(seconds: $0) }
        condition.lock()
        while stored < target && !writerDone {
            if let deadline {
                if !condition.wait(until: deadline) { break }
            } else {
                condition.wait()
            }
        }
        condition.unlock()
    }

    /// Stores what is queued (one last try) and stops the thread.
    public func close() {
        condition.lock()
        running = false
        condition.broadcast()
        while !writerDone { condition.wait() }
        condition.unlock()
    }
}

/// What a history store answers from memory, written through to its database: saved rooms by
/// folded name, each account's rooms (folded account → names as created, in the order joined),
/// and read markers (account → target → ms).
// @unchecked Sendable: every variable is guarded by `lock`.
public final class HistoryMemory: @unchecked Sendable {
    private let lock = Lock()
    private var savedRooms: [String: RoomRecord] = [:]
    private var memberOf: [String: [String]] = [:]
    private var markers: [String: [String: Int64]] = [:]

    public init() {}

    /// ASCII case folding, as room keys are stored.
    public static func fold(_ name: String) -> String {
        String(decoding: name.utf8.map { $0 >= 0x41 && $0 <= 0x5a ? $0 + 0x20 : $0 }, as: UTF8.self)
    }

    public func room(_ folded: String) -> RoomRecord? {
        lock.withLock { savedRooms[folded] }
    }

    public var rooms: [RoomRecord] {
        lock.withLock { Array(savedRooms.values) }
    }

    /// Sets a room's state (nil: forgets it and who is in it); true when that changed something.
    @discardableResult
    public func setRoom(_ folded: String, _ record: RoomRecord?) -> Bool {
        lock.withLock {
            let changed = savedRooms[folded] != record
            savedRooms[folded] = record
            if record == nil {
                for (account, names) in memberOf { memberOf[account] = names.filter { Self.fold($0) != folded } }
            }
            return changed
        }
    }

    public func memberships(of account: String) -> [String] {
        lock.withLock { memberOf[account] ?? [] }
    }

    /// Adds or removes one room of `account`'s; true when that changed something.
    public func setMembership(account: String, room: String, member: Bool) -> Bool {
        let folded = Self.fold(room)
        return lock.withLock {
            var names = memberOf[account] ?? []
            let had = names.contains { Self.fold($0) == folded }
            if member && !had { names.append(room) }
            if !member { names.removeAll { Self.fold($0) == folded } }
            memberOf[account] = names
            return member != had
        }
    }

    /// Replaces `account`'s rooms (as another server of a cluster recorded them).
    public func setMemberships(of account: String, _ names: [String]) {
        lock.withLock { memberOf[account] = names.isEmpty ? nil : names }
    }

    /// The accounts whose rooms include `folded`.
    public func members(of folded: String) -> [String] {
        lock.withLock { memberOf.filter { $0.value.contains { Self.fold($0) == folded } }.map(\.key).sorted() }
    }

    public func readMarker(account: String, target: String) -> Int64? {
        lock.withLock { markers[account]?[target] }
    }

    /// Moves the marker forward (never back): where it now is, and whether it moved.
    public func setReadMarker(account: String, target: String, time: Int64) -> (time: Int64, moved: Bool) {
        lock.withLock {
            let current = markers[account]?[target] ?? Int64.min
            let now = max(current, time)
            markers[account, default: [:]][target] = now
            return (now, now != current)
        }
    }

    /// Replaces what is known of rooms, memberships and markers (a fresh read of the database).
    public func replaceAll(rooms: [String: RoomRecord], memberships: [String: [String]], markers: [String: [String: Int64]]) {
        lock.withLock {
            savedRooms = rooms
            memberOf = memberships
            self.markers = markers
        }
    }
}

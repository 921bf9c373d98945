import CChatSystem
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

/// A fixed set of threads for blocking work (scrypt), with a bounded queue.
///
/// Event loops must never run scrypt; they hand it here. When every thread is busy and the queue
/// is full, new work is refused at once with `WorkerPoolError.busy` instead of waiting without
/// bound: under a login flood the server answers "server busy" and stays responsive.
public final class WorkerPool: @unchecked Sendable {
    private let condition = Condition()
    private var queue: [() -> Void] = []
    private var queueHead = 0
    private var running = true
    private var _started = 0
    private var _rejected = 0
    private var _active = 0

    /// Work items that may wait beyond the ones being run.
    public let queueLimit: Int
    /// Number of threads.
    public let threadCount: Int

    /// How the pool's threads are scheduled against the rest of the process (Linux; elsewhere
    /// always `.normal`).
    public enum Scheduling: Sendable, Equatable {
        /// Like every other thread.
        case normal
        /// Nice 19: hashing takes what the event loops leave, so a login storm slows logins, not
        /// the chat (see `moveCurrentThreadToBackground`).
        case background
    }

    /// - Parameters:
    ///   - threads: how many jobs run at once (near the number of cores).
    ///   - queueLimit: how many more may wait.
    ///   - scheduling: `.background` for work that must never delay the event loops.
    ///   - name: the threads' name (with a number), as `top -H` and debuggers show it.
    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount, queueLimit: Int = 64, scheduling: Scheduling = .normal, name: String = "securechat-hash") {
        self.threadCount = max(1, threads)
        self.queueLimit = max(0, queueLimit)
        for i in 0..<threadCount {
            Threads.start(name: "\(name)-\(i)", stackSize: 1 << 20) { [weak self] in
                if scheduling == .background { WorkerPool.moveCurrentThreadToBackground() }
                self?.workLoop()
            }
        }
    }

    deinit { shutdown() }

    private static let finished: @Sendable () -> Void = {}

    /// Puts the calling thread at nice 19, the lowest priority of the normal scheduler (Linux;
    /// elsewhere nothing). For threads whose work must never delay the event loops.
    ///
    /// Not SCHED_IDLE: measured on Linux 6.18 (EEVDF), one SCHED_IDLE scrypt loop next to a paced
    /// chat raised the chat's p99 from 0.8 to 3–5 ms, while the same loop at nice 19 left it at
    /// 0.9–1.0 ms (BENCHMARKS.md, "Login storm").
    public static func moveCurrentThreadToBackground() {
        #if os(Linux)
        // On Linux this applies to the calling thread alone (who 0 is the calling thread's id).
        _ = chat_nice_this_thread(19)
        #endif
    }

    /// Runs `work` on a pool thread and returns its result; throws `busy` if the queue is full.
    public func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = enqueue {
                continuation.resume(returning: work())
            }
            if !accepted { continuation.resume(throwing: WorkerPoolError.busy) }
        }
    }

    /// Queues `job`; false when the pool is full or shut down.
    public func enqueue(_ job: @escaping () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard running, queue.count - queueHead < queueLimit + max(0, threadCount - _active) else {
            _rejected += 1
            return false
        }
        queue.append(job)
        condition.signal()
        return true
    }

    /// Jobs started (counted before they hand back a result), refused, and waiting now.
    public var statistics: (started: Int, rejected: Int, waiting: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (_started, _rejected, queue.count - queueHead)
    }

    /// Stops the threads after the jobs already queued.
    public func shutdown() {
        condition.lock()
        running = false
        condition.broadcast()
        condition.unlock()
    }

    private func workLoop() {
        while true {
            condition.lock()
            while queueHead == queue.count && running { condition.wait() }
            if queueHead == queue.count && !running {
                condition.unlock()
                return
            }
            let job = queue[queueHead]
            // Drop the queue's reference at once: a finished job must not keep what it captured
            // (a password being checked, a connection's buffers) until the queue is compacted.
            queue[queueHead] = WorkerPool.finished
            queueHead += 1
            if queueHead > 1024 && queueHead * 2 > queue.count {
                queue.removeFirst(queueHead)
                queueHead = 0
            }
            _active += 1
            _started += 1  // counted before the job hands its result back, so callers see it
            condition.unlock()
            job()
            condition.lock()
            _active -= 1
            condition.unlock()
        }
    }
}

/// Why the pool did not run a job.
public enum WorkerPoolError: Error, Sendable, Equatable, CustomStringConvertible {
    case busy
    public var description: String { "server busy: too many logins are being checked; try again in a few seconds" }
}

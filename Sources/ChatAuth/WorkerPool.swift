import Foundation

/// A fixed set of threads for blocking work (scrypt), with a bounded queue.
///
/// Event loops must never run scrypt; they hand it here. When every thread is busy and the queue
/// is full, new work is refused at once with `WorkerPoolError.busy` instead of waiting without
/// bound: under a login flood the server answers "server busy" and stays responsive.
public final class WorkerPool: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [() -> Void] = []
    private var queueHead = 0
    private var running = true
    private var threads: [Thread] = []
    private var _completed = 0
    private var _rejected = 0
    private var _active = 0

    /// Work items that may wait beyond the ones being run.
    public let queueLimit: Int
    /// Number of threads.
    public let threadCount: Int

    /// - Parameters:
    ///   - threads: how many jobs run at once (near the number of cores).
    ///   - queueLimit: how many more may wait.
    ///   - niceness: scheduling niceness of the pool's threads (Linux). Positive values let the
    ///     event loops preempt hashing, so a login storm slows logins, not the chat.
    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount, queueLimit: Int = 64, niceness: Int32 = 0) {
        self.threadCount = max(1, threads)
        self.queueLimit = max(0, queueLimit)
        for i in 0..<threadCount {
            let thread = Thread { [weak self] in
                #if os(Linux)
                // On Linux the nice value is per thread, and who = 0 means the calling thread.
                if niceness != 0 { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness) }
                #endif
                self?.workLoop()
            }
            thread.name = "securechat-hash-\(i)"
            thread.stackSize = 1 << 20
            self.threads.append(thread)
            thread.start()
        }
    }

    deinit { shutdown() }

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

    /// Jobs finished, refused, and waiting now.
    public var statistics: (completed: Int, rejected: Int, waiting: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (_completed, _rejected, queue.count - queueHead)
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
            queueHead += 1
            if queueHead > 1024 && queueHead * 2 > queue.count {
                queue.removeFirst(queueHead)
                queueHead = 0
            }
            _active += 1
            condition.unlock()
            job()
            condition.lock()
            _active -= 1
            _completed += 1
            condition.unlock()
        }
    }
}

/// Why the pool did not run a job.
public enum WorkerPoolError: Error, Sendable, Equatable, CustomStringConvertible {
    case busy
    public var description: String { "server busy: too many logins are being checked; try again in a few seconds" }
}

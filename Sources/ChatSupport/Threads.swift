import CChatSystem
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#endif

/// A mutex (pthread), for code that locks and unlocks around blocking work. The server links
/// FoundationEssentials only, which has no NSLock, NSCondition or Thread.
// @unchecked Sendable: the pthread mutex is the synchronisation; it is only used through its pointer.
public final class Lock: @unchecked Sendable {
    fileprivate let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    public init() {
        let status = pthread_mutex_init(mutex, nil)
        precondition(status == 0, "pthread_mutex_init failed: \(status)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A count that several threads add to (statistics, never on a hot path).
// @unchecked Sendable: `value` is only touched with `lock` held.
public final class SharedCounter: @unchecked Sendable {
    private let lock = Lock()
    private var count = 0

    public init() {}

    public func add(_ n: Int = 1) { lock.withLock { count += n } }
    public var value: Int { lock.withLock { count } }
}

/// A condition variable with its own mutex (as NSCondition): `lock`, test, `wait`, `unlock`.
// @unchecked Sendable: as `Lock`; the condition is only waited on with the mutex held.
public final class Condition: @unchecked Sendable {
    private let mutex = Lock()
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        #if canImport(Glibc)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        #endif
        let status = pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
        precondition(status == 0, "pthread_cond_init failed: \(status)")
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
    }

    public func lock() { mutex.lock() }
    public func unlock() { mutex.unlock() }
    public func signal() { pthread_cond_signal(condition) }
    public func broadcast() { pthread_cond_broadcast(condition) }

    /// Waits (the lock held) until signalled.
    public func wait() { pthread_cond_wait(condition, mutex.mutex) }

    /// Waits (the lock held) until signalled or until `deadline`; false when the time is up.
    @discardableResult
    public func wait(until deadline: Deadline) -> Bool {
        #if canImport(Glibc)
        let nanoseconds = deadline.nanoseconds
        var time = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        return pthread_cond_timedwait(condition, mutex.mutex, &time) == 0
        #else
        let left = max(0, deadline.nanoseconds - Deadline.now().nanoseconds)
        var time = timespec(tv_sec: Int(left / 1_000_000_000), tv_nsec: Int(left % 1_000_000_000))
        return pthread_cond_timedwait_relative_np(condition, mutex.mutex, &time) == 0
        #endif
    }
}

/// A point on the monotonic clock (not moved by changes of the system's time).
public struct Deadline: Sendable, Comparable {
    public let nanoseconds: Int64

    public static func now() -> Deadline {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Deadline(nanoseconds: Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec))
    }

    /// `seconds` from now.
    public static func after(seconds: Double) -> Deadline {
        Deadline(nanoseconds: now().nanoseconds + Int64(seconds * 1e9))
    }

    public static func < (a: Deadline, b: Deadline) -> Bool { a.nanoseconds < b.nanoseconds }
}

/// Threads of our own (pthreads), named as `top -H` and debuggers show them.
public enum Threads {
    /// Starts a thread that runs `body`, then ends. The name is cut to Linux's 15 bytes.
    public static func start(name: String, stackSize: Int? = nil, _ body: @escaping @Sendable () -> Void) {
        final class Box {
            let name: String
            let body: @Sendable () -> Void
            init(name: String, body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
        }
        let box = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        if let stackSize { pthread_attr_setstacksize(&attributes, stackSize) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        #if canImport(Glibc)
        var thread = pthread_t()
        #else
        var thread: pthread_t?
        #endif
        let status = pthread_create(&thread, &attributes, { pointer in
            let box = Unmanaged<Box>.fromOpaque(pointer!).takeRetainedValue()
            _ = chat_name_this_thread(String(decoding: box.name.utf8.prefix(15), as: UTF8.self))
            box.body()
            return nil
        }, box)
        pthread_attr_destroy(&attributes)
        precondition(status == 0, "pthread_create failed: \(status)")
    }

    /// Sleeps the calling thread.
    public static func sleep(seconds: Double) {
        var time = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
        var left = timespec()
        while nanosleep(&time, &left) == -1 && errno == EINTR { time = left }
    }
}

/// Numbers as text, as `String(format:)` would write them (which FoundationEssentials lacks).
public enum Digits {
    /// `value` with `places` digits after the point, rounded: fixed(2.345, 1) == "2.3" (for
    /// logs: an exact tie rounds away from zero, where printf rounds it to even).
    public static func fixed(_ value: Double, _ places: Int) -> String {
        guard value.isFinite else { return "\(value)" }
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = Int64(scaled / scale)
        let fraction = Int64(scaled - Double(whole) * scale)
        let sign = value < 0 && scaled > 0 ? "-" : ""
        guard places > 0 else { return sign + String(whole) }
        return sign + String(whole) + "." + padded(Int(fraction), places)
    }

    /// `value` with leading zeros to `width` digits: padded(7, 2) == "07".
    public static func padded(_ value: Int, _ width: Int) -> String {
        let text = String(abs(value))
        return (value < 0 ? "-" : "") + String(repeating: "0", count: max(0, width - text.count)) + text
    }
}

import Foundation

/// Waits until `condition` holds, checking every 10 ms; returns false if it still does not after
/// `timeout` seconds.
///
/// For events that no callback reports (a counter kept by another thread, a job picked up by a
/// pool thread). The timeout only bounds a broken build: a test never depends on how long the
/// wait takes, so a slow machine makes it slower, never red.
public func waitUntil(timeout: Double = 60, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        if Date() > deadline { return false }
        try? await Task.sleep(nanoseconds: 10_000_000)
    }
    return true
}

/// The same for a condition that must itself wait (a database query), checked every 50 ms.
public func waitUntil(timeout: Double = 60, _ condition: () async -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while !(await condition()) {
        if Date() > deadline { return false }
        try? await Task.sleep(nanoseconds: 50_000_000)
    }
    return true
}

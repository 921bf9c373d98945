import NIOCore

/// Keeps time for every connection of one event loop with one timer: each `interval` it asks
/// every `ConnectionGuard` on the loop whether a deadline has passed (registration, PING, PONG,
/// a send queue that stays full).
///
/// One timer per connection cost each idle connection a scheduled task, its promise and its
/// closure, about 250 bytes (BENCHMARKS.md, "Memory: where it goes"); InspIRCd and ngIRCd also
/// check their clients once a second. A deadline is noticed at most `interval` late. The timer
/// runs only while the loop has connections.
///
/// Confined to its loop; guards register from `handlerAdded` and leave when their channel
/// closes.
// @unchecked Sendable: no lock, because it is confined to `eventLoop` (guards call `add` and
// `remove` on their own loop, which is this one; `tick` is executed there).
final class ConnectionClock: @unchecked Sendable {
    let eventLoop: EventLoop
    let interval: TimeAmount
    /// What the guards on this loop enforce: kept once here, not in every connection.
    let settings: ConnectionGuard.Settings
    private var guards: [ConnectionGuard] = []
    private var timer: Scheduled<Void>?

    /// `interval`: one second, or a quarter of the shortest timeout in `settings` when that is
    /// shorter (tests, unusual configurations).
    init(eventLoop: EventLoop, settings: ConnectionGuard.Settings, interval: TimeAmount? = nil) {
        self.eventLoop = eventLoop
        self.settings = settings
        self.interval = interval ?? .nanoseconds(Int64(max(0.01, min(1, settings.shortestTimeoutSeconds / 4)) * 1e9))
        precondition(self.interval.nanoseconds > 0, "the clock's interval must be positive")
    }

    /// How many connections the clock watches.
    var count: Int { guards.count }
    /// Whether its timer is set (only while it watches connections).
    var isTicking: Bool { timer != nil }

    func add(_ guard_: ConnectionGuard) {
        eventLoop.preconditionInEventLoop()
        guard guard_.clockIndex < 0 else { return }
        guard_.clockIndex = guards.count
        guards.append(guard_)
        if timer == nil { schedule() }
    }

    func remove(_ guard_: ConnectionGuard) {
        let index = guard_.clockIndex
        guard index >= 0, index < guards.count, guards[index] === guard_ else { return }
        guard_.clockIndex = -1
        let last = guards.removeLast()
        if index < guards.count {
            guards[index] = last
            last.clockIndex = index
        }
        if guards.isEmpty {
            timer?.cancel()
            timer = nil
        }
    }

    private func schedule() {
        timer = eventLoop.assumeIsolated().scheduleTask(in: interval) { self.tick() }
    }

    private func tick() {
        timer = nil
        let now = eventLoop.now
        // A guard's tick can close its connection, which removes it (and moves another into its
        // place): walk a copy, skipping those already gone.
        for guard_ in guards where guard_.clockIndex >= 0 {
            guard_.tick(now)
        }
        if !guards.isEmpty && timer == nil { schedule() }
    }
}

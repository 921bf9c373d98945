import NIOCore

/// Flushes every session on one loop that relayed messages were written to: at the end of the
/// loop turn, or under load at most once per `interval`.
///
/// A message to a room is written to each recipient at once but flushed later, so that messages
/// that reach one recipient close together leave in one TLS record and one system call instead of
/// one each. A write's system call on loopback costs far more than the write itself (the whole TCP
/// path runs in it), so this is where CPU per delivered message is won (BENCHMARKS.md, "Write
/// coalescing"). When the previous flush was at least `interval` ago the flush runs at the end
/// of this turn, so a quiet server adds no delay; when messages come faster, the next flush waits
/// until `interval` after the previous one, and a message waits at most `interval`.
///
/// Confined to its loop; sessions find their loop's flusher once, at creation.
// @unchecked Sendable: no lock, because it is confined to `eventLoop` (sessions call `mark` on
// their own loop, which is this one; `run` is executed there).
final class LoopFlusher: @unchecked Sendable {
    let eventLoop: EventLoop
    private let interval: TimeAmount
    private var pending: [ClientConnection] = []
    private var scheduled = false
    private var lastFlush: NIODeadline?

    init(eventLoop: EventLoop, interval: TimeAmount) {
        self.eventLoop = eventLoop
        self.interval = interval
    }

    /// Remembers `session` for the next flush (call on the loop).
    func mark(_ session: ClientConnection) {
        pending.append(session)
        guard !scheduled else { return }
        scheduled = true
        guard let last = lastFlush, interval.nanoseconds > 0, eventLoop.now < last + interval else {
            eventLoop.execute { self.run() }
            return
        }
        eventLoop.assumeIsolated().scheduleTask(deadline: last + interval) { self.run() }
    }

    private func run() {
        scheduled = false
        lastFlush = eventLoop.now
        let sessions = pending
        pending.removeAll(keepingCapacity: true)
        for session in sessions { session.flushNow() }
    }
}

import NIOCore

/// Flushes, once per event-loop turn, every session on one loop that was written to.
///
/// A message to a room is written to each recipient at once but flushed later in the same loop
/// turn, so that several messages for one recipient leave in one TLS record and one system call
/// instead of one each. Confined to its loop; sessions find their loop's flusher once, at creation.
// @unchecked Sendable: no lock, because it is confined to `eventLoop` (sessions call `mark` on
// their own loop, which is this one; `run` is executed there).
final class LoopFlusher: @unchecked Sendable {
    let eventLoop: EventLoop
    private var pending: [ClientConnection] = []
    private var scheduled = false

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Remembers `session` for the flush at the end of this turn (call on the loop).
    func mark(_ session: ClientConnection) {
        pending.append(session)
        if !scheduled {
            scheduled = true
            eventLoop.execute { self.run() }
        }
    }

    private func run() {
        scheduled = false
        let sessions = pending
        pending.removeAll(keepingCapacity: true)
        for session in sessions { session.flushNow() }
    }
}

import ChatHistory
import NIOCore

/// Messages between the nodes, through PostgreSQL: stored, then announced with NOTIFY.
///
/// Every node listens on `securechat_events` with a connection of its own and publishes with
/// another. `securechat_publish` stores each event with the next number and announces it in
/// the same transaction, one transaction at a time, so the numbers are the order in which every
/// node receives them. A node that delivers events only as they come back from the database (its
/// own included) shows every room in the same order as every other node; the price is one round
/// trip to the database before a message is shown.
///
/// A node that loses its listening connection connects again and first reads the events it
/// missed (number above the last it delivered), so nothing committed meanwhile is lost, and
/// nothing is delivered twice. Events are kept for `retentionMinutes`.
///
/// A payload is at most 7,950 bytes (NOTIFY's limit is 8,000, with the number in front).
public final class ClusterBus: Sendable {
    public static let channel = "securechat_events"
    public static let maximumPayload = 7_950
    /// How long events are kept for nodes that catch up.
    public static let retentionMinutes = 10

    public let settings: ClusterSettings
    private let eventLoop: EventLoop
    private let onEvent: @Sendable (String) -> Void
    private let report: @Sendable (String) -> Void
    private let onConnection: @Sendable (Bool) -> Void
    private let onState: (@Sendable (String) -> Void)?
    private let state: NIOLoopBoundBox<State>

    private struct State {
        var listener: PostgresConnection?
        var publisher: PostgresConnection?
        var connecting: EventLoopFuture<PostgresConnection>?
        var stopped = false
        var listening = false
        /// The number of the last event delivered; nil before the first connection.
        var last: Int64?
        /// While the missed events are read, new ones wait here.
        var waiting: [(Int64, String)]?
        /// Events to publish, waiting for the call in flight to finish.
        var outbox: [Outgoing] = []
        var sending = false
        /// Events in the call in flight.
        var inFlight = 0
        /// Committed events of this node that have not come back through the listener yet, by
        /// number, oldest first.
        var returning: [(number: Int64, promise: EventLoopPromise<Void>)] = []
        var returned = 0
    }

    /// An event waiting to be published, with the history row or the invitation stored (or
    /// deleted) in the same transaction.
    private struct Outgoing {
        var payload: String
        var message: StoredMessage?
        var invitation: Invitation?
        var promise: EventLoopPromise<Void>
    }

    /// An operator's invitation of `nick` to `room` (both folded) that an event stores or uses up.
    public enum Invitation: Sendable, Equatable {
        case given(room: String, nick: String, by: String)
        case used(room: String, nick: String)
    }

    /// The most events one call carries.
    static let batchLimit = 1000

    private init(settings: ClusterSettings, eventLoop: EventLoop, onEvent: @escaping @Sendable (String) -> Void, report: @escaping @Sendable (String) -> Void,
                 onConnection: @escaping @Sendable (Bool) -> Void, onState: (@Sendable (String) -> Void)?) {
        self.settings = settings
        self.onConnection = onConnection
        self.onState = onState
        self.eventLoop = eventLoop
        self.onEvent = onEvent
        self.report = report
        self.state = NIOLoopBoundBox.makeBoxSendingValue(State(), eventLoop: eventLoop)
    }

    /// Connects both connections and starts listening. Blocking; `onEvent` runs on `eventLoop`,
    /// one payload at a time, in the database's order; `onConnection` is told when the listening
    /// connection is lost (false) and when it is back and caught up (true); `onState` hears the
    /// shared history's changes (`PostgresHistory.changed`).
    public static func start(_ settings: ClusterSettings, on eventLoop: EventLoop,
                             report: @escaping @Sendable (String) -> Void,
                             onConnection: @escaping @Sendable (Bool) -> Void = { _ in },
                             onState: (@Sendable (String) -> Void)? = nil,
                             onEvent: @escaping @Sendable (String) -> Void) throws -> ClusterBus {
        let bus = ClusterBus(settings: settings, eventLoop: eventLoop, onEvent: onEvent, report: report, onConnection: onConnection, onState: onState)
        try eventLoop.flatSubmit { bus.listen() }.wait()
        _ = try eventLoop.flatSubmit { bus.publisher() }.wait()
        return bus
    }

    public static func fits(_ payload: String) -> Bool { payload.utf8.count <= maximumPayload }

    /// Whether the listening connection is up (events are arriving).
    public var isListening: Bool {
        get throws { try eventLoop.submit { self.state.value.listening }.wait() }
    }

    /// On the loop: connects the listener, LISTENs, reads what was missed since the last event
    /// delivered, then delivers as events come. When the connection is lost, reports and tries
    /// again every second until `stop`.
    private func listen() -> EventLoopFuture<Void> {
        PostgresConnection.connect(settings.postgres.purpose("events-listen"), on: eventLoop) { channel, payload in
            if channel == Self.channel { self.arrived(payload) } else if channel == PostgresHistory.stateChannel { self.onState?(payload) }
        }.flatMap { connection in
            self.state.value.waiting = []
            // The shared history's changes come on the same connection (`onState`): one
            // listening connection per node, one wake-up per event in PostgreSQL.
            let listening = self.onState == nil ? connection.query("LISTEN \(Self.channel)")
                : connection.query("LISTEN \(Self.channel)").flatMap { _ in connection.query("LISTEN \(PostgresHistory.stateChannel)") }
            return listening.flatMap { _ -> EventLoopFuture<PostgresResult> in
                if let last = self.state.value.last {
                    return connection.query("SELECT seq, payload FROM securechat_events WHERE seq > $1 ORDER BY seq", ["\(last)"])
                }
                return connection.query("SELECT coalesce(max(seq), 0) AS seq, NULL AS payload FROM securechat_events")
            }.map { missed in
                if self.state.value.last == nil {
                    self.state.value.last = Int64(missed.rows.first?[0] ?? "0") ?? 0
                } else {
                    for row in missed.rows {
                        if let number = row[0].flatMap({ Int64($0) }), let payload = row[1] { self.deliver(number, payload) }
                    }
                }
                let waiting = self.state.value.waiting ?? []
                self.state.value.waiting = nil
                for (number, payload) in waiting { self.deliver(number, payload) }
                return connection
            }.flatMapError { error in
                self.state.value.waiting = nil
                _ = connection.close()
                return self.eventLoop.makeFailedFuture(error)
            }
        }.map { connection in
            if self.state.value.stopped {
                _ = connection.close()
                return
            }
            self.state.value.listener = connection
            self.state.value.listening = true
            connection.channel.closeFuture.whenComplete { _ in
                guard !self.state.value.stopped else { return }
                self.state.value.listening = false
                self.report("cluster: lost the event connection to PostgreSQL; events from other nodes wait in the database until it is back")
                self.onConnection(false)
                self.retryListening()
            }
        }
    }

    /// On the loop: a notification, `NUMBER PAYLOAD`.
    private func arrived(_ text: String) {
        guard let space = text.firstIndex(of: " "), let number = Int64(text[..<space]) else {
            report("cluster: ignored a notification without an event number")
            return
        }
        let payload = String(text[text.index(after: space)...])
        if state.value.waiting != nil {
            state.value.waiting!.append((number, payload))
        } else {
            deliver(number, payload)
        }
    }

    /// On the loop: delivers an event once, in number order.
    private func deliver(_ number: Int64, _ payload: String) {
        if let last = state.value.last, number <= last { return }
        state.value.last = number
        onEvent(payload)
        settleReturning()
    }

    /// On the loop: this node's events up to the last delivered one are back (or were passed,
    /// when a catch-up found them gone): their publishers hear it.
    private func settleReturning() {
        guard let last = state.value.last else { return }
        var done = state.value.returned
        let returning = state.value.returning
        while done < returning.count && returning[done].number <= last {
            returning[done].promise.succeed(())
            done += 1
        }
        if done > 1024 || done == returning.count {
            state.value.returning.removeFirst(done)
            done = 0
        }
        state.value.returned = done
    }

    private func retryListening() {
        eventLoop.scheduleTask(in: .seconds(1)) {
            guard !self.state.value.stopped else { return }
            self.listen().whenComplete { result in
                switch result {
                case .success:
                    self.report("cluster: the event connection to PostgreSQL is back")
                    self.onConnection(true)
                case .failure: self.retryListening()
                }
            }
        }
    }

    /// On the loop: the publishing connection, made again after a lost one.
    private func publisher() -> EventLoopFuture<PostgresConnection> {
        if let connection = state.value.publisher, connection.isOpen { return eventLoop.makeSucceededFuture(connection) }
        if let pending = state.value.connecting { return pending }
        let fresh = PostgresConnection.connect(settings.postgres.purpose("events-publish"), on: eventLoop)
        state.value.connecting = fresh
        fresh.whenComplete { result in
            self.state.value.connecting = nil
            if case let .success(connection) = result { self.state.value.publisher = connection }
        }
        return fresh
    }

    /// Sends `payload` to every node (this one included), and stores `message` in the shared
    /// history in the same transaction: a message is in the history exactly when it was sent.
    /// The future fails when the database did not take it: the caller tells the sender. It
    /// succeeds once the event has come back to this node through the listener, so that a
    /// caller that limits what it has on its way (a client's window) limits the events that
    /// wait in PostgreSQL's notification queue too, not only those not yet committed.
    ///
    /// One call is in flight at a time; what comes meanwhile goes in the next call, all in one
    /// transaction (group commit): alone, a message costs one round trip; under load, a commit
    /// and its wait for the disk are shared by up to `batchLimit` messages.
    ///
    /// An event that stores or uses up an invitation goes alone, in a call of its own.
    public func publish(_ payload: String, storing message: StoredMessage? = nil, invitation: Invitation? = nil) -> EventLoopFuture<Void> {
        guard Self.fits(payload) else {
            return eventLoop.makeFailedFuture(PostgresError.protocolViolation("an event of \(payload.utf8.count) bytes is over NOTIFY's limit"))
        }
        return eventLoop.flatSubmit {
            let promise = self.eventLoop.makePromise(of: Void.self)
            self.state.value.outbox.append(Outgoing(payload: payload, message: message, invitation: invitation, promise: promise))
            if !self.state.value.sending { self.sendOutbox() }
            return promise.futureResult
        }
    }

    /// On the loop: sends what waits in the outbox in one call.
    private func sendOutbox() {
        guard !state.value.outbox.isEmpty else { return }
        let outbox = state.value.outbox
        let plain = outbox.prefix(Self.batchLimit).prefix { $0.invitation == nil }
        let batch = plain.isEmpty ? [outbox[0]] : Array(plain)
        state.value.outbox.removeFirst(batch.count)
        state.value.sending = true
        state.value.inFlight = batch.count
        publisher().flatMap { connection -> EventLoopFuture<PostgresResult> in
            switch batch[0].invitation {
            case let .given(room, nick, by)?:
                return connection.query("SELECT securechat_publish_invitation($1, $2, $3, $4)", [batch[0].payload, room, nick, by])
            case let .used(room, nick)?:
                return connection.query("SELECT securechat_publish_invitation($1, $2, $3, NULL)", [batch[0].payload, room, nick])
            case nil:
                break
            }
            if batch.count == 1, let m = batch[0].message {
                return connection.query("SELECT securechat_publish_one($1, $2, $3, $4, $5, $6, $7)",
                                        [batch[0].payload, m.msgid, "\(m.time)", m.target, m.sender, m.kind, m.line])
            }
            if batch.contains(where: { $0.message != nil }) {
                let m = batch.map(\.message)
                return connection.query(
                    "SELECT securechat_publish_batch($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])",
                    [Self.arrayLiteral(batch.map(\.payload)), Self.arrayLiteral(m.map { $0?.msgid }), Self.arrayLiteral(m.map { $0.map { "\($0.time)" } }),
                     Self.arrayLiteral(m.map { $0?.target }), Self.arrayLiteral(m.map { $0?.sender }), Self.arrayLiteral(m.map { $0?.kind }),
                     Self.arrayLiteral(m.map { $0?.line })])
            }
            if batch.count == 1 { return connection.query("SELECT securechat_publish($1)", [batch[0].payload]) }
            return connection.query("SELECT securechat_publish_many($1::text[])", [Self.arrayLiteral(batch.map(\.payload))])
        }.whenComplete { result in
            self.state.value.sending = false
            self.state.value.inFlight = 0
            switch result {
            case let .success(answer):
                // The call returns the last event's number; a batch's numbers are consecutive
                // (they are taken under the publishing lock).
                guard let last = answer.rows.first?[0].flatMap({ Int64($0) }) else {
                    for outgoing in batch { outgoing.promise.succeed(()) }
                    break
                }
                for (i, outgoing) in batch.enumerated() {
                    self.state.value.returning.append((last - Int64(batch.count - 1 - i), outgoing.promise))
                }
                self.settleReturning()
            case let .failure(error):
                for outgoing in batch { outgoing.promise.fail(error) }
            }
            self.sendOutbox()
        }
    }

    /// Events published and not yet back through the listener (waiting to be sent, in the call
    /// in flight, or committed and on their way). Blocking.
    public var onTheirWay: Int {
        get throws {
            try eventLoop.submit {
                self.state.value.outbox.count + (self.state.value.returning.count - self.state.value.returned)
                    + self.state.value.inFlight
            }.wait()
        }
    }

    /// The invitations given and not used yet, as (room, nick), folded. Blocking. A node reads
    /// them once it listens: each one is here or its event is still to come.
    public func invitations() throws -> [(room: String, nick: String)] {
        let result = try eventLoop.flatSubmit {
            self.publisher().flatMap { $0.query("SELECT room, nick FROM securechat_invitations") }
        }.wait()
        return result.rows.compactMap { row in row[0].flatMap { room in row[1].map { (room, $0) } } }
    }

    /// PostgreSQL's text form of an array: every element quoted, `"` and `\` escaped; nil is NULL.
    static func arrayLiteral(_ items: [String?]) -> String {
        var out = "{"
        for (i, item) in items.enumerated() {
            if i > 0 { out += "," }
            guard let item else {
                out += "NULL"
                continue
            }
            out += "\""
            for character in item.unicodeScalars {
                if character == "\"" || character == "\\" { out += "\\" }
                out.unicodeScalars.append(character)
            }
            out += "\""
        }
        return out + "}"
    }

    /// Stops listening and closes both connections. Blocking.
    public func stop() {
        let connections = try? eventLoop.submit { () -> [EventLoopFuture<PostgresConnection>] in
            self.state.value.stopped = true
            for outgoing in self.state.value.outbox { outgoing.promise.fail(PostgresError.connectionClosed) }
            self.state.value.outbox = []
            for waiting in self.state.value.returning.dropFirst(self.state.value.returned) { waiting.promise.fail(PostgresError.connectionClosed) }
            self.state.value.returning = []
            self.state.value.returned = 0
            var list: [EventLoopFuture<PostgresConnection>] = []
            if let listener = self.state.value.listener { list.append(self.eventLoop.makeSucceededFuture(listener)) }
            if let publisher = self.state.value.publisher { list.append(self.eventLoop.makeSucceededFuture(publisher)) }
            return list
        }.wait()
        for future in connections ?? [] {
            if let connection = try? future.wait() { _ = try? connection.close().wait() }
        }
    }
}

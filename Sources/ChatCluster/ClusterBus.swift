import NIOCore

/// Messages between the nodes, through PostgreSQL's LISTEN/NOTIFY on one channel.
///
/// Every node listens on `securechat_events` with a connection of its own and publishes with
/// another. PostgreSQL hands notifications to every listener in the order their transactions
/// committed, the same order on every node: a node that delivers events only as they come back
/// from the database (its own included) shows every room in the same order as every other
/// node. The price is one round trip to the database before a message is shown.
///
/// A payload is at most 7,999 bytes (PostgreSQL's limit is 8,000); callers check `fits`.
public final class ClusterBus: Sendable {
    public static let channel = "securechat_events"
    public static let maximumPayload = 7_999

    public let settings: ClusterSettings
    private let eventLoop: EventLoop
    private let onEvent: @Sendable (String) -> Void
    private let report: @Sendable (String) -> Void
    private let state: NIOLoopBoundBox<State>

    private struct State {
        var listener: PostgresConnection?
        var publisher: PostgresConnection?
        var connecting: EventLoopFuture<PostgresConnection>?
        var stopped = false
        var listening = false
    }

    private init(settings: ClusterSettings, eventLoop: EventLoop, onEvent: @escaping @Sendable (String) -> Void, report: @escaping @Sendable (String) -> Void) {
        self.settings = settings
        self.eventLoop = eventLoop
        self.onEvent = onEvent
        self.report = report
        self.state = NIOLoopBoundBox.makeBoxSendingValue(State(), eventLoop: eventLoop)
    }

    /// Connects both connections and starts listening. Blocking; `onEvent` runs on `eventLoop`,
    /// one payload at a time, in the database's order.
    public static func start(_ settings: ClusterSettings, on eventLoop: EventLoop,
                             report: @escaping @Sendable (String) -> Void,
                             onEvent: @escaping @Sendable (String) -> Void) throws -> ClusterBus {
        let bus = ClusterBus(settings: settings, eventLoop: eventLoop, onEvent: onEvent, report: report)
        try eventLoop.flatSubmit { bus.listen() }.wait()
        _ = try eventLoop.flatSubmit { bus.publisher() }.wait()
        return bus
    }

    public static func fits(_ payload: String) -> Bool { payload.utf8.count <= maximumPayload }

    /// Whether the listening connection is up (events are arriving).
    public var isListening: Bool {
        get throws { try eventLoop.submit { self.state.value.listening }.wait() }
    }

    /// On the loop: connects the listener and LISTENs; when it is lost, reports and tries again
    /// every second until `stop`.
    private func listen() -> EventLoopFuture<Void> {
        let onEvent = self.onEvent
        return PostgresConnection.connect(settings.postgres, on: eventLoop) { channel, payload in
            if channel == Self.channel { onEvent(payload) }
        }.flatMap { connection in
            connection.query("LISTEN \(Self.channel)").map { _ in connection }
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
                self.report("cluster: lost the event connection to PostgreSQL; messages from other nodes wait until it is back")
                self.retryListening()
            }
        }
    }

    private func retryListening() {
        eventLoop.scheduleTask(in: .seconds(1)) {
            guard !self.state.value.stopped else { return }
            self.listen().whenComplete { result in
                switch result {
                case .success: self.report("cluster: the event connection to PostgreSQL is back")
                case .failure: self.retryListening()
                }
            }
        }
    }

    /// On the loop: the publishing connection, made again after a lost one.
    private func publisher() -> EventLoopFuture<PostgresConnection> {
        if let connection = state.value.publisher, connection.isOpen { return eventLoop.makeSucceededFuture(connection) }
        if let pending = state.value.connecting { return pending }
        let fresh = PostgresConnection.connect(settings.postgres, on: eventLoop)
        state.value.connecting = fresh
        fresh.whenComplete { result in
            self.state.value.connecting = nil
            if case let .success(connection) = result { self.state.value.publisher = connection }
        }
        return fresh
    }

    /// Sends `payload` to every node (this one included). The future fails when the database
    /// did not take it: the caller tells the sender.
    public func publish(_ payload: String) -> EventLoopFuture<Void> {
        guard Self.fits(payload) else {
            return eventLoop.makeFailedFuture(PostgresError.protocolViolation("an event of \(payload.utf8.count) bytes is over NOTIFY's limit"))
        }
        return eventLoop.flatSubmit {
            self.publisher().flatMap { connection in
                connection.query("SELECT pg_notify($1, $2)", [Self.channel, payload]).map { _ in }
            }
        }
    }

    /// Stops listening and closes both connections. Blocking.
    public func stop() {
        let connections = try? eventLoop.submit { () -> [EventLoopFuture<PostgresConnection>] in
            self.state.value.stopped = true
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

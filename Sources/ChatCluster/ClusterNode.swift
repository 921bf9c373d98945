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
import NIOCore

/// This node's row in `securechat_nodes`: written at start, its `seen` time renewed every
/// heartbeat, deleted at a clean stop. A second node started with the same name while the
/// first is alive is refused at start (two nodes under one name would take each other's
/// sessions for their own): the live one holds an advisory lock on the name for as long as its
/// heartbeat connection lives.
///
/// Operators see the nodes and how long ago each was heard from with
/// `SELECT name, started, now() - seen AS silent FROM securechat_nodes`, and who is logged in
/// where with `SELECT * FROM securechat_sessions` (written with each heartbeat: up to
/// `heartbeatSeconds` late).
public final class ClusterNode: Sendable {
    public let settings: ClusterSettings
    /// The heartbeat's connection, made again after a lost one.
    private let connection: NIOLoopBoundBox<PostgresConnection?>
    private let heartbeat: RepeatedTask
    private let eventLoop: EventLoop
    private let sessions: NIOLoopBoundBox<Sessions>

    /// This node's logged-in accounts (folded) with their session's token, and the logins
    /// (true) and logouts (false) since the last heartbeat.
    struct Sessions {
        var current: [String: String] = [:]
        var changes: [String: Bool] = [:]
    }

    public enum Problem: Error, Sendable, CustomStringConvertible {
        case nameInUse(node: String, silentSeconds: Double?)
        public var description: String {
            switch self {
            case let .nameInUse(node, silent):
                let heard = silent.map { " (heard from \(Digits.fixed($0, 1)) s ago)" } ?? ""
                return "another node named '\(node)' is running\(heard) — give each node its own \"cluster.node\", or stop the other one first"
            }
        }
    }

    private init(settings: ClusterSettings, connection: NIOLoopBoundBox<PostgresConnection?>, heartbeat: RepeatedTask, eventLoop: EventLoop,
                 sessions: NIOLoopBoundBox<Sessions>) {
        self.settings = settings
        self.connection = connection
        self.heartbeat = heartbeat
        self.eventLoop = eventLoop
        self.sessions = sessions
    }

    /// The session `token` of `account` (folded) logged in here, or out: written to
    /// `securechat_sessions` with the next heartbeat. The logout of a session that a newer one
    /// of the account replaced changes nothing.
    public func session(_ account: String, token: String, loggedIn: Bool) {
        let sessions = self.sessions
        eventLoop.execute {
            if loggedIn {
                sessions.value.current[account] = token
            } else {
                guard sessions.value.current[account] == token else { return }
                sessions.value.current[account] = nil
            }
            sessions.value.changes[account] = loggedIn
        }
    }

    /// Connects, migrates the schema, registers the node and starts its heartbeat. Blocking.
    ///
    /// - Parameter report: receives one line when the heartbeat fails and one when it works again.
    static let nameLockKey = 7_283_002

    /// - Parameter onLost: called (on `eventLoop`) after each heartbeat with the nodes silent for
    ///   longer than the heartbeat timeout; again on later heartbeats while they stay silent.
    public static func start(_ settings: ClusterSettings, on eventLoop: EventLoop, report: @escaping @Sendable (String) -> Void,
                             onLost: @escaping @Sendable ([String]) -> Void = { _ in }) throws -> ClusterNode {
        let connection = try PostgresConnection.connect(settings.postgres.purpose("heartbeat"), on: eventLoop).wait()
        do {
            try ClusterSchema.migrate(connection)
            // A live node holds a lock on its name for as long as its connection lives: a node
            // that died (even by SIGKILL) lost it with its connection, so a restart is not refused.
            let got = try connection.run("SELECT pg_try_advisory_lock(\(nameLockKey), hashtext($1))::text AS got", [settings.node])
            guard got.value(0, "got") == "true" else {
                let found = try connection.run("SELECT extract(epoch FROM now() - seen)::float8 AS silent FROM securechat_nodes WHERE name = $1", [settings.node])
                throw Problem.nameInUse(node: settings.node, silentSeconds: found.value(0, "silent").flatMap(Double.init))
            }
            _ = try connection.run("""
                INSERT INTO securechat_nodes (name, started, seen) VALUES ($1, now(), now())
                ON CONFLICT (name) DO UPDATE SET started = now(), seen = now()
                """, [settings.node])
            // Sessions a previous run of this node left behind (it was killed) are gone.
            _ = try connection.run("DELETE FROM securechat_sessions WHERE node = $1", [settings.node])
        } catch {
            _ = connection.close()
            throw error
        }
        return try eventLoop.submit { startHeartbeat(settings, connection: connection, on: eventLoop, report: report, onLost: onLost) }.wait()
    }

    /// On `eventLoop`: renews the node's row every heartbeat, connecting again after a lost connection.
    private static func startHeartbeat(_ settings: ClusterSettings, connection: PostgresConnection, on eventLoop: EventLoop,
                                       report: @escaping @Sendable (String) -> Void, onLost: @escaping @Sendable ([String]) -> Void) -> ClusterNode {
        let failing = NIOLoopBoundBox(false, eventLoop: eventLoop)
        let beats = NIOLoopBoundBox(0, eventLoop: eventLoop)
        let healthySince = NIOLoopBoundBox(NIODeadline.now(), eventLoop: eventLoop)
        let timeout = TimeAmount.milliseconds(Int64(settings.heartbeatTimeoutSeconds * 1000))
        let box = NIOLoopBoundBox<PostgresConnection?>(connection, eventLoop: eventLoop)
        let sessions = NIOLoopBoundBox(Sessions(), eventLoop: eventLoop)
        let interval = TimeAmount.milliseconds(Int64(settings.heartbeatSeconds * 1000))
        let task = eventLoop.scheduleRepeatedAsyncTask(initialDelay: interval, delay: interval) { _ in
            let current: EventLoopFuture<PostgresConnection>
            if let open = box.value, open.isOpen {
                current = eventLoop.makeSucceededFuture(open)
            } else {
                current = PostgresConnection.connect(settings.postgres.purpose("heartbeat"), on: eventLoop).flatMap { fresh in
                    fresh.query("SELECT pg_try_advisory_lock(\(nameLockKey), hashtext($1))::text AS got", [settings.node]).flatMapThrowing { got in
                        guard got.value(0, "got") == "true" else {
                            _ = fresh.close()
                            throw Problem.nameInUse(node: settings.node, silentSeconds: nil)
                        }
                        box.value = fresh
                        return fresh
                    }
                }
            }
            return current.flatMap { connection in
                connection.query("""
                    INSERT INTO securechat_nodes (name, started, seen) VALUES ($1, now(), now())
                    ON CONFLICT (name) DO UPDATE SET seen = now()
                    """, [settings.node]).flatMap { _ in
                    writeSessions(sessions, node: settings.node, connection)
                }.flatMap { _ in
                    connection.query("SELECT name FROM securechat_nodes WHERE name <> $1 AND now() - seen > make_interval(secs => $2::float8)",
                                     [settings.node, "\(settings.heartbeatTimeoutSeconds)"])
                }.flatMap { silent -> EventLoopFuture<Void> in
                    let names = silent.rows.compactMap { $0.first ?? nil }
                    // Only a node whose own heartbeats have worked for a whole timeout judges the
                    // others: after the database was away, every node's row is old at first.
                    if !names.isEmpty && NIODeadline.now() - healthySince.value >= timeout {
                        onLost(names)
                        _ = connection.query("DELETE FROM securechat_sessions WHERE node = ANY($1::text[])", [ClusterBus.arrayLiteral(names)])
                    }
                    // About once a minute, events older than the catch-up window go.
                    beats.value += 1
                    guard beats.value % max(1, Int(60 / settings.heartbeatSeconds)) == 0 else { return eventLoop.makeSucceededVoidFuture() }
                    return connection.query("DELETE FROM securechat_events WHERE created < now() - make_interval(mins => \(ClusterBus.retentionMinutes))").map { _ in }
                }
            }
                .map { _ in
                    if failing.value {
                        report("cluster heartbeat works again")
                        healthySince.value = NIODeadline.now()
                    }
                    failing.value = false
                }
                .recover { error in
                    if !failing.value { report("cluster heartbeat failed: \(error)") }
                    failing.value = true
                }
        }
        return ClusterNode(settings: settings, connection: box, heartbeat: task, eventLoop: eventLoop, sessions: sessions)
    }

    /// On the loop: writes the logins and logouts since the last heartbeat (kept for the next
    /// one if the write fails). A logout deletes the account's row only if it is this node's: a
    /// login on another node may have taken it already.
    private static func writeSessions(_ sessions: NIOLoopBoundBox<Sessions>, node: String, _ connection: PostgresConnection) -> EventLoopFuture<Void> {
        let changes = sessions.value.changes
        guard !changes.isEmpty else { return connection.channel.eventLoop.makeSucceededVoidFuture() }
        sessions.value.changes = [:]
        let ins = changes.filter(\.value).map(\.key), outs = changes.filter { !$0.value }.map(\.key)
        return connection.query("""
            INSERT INTO securechat_sessions (account, node, since) SELECT unnest($1::text[]), $2, now()
            ON CONFLICT (account) DO UPDATE SET node = excluded.node, since = excluded.since
            """, [ClusterBus.arrayLiteral(ins), node]).flatMap { _ in
            connection.query("DELETE FROM securechat_sessions WHERE node = $1 AND account = ANY($2::text[])", [node, ClusterBus.arrayLiteral(outs)])
        }.map { _ in }.flatMapErrorThrowing { error in
            // Kept for the next heartbeat, unless a newer change of the same account came meanwhile.
            for (account, present) in changes where sessions.value.changes[account] == nil { sessions.value.changes[account] = present }
            throw error
        }
    }

    /// Stops the heartbeat and removes the node's row (a clean stop is not a death). Blocking.
    public func stop() {
        heartbeat.cancel()
        let box = self.connection
        let connection = try? eventLoop.submit { box.value }.wait()
        guard let connection = connection ?? nil else { return }
        _ = try? connection.query("DELETE FROM securechat_nodes WHERE name = $1", [settings.node]).wait()
        _ = try? connection.query("DELETE FROM securechat_sessions WHERE node = $1", [settings.node]).wait()
        _ = try? connection.close().wait()
    }
}

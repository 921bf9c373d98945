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

/// One connection for blocking callers that take turns: made (and the schema migrated) at the
/// first use, and made again after a connection failed. An error the server reported (a
/// constraint, a bad value) keeps the connection; any other drops it.
// @unchecked Sendable: `connection` is only touched with `lock` held; the rest is immutable.
final class PostgresSlot: @unchecked Sendable {
    let settings: PostgresSettings
    let eventLoop: EventLoop
    private let lock = Lock()
    private var connection: PostgresConnection?

    init(settings: PostgresSettings, eventLoop: EventLoop) {
        self.settings = settings
        self.eventLoop = eventLoop
    }

    /// Runs `body` on the connection, making one if there is none. Blocking.
    func use<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        if connection == nil || connection?.isOpen == false {
            let fresh = try PostgresConnection.connect(settings, on: eventLoop).wait()
            do {
                try ClusterSchema.migrate(fresh)
            } catch {
                _ = fresh.close()
                throw error
            }
            connection = fresh
        }
        let current = connection!
        do {
            return try body(current)
        } catch let error as PostgresError {
            if case .server = error {} else {
                _ = current.close()
                connection = nil
            }
            throw error
        }
    }

    func close() {
        lock.lock()
        defer { lock.unlock() }
        if let connection { _ = connection.close() }
        connection = nil
    }
}

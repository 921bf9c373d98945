import ChatAuth
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
import NIOPosix

/// Accounts and bans in PostgreSQL, for a cluster: every node and every `chat-admin` reads and
/// changes the same ones. The same rules as the users file: a change is exclusive (it locks the
/// state row, so two writers never lose each other's updates), all or nothing (one transaction),
/// and the server notices it by one cheap read of a counter, before each login and twice a
/// second.
///
/// Blocking: call it off the event loops (the server does, from its login and watcher threads).
public final class PostgresAccountStore: AccountStore, Sendable {
    public let settings: PostgresSettings
    private let slot: PostgresSlot

    /// Connects (and migrates the schema) at the first use, and again after a lost connection.
    public init(settings: PostgresSettings, eventLoop: EventLoop = MultiThreadedEventLoopGroup.singleton.next()) {
        self.settings = settings
        slot = PostgresSlot(settings: settings.purpose("accounts"), eventLoop: eventLoop)
    }

    public var location: String { "accounts in PostgreSQL \(settings.description)" }

    /// Runs `body` on the store's connection, making one if there is none.
    private func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try slot.use(body)
    }

    public func load() throws(UsersFileError) -> UsersDatabase {
        do {
            return try withConnection { try Self.read($0, forUpdate: false) }
        } catch let error as UsersFileError {
            throw error
        } catch {
            throw .database("cannot read \(location): \(error)")
        }
    }

    @discardableResult
    public func update<T>(_ change: (inout UsersDatabase) throws -> T) throws -> T {
        try withConnection { connection in
            try connection.transaction {
                let before = try Self.read(connection, forUpdate: true)
                var after = before
                let result = try change(&after)
                try Self.write(from: before, to: after, connection)
                return result
            }
        }
    }

    public func version() -> AccountStoreVersion? {
        guard let text = try? withConnection({ try $0.run("SELECT version FROM securechat_account_state").value(0, "version") }),
              let number = Int64(text)
        else { return nil }
        return .counter(number)
    }

    public func permissionWarning() -> String? { nil }

    /// Closes the connection.
    public func close() {
        slot.close()
    }

    static func read(_ connection: PostgresConnection, forUpdate: Bool) throws -> UsersDatabase {
        // The state row is locked first: writers queue there, readers take one snapshot.
        let state = try connection.run("SELECT version, bans FROM securechat_account_state" + (forUpdate ? " FOR UPDATE" : ""))
        let rows = try connection.run("SELECT name, hash, created, updated, locked, operator, certificates FROM securechat_accounts ORDER BY created, folded")
        let accounts = rows.rows.indices.map { i in
            Account(
                name: rows.value(i, "name") ?? "", hash: rows.value(i, "hash") ?? "",
                created: rows.value(i, "created") ?? "", updated: rows.value(i, "updated") ?? "",
                locked: rows.value(i, "locked") == "t",
                certificates: (rows.value(i, "certificates") ?? "").split(separator: " ").map(String.init),
                isOperator: rows.value(i, "operator") == "t")
        }
        var bans: [ServerBan] = []
        if let text = state.value(0, "bans"), !text.isEmpty {
            bans = try UsersDatabase.decode(Array(text.utf8), path: "the bans in PostgreSQL").bans
        }
        return UsersDatabase(accounts: accounts, bans: bans)
    }

    static func write(from before: UsersDatabase, to after: UsersDatabase, _ connection: PostgresConnection) throws {
        var changed = false
        let kept = Set(after.accounts.map { AccountName.folded($0.name) })
        for account in before.accounts where !kept.contains(AccountName.folded(account.name)) {
            _ = try connection.run("DELETE FROM securechat_accounts WHERE folded = $1", [AccountName.folded(account.name)])
            changed = true
        }
        for account in after.accounts where before.account(named: account.name) != account {
            _ = try connection.run("""
                INSERT INTO securechat_accounts (folded, name, hash, created, updated, locked, operator, certificates)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (folded) DO UPDATE SET name = $2, hash = $3, created = $4, updated = $5, locked = $6, operator = $7, certificates = $8
                """,
                [AccountName.folded(account.name), account.name, account.hash, account.created, account.updated,
                 account.locked ? "true" : "false", account.isOperator ? "true" : "false", account.certificates.joined(separator: " ")])
            changed = true
        }
        if before.bans != after.bans {
            let bans = after.bans.isEmpty ? "" : String(decoding: UsersDatabase(bans: after.bans).encoded(), as: UTF8.self)
            _ = try connection.run("UPDATE securechat_account_state SET bans = $1", [bans])
            changed = true
        }
        if changed {
            _ = try connection.run("UPDATE securechat_account_state SET version = version + 1")
        }
    }
}

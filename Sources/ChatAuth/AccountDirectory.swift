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

/// The server's view of the users file: read once, refreshed when the file changes.
///
/// Before each login, `lookup` compares the file's identity and modification time (one `stat`)
/// with the version it holds and re-reads it when they differ, so an account added, changed,
/// locked or deleted with `chat-admin` takes effect at the next login without a restart or a
/// signal; `reload()` forces a re-read (SIGHUP). A new file that cannot be read or parsed is
/// reported once and the last good copy stays in use.
// @unchecked Sendable: every stored `var` is only touched with `lock` held.
public final class AccountDirectory: @unchecked Sendable {
    /// What a re-read found changed for an account, so the server can act on its live sessions.
    public enum Change: Sendable, Equatable {
        case deleted(String)
        case locked(String)
        case passwordChanged(String)
        /// The account lost the operator role: its session loses operator powers.
        case demoted(String)
        /// A new server ban: the sessions it covers end.
        case banned(ServerBan)

        /// The account concerned; nil for a ban.
        public var account: String? {
            switch self {
            case let .deleted(name), let .locked(name), let .passwordChanged(name), let .demoted(name): return name
            case .banned: return nil
            }
        }

        /// What the sessions concerned are told as they are closed (or lose operator status).
        public var reason: String {
            switch self {
            case .deleted: return "Account deleted by the server's operator"
            case .locked: return "Account locked by the server's operator"
            case .passwordChanged: return "Password changed: log in again with the new password"
            case .demoted: return "Operator role removed by the server's administrator"
            case let .banned(ban): return ban.message
            }
        }
    }

    public let store: any AccountStore
    private let lock = Lock()
    private var database = UsersDatabase()
    private var identity: AccountStoreVersion?
    private var lastError: UsersFileError?
    private var warning: String?
    private var onChange: (@Sendable ([Change]) -> Void)?
    private let report: @Sendable (String) -> Void

    /// Loads the file now; a missing file means no accounts yet.
    ///
    /// - Parameter report: receives one line for each load problem and each recovery (for the log).
    public init(store: any AccountStore, report: @escaping @Sendable (String) -> Void = { _ in }) throws(UsersFileError) {
        self.store = store
        self.report = report
        identity = store.version()
        database = try store.load()
        warning = store.permissionWarning()
        if let warning { report(warning) }
    }

    /// Called (on the thread that noticed) with what changed each time the file is re-read.
    public func setChangeHandler(_ handler: @escaping @Sendable ([Change]) -> Void) {
        lock.lock()
        onChange = handler
        lock.unlock()
    }

    /// The account named `name` (ignoring case), after a cheap check for a changed file.
    public func lookup(_ name: String) -> Account? {
        refreshIfChanged()
        lock.lock()
        defer { lock.unlock() }
        return database.account(named: name)
    }

    /// The account whose registered client certificate has this fingerprint, from the copy in
    /// memory only: certificate logins are answered on an event loop, where reading the file is
    /// not allowed. The server's watcher (`refreshIfChanged`, twice a second, off the loops)
    /// keeps the copy current.
    public func lookup(certificate fingerprint: String) -> Account? {
        lock.lock()
        defer { lock.unlock() }
        return database.account(withCertificate: fingerprint)
    }

    /// Number of accounts in the copy in use.
    public var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return database.accounts.count
    }

    /// The problem with the file on disk, if the copy in use is an older good one.
    public var currentProblem: UsersFileError? {
        lock.lock()
        defer { lock.unlock() }
        return lastError
    }

    /// Re-reads the file if its identity or modification time changed.
    public func refreshIfChanged() {
        let now = store.version()
        lock.lock()
        let changed = now != identity
        lock.unlock()
        if changed { reload() }
    }

    /// The account whose name is `name`, from the copy in memory only (never reads the file: safe
    /// on an event loop).
    public func cachedAccount(_ name: String) -> Account? {
        lock.lock()
        defer { lock.unlock() }
        return database.account(named: name)
    }

    /// The server bans in the copy in memory, expired ones included.
    public var bans: [ServerBan] {
        lock.lock()
        defer { lock.unlock() }
        return database.bans
    }

    /// The ban in force that covers `account` (nil: not logged in yet) from `address`, from the
    /// copy in memory.
    public func ban(account: String?, address: String, at now: Date = Date()) -> ServerBan? {
        lock.lock()
        defer { lock.unlock() }
        return database.ban(account: account, address: address, at: now)
    }

    /// Adds a server ban to the file (locked, atomic) and re-reads it, so the change handler ends
    /// the sessions it covers. Blocking: call off the event loops. Returns the ban it replaced.
    @discardableResult
    public func addBan(_ ban: ServerBan, at now: Date = Date()) throws -> ServerBan? {
        let replaced = try store.update { database in database.addBan(ban, at: now) }
        reload()
        return replaced
    }

    /// Removes the server ban on `target` from the file and re-reads it. Blocking.
    @discardableResult
    public func removeBan(_ target: ServerBan.Target, at now: Date = Date()) throws -> ServerBan {
        let removed = try store.update { database in try database.removeBan(target, at: now) }
        reload()
        return removed
    }

    static func changes(from old: UsersDatabase, to new: UsersDatabase, at now: Date = Date()) -> [Change] {
        var changes: [Change] = old.accounts.compactMap { before in
            guard let after = new.account(named: before.name) else { return .deleted(before.name) }
            if after.locked && !before.locked { return .locked(before.name) }
            if after.hash != before.hash { return .passwordChanged(before.name) }
            if before.isOperator && !after.isOperator { return .demoted(before.name) }
            return nil
        }
        for ban in new.bans where ban.isActive(at: now) && !old.bans.contains(ban) {
            changes.append(.banned(ban))
        }
        return changes
    }

    /// Re-reads the file; on failure keeps the last good copy and reports why.
    @discardableResult
    public func reload() -> Bool {
        let now = store.version()
        do {
            let fresh = try store.load()
            let newWarning = store.permissionWarning()
            lock.lock()
            let recovered = lastError != nil
            let changes = Self.changes(from: database, to: fresh)
            let handler = onChange
            let warn = newWarning != warning ? newWarning : nil
            database = fresh
            identity = now
            lastError = nil
            warning = newWarning
            lock.unlock()
            if recovered { report("\(store.location) is readable again: \(fresh.accounts.count) accounts") }
            if let warn { report(warn) }
            if !changes.isEmpty { handler?(changes) }
            return true
        } catch {
            lock.lock()
            let isNew = lastError != error
            identity = now  // do not re-read the same broken version before every login
            lastError = error
            let kept = database.accounts.count
            lock.unlock()
            if isNew { report("\(error); keeping the last good copy (\(kept) accounts)") }
            return false
        }
    }
}

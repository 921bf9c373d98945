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
import NIOConcurrencyHelpers

/// Server-wide roles and bans: who may become a server operator, and who is banned from the
/// server. The server uses the users file (`AccountDirectory`); tests use `MemoryPolicy`.
public protocol ServerPolicy: Sendable {
    /// Whether `account` has the operator role. From memory: safe on an event loop.
    func isOperator(_ account: String) -> Bool
    /// Whether the account exists (a private message to it may wait for its next login). From memory.
    func accountExists(_ account: String) -> Bool
    /// The ban in force that covers `account` (nil: not logged in yet) from `address`. From memory.
    func ban(account: String?, address: String, at now: Date) -> ServerBan?
    /// Every ban kept, expired ones included.
    var bans: [ServerBan] { get }
    /// Stores a ban (replacing one on the same target), then reports it as a change so the
    /// sessions it covers end. May block on the disk: never call it on an event loop.
    @discardableResult
    func addBan(_ ban: ServerBan, at now: Date) throws -> ServerBan?
    /// Removes the ban on `target`. May block on the disk.
    @discardableResult
    func removeBan(_ target: ServerBan.Target, at now: Date) throws -> ServerBan
}

extension AccountDirectory: ServerPolicy {
    public func isOperator(_ account: String) -> Bool {
        cachedAccount(account)?.isOperator ?? false
    }

    public func accountExists(_ account: String) -> Bool {
        cachedAccount(account) != nil
    }
}

/// Roles and bans in memory, for tests and tools: changes are reported to `onChange` at once, as
/// the users file's watcher reports them.
// @unchecked Sendable: `state` is a locked box; `onChange` is set once, before use.
public final class MemoryPolicy: ServerPolicy, @unchecked Sendable {
    private let state: NIOLockedValueBox<(operators: Set<String>, database: UsersDatabase)>
    /// Receives the changes a new ban makes, like `AccountDirectory`'s change handler.
    public var onChange: @Sendable ([AccountDirectory.Change]) -> Void = { _ in }

    /// The accounts that exist (for private messages to offline accounts).
    public let accounts: Set<String>

    public init(operators: Set<String> = [], accounts: Set<String> = []) {
        state = NIOLockedValueBox((Set(operators.map(AccountName.folded)), UsersDatabase()))
        self.accounts = Set(accounts.map(AccountName.folded))
    }

    public func accountExists(_ account: String) -> Bool {
        accounts.contains(AccountName.folded(account))
    }

    public func isOperator(_ account: String) -> Bool {
        state.withLockedValue { $0.operators.contains(AccountName.folded(account)) }
    }

    /// Gives or takes the operator role; taking it reports `.demoted`.
    public func setOperator(_ account: String, _ value: Bool) {
        let removed = state.withLockedValue { s -> Bool in
            let key = AccountName.folded(account)
            if value {
                s.operators.insert(key)
                return false
            }
            return s.operators.remove(key) != nil
        }
        if removed { onChange([.demoted(account)]) }
    }

    public func ban(account: String?, address: String, at now: Date) -> ServerBan? {
        state.withLockedValue { $0.database.ban(account: account, address: address, at: now) }
    }

    public var bans: [ServerBan] { state.withLockedValue { $0.database.bans } }

    public func addBan(_ ban: ServerBan, at now: Date) throws -> ServerBan? {
        let replaced = state.withLockedValue { $0.database.addBan(ban, at: now) }
        onChange([.banned(ban)])
        return replaced
    }

    public func removeBan(_ target: ServerBan.Target, at now: Date) throws -> ServerBan {
        try state.withLockedValue { s throws(ServerBanError) in try s.database.removeBan(target, at: now) }
    }
}

/// A change to the server's bans that an operator asked for (KLINE, UNKLINE): blocking, so the
/// connection carries it out off its event loop (`ServerCore.perform`).
public enum AdminTask: Sendable {
    case addBan(ServerBan)
    case removeBan(ServerBan.Target)
}

extension ServerCore {
    /// Carries out `task` (blocking: call off the event loops) and says what happened, in words
    /// for the operator who asked.
    public func perform(_ task: AdminTask, now: Date = Date()) -> String {
        do {
            switch task {
            case let .addBan(ban):
                let replaced = try policy.addBan(ban, at: now)
                return "\(replaced == nil ? "Added" : "Replaced") server ban on \(ban.target) "
                    + (ban.expires.map { "until \($0)" } ?? "without end") + ": \(ban.reason)"
            case let .removeBan(target):
                let removed = try policy.removeBan(target, at: now)
                return "Removed server ban on \(removed.target) (set by \(removed.setBy): \(removed.reason))"
            }
        } catch let error as ServerBanError {
            return "\(error)"
        } catch {
            logger.error("could not store a server ban change: \(error)")
            return "Could not store the change: \(error) — nothing was changed"
        }
    }
}

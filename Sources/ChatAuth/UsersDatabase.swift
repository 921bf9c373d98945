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

/// One account as stored in the users file.
public struct Account: Sendable, Equatable, Codable {
    /// The name as registered (its case is kept; lookups ignore ASCII case).
    public var name: String
    /// The PHC string of the password's scrypt hash.
    public var hash: String
    /// When the account was created, RFC 3339 UTC ("2026-11-30T01:02:03Z").
    public var created: String
    /// When the password or the locked flag last changed.
    public var updated: String
    /// A locked account cannot log in, even with the right password.
    public var locked: Bool
    /// SHA-256 fingerprints (64 upper-case hex digits) of client certificates that log in to this
    /// account with SASL EXTERNAL. Written only when there are some, so files without
    /// certificates look as they always did.
    public var certificates: [String]
    /// A server operator may use OPER (with this account's password) to gain operator powers.
    /// Written only when true.
    public var isOperator: Bool

    public init(name: String, hash: String, created: String, updated: String, locked: Bool = false, certificates: [String] = [], isOperator: Bool = false) {
        self.name = name
        self.hash = hash
        self.created = created
        self.updated = updated
        self.locked = locked
        self.certificates = certificates
        self.isOperator = isOperator
    }

    private enum CodingKeys: String, CodingKey { case name, hash, created, updated, locked, certificates, isOperator = "operator" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        hash = try c.decode(String.self, forKey: .hash)
        created = try c.decode(String.self, forKey: .created)
        updated = try c.decode(String.self, forKey: .updated)
        locked = try c.decode(Bool.self, forKey: .locked)
        certificates = try c.decodeIfPresent([String].self, forKey: .certificates) ?? []
        isOperator = try c.decodeIfPresent(Bool.self, forKey: .isOperator) ?? false
        for (i, fingerprint) in certificates.enumerated() where fingerprint.count != 64 || !fingerprint.allSatisfy({ $0.isHexDigit && !$0.isLowercase }) {
            throw DecodingError.dataCorruptedError(forKey: .certificates, in: c,
                debugDescription: "certificates[\(i)] is not a SHA-256 fingerprint (64 upper-case hex digits)")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(hash, forKey: .hash)
        try c.encode(created, forKey: .created)
        try c.encode(updated, forKey: .updated)
        try c.encode(locked, forKey: .locked)
        if !certificates.isEmpty { try c.encode(certificates, forKey: .certificates) }
        if isOperator { try c.encode(true, forKey: .isOperator) }
    }
}

/// The users file's contents: a schema version, the accounts, kept sorted by name, and the
/// server bans (written only when there are some).
public struct UsersDatabase: Sendable, Equatable {
    public static let schemaVersion = 1

    public private(set) var accounts: [Account] = []
    private var index: [String: Int] = [:]
    /// Server bans, oldest first; expired ones are dropped at the next change.
    public private(set) var bans: [ServerBan] = []

    /// Accounts with the same name ignoring case: the last one wins.
    public init(accounts: [Account] = [], bans: [ServerBan] = []) {
        self.bans = bans
        var byName: [String: Account] = [:]
        for account in accounts { byName[AccountName.folded(account.name)] = account }
        self.accounts = byName.sorted { $0.key < $1.key }.map(\.value)
        reindex()
    }

    /// The account named `name`, ignoring ASCII case.
    public func account(named name: String) -> Account? {
        index[AccountName.folded(name)].map { accounts[$0] }
    }

    /// The account that registered the client certificate with this SHA-256 fingerprint.
    public func account(withCertificate fingerprint: String) -> Account? {
        accounts.first { $0.certificates.contains(fingerprint) }
    }

    /// Adds a new account; refuses a duplicate name (ignoring case) or an invalid one.
    public mutating func add(_ account: Account) throws(UsersFileError) {
        if let problem = AccountName.problem(account.name) { throw .invalidName(problem) }
        if let existing = self.account(named: account.name) { throw .accountExists(existing.name) }
        insertOrReplace(account)
    }

    /// Changes an existing account.
    public mutating func modify(_ name: String, _ change: (inout Account) -> Void) throws(UsersFileError) {
        guard let i = index[AccountName.folded(name)] else { throw .noSuchAccount(name) }
        change(&accounts[i])
    }

    /// Removes an account.
    public mutating func remove(_ name: String) throws(UsersFileError) {
        guard index[AccountName.folded(name)] != nil else { throw .noSuchAccount(name) }
        accounts.removeAll { AccountName.folded($0.name) == AccountName.folded(name) }
        reindex()
    }

    /// The ban in force at `now` that covers a client logged in as `account` (nil: not yet
    /// known) from `address`, if any.
    public func ban(account: String?, address: String, at now: Date) -> ServerBan? {
        bans.first { $0.isActive(at: now) && $0.target.covers(account: account, address: address) }
    }

    /// Adds a ban, replacing one on the same target; drops expired bans. Returns the one replaced.
    @discardableResult
    public mutating func addBan(_ ban: ServerBan, at now: Date) -> ServerBan? {
        let old = bans.first { $0.target.sameTarget(as: ban.target) && $0.isActive(at: now) }
        bans.removeAll { $0.target.sameTarget(as: ban.target) || !$0.isActive(at: now) }
        bans.append(ban)
        return old
    }

    /// Removes the ban on `target`; drops expired bans.
    public mutating func removeBan(_ target: ServerBan.Target, at now: Date) throws(ServerBanError) -> ServerBan {
        guard let old = bans.first(where: { $0.target.sameTarget(as: target) && $0.isActive(at: now) }) else {
            throw .notFound(target.description)
        }
        bans.removeAll { $0.target.sameTarget(as: target) || !$0.isActive(at: now) }
        return old
    }

    private mutating func insertOrReplace(_ account: Account) {
        let key = AccountName.folded(account.name)
        if let i = index[key] {
            accounts[i] = account
        } else {
            // Binary search for the sorted position; then one pass to renumber.
            var low = 0
            var high = accounts.count
            while low < high {
                let mid = (low + high) / 2
                if AccountName.folded(accounts[mid].name) < key { low = mid + 1 } else { high = mid }
            }
            accounts.insert(account, at: low)
            if low == accounts.count - 1 { index[key] = low } else { reindex() }
        }
    }

    private mutating func reindex() {
        index = [:]
        for (i, account) in accounts.enumerated() { index[AccountName.folded(account.name)] = i }
    }

    // MARK: Encoding

    private struct VersionOnly: Decodable { var version: Int? }
    private struct File: Codable {
        var version: Int
        var accounts: [Account]
        var bans: [ServerBan]?
    }

    /// Parses the file's bytes, reporting the path, line and column, or the account at fault.
    public static func decode(_ bytes: [UInt8], path: String) throws(UsersFileError) -> UsersDatabase {
        if let problem = JSONSyntax.firstProblem(in: bytes) {
            throw .invalidJSON(path: path, line: problem.line, column: problem.column, reason: problem.reason)
        }
        let data = Data(bytes)
        let decoder = JSONDecoder()
        guard let version = (try? decoder.decode(VersionOnly.self, from: data))?.version else {
            throw .invalidContent(path: path, reason: "the top level must be an object with a numeric \"version\"")
        }
        guard version == schemaVersion else { throw .unknownVersion(path: path, found: version) }
        let file: File
        do {
            file = try decoder.decode(File.self, from: data)
        } catch let error as DecodingError {
            throw .invalidContent(path: path, reason: describe(error))
        } catch {
            throw .invalidContent(path: path, reason: "\(error)")
        }
        var seen: [String: String] = [:]
        for (i, account) in file.accounts.enumerated() {
            if let problem = AccountName.problem(account.name) {
                throw .invalidContent(path: path, reason: "accounts[\(i)]: \(problem)")
            }
            if let existing = seen.updateValue(account.name, forKey: AccountName.folded(account.name)) {
                throw .invalidContent(path: path, reason: "accounts[\(i)]: '\(account.name)' repeats '\(existing)' (names are unique ignoring case)")
            }
        }
        return UsersDatabase(accounts: file.accounts, bans: file.bans ?? [])
    }

    /// The file's bytes: pretty-printed JSON with sorted keys, ending in a newline.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(File(version: Self.schemaVersion, accounts: accounts, bans: bans.isEmpty ? nil : bans))) ?? Data()
        return Array(data) + [0x0a]
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [CodingKey]) -> String {
            codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }.description
        }
        switch error {
        case let .keyNotFound(key, context):
            let at = path(context.codingPath)
            return "\(at.isEmpty ? "" : at + ": ")missing \"\(key.stringValue)\""
        case let .typeMismatch(type, context):
            return "\(path(context.codingPath)): expected \(type == Bool.self ? "true or false" : type == String.self ? "a string" : "\(type)")"
        case let .valueNotFound(type, context):
            return "\(path(context.codingPath)): expected \(type), found null"
        case let .dataCorrupted(context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

/// RFC 3339 UTC timestamps for the users file.
public enum Timestamp {
    public static func string(_ date: Date) -> String {
        var time = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&time, &parts)
        let date = "\(Digits.padded(Int(parts.tm_year) + 1900, 4))-\(Digits.padded(Int(parts.tm_mon) + 1, 2))-\(Digits.padded(Int(parts.tm_mday), 2))"
        return date + "T\(Digits.padded(Int(parts.tm_hour), 2)):\(Digits.padded(Int(parts.tm_min), 2)):\(Digits.padded(Int(parts.tm_sec), 2))Z"
    }

    /// Unix time of a timestamp written by `string`, or nil if it is not one.
    public static func parse(_ text: String) -> Int? {
        let bytes = Array(text.utf8)
        guard bytes.count == 20, bytes[4] == 0x2d, bytes[7] == 0x2d, bytes[10] == 0x54, bytes[13] == 0x3a, bytes[16] == 0x3a, bytes[19] == 0x5a
        else { return nil }
        func number(_ range: Range<Int>) -> Int32? {
            var n: Int32 = 0
            for b in bytes[range] {
                guard b >= 0x30 && b <= 0x39 else { return nil }
                n = n * 10 + Int32(b - 0x30)
            }
            return n
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var parts = tm()
        parts.tm_year = year - 1900
        parts.tm_mon = month - 1
        parts.tm_mday = day
        parts.tm_hour = hour
        parts.tm_min = minute
        parts.tm_sec = second
        return Int(timegm(&parts))
    }
}

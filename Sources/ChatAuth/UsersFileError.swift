/// Problems with the users file or with a change to it. Each names the file (and the line and
/// column, for JSON), says what is wrong and what to do; a file with a problem is never overwritten.
public enum UsersFileError: Error, Sendable, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case invalidJSON(path: String, line: Int, column: Int, reason: String)
    case invalidContent(path: String, reason: String)
    case unknownVersion(path: String, found: Int)
    case writeFailed(path: String, reason: String)
    case lockFailed(path: String, reason: String)
    case accountExists(String)
    case noSuchAccount(String)
    case invalidName(String)
    /// Group or others may write the file: anyone on the machine could plant a password hash.
    case writableByOthers(path: String, mode: UInt32)
    /// The configured path is a symbolic link (a server and chat-admin would drift apart).
    case symbolicLink(path: String)
    /// The accounts are in a database that failed (the message says which and why).
    case database(String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "cannot read users file \(path): \(reason)"
        case let .invalidJSON(path, line, column, reason):
            return "users file \(path) is not valid JSON at line \(line), column \(column): \(reason) — fix it by hand or restore a backup; it was left untouched"
        case let .invalidContent(path, reason):
            return "users file \(path) is damaged: \(reason) — fix it by hand or restore a backup; it was left untouched"
        case let .unknownVersion(path, found):
            return "users file \(path) has schema version \(found), but this program knows only version \(UsersDatabase.schemaVersion) — use the SecureChat release that wrote it; it was left untouched"
        case let .writeFailed(path, reason):
            return "could not write users file \(path): \(reason) — the previous file is intact"
        case let .lockFailed(path, reason):
            return "could not lock \(path): \(reason)"
        case let .accountExists(name):
            return "account '\(name)' already exists — use 'chat-admin passwd \(name)' to change its password"
        case let .noSuchAccount(name):
            return "no account '\(name)' — 'chat-admin list' shows the accounts"
        case let .invalidName(reason):
            return "invalid account name: \(reason)"
        case let .writableByOthers(path, mode):
            return "users file \(path) can be changed by other users (mode \(String(mode & 0o777, radix: 8))): refused — run: chmod 600 \(path)"
        case let .database(reason):
            return reason
        case let .symbolicLink(path):
            return "users file \(path) is a symbolic link: refused — point \"usersFile\" in the configuration at the real file"
        }
    }
}

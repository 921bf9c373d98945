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

/// The users file on disk: read it, and change it safely from several processes at once.
///
/// Every change takes an exclusive `flock` on `<file>.lock`, re-reads the file under the lock,
/// applies the change and writes the result atomically (a temporary file in the same folder,
/// fsync, rename, fsync of the folder), mode 0600. Two `chat-admin` runs, or `chat-admin` and the
/// server, never lose each other's updates, and a crash at any point leaves the old or the new
/// file, never a mix. A file that cannot be read or parsed is reported and never overwritten.
public struct UsersStore: AccountStore {
    /// The users file.
    public let path: String

    /// Called to write the new file's bytes to an open descriptor; tests inject failures here
    /// (a full disk) to check that the old file survives.
    public var writeBytes: AtomicFile.Writer = AtomicFile.writeAll

    public init(path: String) {
        self.path = path
    }

    var lockPath: String { path + ".lock" }

    /// Reads the file. A missing file is an empty database (no accounts yet).
    public func load() throws(UsersFileError) -> UsersDatabase {
        guard let bytes = try readIfPresent() else { return UsersDatabase() }
        return try UsersDatabase.decode(bytes, path: path)
    }

    public var location: String { "users file \(path)" }

    public func version() -> AccountStoreVersion? { identity().map(AccountStoreVersion.file) }

    /// Whether the file exists.
    public var exists: Bool { FileManager.default.fileExists(atPath: path) }

    /// Applies `change` to the current contents under the lock and writes the result.
    /// Nothing is written if `change` throws.
    @discardableResult
    public func update<T>(_ change: (inout UsersDatabase) throws -> T) throws -> T {
        let lock = try acquireLock()
        defer { close(lock) }
        removeStaleTemporaryFiles()
        var database = try load()
        let result = try change(&database)
        try write(database)
        return result
    }

    /// Identity and modification time, to notice a changed file cheaply (one `stat`).
    public func identity() -> FileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                            modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
    }

    /// A warning for a file that group or others may read (hashes are secrets), or nil.
    public func permissionWarning() -> String? {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_mode & 0o044 != 0 else { return nil }
        return "users file \(path) can be read by other users (mode \(String(info.st_mode & 0o777, radix: 8))): run chmod 600 \(path)"
    }

    private func readIfPresent() throws(UsersFileError) -> [UInt8]? {
        // O_NOFOLLOW: a link is refused, not followed (chat-admin would replace the link with a
        // file, and the server would keep reading the other copy).
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 {
            let code = errno
            if code == ENOENT { return nil }
            if code == ELOOP { throw .symbolicLink(path: path) }
            throw .unreadable(path: path, reason: String(cString: strerror(code)))
        }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) != S_IFREG {
            throw .unreadable(path: path, reason: "not a regular file")
        }
        if info.st_mode & 0o022 != 0 {
            throw .writableByOthers(path: path, mode: UInt32(info.st_mode))
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }

    /// Deletes temporary files left by writers that died mid-write (their process is gone).
    /// Runs under the lock, so no live writer's file is touched.
    private func removeStaleTemporaryFiles() {
        let directory = Paths.folder(of: path)
        let prefix = Paths.name(of: path) + ".tmp-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.isEmpty ? "." : directory) else { return }
        for name in names where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            guard let pid = Int32(rest.prefix { $0 != "-" }) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                unlink((directory.isEmpty ? "" : directory + "/") + name)
            }
        }
    }

    private func acquireLock() throws(UsersFileError) -> Int32 {
        let directory = Paths.folder(of: path)
        if !directory.isEmpty && !FileManager.default.fileExists(atPath: directory) {
            throw .lockFailed(path: lockPath, reason: "folder \(directory) does not exist")
        }
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd < 0 { throw .lockFailed(path: lockPath, reason: String(cString: strerror(errno))) }
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            let reason = String(cString: strerror(errno))
            close(fd)
            throw .lockFailed(path: lockPath, reason: reason)
        }
        return fd
    }

    private func write(_ database: UsersDatabase) throws(UsersFileError) {
        do {
            try AtomicFile.write(database.encoded(), to: path, mode: 0o600, writer: writeBytes)
        } catch {
            throw .writeFailed(path: path, reason: error.reason)
        }
    }
}

/// Where accounts live: the users file (`UsersStore`, the default) or, for a cluster of servers,
/// PostgreSQL (`ChatCluster`). chat-admin and the server change and read accounts only through this.
public protocol AccountStore: Sendable {
    /// Where, for messages: "users file /path", "PostgreSQL user@host:port/db".
    var location: String { get }
    /// Every account and ban. An empty store is an empty database.
    func load() throws(UsersFileError) -> UsersDatabase
    /// Applies `change` to the current contents, exclusively (no other writer in between, in any
    /// process), and stores the result; nothing is stored if `change` throws.
    @discardableResult
    func update<T>(_ change: (inout UsersDatabase) throws -> T) throws -> T
    /// Something cheap to read that differs whenever the accounts changed; nil if unknown.
    func version() -> AccountStoreVersion?
    /// A warning about how the store is protected, or nil.
    func permissionWarning() -> String?
}

/// A version of an account store, to notice a change without reading the accounts.
public enum AccountStoreVersion: Sendable, Equatable {
    case file(FileIdentity)
    case counter(Int64)
}

/// What identifies a version of a file without reading it.
public struct FileIdentity: Sendable, Equatable {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    public var modified: Int64
}

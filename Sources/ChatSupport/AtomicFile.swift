#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one way files with secrets are written (the users file, private keys, certificates):
/// a new temporary file beside the target with the final mode, every byte written, fsync,
/// rename over the target, fsync of the folder. The old file is replaced only when everything
/// before the rename succeeded, so a crash or a full disk leaves the old file or the new one,
/// never a mix.
public enum AtomicFile {
    /// Why a write failed, with the system's reason.
    public struct Failure: Error, Sendable, Equatable {
        public let path: String
        public let reason: String
        public init(path: String, reason: String) {
            self.path = path
            self.reason = reason
        }
    }

    /// Writes every byte to a descriptor, returning 0 or the errno of the failure.
    public typealias Writer = @Sendable (Int32, [UInt8]) -> Int32

    /// `write(2)` until every byte is written (retrying on EINTR).
    public static let writeAll: Writer = { fd, bytes in
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += n
        }
        return 0
    }

    /// Replaces `path` with `bytes`, created with `mode` (exactly: the umask cannot widen or
    /// narrow it). `writer` exists so tests can make the disk fail.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t, writer: Writer = writeAll) throws(Failure) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        var random: UInt64 = 0
        arc4random_buf(&random, 8)
        let temporary = "\(path).tmp-\(getpid())-\(String(random, radix: 36))"
        // O_EXCL: never write through a file or link someone else put at the temporary name.
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        if fd < 0 { throw Failure(path: path, reason: "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        var failure: String?
        if fchmod(fd, mode) != 0 { failure = String(cString: strerror(errno)) }
        if failure == nil {
            let code = writer(fd, bytes)
            if code != 0 { failure = String(cString: strerror(code)) }
        }
        if failure == nil && fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        close(fd)
        if failure == nil && rename(temporary, path) != 0 { failure = String(cString: strerror(errno)) }
        if let failure {
            unlink(temporary)
            throw Failure(path: path, reason: failure)
        }
        let dirfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 {
            fsync(dirfd)
            close(dirfd)
        }
    }
}

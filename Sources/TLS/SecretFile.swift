#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ChatSupport

/// Small, blocking file helpers for configuration files and secrets (certificates, keys).
///
/// These run at start-up, on SIGHUP or from the admin tool, never on an event loop. Each failure
/// becomes a `TLSError` that names the file and says what to do.
public enum SecretFile {
    /// Reads a whole file, checking first that it exists and is a regular file.
    ///
    /// - Parameters:
    ///   - path: the file.
    ///   - what: how to call the file in an error ("certificate chain", "private key").
    ///   - privateKey: when true, a file that its group or others may read is refused.
    public static func read(_ path: String, what: String, privateKey: Bool = false) throws(TLSError) -> [UInt8] {
        var info = stat()
        if stat(path, &info) != 0 {
            let code = errno
            if code == ENOENT { throw .fileMissing(what: what, path: path) }
            throw .fileUnreadable(what: what, path: path, reason: String(cString: strerror(code)))
        }
        if (info.st_mode & S_IFMT) != S_IFREG {
            throw .fileUnreadable(what: what, path: path, reason: "not a regular file")
        }
        if privateKey && (info.st_mode & 0o077) != 0 {
            throw .keyPermissions(path: path, mode: UInt32(info.st_mode))
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            throw .fileUnreadable(what: what, path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .fileUnreadable(what: what, path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }

    /// Writes `bytes` to `path` atomically with `mode` (see `AtomicFile`).
    public static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t) throws(TLSError) {
        do {
            try AtomicFile.write(bytes, to: path, mode: mode)
        } catch {
            throw .fileUnreadable(what: "output", path: path, reason: "write failed: \(error.reason)")
        }
    }

    /// Whether a file exists at `path`.
    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    /// Creates `path` and its missing parents with `mode`.
    public static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws(TLSError) {
        if path.isEmpty || exists(path) { return }
        try makeDirectory(path.directoryPart, mode: mode)
        if mkdir(path, mode) != 0 && errno != EEXIST {
            throw .fileUnreadable(what: "directory", path: path, reason: String(cString: strerror(errno)))
        }
    }
}

extension String {
    /// The folder part of a path ("." for a bare name).
    var directoryPart: String {
        guard let slash = lastIndex(of: "/") else { return "." }
        if slash == startIndex { return "/" }
        return String(self[..<slash])
    }
}

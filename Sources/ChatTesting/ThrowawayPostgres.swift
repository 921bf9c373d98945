import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A PostgreSQL server of a test's own: `initdb` in a temporary folder, `pg_ctl start` on a free
/// loopback port, `stop()` removes it all. As root, the server runs as the `postgres` user
/// (PostgreSQL refuses to run as root). Logins use SCRAM-SHA-256, as a real deployment would.
///
/// Debian puts the programs in /usr/lib/postgresql/VERSION/bin, off the PATH; `apt-get install
/// postgresql` provides them (CI installs it).
// @unchecked Sendable: immutable after `start`.
public final class ThrowawayPostgres: @unchecked Sendable {
    public let port: Int
    public let folder: String
    /// The superuser's name and password.
    public let user = "securechat"
    public let password: String
    private let bin: String
    /// The server's options (port, socket folder, TLS), given again when it is resumed.
    private let options: String

    /// The folder with initdb and pg_ctl, or nil when PostgreSQL is not installed.
    public static var binFolder: String? {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) {
            let folder = "/usr/lib/postgresql/\(version)/bin"
            if FileManager.default.isExecutableFile(atPath: folder + "/initdb") { return folder }
        }
        return nil
    }

    /// Whether tests that need PostgreSQL can run here. Under CI they must: there it is installed.
    public static var isAvailable: Bool { binFolder != nil }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    private init(port: Int, folder: String, password: String, bin: String, options: String) {
        self.port = port
        self.options = options
        self.folder = folder
        self.password = password
        self.bin = bin
    }

    /// Creates and starts a server; with `tls`, it also accepts TLS with that certificate and key.
    public static func start(tls: (certificate: String, key: String)? = nil) throws -> ThrowawayPostgres {
        guard let bin = binFolder else {
            throw Failure(description: "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql")
        }
        var template = Array("/tmp/securechat-pg-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw Failure(description: "mkdtemp failed") }
        let folder = String(cString: made)
        let password = "pg-" + UUID().uuidString
        let asRoot = getuid() == 0
        if asRoot { _ = ChildProcess.run(["/bin/chown", "postgres:postgres", folder]) }
        try Data((password + "\n").utf8).write(to: URL(fileURLWithPath: folder + "/pw"))
        if asRoot { _ = ChildProcess.run(["/bin/chown", "postgres:postgres", folder + "/pw"]) }
        func run(_ arguments: [String], timeout: Double = 120) throws {
            let command = asRoot ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + arguments : arguments
            let (status, output) = ChildProcess.run(command, timeout: timeout)
            guard status == 0 else { throw Failure(description: "\(arguments.joined(separator: " ")) failed (\(status)): \(output.suffix(2000))") }
        }
        try run([bin + "/initdb", "-D", folder + "/data", "-U", "securechat", "--pwfile=" + folder + "/pw", "--auth=scram-sha-256", "-E", "UTF8", "--no-sync", "--no-instructions"])
        var options = "-c listen_addresses=127.0.0.1 -k \(folder) -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        if let tls {
            for (source, name) in [(tls.certificate, "server.crt"), (tls.key, "server.key")] {
                try FileManager.default.copyItem(atPath: source, toPath: folder + "/" + name)
                chmod(folder + "/" + name, 0o600)
                if asRoot { _ = ChildProcess.run(["/bin/chown", "postgres:postgres", folder + "/" + name]) }
            }
            options += " -c ssl=on -c ssl_cert_file=\(folder)/server.crt -c ssl_key_file=\(folder)/server.key"
        }
        // A free port can be taken between the check and the start: try a few.
        var lastError: Error?
        for _ in 0..<5 {
            let port = FreePort.loopback()
            do {
                try run([bin + "/pg_ctl", "-D", folder + "/data", "-l", folder + "/log", "-w", "-t", "90", "-o", "-p \(port) " + options, "start"])
                return ThrowawayPostgres(port: port, folder: folder, password: password, bin: bin, options: "-p \(port) " + options)
            } catch {
                lastError = error
                let log = (try? String(contentsOfFile: folder + "/log", encoding: .utf8)) ?? ""
                if !log.contains("could not bind") && !log.contains("in use") { break }
            }
        }
        _ = ChildProcess.run(["/bin/rm", "-rf", folder])
        throw lastError ?? Failure(description: "pg_ctl start failed")
    }

    /// The server's log, for a failing test's message.
    public var log: String { (try? String(contentsOfFile: folder + "/log", encoding: .utf8)) ?? "" }

    private func pgctl(_ arguments: [String]) -> (status: Int32, output: String) {
        let command = [bin + "/pg_ctl", "-D", folder + "/data"] + arguments
        return ChildProcess.run(getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + command : command, timeout: 120)
    }

    /// Stops the server at once (no waiting for clients) and keeps the data.
    public func pause() {
        _ = pgctl(["-m", "immediate", "-w", "stop"])
    }

    /// Starts a paused server again on the same port.
    public func resume() throws {
        let (status, output) = pgctl(["-l", folder + "/log", "-w", "-t", "90", "-o", options, "start"])
        guard status == 0 else { throw Failure(description: "pg_ctl start failed (\(status)): \(output)") }
    }

    /// Stops the server and deletes its folder.
    public func stop() {
        pause()
        _ = ChildProcess.run(["/bin/rm", "-rf", folder])
    }
}

/// A port on 127.0.0.1 that nothing listens on right now, for a server started in another
/// process (a chat-server node, PostgreSQL), which cannot be handed a bound socket.
///
/// Taken from below the kernel's ephemeral range (`ip_local_port_range`), never from it: every
/// outgoing loopback connection of the tests running in parallel takes a source port from that
/// range, and one did take a port between this check and the server's bind (CI: "Address
/// already in use"). Below it, only other callers of this function compete, and they are told
/// different ports.
public enum FreePort {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var given: Set<Int> = []

    public static func loopback() -> Int {
        let ephemeralLow = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
            .flatMap { $0.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { Int($0) } } ?? 32768
        let candidates = max(1024, ephemeralLow - 16384)..<ephemeralLow
        lock.lock()
        defer { lock.unlock() }
        for _ in 0..<1000 {
            let port = Int.random(in: candidates)
            if given.contains(port) || !bindable(port) { continue }
            given.insert(port)
            return port
        }
        return bound(0)  // every candidate taken: let the kernel choose, as before
    }

    private static func bindable(_ port: Int) -> Bool { bound(port) == port }

    /// Binds 127.0.0.1:`port` (0: any), closes, and returns the port bound, or -1.
    private static func bound(_ port: Int) -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let status = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard status == 0 else { return -1 }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

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
import TLS

/// The config file's `cluster` block: this node's name and the PostgreSQL that the nodes share.
///
/// ```json
/// "cluster": {
///   "node": "chat-1",
///   "database": "postgresql://securechat@db.example.org:5432/securechat",
///   "passwordFile": "/etc/securechat/postgres-password",
///   "tls": "verify-full",
///   "caFile": "/etc/securechat/postgres-ca.pem"
/// }
/// ```
///
/// The password is never in the config file: it comes from `passwordFile` (mode 0600) or from the
/// environment variable named by `passwordEnvironment`. TLS is on and verified unless `tls` is
/// `"disable"`, which is allowed only for a database on this machine (a loopback address).
public struct ClusterSettings: Sendable, Equatable {
    /// This node's name: unique among the nodes, shown to operators.
    public var node: String
    public var postgres: PostgresSettings
    /// How often this node says it is alive.
    public var heartbeatSeconds = 2.0
    /// A node silent for this long is taken for dead by the others.
    public var heartbeatTimeoutSeconds = 10.0

    public init(node: String, postgres: PostgresSettings) {
        self.node = node
        self.postgres = postgres
    }

    /// A problem with the block, naming the key and what is expected.
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
        init(_ message: String) { self.message = message }
    }

    public static let keys = ["node", "database", "passwordFile", "passwordEnvironment", "tls", "caFile", "heartbeatSeconds", "heartbeatTimeoutSeconds"]

    /// Reads the block. `folder` resolves relative paths (the config file's folder); the password
    /// file is read now, so a missing or unprotected one stops the start with its name.
    public static func read(_ object: Any, folder: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(Problem) -> ClusterSettings {
        guard let table = object as? [String: Any] else { throw Problem("\"cluster\": expected an object {\"node\": ..., \"database\": ...}") }
        for key in table.keys.sorted() where !keys.contains(key) {
            throw Problem("unknown key \"cluster.\(key)\" (allowed here: \(keys.joined(separator: ", ")))")
        }
        func string(_ key: String) throws(Problem) -> String? {
            guard let value = table[key] else { return nil }
            guard let text = value as? String, !text.isEmpty else { throw Problem("\"cluster.\(key)\": expected a non-empty string") }
            return text
        }
        func seconds(_ key: String, _ range: ClosedRange<Double>) throws(Problem) -> Double? {
            guard let value = table[key] else { return nil }
            guard let number = JSONNumber.double(value), range.contains(number) else {
                throw Problem("\"cluster.\(key)\": expected a number of seconds from \(range.lowerBound) to \(range.upperBound)")
            }
            return number
        }
        func resolve(_ path: String) -> String { path.hasPrefix("/") ? path : folder + "/" + path }

        guard let node = try string("node") else { throw Problem("missing \"cluster.node\": a name for this node, unique among the nodes (for example \"chat-1\")") }
        guard node.utf8.count <= 63, node.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }) else {
            throw Problem("\"cluster.node\": expected letters, digits, '-', '_' or '.', at most 63 characters, got \"\(node.prefix(40))\"")
        }
        guard let url = try string("database") else { throw Problem("missing \"cluster.database\": the PostgreSQL URL, for example \"postgresql://securechat@db.example.org:5432/securechat\"") }
        var postgres = try parse(url: url)

        let mode = try string("tls") ?? "verify-full"
        switch mode {
        case "verify-full":
            let trust: TLSConfiguration.Trust = try string("caFile").map { .caFile(resolve($0)) } ?? .system
            postgres.security = .verifyFull(trust)
        case "disable":
            guard isLoopback(postgres.host) else {
                throw Problem("\"cluster.tls\": \"disable\" is allowed only for a database on this machine (127.0.0.1, ::1, localhost); \(postgres.host) needs \"verify-full\" — turn ssl on in its postgresql.conf")
            }
            if table["caFile"] != nil { throw Problem("\"cluster.caFile\" has no use with \"tls\": \"disable\"") }
            postgres.security = .disable
        default:
            throw Problem("\"cluster.tls\": expected \"verify-full\" (the default) or \"disable\" (a database on this machine only), got \"\(mode.prefix(40))\"")
        }

        let file = try string("passwordFile")
        let variable = try string("passwordEnvironment")
        if file != nil && variable != nil { throw Problem("\"cluster\": give \"passwordFile\" or \"passwordEnvironment\", not both") }
        if let file {
            // One buffer, trimmed in place and handed to the Password, which wipes it at the end.
            var bytes: [UInt8]
            do {
                bytes = try SecretFile.read(resolve(file), what: "PostgreSQL password file", privateKey: true)
            } catch {
                throw Problem("\"cluster.passwordFile\": \(error)")
            }
            while let last = bytes.last, last == 10 || last == 13 { bytes.removeLast() }
            guard !bytes.isEmpty else { throw Problem("\"cluster.passwordFile\": \(resolve(file)) is empty — write the database role's password in it") }
            postgres.password = Password(bytes: bytes)
        } else if let variable {
            guard let value = environment[variable], !value.isEmpty else {
                throw Problem("\"cluster.passwordEnvironment\": the environment variable \(variable) is not set — export it before starting, or use \"passwordFile\"")
            }
            postgres.password = Password(value)
        }
        postgres.applicationName = "securechat " + node
        var settings = ClusterSettings(node: node, postgres: postgres)
        settings.heartbeatSeconds = try seconds("heartbeatSeconds", 0.1...60) ?? settings.heartbeatSeconds
        settings.heartbeatTimeoutSeconds = try seconds("heartbeatTimeoutSeconds", 0.3...600) ?? settings.heartbeatTimeoutSeconds
        guard settings.heartbeatTimeoutSeconds >= 3 * settings.heartbeatSeconds else {
            throw Problem("\"cluster.heartbeatTimeoutSeconds\" (\(settings.heartbeatTimeoutSeconds)) must be at least 3 × \"cluster.heartbeatSeconds\" (\(settings.heartbeatSeconds)), or a busy node is taken for dead")
        }
        return settings
    }

    /// `postgresql://user@host:port/database` (`postgres://` too; port 5432 by default).
    static func parse(url: String) throws(Problem) -> PostgresSettings {
        let expected = "expected postgresql://USER@HOST:PORT/DATABASE"
        var rest: Substring
        if url.hasPrefix("postgresql://") { rest = url.dropFirst(13) } else if url.hasPrefix("postgres://") { rest = url.dropFirst(11) } else {
            throw Problem("\"cluster.database\": \(expected), got \"\(url.prefix(60))\"")
        }
        if let query = rest.firstIndex(of: "?") {
            throw Problem("\"cluster.database\": options after '?' are not read (\(rest[query...].prefix(40))); use the cluster block's keys (\"tls\", \"caFile\")")
        }
        guard let at = rest.firstIndex(of: "@") else { throw Problem("\"cluster.database\": no user: \(expected)") }
        let user = String(rest[..<at])
        if user.contains(":") {
            throw Problem("\"cluster.database\": a password in the URL is refused (config files get copied and shown) — put it in the file named by \"cluster.passwordFile\" (mode 0600)")
        }
        guard !user.isEmpty else { throw Problem("\"cluster.database\": no user: \(expected)") }
        rest = rest[rest.index(after: at)...]
        guard let slash = rest.firstIndex(of: "/") else { throw Problem("\"cluster.database\": no database name: \(expected)") }
        let database = String(rest[rest.index(after: slash)...])
        guard !database.isEmpty, !database.contains("/") else { throw Problem("\"cluster.database\": no database name: \(expected)") }
        var hostPort = rest[..<slash]
        var host: String
        var port = 5432
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw Problem("\"cluster.database\": an IPv6 address needs its closing ']'") }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            hostPort = hostPort[hostPort.index(after: close)...]
            if !hostPort.isEmpty {
                guard hostPort.hasPrefix(":"), let p = Int(hostPort.dropFirst()), (1...65535).contains(p) else { throw Problem("\"cluster.database\": bad port after the address: \(expected)") }
                port = p
            }
        } else if let colon = hostPort.firstIndex(of: ":") {
            host = String(hostPort[..<colon])
            guard let p = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(p) else { throw Problem("\"cluster.database\": bad port: \(expected)") }
            port = p
        } else {
            host = String(hostPort)
        }
        guard !host.isEmpty else { throw Problem("\"cluster.database\": no host: \(expected)") }
        return PostgresSettings(host: host, port: port, user: PercentEncoding.decode(user) ?? user, database: PercentEncoding.decode(database) ?? database)
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

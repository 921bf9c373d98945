import ChatSupport
import ChatAuth
import ChatCluster
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

/// Everything `chat-server` is told by its config file (JSON), checked before anything starts.
///
/// Unknown keys, wrong types and impossible values are refused with the key's name and what is
/// expected. Relative paths are resolved from the config file's folder. A few environment
/// variables may override the listener and the paths (see `EnvironmentOverride`).
public struct ServerConfiguration: Sendable, Equatable {
    public struct Listener: Sendable, Equatable {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) { self.host = host; self.port = port }
    }

    public struct TLSSettings: Sendable, Equatable {
        public var certificateChain: String
        public var privateKey: String
        public var clientCA: String?
        public var minimumVersion: TLSVersion
        /// Create a development CA and certificate when the files are missing (development only).
        public var createDevelopmentCertificates: Bool

        public init(certificateChain: String, privateKey: String, clientCA: String? = nil, minimumVersion: TLSVersion = .tls12, createDevelopmentCertificates: Bool = false) {
            self.certificateChain = certificateChain
            self.privateKey = privateKey
            self.clientCA = clientCA
            self.minimumVersion = minimumVersion
            self.createDevelopmentCertificates = createDevelopmentCertificates
        }
    }

    public struct Limits: Sendable, Equatable {
        public var maxClients = 10_000
        public var maxClientsPerAddress = 20
        /// Bytes of a line without tags, CRLF included (512 in the specifications).
        public var lineLength = 512
        public var sendQueueBytes = 1 << 20
        public var handshakeTimeoutSeconds = 10.0
        public var registrationTimeoutSeconds = 30.0
        public var pingIntervalSeconds = 90.0
        public var pingTimeoutSeconds = 60.0
        public var roomsPerUser = 50
        public var messagesPerSecond = 4.0
        public var messageBurst = 20
        /// Logins waiting for a hashing thread beyond those being checked.
        public var loginQueue = 64
        /// Of those, how many one network (an IPv4 /24, an IPv6 /64) may have waiting.
        public var loginQueuePerNetwork = 16
        /// Under load, relayed messages for one event loop are written out at most this often, so
        /// that several share a TLS record and a system call; 0 writes them at the end of every
        /// loop turn. A quiet loop writes at once. See BENCHMARKS.md ("Write coalescing").
        public var flushIntervalMilliseconds = 4.0
        public init() {}
    }

    /// What was said, kept (README: "History").
    public struct HistorySettings: Sendable, Equatable {
        /// The SQLite database; nil turns history off.
        public var database: String?
        /// At most this many milliseconds of messages already delivered can be lost in a power cut
        /// (the writer commits a batch at least this often).
        public var durabilityMilliseconds = 100
        /// Messages replayed on JOIN to clients that do not fetch history themselves (0: none).
        public var replayOnJoin = 20
        /// Messages older than this many days are deleted (0: kept however old).
        public var retentionDays = 365
        /// At most this many messages are kept per room or private conversation (0: no limit).
        public var maxMessagesPerRoom = 100_000
        /// A kept room that nobody has joined or spoken in for this many days is forgotten (0: never).
        public var roomExpiryDays = 365
        public init(database: String?) { self.database = database }
    }

    /// Rooms: what follows an account.
    public struct RoomSettings: Sendable, Equatable {
        /// At login, join the rooms the account was in (history on).
        public var rejoinOnLogin = true
        public init() {}
    }

    /// The web app and IRC over WebSocket on the listeners' port (README: "The web app").
    public struct WebSettings: Sendable, Equatable {
        public var enabled = true
        /// Origins whose pages may open a WebSocket (`https://chat.example.org`); empty: the
        /// server's own, https:// with every name of its certificate and every listener port.
        public var allowedOrigins: [String] = []
        /// Strict-Transport-Security max-age; 0 sends none.
        public var hstsSeconds = 31_536_000
        public init() {}
    }

    public var serverName = "localhost"
    public var networkName = "SecureChat"
    public var listeners = [Listener(host: "127.0.0.1", port: 21567)]
    public var tls: TLSSettings
    public var usersFile: String
    public var passwordHashing = ScryptParameters.default
    public var motd: String?
    public var limits = Limits()
    /// By default `history.sqlite` next to the users file.
    public var history: HistorySettings
    public var rooms = RoomSettings()
    public var web = WebSettings()
    /// Several nodes on one PostgreSQL (README: "Running several nodes"); nil: a single server
    /// with the users file.
    public var cluster: ClusterSettings?
    /// The file this was read from.
    public var path: String

    public init(path: String, tls: TLSSettings, usersFile: String) {
        self.path = path
        self.tls = tls
        self.usersFile = usersFile
        self.history = HistorySettings(database: Paths.join(Paths.folder(of: usersFile), "history.sqlite"))
    }
}

/// A config file problem: the key at fault and what is expected.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "config file \(path): \(message)" }
}

extension ServerConfiguration {
    /// Reads and checks a config file. `environment` overrides (`SECURECHAT_*`) apply last.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ServerConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(path: path, message: FileManager.default.fileExists(atPath: path)
                ? "cannot be read — check its permissions"
                : "does not exist — pass --config PATH (the repository ships Config/server.json and Config/server.production.example.json)")
        }
        let parsed: Any
        do {
            parsed = try JSONSyntax.parse(Array(data))
        } catch {
            throw ConfigurationError(path: path, message: "not valid JSON at \(error)")
        }
        guard let root = parsed as? [String: Any] else {
            throw ConfigurationError(path: path, message: "the top level must be a JSON object { ... }")
        }
        let folder = Paths.folder(of: Paths.standardized(path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path))
        var reader = Reader(path: path, folder: folder)
        var configuration = try reader.read(root)
        try applyEnvironment(environment, to: &configuration, folder: folder, path: path)
        return configuration
    }

    /// `SECURECHAT_HOST`, `SECURECHAT_PORT` (the first listener), `SECURECHAT_USERS_FILE`,
    /// `SECURECHAT_CERTIFICATE`, `SECURECHAT_PRIVATE_KEY` (paths relative to the current folder).
    static func applyEnvironment(_ environment: [String: String], to configuration: inout ServerConfiguration, folder: String, path: String) throws {
        let cwd = FileManager.default.currentDirectoryPath
        func absolute(_ p: String) -> String { p.hasPrefix("/") ? p : cwd + "/" + p }
        if let host = environment["SECURECHAT_HOST"], !host.isEmpty {
            configuration.listeners[0].host = host
        }
        if let text = environment["SECURECHAT_PORT"], !text.isEmpty {
            guard let port = Int(text), (0...65535).contains(port) else {
                throw ConfigurationError(path: path, message: "environment SECURECHAT_PORT=\(text): expected a port number from 0 to 65535")
            }
            configuration.listeners[0].port = port
        }
        if let value = environment["SECURECHAT_USERS_FILE"], !value.isEmpty { configuration.usersFile = absolute(value) }
        if let value = environment["SECURECHAT_CERTIFICATE"], !value.isEmpty { configuration.tls.certificateChain = absolute(value) }
        if let value = environment["SECURECHAT_PRIVATE_KEY"], !value.isEmpty { configuration.tls.privateKey = absolute(value) }
    }

    /// Walks the JSON object, recording the dotted key path for messages.
    struct Reader {
        let path: String
        let folder: String

        func fail(_ key: String, _ expected: String, _ value: Any?) -> ConfigurationError {
            let shown: String
            if let value { shown = ", got \(describe(value))" } else { shown = "" }
            return ConfigurationError(path: path, message: "\"\(key)\": expected \(expected)\(shown)")
        }

        func describe(_ value: Any) -> String {
            if let s = value as? String { return "\"\(s.prefix(40))\"" }
            if value is JSONNull { return "null" }
            if let b = value as? Bool { return b ? "true" : "false" }
            if let n = value as? JSONNumber { return n.text }
            if value is [Any] { return "a list" }
            if value is [String: Any] { return "an object" }
            return "\(value)"
        }

        func checkKeys(_ object: [String: Any], allowed: [String], at prefix: String) throws {
            for key in object.keys.sorted() where !allowed.contains(key) {
                let near = allowed.first { $0.lowercased() == key.lowercased() }
                throw ConfigurationError(path: path, message: "unknown key \"\(prefix)\(key)\"\(near.map { " — did you mean \"\($0)\"?" } ?? "") (allowed here: \(allowed.joined(separator: ", ")))")
            }
        }

        func string(_ object: [String: Any], _ key: String, at prefix: String, nonEmpty: Bool = true) throws -> String? {
            guard let value = object[key] else { return nil }
            guard let s = value as? String, !(nonEmpty && s.isEmpty) else { throw fail(prefix + key, nonEmpty ? "a non-empty string" : "a string", value) }
            return s
        }

        func bool(_ object: [String: Any], _ key: String, at prefix: String) throws -> Bool? {
            guard let value = object[key] else { return nil }
            guard let b = value as? Bool else { throw fail(prefix + key, "true or false", value) }
            return b
        }

        func integer(_ object: [String: Any], _ key: String, at prefix: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let value = object[key] else { return nil }
            guard let n = JSONNumber.integer(value), range.contains(n) else {
                throw fail(prefix + key, "a whole number from \(range.lowerBound) to \(range.upperBound)", value)
            }
            return n
        }

        func number(_ object: [String: Any], _ key: String, at prefix: String, _ range: ClosedRange<Double>) throws -> Double? {
            guard let value = object[key] else { return nil }
            guard let n = JSONNumber.double(value), range.contains(n) else {
                throw fail(prefix + key, "a number from \(range.lowerBound) to \(range.upperBound)", value)
            }
            return n
        }

        /// `https://host` or `https://host:port`: what a browser sends as Origin.
        static func isOrigin(_ text: String) -> Bool {
            guard text.hasPrefix("https://") || text.hasPrefix("http://") else { return false }
            let rest = text.drop { $0 != "/" }.dropFirst(2)
            return !rest.isEmpty && !rest.contains("/") && !rest.contains(" ") && !rest.contains("?") && !rest.contains("#")
        }

        func resolve(_ p: String) -> String { Paths.standardized(p.hasPrefix("/") ? p : folder + "/" + p) }

        mutating func read(_ root: [String: Any]) throws -> ServerConfiguration {
            try checkKeys(root, allowed: ["serverName", "networkName", "listeners", "tls", "usersFile", "passwordHashing", "motd", "limits", "history", "rooms", "web", "cluster"], at: "")
            guard let tlsObject = root["tls"] else { throw ConfigurationError(path: path, message: "missing \"tls\": name the certificate chain and private key files") }
            guard let tlsTable = tlsObject as? [String: Any] else { throw fail("tls", "an object", tlsObject) }
            try checkKeys(tlsTable, allowed: ["certificateChain", "privateKey", "clientCA", "minimumVersion", "createDevelopmentCertificates"], at: "tls.")
            guard let chain = try string(tlsTable, "certificateChain", at: "tls.") else { throw ConfigurationError(path: path, message: "missing \"tls.certificateChain\": the PEM file with the server certificate (and intermediates)") }
            guard let key = try string(tlsTable, "privateKey", at: "tls.") else { throw ConfigurationError(path: path, message: "missing \"tls.privateKey\": the PEM file with the server's private key") }
            var minimum = TLSVersion.tls12
            if let text = try string(tlsTable, "minimumVersion", at: "tls.") {
                guard let version = TLSVersion(rawValue: text) else { throw fail("tls.minimumVersion", "\"1.2\" or \"1.3\"", text) }
                minimum = version
            }
            let tls = ServerConfiguration.TLSSettings(
                certificateChain: resolve(chain), privateKey: resolve(key),
                clientCA: try string(tlsTable, "clientCA", at: "tls.").map(resolve), minimumVersion: minimum,
                createDevelopmentCertificates: try bool(tlsTable, "createDevelopmentCertificates", at: "tls.") ?? false)
            var configuration = ServerConfiguration(path: path, tls: tls, usersFile: resolve(try string(root, "usersFile", at: "") ?? "users.json"))
            if let name = try string(root, "serverName", at: "") {
                guard !name.contains(" "), !name.contains(":"), name.utf8.count <= 63 else { throw fail("serverName", "a host name without spaces or colons, at most 63 bytes", name) }
                configuration.serverName = name
            }
            if let name = try string(root, "networkName", at: "") {
                guard !name.contains(" "), name.utf8.count <= 63 else { throw fail("networkName", "a name without spaces, at most 63 bytes", name) }
                configuration.networkName = name
            }
            if let value = root["listeners"] {
                guard let list = value as? [Any], !list.isEmpty else { throw fail("listeners", "a non-empty list of {\"host\": ..., \"port\": ...}", value) }
                configuration.listeners = try list.enumerated().map { index, item in
                    let at = "listeners[\(index)]."
                    guard let table = item as? [String: Any] else { throw fail("listeners[\(index)]", "an object {\"host\": ..., \"port\": ...}", item) }
                    try checkKeys(table, allowed: ["host", "port"], at: at)
                    guard let host = try string(table, "host", at: at) else { throw ConfigurationError(path: path, message: "missing \"\(at)host\" (for example \"127.0.0.1\", \"::1\" or \"0.0.0.0\")") }
                    guard let port = try integer(table, "port", at: at, 0...65535) else { throw ConfigurationError(path: path, message: "missing \"\(at)port\" (for example 6697)") }
                    return Listener(host: host, port: port)
                }
            }
            if let value = root["passwordHashing"] {
                guard let table = value as? [String: Any] else { throw fail("passwordHashing", "an object {\"ln\": 15, \"r\": 8, \"p\": 3}", value) }
                try checkKeys(table, allowed: ["ln", "r", "p"], at: "passwordHashing.")
                configuration.passwordHashing = ScryptParameters(
                    ln: try integer(table, "ln", at: "passwordHashing.", ScryptParameters.lnRange) ?? ScryptParameters.default.ln,
                    r: try integer(table, "r", at: "passwordHashing.", ScryptParameters.rRange) ?? ScryptParameters.default.r,
                    p: try integer(table, "p", at: "passwordHashing.", ScryptParameters.pRange) ?? ScryptParameters.default.p)
            }
            if let value = root["motd"] {
                guard let text = value as? String else { throw fail("motd", "a string (lines separated by \\n)", value) }
                configuration.motd = text.isEmpty ? nil : text
            }
            if let value = root["limits"] {
                guard let t = value as? [String: Any] else { throw fail("limits", "an object", value) }
                let p = "limits."
                try checkKeys(t, allowed: ["maxClients", "maxClientsPerAddress", "lineLength", "sendQueueBytes", "handshakeTimeoutSeconds", "registrationTimeoutSeconds", "pingIntervalSeconds", "pingTimeoutSeconds", "roomsPerUser", "messagesPerSecond", "messageBurst", "loginQueue", "loginQueuePerNetwork", "flushIntervalMilliseconds"], at: p)
                var l = ServerConfiguration.Limits()
                l.maxClients = try integer(t, "maxClients", at: p, 1...1_000_000) ?? l.maxClients
                l.maxClientsPerAddress = try integer(t, "maxClientsPerAddress", at: p, 1...1_000_000) ?? l.maxClientsPerAddress
                l.lineLength = try integer(t, "lineLength", at: p, 512...16384) ?? l.lineLength
                l.sendQueueBytes = try integer(t, "sendQueueBytes", at: p, 4096...(1 << 30)) ?? l.sendQueueBytes
                l.handshakeTimeoutSeconds = try number(t, "handshakeTimeoutSeconds", at: p, 0.1...300) ?? l.handshakeTimeoutSeconds
                l.registrationTimeoutSeconds = try number(t, "registrationTimeoutSeconds", at: p, 0.1...3600) ?? l.registrationTimeoutSeconds
                l.pingIntervalSeconds = try number(t, "pingIntervalSeconds", at: p, 0.1...86400) ?? l.pingIntervalSeconds
                l.pingTimeoutSeconds = try number(t, "pingTimeoutSeconds", at: p, 0.1...86400) ?? l.pingTimeoutSeconds
                l.roomsPerUser = try integer(t, "roomsPerUser", at: p, 1...10_000) ?? l.roomsPerUser
                l.messagesPerSecond = try number(t, "messagesPerSecond", at: p, 0.1...1_000_000) ?? l.messagesPerSecond
                l.messageBurst = try integer(t, "messageBurst", at: p, 1...1_000_000) ?? l.messageBurst
                l.loginQueue = try integer(t, "loginQueue", at: p, 0...100_000) ?? l.loginQueue
                l.loginQueuePerNetwork = try integer(t, "loginQueuePerNetwork", at: p, 1...100_000) ?? l.loginQueuePerNetwork
                l.flushIntervalMilliseconds = try number(t, "flushIntervalMilliseconds", at: p, 0...100) ?? l.flushIntervalMilliseconds
                if l.maxClientsPerAddress > l.maxClients {
                    throw ConfigurationError(path: path, message: "\"limits.maxClientsPerAddress\" (\(l.maxClientsPerAddress)) cannot exceed \"limits.maxClients\" (\(l.maxClients))")
                }
                configuration.limits = l
            }
            if let value = root["rooms"] {
                guard let t = value as? [String: Any] else { throw fail("rooms", "an object", value) }
                try checkKeys(t, allowed: ["rejoinOnLogin"], at: "rooms.")
                configuration.rooms.rejoinOnLogin = try bool(t, "rejoinOnLogin", at: "rooms.") ?? true
            }
            if let value = root["web"] {
                guard let t = value as? [String: Any] else { throw fail("web", "an object", value) }
                let p = "web."
                try checkKeys(t, allowed: ["enabled", "allowedOrigins", "hstsSeconds"], at: p)
                configuration.web.enabled = try bool(t, "enabled", at: p) ?? true
                configuration.web.hstsSeconds = try integer(t, "hstsSeconds", at: p, 0...100_000_000) ?? configuration.web.hstsSeconds
                if let list = t["allowedOrigins"] {
                    let expected = "a list of origins like [\"https://chat.example.org\"] (scheme and host, a port if not 443, no path)"
                    guard let origins = list as? [Any] else { throw fail("web.allowedOrigins", expected, list) }
                    configuration.web.allowedOrigins = try origins.map { item in
                        guard let origin = item as? String, Self.isOrigin(origin) else { throw fail("web.allowedOrigins", expected, item) }
                        return origin
                    }
                }
            }
            if let value = root["cluster"] {
                do {
                    configuration.cluster = try ClusterSettings.read(value, folder: folder)
                } catch {
                    throw ConfigurationError(path: path, message: error.message)
                }
            }
            if let value = root["history"] {
                guard let t = value as? [String: Any] else { throw fail("history", "an object", value) }
                let p = "history."
                try checkKeys(t, allowed: ["enabled", "database", "durabilityMilliseconds", "replayOnJoin", "retentionDays", "maxMessagesPerRoom", "roomExpiryDays"], at: p)
                configuration.history.retentionDays = try integer(t, "retentionDays", at: p, 0...100_000) ?? configuration.history.retentionDays
                configuration.history.maxMessagesPerRoom = try integer(t, "maxMessagesPerRoom", at: p, 0...1_000_000_000) ?? configuration.history.maxMessagesPerRoom
                configuration.history.roomExpiryDays = try integer(t, "roomExpiryDays", at: p, 0...100_000) ?? configuration.history.roomExpiryDays
                if let database = try string(t, "database", at: p) { configuration.history.database = resolve(database) }
                if try bool(t, "enabled", at: p) == false { configuration.history.database = nil }
                configuration.history.durabilityMilliseconds = try integer(t, "durabilityMilliseconds", at: p, 0...10_000) ?? configuration.history.durabilityMilliseconds
                configuration.history.replayOnJoin = try integer(t, "replayOnJoin", at: p, 0...500) ?? configuration.history.replayOnJoin
            }
            return configuration
        }
    }
}

import ChatCluster
import Foundation
import Testing
@testable import ChatServer

@Suite struct ConfigurationTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    func load(_ json: String, environment: [String: String] = [:]) throws -> ServerConfiguration {
        let folder = NSTemporaryDirectory() + "securechat-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try json.write(toFile: folder + "/server.json", atomically: true, encoding: .utf8)
        return try ServerConfiguration.load(path: folder + "/server.json", environment: environment)
    }

    func error(_ json: String) -> String {
        do { _ = try load(json); return "no error" } catch { return "\(error)" }
    }

    let minimal = "\"tls\": {\"certificateChain\": \"c.pem\", \"privateKey\": \"k.pem\"}"

    @Test func shippedConfigsLoad() throws {
        let dev = try ServerConfiguration.load(path: Self.repository + "/Config/server.json", environment: [:])
        #expect(dev.listeners == [.init(host: "127.0.0.1", port: 21567)])
        #expect(dev.tls.createDevelopmentCertificates)
        #expect(dev.tls.certificateChain == Self.repository + "/Certs/server.crt")
        #expect(dev.usersFile == Self.repository + "/Config/users.json")
        #expect(dev.passwordHashing == .default)
        let production = try ServerConfiguration.load(path: Self.repository + "/Config/server.production.example.json", environment: [:])
        #expect(!production.tls.createDevelopmentCertificates)
        #expect(production.listeners.contains { $0.host == "0.0.0.0" })
    }

    /// Config/cluster.example.json, with its password file in a temporary folder.
    @Test func theClusterExampleLoads() throws {
        let folder = NSTemporaryDirectory() + "securechat-cluster-example-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "secret\n".write(toFile: folder + "/postgres-password", atomically: true, encoding: .utf8)
        chmod(folder + "/postgres-password", 0o600)
        let text = try String(contentsOfFile: Self.repository + "/Config/cluster.example.json", encoding: .utf8)
            .replacingOccurrences(of: "/etc/securechat/postgres-password", with: folder + "/postgres-password")
        try text.write(toFile: folder + "/server.json", atomically: true, encoding: .utf8)
        let cluster = try #require(try ServerConfiguration.load(path: folder + "/server.json", environment: [:]).cluster)
        #expect(cluster.node == "chat-1")
        #expect(cluster.postgres.host == "db.example.org" && cluster.postgres.database == "securechat")
        #expect(cluster.postgres.security == .verifyFull(.caFile("/etc/securechat/postgres-ca.pem")))
        #expect(cluster.postgres.password?.bytes == Array("secret".utf8))
    }

    @Test func defaultsAndRelativePaths() throws {
        let c = try load("{\(minimal)}")
        #expect(c.tls.certificateChain.hasSuffix("/c.pem") && c.tls.certificateChain.hasPrefix("/"))
        #expect(c.usersFile.hasSuffix("/users.json"))
        #expect(c.limits == ServerConfiguration.Limits())
    }

    @Test func historySettings() throws {
        let c = try load("{\(minimal), \"usersFile\": \"data/users.json\"}")
        #expect(c.history.database?.hasSuffix("/data/history.sqlite") == true)  // next to the users file
        #expect(c.history.durabilityMilliseconds == 100 && c.history.replayOnJoin == 20)
        let d = try load("{\(minimal), \"history\": {\"database\": \"h.db\", \"durabilityMilliseconds\": 0, \"replayOnJoin\": 0}}")
        #expect(d.history.database?.hasSuffix("/h.db") == true && d.history.durabilityMilliseconds == 0 && d.history.replayOnJoin == 0)
        #expect(try load("{\(minimal), \"history\": {\"enabled\": false}}").history.database == nil)
        #expect(c.history.retentionDays == 365 && c.history.maxMessagesPerRoom == 100_000 && c.history.roomExpiryDays == 365)
        let e = try load("{\(minimal), \"history\": {\"retentionDays\": 30, \"maxMessagesPerRoom\": 500, \"roomExpiryDays\": 0}}")
        #expect(e.history.retentionDays == 30 && e.history.maxMessagesPerRoom == 500 && e.history.roomExpiryDays == 0)
        #expect(error("{\(minimal), \"history\": {\"roomExpiryDays\": -1}}").contains("\"history.roomExpiryDays\": expected a whole number from 0"))
        #expect(error("{\(minimal), \"history\": {\"replay\": 5}}").contains("unknown key \"history.replay\""))
        #expect(error("{\(minimal), \"history\": {\"replayOnJoin\": 9000}}").contains("\"history.replayOnJoin\": expected a whole number from 0 to 500"))
    }

    @Test func webSettings() throws {
        let c = try load("{\(minimal)}")
        #expect(c.web.enabled && c.web.allowedOrigins.isEmpty && c.web.hstsSeconds == 31_536_000)
        let d = try load("{\(minimal), \"web\": {\"enabled\": false, \"allowedOrigins\": [\"https://chat.example.org\", \"https://chat.example.org:8443\"], \"hstsSeconds\": 0}}")
        #expect(!d.web.enabled && d.web.allowedOrigins == ["https://chat.example.org", "https://chat.example.org:8443"] && d.web.hstsSeconds == 0)
        #expect(error("{\(minimal), \"web\": {\"allowedOrigins\": [\"https://chat.example.org/app\"]}}")
            .contains("\"web.allowedOrigins\": expected a list of origins like [\"https://chat.example.org\"] (scheme and host, a port if not 443, no path), got \"https://chat.example.org/app\""))
        #expect(error("{\(minimal), \"web\": {\"allowedOrigins\": \"https://chat.example.org\"}}").contains("\"web.allowedOrigins\": expected a list"))
        #expect(error("{\(minimal), \"web\": {\"origins\": []}}").contains("unknown key \"web.origins\""))
        // The defaults: the certificate's names and the server name, on every listener port.
        #expect(Server.defaultOrigins(names: ["localhost", "::1", "*.example.org", "localhost"], ports: [6697, 443]) ==
                ["https://localhost:6697", "https://localhost", "https://[::1]:6697", "https://[::1]"])
    }

    @Test func environmentOverrides() throws {
        let c = try load("{\(minimal)}", environment: ["SECURECHAT_PORT": "7000", "SECURECHAT_HOST": "::1", "SECURECHAT_USERS_FILE": "/srv/users.json"])
        #expect(c.listeners[0] == .init(host: "::1", port: 7000))
        #expect(c.usersFile == "/srv/users.json")
        #expect(throws: ConfigurationError.self) { try load("{\(minimal)}", environment: ["SECURECHAT_PORT": "http"]) }
    }

    @Test func refusalsNameTheKey() {
        #expect(error("{\(minimal), \"listener\": []}").contains("unknown key \"listener\""))
        #expect(error("{\(minimal), \"limits\": {\"maxclients\": 5}}").contains("unknown key \"limits.maxclients\" — did you mean \"maxClients\"?"))
        #expect(error("{\(minimal), \"limits\": {\"maxClients\": \"many\"}}").contains("\"limits.maxClients\": expected a whole number from 1 to 1000000, got \"many\""))
        #expect(error("{\(minimal), \"limits\": {\"maxClients\": 0}}").contains("\"limits.maxClients\": expected a whole number from 1 to 1000000, got 0"))
        #expect(error("{\(minimal), \"limits\": {\"sendQueueBytes\": true}}").contains("got true"))
        #expect(error("{\(minimal), \"listeners\": [{\"host\": \"x\", \"port\": 70000}]}").contains("\"listeners[0].port\": expected a whole number from 0 to 65535, got 70000"))
        #expect(error("{\(minimal), \"tls\": 5}").contains("unknown key") || error("{\"tls\": 5}").contains("\"tls\": expected an object"))
        #expect(error("{}").contains("missing \"tls\""))
        #expect(error("{\"tls\": {\"certificateChain\": \"c\", \"privateKey\": \"k\", \"minimumVersion\": \"1.1\"}}").contains("\"tls.minimumVersion\": expected \"1.2\" or \"1.3\""))
        #expect(error("{\(minimal), \"passwordHashing\": {\"ln\": 99}}").contains("\"passwordHashing.ln\""))
        #expect(error("{\(minimal), \"serverName\": \"a b\"}").contains("\"serverName\""))
        #expect(error("{\(minimal),}").contains("not valid JSON at line 1"))
        #expect(error("{\(minimal), \"limits\": {\"maxClients\": 5, \"maxClientsPerAddress\": 6}}").contains("cannot exceed"))
        #expect(error("{\(minimal), \"limits\": {\"flushIntervalMilliseconds\": -1}}").contains("\"limits.flushIntervalMilliseconds\": expected a number from 0.0 to 100.0, got -1"))
        #expect((try? load("{\(minimal), \"limits\": {\"flushIntervalMilliseconds\": 0}}"))?.limits.flushIntervalMilliseconds == 0)
        #expect("\(ConfigurationError(path: "x", message: "y"))" == "config file x: y")
    }

    @Test func missingFile() {
        do {
            _ = try ServerConfiguration.load(path: "/nonexistent/server.json", environment: [:])
            Issue.record("loaded a missing file")
        } catch {
            #expect("\(error)".contains("does not exist — pass --config PATH"))
        }
    }
}

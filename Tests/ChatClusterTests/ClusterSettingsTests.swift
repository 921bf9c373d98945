import ChatSupport
import ChatTesting
import Foundation
import Testing
import TLS
@testable import ChatCluster

@Suite struct ClusterSettingsTests {
    let folder: String = {
        let folder = NSTemporaryDirectory() + "securechat-cluster-settings-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }()

    func problem(_ object: [String: Any], environment: [String: String] = [:]) -> String {
        do {
            _ = try ClusterSettings.read(object, folder: folder, environment: environment)
            return "accepted"
        } catch {
            return error.message
        }
    }

    @Test func urlsParse() throws {
        let plain = try ClusterSettings.parse(url: "postgresql://chat@db.example.org/securechat")
        #expect(plain.host == "db.example.org" && plain.port == 5432 && plain.user == "chat" && plain.database == "securechat")
        let v6 = try ClusterSettings.parse(url: "postgres://chat@[::1]:6543/chat")
        #expect(v6.host == "::1" && v6.port == 6543)
        #expect(throws: ClusterSettings.Problem.self) { try ClusterSettings.parse(url: "mysql://chat@db/x") }
        #expect(throws: ClusterSettings.Problem.self) { try ClusterSettings.parse(url: "postgresql://db.example.org/x") }
        #expect(throws: ClusterSettings.Problem.self) { try ClusterSettings.parse(url: "postgresql://chat@db.example.org:99999/x") }
        #expect(throws: ClusterSettings.Problem.self) { try ClusterSettings.parse(url: "postgresql://chat@db.example.org") }
    }

    @Test func aPasswordInTheURLIsRefusedWithWhereToPutIt() {
        let message = problem(["node": "a", "database": "postgresql://chat:secret@127.0.0.1/chat"])
        #expect(message.contains("passwordFile"))
        #expect(!message.contains("secret"))
    }

    @Test func tlsIsVerifiedUnlessTheDatabaseIsOnThisMachine() throws {
        let remote = try ClusterSettings.read(["node": "a", "database": "postgresql://chat@db.example.org/chat"], folder: folder)
        #expect(remote.postgres.security == .verifyFull(.system))
        let withCA = try ClusterSettings.read(["node": "a", "database": "postgresql://chat@db.example.org/chat", "caFile": "ca.pem"], folder: folder)
        #expect(withCA.postgres.security == .verifyFull(.caFile(folder + "/ca.pem")))
        #expect(problem(["node": "a", "database": "postgresql://chat@db.example.org/chat", "tls": "disable"]).contains("only for a database on this machine"))
        let local = try ClusterSettings.read(["node": "a", "database": "postgresql://chat@127.0.0.1/chat", "tls": "disable"], folder: folder)
        #expect(local.postgres.security == .disable)
        #expect(problem(["node": "a", "database": "postgresql://chat@127.0.0.1/chat", "tls": "prefer"]).contains("verify-full"))
    }

    @Test func thePasswordComesFromAProtectedFileOrTheEnvironment() throws {
        let file = folder + "/pg-password"
        try "s3cret pass\n".write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
        let base: [String: Any] = ["node": "a", "database": "postgresql://chat@127.0.0.1/chat", "tls": "disable"]
        var object = base
        object["passwordFile"] = "pg-password"
        #expect(problem(object).contains("passwordFile"))  // readable by others: refused
        chmod(file, 0o600)
        let settings = try ClusterSettings.read(object, folder: folder)
        #expect(settings.postgres.password?.bytes == Array("s3cret pass".utf8))
        var fromEnvironment = base
        fromEnvironment["passwordEnvironment"] = "CHAT_PG"
        #expect(problem(fromEnvironment).contains("CHAT_PG is not set"))
        #expect(try ClusterSettings.read(fromEnvironment, folder: folder, environment: ["CHAT_PG": "pw"]).postgres.password?.bytes == Array("pw".utf8))
        object["passwordEnvironment"] = "CHAT_PG"
        #expect(problem(object).contains("not both"))
    }

    @Test func badKeysAndValuesSayWhichAndWhat() {
        #expect(problem(["database": "postgresql://chat@127.0.0.1/chat"]).contains("missing \"cluster.node\""))
        #expect(problem(["node": "a b", "database": "postgresql://chat@127.0.0.1/chat"]).contains("\"cluster.node\""))
        #expect(problem(["node": "a", "database": "postgresql://chat@127.0.0.1/chat", "hartbeatSeconds": 1]).contains("unknown key \"cluster.hartbeatSeconds\""))
        #expect(problem(["node": "a", "database": "postgresql://chat@127.0.0.1/chat", "heartbeatSeconds": 5, "heartbeatTimeoutSeconds": 6]).contains("at least 3"))
    }
}

import ChatAuth
import ChatSupport
import ChatTesting
import Foundation
import Testing

/// The web app in Debian's Chromium, driven by Selenium (Tests/Browser/web_app_test.py), against
/// the chat-server executable, which the script restarts once: two browser users in a room and
/// privately, a user on a plain IRC socket, chat-client in script mode, wrong password and locked
/// account, keyboard-only sign-in, payloads in messages and the topic that must stay text, the
/// composer's keys, a dropped connection and a server restart with nothing missed or doubled,
/// older messages on scrolling up, a phone's width, the CSP blocking an inline script, and no
/// console errors.
extension ExternalClientTests {
@Suite(.serialized) struct WebAppBrowserTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Browser/web_app_test.py").path

    /// In CI (CI=true) the test always runs, so a missing browser fails it instead of skipping it.
    /// (Checked before any Python runs: a first `import selenium` on a fresh machine compiles the
    /// package for seconds, and the check blocks a thread that every other test needs.)
    static var shouldRun: Bool {
        if ProcessInfo.processInfo.environment["CI"] != nil { return true }
        return FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver")
            && ChildProcess.run(["python3", "-c", "import selenium"]).status == 0
    }

    /// A config on a free port and a users file with the script's accounts ("NAME password").
    static func prepare() throws -> (config: String, port: Int) {
        let folder = NSTemporaryDirectory() + "securechat-browser-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let port = ChatServerProcessTests.freePort()
        let certs = TestServer.certificates
        try """
        { "listeners": [ { "host": "127.0.0.1", "port": \(port) } ],
          "tls": { "certificateChain": "\(certs.certificatePath)", "privateKey": "\(certs.keyPath)" },
          "usersFile": "users.json", "passwordHashing": { "ln": 4, "r": 8, "p": 1 },
          "limits": { "messagesPerSecond": 200, "messageBurst": 200 } }
        """.write(toFile: folder + "/server.json", atomically: true, encoding: .utf8)
        let store = UsersStore(path: folder + "/users.json")
        try store.update { database in
            for name in ["alice", "dave", "bob", "erin", "carol"] {
                let hash = try PasswordHash.make(password: Password("\(name) password"), parameters: TestServer.testHashing)
                try database.add(Account(name: name, hash: hash.phc, created: "t", updated: "t", locked: name == "carol"))
            }
        }
        return (folder + "/server.json", port)
    }

    @Test(.enabled(if: shouldRun, "needs chromium, chromium-driver and selenium (apt-get install chromium chromium-driver; pip install selenium)"))
    func theWebAppInARealBrowser() async throws {
        let (config, port) = try Self.prepare()
        // Benchmarks/web-bench.sh runs it against release builds.
        let environment = ProcessInfo.processInfo.environment
        var arguments = [
            "python3", Self.script,
            "--server", environment["SECURECHAT_SERVER_BINARY"] ?? TestBinaries.path("chat-server"),
            "--client", environment["SECURECHAT_CLIENT_BINARY"] ?? TestBinaries.path("chat-client"),
            "--config", config, "--port", "\(port)", "--ca", TestServer.certificates.caCertificatePath,
            "--cert", TestServer.certificates.certificatePath,
        ]
        // ... and asks for screenshots and timings.
        if let folder = environment["SECURECHAT_SCREENSHOTS"] { arguments += ["--screenshots", folder] }
        if let file = environment["SECURECHAT_WEB_TIMINGS"] { arguments += ["--timings", file] }
        let run = await ChildProcess.runDetached(arguments, timeout: 600)
        #expect(run.status == 0, "web_app_test.py:\n\(run.output)")
    }
}
}

import ChatTesting
import Foundation
import Testing

/// The web app in Debian's Chromium, driven by Selenium (Tests/Browser/web_app_test.py): sign-in
/// with a wrong and a right password, joining, messages both ways with a second user on a plain
/// IRC socket, markup staying text, links, /me, Shift+Enter, Tab completion, ↑, the topic,
/// private messages, the reconnect with catch-up, older messages on scrolling up, a phone's width,
/// and no console errors (a Content-Security-Policy violation would be one).
@Suite(.serialized) struct WebAppBrowserTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Browser/web_app_test.py").path

    /// In CI (CI=true) the test always runs, so a missing browser fails it instead of skipping it.
    static var shouldRun: Bool {
        let haveBrowser = FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver")
            && ChildProcess.run(["python3", "-c", "import selenium"]).status == 0
        return haveBrowser || ProcessInfo.processInfo.environment["CI"] != nil
    }

    @Test(.enabled(if: shouldRun, "needs chromium, chromium-driver and selenium (apt-get install chromium chromium-driver; pip install selenium)"))
    func theWebAppInARealBrowser() async throws {
        let server = try await TestServer.start(accounts: [("alice", "alice's web password"), ("bob", "bob password")])
        let run = ChildProcess.run([
            "python3", Self.script, "--port", "\(server.port)", "--ca", server.caPath,
            "--cert", TestServer.certificates.certificatePath,
            "--alice", "alice:alice's web password", "--bob", "bob:bob password",
        ], timeout: 400)
        #expect(run.status == 0, "web_app_test.py:\n\(run.output)")
        #expect(server.logs.contains("logged in account=alice"))
        await server.stop()
    }
}

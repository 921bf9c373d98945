import ChatTesting
import Foundation
import Testing

/// IRC over WebSocket checked with Python's `websockets` (Tests/Browser/websocket_conformance.py),
/// an implementation that shares no code with the server: subprotocols, text and binary frames,
/// fragmentation, ping/pong, 1009 for oversize, 1007 for a text frame that is not UTF-8, and a
/// missing or foreign Origin refused.
@Suite struct WebSocketConformanceTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Browser/websocket_conformance.py").path

    /// In CI (CI=true) the test always runs, so a missing library fails it instead of skipping it.
    /// (In CI without running Python: a first import on a fresh machine takes seconds on a thread
    /// every other test needs.)
    static var shouldRun: Bool {
        ProcessInfo.processInfo.environment["CI"] != nil || ChildProcess.run(["python3", "-c", "import websockets"]).status == 0
    }

    @Test(.enabled(if: shouldRun, "needs Python's websockets (pip install websockets)"))
    func pythonWebsocketsAgreesWithTheServer() async throws {
        let server = try await TestServer.start(accounts: [("alice", "alice password")])
        let run = await ChildProcess.runDetached(["python3", Self.script, "--port", "\(server.port)", "--ca", server.caPath, "--account", "alice:alice password"], timeout: 120)
        #expect(run.status == 0, "websocket_conformance.py:\n\(run.output)")
        await server.stop()
    }
}

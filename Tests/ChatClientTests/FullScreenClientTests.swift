import ChatTesting
import Foundation
import Testing

/// The full-screen client in tmux, as a person uses it, read with capture-pane: windows and
/// unread marks, switching, a line longer than the terminal, a long message split, a private
/// message, resizing, and a paste. Every wait is for something on the screen or on the server.
@Suite(.serialized) struct FullScreenClientTests {
    static func run(_ arguments: [String]) -> String { ChildProcess.run(arguments).output }

    /// Stops the tmux server of `session` (see `Screen`) and removes its socket file.
    static func endTmux(_ session: String) {
        _ = run(["tmux", "-L", session, "kill-server"])
        let folder = ProcessInfo.processInfo.environment["TMUX_TMPDIR"] ?? "/tmp"
        try? FileManager.default.removeItem(atPath: "\(folder)/tmux-\(getuid())/\(session)")
    }

    /// Each test has a tmux server of its own (`-L` the session's name): with one shared server,
    /// the last session killed by one test stops the server while another test's `new-session`
    /// is starting, and that test waits for a screen that never comes (seen once under load).
    final class Screen: Sendable {
        let session: String
        init(session: String) { self.session = session }
        func text() -> String { FullScreenClientTests.run(["tmux", "-L", session, "capture-pane", "-t", session, "-p"]) }
        var rows: [String] { text().split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
        func keys(_ keys: String...) { _ = FullScreenClientTests.run(["tmux", "-L", session, "send-keys", "-t", session] + keys) }
        func type(_ text: String) { _ = FullScreenClientTests.run(["tmux", "-L", session, "send-keys", "-t", session, "-l", text]) }
        @discardableResult
        func wait(for text: String, timeout: Double = 20, sourceLocation: SourceLocation = #_sourceLocation) async -> String {
            if await waitUntil(timeout: timeout, { self.text().contains(text) }) { return text }
            Issue.record("the screen never showed '\(text)':\n\(self.text())", sourceLocation: sourceLocation)
            return self.text()
        }
        /// The status line: the row above the input line.
        var status: String { let r = rows.filter { !$0.isEmpty }; return r.count >= 2 ? r[r.count - 2] : "" }
    }

    func start(_ server: TestServer, width: Int, height: Int, name: String) -> Screen {
        let session = "securechat-fs-\(name)-\(getpid())"
        let command = "CHAT_PASSWORD='\(alice.1)' \(ClientProcess.binary) --host localhost --port \(server.port) --ca \(server.caPath) --user alice --room lobby"
        _ = Self.run(["tmux", "-L", session, "new-session", "-d", "-s", session, "-x", "\(width)", "-y", "\(height)", command])
        return Screen(session: session)
    }

    @Test(.enabled(if: TerminalClientTests.tmuxAvailable, "needs tmux (apt-get install tmux)"))
    func twoRoomsUnreadMarksSwitchingAndLongLines() async throws {
        let server = try await TestServer.start(accounts: [alice, bob])
        let screen = start(server, width: 100, height: 30, name: "rooms")
        defer { Self.endTmux(screen.session) }
        await screen.wait(for: "-!- alice joined")
        #expect(screen.status.contains("[alice]") && screen.status.contains("[2:#lobby]") && screen.status.contains("[connected]"), "status: \(screen.status)")
        let b = try await server.loggedIn(bob.0, bob.1)
        try await b.send("JOIN #lobby")
        screen.type("/join dev")
        screen.keys("Enter")
        await screen.wait(for: "[3:#dev]")
        // Three messages in #lobby while #dev is on screen, one naming alice: counted and marked.
        for text in ["first", "second", "alice: are you there?"] { try await b.send("PRIVMSG #lobby :\(text)") }
        #expect(await waitUntil(timeout: 20) { screen.status.contains("2:#lobby(3)!") }, "status: \(screen.status)")
        #expect(!screen.text().contains("are you there"))  // not in #dev's window
        screen.keys("M-2")
        await screen.wait(for: "<bob> alice: are you there?")
        #expect(screen.status.contains("[2:#lobby]") && !screen.status.contains("Act:"), "status: \(screen.status)")

        // A private message gets a window of its own, marked.
        try await b.send("PRIVMSG alice :psst")
        #expect(await waitUntil(timeout: 20) { screen.status.contains("4:bob(1)!") }, "status: \(screen.status)")

        // A line longer than the terminal: one input row, scrolled sideways, sent whole.
        let long = (0..<22).map { "word\($0)" }.joined(separator: " ") + " " + String(repeating: "x", count: 40)
        screen.type(long)
        await screen.wait(for: String(long.suffix(30)))
        let inputRows = screen.rows.filter { $0.hasPrefix("[#lobby]") }
        #expect(inputRows.count == 1, "input rows:\n\(inputRows.joined(separator: "\n"))")
        screen.keys("Enter")
        #expect(try await b.next("PRIVMSG").parameters == ["#lobby", long])

        // 495 bytes: split at a space into two messages that fit the server's limit, nothing lost.
        let words = (0..<99).map { _ in "abcd" }.joined(separator: " ")
        screen.type(words)
        screen.keys("Enter")
        let one = try await b.next("PRIVMSG").parameters[1]
        let two = try await b.next("PRIVMSG").parameters[1]
        #expect(one + " " + two == words)
        #expect(screen.text().contains("417") == false)

        // History: ↑ brings back the last line.
        screen.keys("Up")
        await screen.wait(for: "[#lobby] abcd abcd")
        screen.keys("C-u")
        screen.keys("C-d")
        #expect(try await b.next("QUIT").source?.hasPrefix("alice!") == true)
        await server.stop()
    }

    @Test(.enabled(if: TerminalClientTests.tmuxAvailable, "needs tmux (apt-get install tmux)"))
    func aMistypedPasswordIsAskedAgain() async throws {
        let server = try await TestServer.start(accounts: [alice])
        let session = "securechat-fs-password-\(getpid())"
        let command = "\(ClientProcess.binary) --host localhost --port \(server.port) --ca \(server.caPath) --user alice --room lobby"
        _ = Self.run(["tmux", "-L", session, "new-session", "-d", "-s", session, "-x", "100", "-y", "30", command])
        let screen = Screen(session: session)
        defer { Self.endTmux(session) }
        await screen.wait(for: "Password for alice:")
        screen.type("not the password")
        screen.keys("Enter")
        await screen.wait(for: "wrong account name or password — try again (2 of 3)")
        screen.type(alice.1)
        screen.keys("Enter")
        await screen.wait(for: "-!- alice joined")
        screen.keys("C-d")
        await server.stop()
    }

    @Test(.enabled(if: TerminalClientTests.tmuxAvailable, "needs tmux (apt-get install tmux)"))
    func smallWindowResizeAndAPasteThatAsksFirst() async throws {
        let server = try await TestServer.start(accounts: [alice, bob])
        let screen = start(server, width: 100, height: 30, name: "small")
        defer { Self.endTmux(screen.session) }
        await screen.wait(for: "-!- alice joined")
        let b = try await server.loggedIn(bob.0, bob.1)
        try await b.send("JOIN #lobby")
        _ = Self.run(["tmux", "-L", screen.session, "resize-window", "-t", screen.session, "-x", "40", "-y", "15"])
        try await b.send("PRIVMSG #lobby :a message long enough to wrap at forty columns, twice over at least")
        #expect(await waitUntil(timeout: 20) { screen.text().replacingOccurrences(of: "\n", with: "").contains("twice over at least") },
                "screen:\n\(screen.text())")
        let rows = screen.rows.filter { !$0.isEmpty }
        #expect(rows.allSatisfy { $0.count <= 40 }, "rows:\n\(rows.joined(separator: "\n"))")
        #expect(rows.count <= 15)
        #expect(screen.status.hasPrefix("[alice] [2:#lobby]"), "status: \(screen.status)")
        // At 40 columns a long line still takes one row, scrolled sideways.
        let long = String(repeating: "abcdefghi ", count: 8) + "the end"
        screen.type(long)
        await screen.wait(for: "the end")
        #expect(screen.rows.filter { $0.hasPrefix("[#lobby]") }.count == 1, "screen:\n\(screen.text())")
        screen.keys("Enter")
        #expect(try await b.next("PRIVMSG").parameters == ["#lobby", long])

        // A paste of 30 lines asks first; Enter sends them, paced, and a command typed meanwhile
        // is answered at once instead of waiting behind them.
        let lines = (1...30).map { "pasted line \($0)" }
        _ = Self.run(["tmux", "-L", screen.session, "set-buffer", "-b", "p", lines.joined(separator: "\n") + "\n"])
        _ = Self.run(["tmux", "-L", screen.session, "paste-buffer", "-p", "-b", "p", "-t", screen.session])
        await screen.wait(for: "paste of 30")
        screen.keys("Enter")
        #expect(try await b.next("PRIVMSG").parameters == ["#lobby", "pasted line 1"])
        screen.type("/who")
        screen.keys("Enter")
        await screen.wait(for: "2 here")
        var received = 1
        while let message = try? await b.next("PRIVMSG", timeout: 30) {
            received += 1
            if message.parameters[1] == "pasted line 30" { break }
        }
        #expect(received == 30)
        screen.keys("C-d")
        await server.stop()
    }

    @Test(.enabled(if: TerminalClientTests.tmuxAvailable, "needs tmux (apt-get install tmux)"))
    func backlogOnJoinAndTheReadMarkerOfTheWindowInFront() async throws {
        let server = try await TestServer.start(accounts: [alice, bob])
        let b = try await server.loggedIn(bob.0, bob.1)
        try await b.send("JOIN #lobby")
        try await b.send("PRIVMSG #lobby :said before alice came")
        try await b.send("PING sync")
        try await b.next("PONG") { $0.command == "PONG" }
        let screen = start(server, width: 100, height: 30, name: "backlog")
        defer { Self.endTmux(screen.session) }
        await screen.wait(for: "<bob> said before alice came")
        // The window in front is read: its marker reaches the server within a few seconds.
        #expect(await waitUntil(timeout: 20) { server.server.history?.readMarker(account: "alice", target: "#lobby") != nil })
        screen.type("/history 5")
        screen.keys("Enter")
        await screen.wait(for: "no earlier messages in #lobby")
        screen.keys("C-c")
        await server.stop()
    }
}

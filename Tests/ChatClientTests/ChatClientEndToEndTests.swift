import ChatSupport
import ChatAuth
import ChatTesting
import Foundation
import Testing
import TLS
@testable import ChatClient

/// `chat-client` as a separate process in script mode, against a real server on loopback.
final class ClientProcess: @unchecked Sendable {
    let child: ChildProcess

    static var binary: String { TestBinaries.path("chat-client") }

    init(_ arguments: [String], password: String?) throws {
        var environment = ProcessInfo.processInfo.environment
        environment["CHAT_PASSWORD"] = password
        // No Config/client.json in the temporary folder.
        child = try ChildProcess([Self.binary] + arguments, environment: environment, directory: NSTemporaryDirectory(), input: true, output: .separate)
    }

    var stdout: String { child.output }
    var stderr: String { child.errors }
    var lines: [String] { stdout.split(separator: "\n").map(String.init) }

    func type(_ line: String) { child.write(line + "\n") }
    func endInput() { child.closeInput() }

    /// Waits for an output line containing `text`.
    @discardableResult
    func waitFor(_ text: String, timeout: Double = 15) async throws -> String {
        if await waitUntil(timeout: timeout, { lines.contains { $0.contains(text) } }), let line = lines.first(where: { $0.contains(text) }) {
            return line
        }
        throw TestIRCClient.Timeout(waitingFor: "'\(text)' from chat-client", received: lines + ["stderr: " + stderr])
    }

    /// The exit status; a client still running after `timeout` seconds is killed (and the status says so).
    func exitStatus(timeout: Double = 15) async -> Int32 { await child.waitForExit(timeout: timeout) }
}

let alice = ("alice", "alice password")
let bob = ("bob", "bob password!")

@Suite struct ChatClientEndToEndTests {
    func client(_ server: TestServer, _ account: (String, String), room: String? = nil, extra: [String] = []) throws -> ClientProcess {
        var arguments = ["--host", "localhost", "--port", "\(server.port)", "--ca", server.caPath, "--user", account.0]
        if let room { arguments += ["--room", room] }
        return try ClientProcess(arguments + extra, password: account.1)
    }

    @Test func scriptModeChatsInARoomAndPrivately() async throws {
        let server = try await TestServer.start(accounts: [alice, bob])
        let a = try client(server, alice, room: "lobby")
        try await a.waitFor("#lobby -!- alice joined")
        let b = try await server.loggedIn(bob.0, bob.1)
        try await b.send("JOIN #lobby")
        try await a.waitFor("#lobby -!- bob joined")
        try await b.send("PRIVMSG #lobby :hello alice")
        let line = try await a.waitFor("<bob> hello alice")
        #expect(line.hasSuffix(" #lobby <bob> hello alice"))
        #expect(line.first?.isNumber == true)  // the server's time first
        // Formatting from irssi or WeeChat users is removed in script mode; other controls shown.
        try await b.send("PRIVMSG #lobby :\u{2}bold\u{2} and \u{3}4red\u{3} and \u{7}bell")
        try await a.waitFor("<bob> bold and red and ^Gbell")
        a.type("hello bob")
        #expect(try await b.next("PRIVMSG").parameters == ["#lobby", "hello bob"])
        try await a.waitFor("#lobby <alice> hello bob")  // echo-message: shown with the server's time
        try await b.send("PRIVMSG alice :psst")
        try await a.waitFor("@bob <bob> psst")
        a.type("/msg bob private reply")
        #expect(try await b.next("PRIVMSG").parameters == ["bob", "private reply"])
        a.type("/me waves")
        #expect(try await b.next("PRIVMSG").parameters.last == "\u{1}ACTION waves\u{1}")
        a.type("/topic Our room")
        try await a.waitFor("#lobby -!- alice set the topic: Our room")
        a.type("/topic")
        try await a.waitFor("#lobby -!- topic: Our room")
        a.type("/who")
        try await a.waitFor("#lobby -!- 2 here: @alice bob")
        a.type("/join dev")
        try await a.waitFor("#dev -!- alice joined")
        a.type("in dev now")
        a.type("/switch lobby")
        a.type("back in the lobby")
        #expect(try await b.next("lobby message") { $0.command == "PRIVMSG" && $0.parameters[0] == "#lobby" }.parameters.last == "back in the lobby")
        a.type("/rooms")
        try await a.waitFor("#dev -!- 1 member")
        try await a.waitFor("#lobby -!- 2 members: Our room")
        a.type("/away lunch")
        try await a.waitFor("You have been marked as being away")
        a.type("/part dev")
        try await a.waitFor("#dev -!- alice left")
        a.type("/nonsense")
        try await a.waitFor("unknown command /nonsense")
        a.type("/quit bye all")
        #expect(try await b.next("QUIT").parameters == ["Quit: bye all"])
        #expect(await a.exitStatus() == 0)
        await server.stop()
    }

    @Test func endOfInputQuitsCleanly() async throws {
        let server = try await TestServer.start(accounts: [alice])
        let a = try client(server, alice, room: "#r")
        try await a.waitFor("#r -!- alice joined")
        a.endInput()
        #expect(await a.exitStatus() == 0)
        await server.stop()
    }

    @Test func wrongPasswordExits5() async throws {
        let server = try await TestServer.start(accounts: [alice])
        let a = try ClientProcess(["--host", "localhost", "--port", "\(server.port)", "--ca", server.caPath, "--user", "alice"], password: "nope nope")
        #expect(await a.exitStatus() == 5)
        #expect(a.stderr.contains("login failed: wrong account name or password"))
        await server.stop()
    }

    @Test func lockedAccountExits6() async throws {
        let server = try await TestServer.start()
        try server.addAccount("locked", password: "right password", locked: true)
        let a = try client(server, ("locked", "right password"))
        #expect(await a.exitStatus() == 6)
        #expect(a.stderr.contains("locked"))
        await server.stop()
    }

    @Test func unknownCAExits4WithAHint() async throws {
        let server = try await TestServer.start(accounts: [alice])
        let a = try ClientProcess(["--host", "localhost", "--port", "\(server.port)", "--user", "alice"], password: alice.1)
        #expect(await a.exitStatus() == 4)
        #expect(a.stderr.contains("certificate verify failed: unable to get local issuer certificate — is the server's CA in --ca?"))
        await server.stop()
    }

    @Test func wrongHostNameExits4AndSaysWhoTheCertificateIsFor() async throws {
        let ca = try CertificateAuthority.load(certificatePath: TestServer.certificates.caCertificatePath, keyPath: TestServer.certificates.caKeyPath)
        let folder = NSTemporaryDirectory() + "securechat-othername-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let leaf = try ca.issueServerCertificate(names: ["chat.example.org"])
        try SecretFile.writeAtomically(Array(leaf.certificate.pem().utf8), to: folder + "/server.crt", mode: 0o644)
        try SecretFile.writeAtomically(Array(leaf.key.pem().utf8), to: folder + "/server.key", mode: 0o600)
        let server = try await TestServer.start(accounts: [alice]) {
            $0.tls.certificateChain = folder + "/server.crt"
            $0.tls.privateKey = folder + "/server.key"
        }
        let a = try client(server, alice)
        #expect(await a.exitStatus() == 4)
        #expect(a.stderr.contains("the server's certificate is for chat.example.org, not localhost"))
        await server.stop()
    }

    @Test func serverGoneExits8AndNothingListeningExits3() async throws {
        let server = try await TestServer.start(accounts: [alice])
        let port = server.port
        let a = try client(server, alice, room: "#r")
        try await a.waitFor("#r -!- alice joined")
        await server.stop()
        try await a.waitFor("server: Server shutting down")
        #expect(await a.exitStatus() == 8)
        let b = try ClientProcess(["--host", "localhost", "--port", "\(port)", "--ca", TestServer.certificates.caCertificatePath, "--user", "alice"], password: alice.1)
        #expect(await b.exitStatus() == 3)
        #expect(b.stderr.contains("connection refused"))
    }

    @Test func reconnectsWithBackoffAndRejoinsItsRooms() async throws {
        let server = try await TestServer.start(accounts: [alice])
        let port = server.port
        let a = try client(server, alice, room: "#back", extra: ["--reconnect"])
        try await a.waitFor("#back -!- alice joined")
        // Another room joined, then back to the first: that one stays current after the reconnect.
        a.type("/join dev")
        try await a.waitFor("#dev -!- alice joined")
        a.type("/switch back")
        try await a.waitFor("now talking in #back")
        await server.stop()
        try await a.waitFor("disconnected: Server shutting down")
        try await a.waitFor("reconnecting in 1 s")
        let again = try await TestServer.start(accounts: [alice]) { $0.listeners[0].port = port }
        try again.addAccount(bob.0, password: bob.1)
        try await a.waitFor("reconnected as alice", timeout: 30)
        _ = await waitUntil { a.lines.filter({ $0.contains("#back -!- alice joined") }).count >= 2 }
        #expect(a.lines.filter { $0.contains("#back -!- alice joined") }.count == 2)  // rejoined
        _ = await waitUntil { a.lines.filter({ $0.contains("#dev -!- alice joined") }).count >= 2 }
        let b = try await again.loggedIn(bob.0, bob.1)
        try await b.send("JOIN #back")
        try await b.next("366")
        try await b.send("PRIVMSG #back :welcome back")
        try await a.waitFor("#back <bob> welcome back")
        a.type("still in #back")
        #expect(try await b.next("PRIVMSG").parameters == ["#back", "still in #back"])
        a.endInput()
        #expect(await a.exitStatus() == 0)
        await again.stop()
    }

    @Test func signedInElsewhereItStopsInsteadOfTakingTheSessionBack() async throws {
        let server = try await TestServer.start(accounts: [alice])
        let a = try client(server, alice, room: "#twice", extra: ["--reconnect"])
        try await a.waitFor("#twice -!- alice joined")
        // The same account signs in from another client: the older session ends, and with
        // --reconnect it must not sign in again (the two would take turns for ever).
        let other = try await server.loggedIn(alice.0, alice.1)
        try await a.waitFor("disconnected: Closing link: logged in from another connection")
        try await a.waitFor("not reconnecting: this account signed in from another connection")
        #expect(await a.exitStatus() == 8)
        #expect(!a.lines.contains { $0.contains("reconnecting in") })
        try await other.send("PING still-here")
        #expect(try await other.next("PONG").parameters.last == "still-here")
        await server.stop()
    }

    @Test func aFailingReconnectExplainsOnceThenCounts() async throws {
        let server = try await TestServer.start(accounts: [alice])
        let a = try client(server, alice, room: "#gone", extra: ["--reconnect"])
        try await a.waitFor("#gone -!- alice joined")
        await server.stop()
        try await a.waitFor("reconnect failed again (attempt 2)", timeout: 30)
        #expect(a.lines.filter { $0.contains("reconnect failed:") }.count == 1)
        #expect(a.lines.first { $0.contains("reconnect failed:") }?.contains("connection refused") == true)
        a.child.signal(SIGKILL)
        _ = await a.exitStatus(timeout: 10)
    }

    @Test func passwordFileReadableByOthersIsRefused() async throws {
        let path = NSTemporaryDirectory() + "securechat-pw-\(UUID().uuidString)"
        try "secret password\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o644)
        let a = try ClientProcess(["--user", "alice", "--password-file", path, "--ca", TestServer.certificates.caCertificatePath], password: nil)
        #expect(await a.exitStatus() == 2)
        #expect(a.stderr.contains("chmod 600 \(path)"))
    }

    @Test func insecureWarnsOnEveryStart() async throws {
        let server = try await TestServer.start(accounts: [alice])
        let a = try ClientProcess(["--host", "localhost", "--port", "\(server.port)", "--user", "alice", "--insecure", "--room", "#x"], password: alice.1)
        try await a.waitFor("#x -!- alice joined")
        #expect(a.stderr.contains("WARNING: --insecure"))
        a.endInput()
        #expect(await a.exitStatus() == 0)
        await server.stop()
    }

    @Test func libraryConnectionGivesEvents() async throws {
        let server = try await TestServer.start(accounts: [alice, bob])
        let connection = try await ChatConnection.connect(ChatClientOptions(
            host: "localhost", port: server.port, account: "ALICE", password: Password(alice.1), trust: .caFile(server.caPath)))
        #expect(connection.nick == "alice")
        #expect(connection.tls.version == "TLSv1.3")
        try await connection.send("JOIN #lib")
        var iterator = connection.events.makeAsyncIterator()
        while let event = await iterator.next() {
            if case let .joined(_, room, nick) = event, room == "#lib", nick == "alice" { break }
        }
        await connection.quit(reason: "done")
        #expect(!connection.isConnected)
        await server.stop()
    }
}

/// The terminal client's line mode (`--line`) in tmux, as a person uses it: a message arrives
/// while a line is being typed, and the typed text stays intact on the screen.
@Suite(.serialized) struct TerminalClientTests {
    static func run(_ arguments: [String]) -> String { ChildProcess.run(arguments).output }

    static var tmuxAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") || ProcessInfo.processInfo.environment["CI"] != nil
    }

    @Test(.enabled(if: tmuxAvailable, "needs tmux (apt-get install tmux)"))
    func incomingMessageDoesNotGarbleTheTypedLine() async throws {
        let server = try await TestServer.start(accounts: [alice, bob])
        let session = "securechat-client-\(getpid())"
        let command = "CHAT_PASSWORD='\(alice.1)' \(ClientProcess.binary) --host localhost --port \(server.port) --ca \(server.caPath) --user alice --room lobby --line"
        _ = Self.run(["tmux", "-L", session, "new-session", "-d", "-s", session, "-x", "120", "-y", "20", command])
        defer { FullScreenClientTests.endTmux(session) }
        func screen() -> String { Self.run(["tmux", "-L", session, "capture-pane", "-t", session, "-p"]) }
        func waitForScreen(_ text: String) async throws -> String {
            if await waitUntil(timeout: 15, { screen().contains(text) }) { return screen() }
            Issue.record("the screen never showed '\(text)':\n\(screen())")
            return screen()
        }
        _ = try await waitForScreen("#lobby -!- alice joined")
        _ = Self.run(["tmux", "-L", session, "send-keys", "-t", session, "-l", "I am in the middle of typ"])
        _ = try await waitForScreen("[#lobby] I am in the middle of typ")
        let b = try await server.loggedIn(bob.0, bob.1)
        try await b.send("JOIN #lobby")
        try await b.send("PRIVMSG #lobby :an interruption from bob")
        let shown = try await waitForScreen("<bob> an interruption from bob")
        let lines = shown.split(separator: "\n").map(String.init).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        // bob's message sits above, and the last line is the prompt with the typed text intact.
        #expect(lines.last == "[#lobby] I am in the middle of typ")
        #expect(lines.contains { $0.hasSuffix("#lobby <bob> an interruption from bob") })
        _ = Self.run(["tmux", "-L", session, "send-keys", "-t", session, "-l", "ing a line"])
        _ = Self.run(["tmux", "-L", session, "send-keys", "-t", session, "Enter"])
        #expect(try await b.next("PRIVMSG").parameters == ["#lobby", "I am in the middle of typing a line"])
        // A line longer than the terminal scrolls sideways on its one row: no stale copies.
        let long = String(repeating: "0123456789", count: 17) + "end"
        _ = Self.run(["tmux", "-L", session, "send-keys", "-t", session, "-l", long])
        _ = try await waitForScreen("789end")
        #expect(screen().split(separator: "\n").filter { $0.hasPrefix("[#lobby]") }.count == 1, "screen:\n\(screen())")
        _ = Self.run(["tmux", "-L", session, "send-keys", "-t", session, "Enter"])
        #expect(try await b.next("PRIVMSG").parameters == ["#lobby", long])
        _ = Self.run(["tmux", "-L", session, "send-keys", "-t", session, "C-d"])
        #expect(try await b.next("QUIT").source?.hasPrefix("alice!") == true)
        await server.stop()
    }
}

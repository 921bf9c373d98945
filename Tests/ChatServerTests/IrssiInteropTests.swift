import ChatTesting
import Foundation
import Testing

/// Tools found on PATH, for the interop test.
enum InteropTools {
    static func find(_ name: String) -> String? {
        for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(folder)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// In CI (CI=true) the test always runs, so a missing irssi fails it instead of skipping it.
    static var shouldRun: Bool {
        (find("irssi") != nil && find("tmux") != nil) || ProcessInfo.processInfo.environment["CI"] != nil
    }

    @discardableResult
    static func run(_ arguments: [String]) -> (status: Int32, output: String) { ChildProcess.run(arguments) }
}

/// irssi, a client nobody here wrote, logs in over TLS with SASL PLAIN, joins a room and talks
/// with our test client. irssi runs in tmux, driven with send-keys and read with capture-pane.
extension ExternalClientTests {
@Suite(.serialized) struct IrssiInteropTests {
    @Test(.enabled(if: InteropTools.shouldRun, "needs irssi and tmux (apt-get install irssi tmux)"))
    func irssiLogsInWithSASLAndChats() async throws {
        #expect(InteropTools.find("irssi") != nil, "irssi is not installed: apt-get install irssi")
        #expect(InteropTools.find("tmux") != nil, "tmux is not installed: apt-get install tmux")
        let server = try await TestServer.start(accounts: [("alice", "alice password"), ("bob", "irssi's password")], logLevel: .trace)
        let home = NSTemporaryDirectory() + "securechat-irssi-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        // irssi matches only DNS names in certificates, so it connects to "localhost". One window
        // for everything, so the screen shows the room.
        try """
        servers = ( { address = "localhost"; chatnet = "securechat"; port = "\(server.port)"; use_tls = "yes";
                      tls_verify = "yes"; tls_cafile = "\(server.caPath)"; autoconnect = "yes"; } );
        chatnets = { securechat = { type = "IRC"; sasl_mechanism = "PLAIN"; sasl_username = "bob"; sasl_password = "irssi's password"; }; };
        channels = ( { name = "#interop"; chatnet = "securechat"; autojoin = "yes"; } );
        settings = { core = { real_name = "Bob on irssi"; user_name = "bob"; nick = "bob"; };
                     "fe-common/core" = { autocreate_windows = "no"; }; };
        """.write(toFile: home + "/config", atomically: true, encoding: .utf8)
        let session = "securechat-irssi-\(getpid())"
        let alice = try await server.loggedIn("alice", "alice password")
        try await alice.send("JOIN #interop")
        try await alice.next("366")
        // Said before bob comes: replayed when irssi joins, and kept for him while he is offline.
        try await alice.send("PRIVMSG #interop :said before irssi came")
        try await alice.send("PRIVMSG bob :kept while you were offline")
        try await alice.next("301") { $0.command == "301" }

        let started = InteropTools.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "40", "irssi --home=\(home)"])
        #expect(started.status == 0, "tmux: \(started.output)")
        defer {
            InteropTools.run(["tmux", "kill-session", "-t", session])
            try? FileManager.default.removeItem(atPath: home)
        }
        let join = try await alice.next("irssi's JOIN", timeout: 30) { $0.command == "JOIN" }
        #expect(join.source?.hasPrefix("bob!") == true)
        #expect(server.logs.contains("logged in account=bob"))

        func capture() -> String { InteropTools.run(["tmux", "capture-pane", "-t", session, "-p"]).output }
        // What bob missed: the room's backlog and the private message.
        #expect(await waitUntil(timeout: 30) { capture().contains("said before irssi came") && capture().contains("kept while you were offline") },
                "irssi's screen:\n\(capture())")
        try await alice.send("PRIVMSG #interop :hello irssi, this is alice")
        _ = await waitUntil(timeout: 30) { capture().contains("hello irssi, this is alice") }
        let screen = capture()
        #expect(screen.contains("alice> hello irssi, this is alice") || screen.contains("hello irssi, this is alice"), "irssi's screen:\n\(screen)")

        InteropTools.run(["tmux", "send-keys", "-t", session, "hello alice, from irssi", "Enter"])
        let reply = try await alice.next("irssi's message", timeout: 20) { $0.command == "PRIVMSG" }
        #expect(reply.source?.hasPrefix("bob!") == true)
        #expect(reply.parameters == ["#interop", "hello alice, from irssi"])
        // bob joined alice's room as a non-operator; irssi's channel sync on join (MODE #interop b
        // among others) was answered before his message, and showed him no error.
        let afterJoin = capture()
        #expect(!afterJoin.contains("not a room operator") && !afterJoin.contains("482"), "irssi's screen:\n\(afterJoin)")

        // irssi syncs a joined room with WHOX (`WHO #interop %tcuhnfdar,743`): the fields come in
        // the order its token expects, so it shows none of them as an unknown reply.
        #expect(await waitUntil(timeout: 30) { server.logs.contains("command WHO #interop %") }, "irssi sent no WHOX: \(server.logs.all.filter { $0.contains("command") })")
        InteropTools.run(["tmux", "send-keys", "-t", session, "/who #interop", "Enter"])
        #expect(await waitUntil(timeout: 20) { capture().contains("alice@user/alice") }, "irssi's screen:\n\(capture())")
        let synced = capture()
        #expect(!synced.contains("743") && !synced.contains("354"), "irssi showed a WHOX reply raw:\n\(synced)")
        InteropTools.run(["tmux", "send-keys", "-t", session, "/quit leaving", "Enter"])
        #expect(try await alice.next("irssi's QUIT", timeout: 20) { $0.command == "QUIT" }.parameters.first?.contains("leaving") == true)
        await server.stop()
    }

    /// irssi logs in with a client certificate (SASL EXTERNAL), as the README says to set it up:
    /// the certificate and key from `chat-client cert init`, `-sasl_mechanism EXTERNAL`.
    @Test(.enabled(if: InteropTools.shouldRun, "needs irssi and tmux (apt-get install irssi tmux)"))
    func irssiLogsInWithAClientCertificate() async throws {
        let server = try await TestServer.start(accounts: [("alice", "alice password"), ("bob", "an unused password")])
        let home = NSTemporaryDirectory() + "securechat-irssi-cert-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        let made = InteropTools.run([TestBinaries.path("chat-client"), "cert", "init", "--dir", home + "/cert", "--name", "bob"])
        #expect(made.status == 0, "\(made.output)")
        let fingerprint = try #require(made.output.split(separator: "\n").first { $0.hasPrefix("SHA-256 fingerprint: ") }?.split(separator: " ").last.map(String.init))
        try server.store.update { try $0.modify("bob") { $0.certificates = [fingerprint] } }
        #expect(await waitUntil { server.server.directory.lookup(certificate: fingerprint) != nil })  // the server's watcher saw it
        try """
        servers = ( { address = "localhost"; chatnet = "securechat"; port = "\(server.port)"; use_tls = "yes";
                      tls_verify = "yes"; tls_cafile = "\(server.caPath)"; tls_cert = "\(home)/cert/client.crt";
                      tls_pkey = "\(home)/cert/client.key"; autoconnect = "yes"; } );
        chatnets = { securechat = { type = "IRC"; sasl_mechanism = "EXTERNAL"; }; };
        channels = ( { name = "#cert"; chatnet = "securechat"; autojoin = "yes"; } );
        settings = { core = { real_name = "Bob on irssi"; user_name = "bob"; nick = "bob"; }; };
        """.write(toFile: home + "/config", atomically: true, encoding: .utf8)
        let alice = try await server.loggedIn("alice", "alice password")
        try await alice.send("JOIN #cert")
        try await alice.next("366")
        let session = "securechat-irssi-cert-\(getpid())"
        let started = InteropTools.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "40", "irssi --home=\(home)"])
        #expect(started.status == 0, "tmux: \(started.output)")
        defer { InteropTools.run(["tmux", "kill-session", "-t", session]) }
        let join = try await alice.next("irssi's JOIN with a certificate", timeout: 30) { $0.command == "JOIN" }
        #expect(join.source == "bob!bob@user/bob")
        #expect(server.logs.contains("logged in account=bob"))
        await server.stop()
    }

    /// irssi without SASL, with the README's one-line PASS form:
    /// `/connect -tls -tls_verify -tls_cafile CA localhost PORT "bob:password"`.
    @Test(.enabled(if: InteropTools.shouldRun, "needs irssi and tmux (apt-get install irssi tmux)"))
    func irssiLogsInWithPASSAsTheReadmeSays() async throws {
        let server = try await TestServer.start(accounts: [("alice", "alice password"), ("bob", "bobs-password")])
        let home = NSTemporaryDirectory() + "securechat-irssi-pass-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try "settings = { core = { real_name = \"Bob\"; user_name = \"bob\"; nick = \"bob\"; }; };\n".write(toFile: home + "/config", atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: home) }
        let alice = try await server.loggedIn("alice", "alice password")
        try await alice.send("JOIN #pass")
        try await alice.next("366")
        let session = "securechat-irssi-pass-\(getpid())"
        let started = InteropTools.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "40", "irssi --home=\(home)"])
        #expect(started.status == 0, "tmux: \(started.output)")
        defer { InteropTools.run(["tmux", "kill-session", "-t", session]) }
        func capture() -> String { InteropTools.run(["tmux", "capture-pane", "-t", session, "-p"]).output }
        _ = await waitUntil(timeout: 30) { capture().contains("Irssi") }
        InteropTools.run(["tmux", "send-keys", "-t", session, "-l",
                          "/connect -tls -tls_verify -tls_cafile \(server.caPath) localhost \(server.port) \"bob:bobs-password\""])
        InteropTools.run(["tmux", "send-keys", "-t", session, "Enter"])
        #expect(await waitUntil(timeout: 30) { server.logs.contains("logged in account=bob") }, "irssi's screen:\n\(capture())")
        InteropTools.run(["tmux", "send-keys", "-t", session, "-l", "/join #pass"])
        InteropTools.run(["tmux", "send-keys", "-t", session, "Enter"])
        #expect(try await alice.next("irssi's JOIN", timeout: 30) { $0.command == "JOIN" }.source == "bob!bob@user/bob")
        await server.stop()
    }
}
}

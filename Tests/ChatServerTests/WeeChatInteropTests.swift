import ChatTesting
import Foundation
import Testing

/// WeeChat 3.8 (`weechat-headless`, a client nobody here wrote) set up as the README says: TLS
/// verified against the CA, SASL PLAIN. It is driven through its FIFO and read through its log
/// files and the server's trace log: it logs in, joins, chats, asks for userhost-in-names, and
/// uses MONITOR for its notify list.
extension ExternalClientTests {
@Suite(.serialized) struct WeeChatInteropTests {
    static var shouldRun: Bool {
        InteropTools.find("weechat-headless") != nil || ProcessInfo.processInfo.environment["CI"] != nil
    }

    @Test(.enabled(if: shouldRun, "needs weechat-headless (apt-get install weechat-headless)"))
    func weechatLogsInChatsAndMonitors() async throws {
        let weechat = try #require(InteropTools.find("weechat-headless"), "weechat-headless is not installed: apt-get install weechat-headless")
        let server = try await TestServer.start(accounts: [("alice", "alice password"), ("bob", "weechat's password"), ("carol", "carol password")],
                                                logLevel: .trace)
        let home = NSTemporaryDirectory() + "securechat-weechat-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let alice = try await server.loggedIn("alice", "alice password")
        try await alice.send("JOIN #interop")
        try await alice.next("366")
        // Said before bob comes: replayed when WeeChat joins, and kept for him while he is offline.
        try await alice.send("PRIVMSG #interop :said before weechat came")
        try await alice.send("PRIVMSG bob :kept while you were offline")
        try await alice.next("301") { $0.command == "301" }

        // A FIFO to drive WeeChat and logs written at once; then the README's steps, typed
        // through the FIFO (options given with -r would be evaluated, ${sec.data…} included).
        let setup = ["/set fifo.file.path \(home)/fifo", "/set logger.file.flush_delay 0", "/set logger.file.path \(home)/logs"]
        // Its log goes to a pipe, not /dev/null: with --stdout WeeChat locks its log (flock), and a
        // lock on /dev/null is machine-wide, so one WeeChat left running anywhere kept every other
        // from starting ("unable to create/append to log file").
        let child = try ChildProcess([weechat, "--dir", home, "--stdout", "-r", setup.joined(separator: ";")], input: true)
        defer {
            child.signal(SIGTERM)
            child.finish(timeout: 10)
            try? FileManager.default.removeItem(atPath: home)
        }
        struct FIFOError: Error, CustomStringConvertible { let description: String }
        /// Writes lines to WeeChat's FIFO. WeeChat reopens its end after each writer leaves; until it
        /// has, opening fails with ENXIO, so that is retried (for up to 20 s).
        func tell(_ lines: String...) async throws {
            var fd: Int32 = -1
            _ = await waitUntil(timeout: 20) {
                fd = open(home + "/fifo", O_WRONLY | O_NONBLOCK)
                return fd >= 0 || errno != ENXIO
            }
            guard fd >= 0 else { throw FIFOError(description: "cannot open WeeChat's FIFO \(home)/fifo: \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            let bytes = Array(lines.map { $0 + "\n" }.joined().utf8)
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        }
        let fifo = await waitUntil(timeout: 120) { FileManager.default.fileExists(atPath: home + "/fifo") || child.status != nil }
        #expect(fifo && child.status == nil, "WeeChat made no FIFO\(child.status.map { "; it exited with status \($0): \(child.output.suffix(2000))" } ?? "")")
        let readme = [
            "/set weechat.network.gnutls_ca_user \"\(server.caPath)\"",
            "/server add securechat localhost/\(server.port) -ssl",
            "/set irc.server.securechat.ssl_verify on",
            "/set irc.server.securechat.nicks bob",
            "/set irc.server.securechat.sasl_mechanism plain",
            "/set irc.server.securechat.sasl_username bob",
            "/secure set securechat weechat's password",  // the rest of the line, spaces and all
            "/set irc.server.securechat.sasl_password \"${sec.data.securechat}\"",
            "/set irc.server.securechat.sasl_fail disconnect",
            "/set irc.server.securechat.autojoin #interop",
            "/connect securechat",
        ]
        for command in readme { try await tell("core.weechat *" + command) }
        let join = try await alice.next("WeeChat's JOIN", timeout: 30) { $0.command == "JOIN" }
        #expect(join.source == "bob!bob@user/bob")
        let login = server.logs.all.first { $0.contains("logged in account=bob") } ?? ""
        #expect(login.contains("userhost-in-names") && login.contains("sasl"), "WeeChat's capabilities: \(login)")

        let log = home + "/logs/irc.securechat.#interop.weechatlog"
        func logged() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        // What bob missed: the room's backlog, and the private message in alice's buffer.
        #expect(await waitUntil(timeout: 30) { logged().contains("said before weechat came") }, "WeeChat's log:\n\(logged())")
        let privateLog = home + "/logs/irc.securechat.alice.weechatlog"
        #expect(await waitUntil(timeout: 30) { ((try? String(contentsOfFile: privateLog, encoding: .utf8)) ?? "").contains("kept while you were offline") },
                "WeeChat's logs: \((try? FileManager.default.contentsOfDirectory(atPath: home + "/logs")) ?? [])")
        try await alice.send("PRIVMSG #interop :hello weechat, this is alice")
        #expect(await waitUntil(timeout: 30) { logged().contains("hello weechat, this is alice") }, "WeeChat's log:\n\(logged())")

        try await tell("irc.securechat.#interop *hello alice, from weechat")
        let reply = try await alice.next("WeeChat's message", timeout: 20) { $0.command == "PRIVMSG" }
        #expect(reply.parameters == ["#interop", "hello alice, from weechat"])
        // NAMES with userhost-in-names gave WeeChat the members' hosts.
        #expect(logged().contains("bob") && !logged().contains("353"))

        // WeeChat's notify list uses MONITOR when the server offers it.
        try await tell("irc.server.securechat */notify add carol")
        #expect(await waitUntil(timeout: 20) { server.logs.contains("command MONITOR + carol") }, "WeeChat's commands: \(server.logs.all.filter { $0.contains("command") })")
        let carol = try await server.loggedIn("carol", "carol password")
        let serverLog = home + "/logs/irc.server.securechat.weechatlog"
        func serverLogged() -> String { (try? String(contentsOfFile: serverLog, encoding: .utf8)) ?? "" }
        #expect(await waitUntil(timeout: 20) { serverLogged().contains("carol") && serverLogged().contains("has connected") },
                "WeeChat's server buffer:\n\(serverLogged())")
        await carol.close()

        // The password is in WeeChat's secured data, not in irc.conf.
        try await tell("core.weechat */save")
        #expect(await waitUntil(timeout: 20) { ((try? String(contentsOfFile: home + "/irc.conf", encoding: .utf8)) ?? "").contains("sec.data.securechat") })
        #expect(!((try? String(contentsOfFile: home + "/irc.conf", encoding: .utf8)) ?? "weechat's password").contains("weechat's password"))

        try await tell("irc.server.securechat */quit leaving")
        #expect(try await alice.next("WeeChat's QUIT", timeout: 20) { $0.command == "QUIT" }.parameters.first?.contains("leaving") == true)
        await server.stop()
    }
}
}

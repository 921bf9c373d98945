import ChatAuth
import ChatTesting
import Foundation
import IRC
import Logging
import NIOCore
import NIOPosix
import Testing
import TLS
@testable import ChatServer

let alice = ("alice", "alice password")
let bob = ("bob", "bob password!")
let carol = ("carol", "carol password")

/// Login and registration through real TLS.
@Suite struct LoginTests {
    @Test func saslLoginWelcomesWithTheAccountName() async throws {
        let server = try await TestServer.start(accounts: [alice])
        let client = try await server.client()
        let welcome = try await client.register(account: "ALICE", password: alice.1, nick: "al")
        #expect(welcome.command == "001" && welcome.parameters[0] == "alice")
        let received = client.received.map(\.command)
        #expect(received.contains("900") && received.contains("903"))
        #expect(client.received.contains { $0.command == "NICK" && $0.source?.hasPrefix("al!") == true && $0.parameters == ["alice"] })
        for numeric in ["002", "003", "004", "005"] { try await client.next(numeric) }
        try await client.next("376")  // every 005 line has come before the end of the MOTD
        let isupport = client.received.filter { $0.command == "005" }.flatMap(\.parameters)
        #expect(isupport.contains("CASEMAPPING=ascii") && isupport.contains("CHANMODES=b,k,l,imnst") && isupport.contains("PREFIX=(ov)@+") && isupport.contains("NICKLEN=32"))
        #expect(server.logs.contains("logged in account=alice address=127.0.0.1"))
        #expect(!server.logs.all.joined().contains(alice.1))
        await server.stop()
    }

    @Test func passLoginForClientsWithoutSASL() async throws {
        let server = try await TestServer.start(accounts: [bob])
        let client = try await server.client()
        #expect(try await client.register(account: "bob", password: bob.1, usePASS: true).command == "001")
        await server.stop()
    }

    @Test func wrongPasswordAndUnknownAccountLookTheSame() async throws {
        let server = try await TestServer.start(accounts: [alice])
        var replies: [String] = []
        for (account, password) in [("alice", "not the password"), ("nobody", "not the password")] {
            let client = try await server.client()
            _ = try? await client.register(account: account, password: password)
            let fail = try #require(client.received.first { $0.command == "FAIL" })
            let numeric = try #require(client.received.first { $0.command == "904" })
            replies.append("\(fail.parameters) \(numeric.parameters.dropFirst())")
            #expect(!client.received.contains { $0.command == "001" })
            await client.close()
        }
        #expect(replies[0] == replies[1])
        #expect(replies[0].contains("INVALID_CREDENTIALS"))
        await server.stop()
    }

    @Test func lockedAccountIsRefusedWithItsOwnCode() async throws {
        let server = try await TestServer.start()
        try server.addAccount("dave", password: "dave password", locked: true)
        let client = try await server.client()
        _ = try? await client.register(account: "dave", password: "dave password")
        #expect(client.received.first { $0.command == "FAIL" }?.parameters[1] == "ACCOUNT_LOCKED")
        await server.stop()
    }

    @Test func noLoginNoChat() async throws {
        let server = try await TestServer.start(accounts: [alice])
        let client = try await server.client()
        try await client.send("NICK alice")
        try await client.send("USER alice 0 * :A")
        try await client.next("464")
        let error = try await client.next("ERROR")
        #expect(error.parameters[0].contains("Login required"))
        #expect(await client.waitUntilClosed())
        await server.stop()
    }

    @Test func threeFailuresCloseTheConnection() async throws {
        let server = try await TestServer.start(accounts: [alice])
        let client = try await server.client()
        try await client.send("CAP LS 302")
        try await client.send("CAP REQ sasl")
        for _ in 0..<3 {
            try await client.send("AUTHENTICATE PLAIN")
            try await client.next("AUTHENTICATE") { $0.command == "AUTHENTICATE" }
            try await client.send("AUTHENTICATE " + SASLPlain.encode(account: "alice", password: Array("guess".utf8)))
            try await client.next("904")
        }
        #expect(try await client.next("ERROR").parameters == ["Too many failed login attempts"])
        #expect(await client.waitUntilClosed())
        await server.stop()
    }

    @Test func accountAddedWhileRunningLogsInAtOnce() async throws {
        let server = try await TestServer.start()
        try server.addAccount("erin", password: "erin password")
        let client = try await server.client()
        #expect(try await client.register(account: "erin", password: "erin password").command == "001")
        await server.stop()
    }

    @Test func newLoginReplacesTheOldConnection() async throws {
        let server = try await TestServer.start(accounts: [alice, bob])
        let first = try await server.loggedIn(alice.0, alice.1)
        let watcher = try await server.loggedIn(bob.0, bob.1)
        try await first.send("JOIN #room")
        try await watcher.send("JOIN #room")
        try await first.next("366")
        try await watcher.next("366")
        let second = try await server.loggedIn(alice.0, alice.1)
        let error = try await first.next("ERROR")
        #expect(error.parameters[0] == "Closing link: logged in from another connection")
        #expect(await first.waitUntilClosed())
        #expect(try await watcher.next("QUIT").source?.hasPrefix("alice!") == true)
        try await second.send("PRIVMSG bob :still here")
        #expect(try await watcher.next("PRIVMSG").parameters == ["bob", "still here"])
        await server.stop()
    }
}

/// Rooms, messages, modes and information commands between logged-in clients.
@Suite struct ChatTests {
    @Test func roomBroadcastTopicNamesAndPart() async throws {
        let server = try await TestServer.start(accounts: [alice, bob, carol])
        let a = try await server.loggedIn(alice.0, alice.1)
        let b = try await server.loggedIn(bob.0, bob.1)
        let c = try await server.loggedIn(carol.0, carol.1)
        try await a.send("JOIN #Lobby")
        #expect(try await a.next("JOIN").parameters == ["#Lobby"])
        #expect(try await a.next("353").parameters.last == "@alice")
        try await a.send("TOPIC #lobby :Welcome all")
        try await a.next("TOPIC")
        for client in [b, c] {
            try await client.send("JOIN #lobby")
            #expect(try await client.next("332").parameters.last == "Welcome all")
            try await client.next("333")
            try await client.next("366")
        }
        try await c.send("NAMES #lobby")
        #expect(try await c.next("353").parameters.last == "@alice bob carol")
        try await b.send("PRIVMSG #lobby :hello room")
        for client in [a, c] {
            let m = try await client.next("PRIVMSG")
            #expect(m.parameters == ["#Lobby", "hello room"] || m.parameters == ["#lobby", "hello room"])
            #expect(m.source == "bob!bob@user/bob")
        }
        #expect(!b.received.contains { $0.command == "PRIVMSG" })  // no echo without echo-message
        try await c.send("PART #lobby :bye now")
        #expect(try await a.next("PART").parameters.last == "bye now")
        try await b.send("QUIT :gone home")
        #expect(try await a.next("QUIT").parameters == ["Quit: gone home"])
        try await a.send("PART #lobby")
        try await a.next("PART")
        try await a.send("LIST")
        try await a.next("321")
        try await a.next("323")
        #expect(!a.received.contains { $0.command == "322" })  // the empty room disappeared
        await server.stop()
    }

    @Test func privateMessagesAndAway() async throws {
        let server = try await TestServer.start(accounts: [alice, bob])
        let a = try await server.loggedIn(alice.0, alice.1)
        let b = try await server.loggedIn(bob.0, bob.1)
        try await a.send("PRIVMSG Bob :psst")
        #expect(try await b.next("PRIVMSG").parameters == ["Bob", "psst"])
        try await b.send("AWAY :at lunch")
        try await b.next("306")
        try await a.send("PRIVMSG bob :are you there?")
        #expect(try await a.next("301").parameters.last == "at lunch")
        try await a.send("NOTICE bob :just a notice")
        try await b.next("NOTICE")
        try await a.send("PRIVMSG nobody :hello")
        #expect(try await a.next("401").parameters[1] == "nobody")
        try await b.send("AWAY")
        try await b.next("305")
        try await a.send("PRIVMSG")
        try await a.next("411")
        try await a.send("PRIVMSG bob")
        try await a.next("412")
        await server.stop()
    }

    @Test func modesKickInviteAndTheirNumerics() async throws {
        let server = try await TestServer.start(accounts: [alice, bob, carol])
        let a = try await server.loggedIn(alice.0, alice.1)
        let b = try await server.loggedIn(bob.0, bob.1)
        let c = try await server.loggedIn(carol.0, carol.1)
        try await a.send("JOIN #ops")
        try await a.next("366")
        try await a.send("MODE #ops")
        #expect(try await a.next("324").parameters == ["alice", "#ops", "+nt"])
        // +n: outsiders cannot send.
        try await c.send("PRIVMSG #ops :from outside")
        try await c.next("404")
        // +k: a key.
        try await a.send("MODE #ops +k sesame")
        #expect(try await a.next("MODE").parameters == ["#ops", "+k", "sesame"])
        try await b.send("JOIN #ops")
        try await b.next("475")
        try await b.send("JOIN #ops sesame")
        try await b.next("366")
        // +t: only operators set the topic.
        try await b.send("TOPIC #ops :mine")
        try await b.next("482")
        try await b.send("MODE #ops +i")
        try await b.next("482")
        // +o, then bob may.
        try await a.send("MODE #ops +o bob")
        #expect(try await b.next("MODE").parameters == ["#ops", "+o", "bob"])
        try await b.send("TOPIC #ops :mine")
        try await a.next("TOPIC")
        // +i: invite only.
        try await a.send("MODE #ops -k+i *")
        try await a.next("MODE")
        try await c.send("JOIN #ops")
        try await c.next("473")
        try await a.send("INVITE carol #ops")
        #expect(try await a.next("341").parameters == ["alice", "carol", "#ops"])
        #expect(try await c.next("INVITE").parameters == ["carol", "#ops"])
        try await c.send("JOIN #ops")
        try await c.next("366")
        try await a.send("INVITE carol #ops")
        try await a.next("443")
        // KICK.
        try await c.send("KICK #ops bob")
        try await c.next("482")
        try await a.send("KICK #ops carol :enough")
        #expect(try await c.next("KICK").parameters == ["#ops", "carol", "enough"])
        try await c.send("PRIVMSG #ops :still here?")
        try await c.next("404")
        try await a.send("KICK #ops carol")
        try await a.next("441")
        try await a.send("MODE #ops +z")
        try await a.next("472")
        try await a.send("MODE alice")
        try await a.next("221")
        await server.stop()
    }

    @Test func informationCommands() async throws {
        let server = try await TestServer.start(accounts: [alice, bob])
        let a = try await server.loggedIn(alice.0, alice.1)
        let b = try await server.loggedIn(bob.0, bob.1)
        try await a.send("JOIN #info")
        try await a.next("366")
        try await b.send("JOIN #info")
        try await b.next("366")
        try await a.send("WHO #info")
        let who = try await a.next("352")
        #expect(who.parameters[1] == "#info" && who.parameters[5] == "alice" && who.parameters[6] == "H@")
        try await a.next("315")
        try await a.send("WHOIS bob")
        #expect(try await a.next("311").parameters[1] == "bob")
        #expect(try await a.next("319").parameters.last == "#info")
        #expect(try await a.next("330").parameters[2] == "bob")
        try await a.next("318")
        try await a.send("WHOIS nobody")
        try await a.next("401")
        try await a.send("LIST")
        #expect(try await a.next("322").parameters[1...2] == ["#info", "2"])
        try await a.send("MOTD")
        #expect(try await a.next("372").parameters.last == "- Test server.")
        try await a.send("PING token123")
        #expect(try await a.next("PONG").parameters.last == "token123")
        try await a.send("FROBNICATE now")
        #expect(try await a.next("421").parameters[1] == "FROBNICATE")
        try await a.send("JOIN")
        #expect(try await a.next("461").parameters[1] == "JOIN")
        try await a.send("NICK someoneelse")
        try await a.next("432")
        try await a.send("JOIN bad,room")
        try await a.next("403")
        await server.stop()
    }

    @Test func ircv3Capabilities() async throws {
        let server = try await TestServer.start(accounts: [alice, bob])
        let caps = ["server-time", "message-tags", "echo-message", "account-tag", "extended-join", "away-notify", "multi-prefix"]
        let a = try await server.loggedIn(alice.0, alice.1, capabilities: caps)
        let b = try await server.loggedIn(bob.0, bob.1)
        try await a.send("JOIN #v3")
        try await a.next("366")
        try await b.send("JOIN #v3")
        let join = try await a.next("JOIN")
        #expect(join.parameters == ["#v3", "bob", "Test bob"])  // extended-join
        #expect(join.tag("time")?.hasSuffix("Z") == true)      // server-time
        #expect(join.tag("account") == "bob")                   // account-tag
        try await b.send("@+draft/reply=x PRIVMSG #v3 :tagged")
        let relayed = try await a.next("PRIVMSG")
        #expect(relayed.tag("+draft/reply") == "x")              // message-tags
        try await a.send("PRIVMSG #v3 :echo me")
        #expect(try await a.next("PRIVMSG").parameters.last == "echo me")  // echo-message
        let plain = try await b.next("PRIVMSG")
        #expect(plain.tags.isEmpty)                              // bob asked for no caps
        try await b.send("AWAY :brb")
        #expect(try await a.next("AWAY").parameters == ["brb"])  // away-notify
        try await a.send("@+typing=active TAGMSG #v3")
        try await b.send("PING sync")
        try await b.next("PONG")
        #expect(!b.received.contains { $0.command == "TAGMSG" })
        try await a.send("CAP LIST")
        #expect(try await a.next("CAP").parameters.last?.contains("echo-message") == true)
        await server.stop()
    }

    @Test func fiveHundredClientsInOneRoomAllReceive() async throws {
        let count = 500
        let server = try await TestServer.start(accounts: [alice]) {
            $0.limits.maxClients = 1000
            $0.limits.loginQueue = 1000  // all 500 log in at once, from one address
            $0.limits.loginQueuePerNetwork = 1000
            $0.limits.handshakeTimeoutSeconds = 120  // 500 handshakes at once on a slow (sanitized) build
        }
        for i in 0..<count { try server.addAccount("user\(i)", password: "password\(i)") }
        let clients = try await withThrowingTaskGroup(of: TestIRCClient.self) { group in
            for i in 0..<count {
                group.addTask {
                    let client = try await server.loggedIn("user\(i)", "password\(i)")
                    try await client.send("JOIN #crowd")
                    try await client.next("366", timeout: 60)
                    return client
                }
            }
            var all: [TestIRCClient] = []
            for try await client in group { all.append(client) }
            return all
        }
        let sender = try await server.loggedIn(alice.0, alice.1)
        try await sender.send("JOIN #crowd")
        try await sender.next("366", timeout: 60)
        try await sender.send("PRIVMSG #crowd :hello, all five hundred")
        var delivered = 0
        for client in clients {
            if (try? await client.next("the message", timeout: 30) { $0.command == "PRIVMSG" && $0.parameters.last == "hello, all five hundred" }) != nil {
                delivered += 1
            }
        }
        #expect(delivered == count)
        for client in clients { await client.close() }
        await server.stop()
    }
}

/// Moderation and presence over real TLS: MONITOR, a moderated room with voice, a ban.
@Suite struct ModerationEndToEndTests {
    @Test func monitorModerationAndABanThroughTLS() async throws {
        let server = try await TestServer.start(accounts: [alice, bob, carol])
        let a = try await server.loggedIn(alice.0, alice.1, capabilities: ["multi-prefix"])
        try await a.send("MONITOR + carol")
        #expect(try await a.next("731").parameters == ["alice", "carol"])
        let c = try await server.loggedIn(carol.0, carol.1)
        #expect(try await a.next("730").parameters == ["alice", "carol!carol@user/carol"])

        try await a.send("JOIN #quiet")
        try await a.next("366")
        try await a.send("MODE #quiet +m")
        try await a.next("MODE")
        let b = try await server.loggedIn(bob.0, bob.1)
        for client in [b, c] {
            try await client.send("JOIN #quiet")
            try await client.next("366")
        }
        try await b.send("PRIVMSG #quiet :can anyone hear me?")
        #expect(try await b.next("404").parameters[1] == "#quiet")
        try await a.send("MODE #quiet +v bob")
        #expect(try await b.next("MODE").parameters == ["#quiet", "+v", "bob"])
        try await b.send("PRIVMSG #quiet :now you can")
        #expect(try await c.next("PRIVMSG").parameters == ["#quiet", "now you can"])
        try await a.send("NAMES #quiet")
        #expect(try await a.next("353").parameters.last == "@alice +bob carol")

        try await a.send("MODE #quiet +b carol")
        try await a.send("KICK #quiet carol :out")
        #expect(try await c.next("KICK").parameters[1] == "carol")
        try await c.send("JOIN #quiet")
        #expect(try await c.next("474").parameters[1] == "#quiet")
        try await c.send("QUIT :gone")
        #expect(try await a.next("731").parameters == ["alice", "carol"])
        await server.stop()
    }
}

/// The operator flow over TLS: OPER, WALLOPS, KILL, KLINE that ends a session, survives into a
/// new server on the same users file, and is lifted with chat-admin; each act logged.
@Suite struct OperatorEndToEndTests {
    @Test func operKillWallopsAndAServerBanThroughTLS() async throws {
        let server = try await TestServer.start(accounts: [alice, bob, carol], operators: ["alice"])
        let a = try await server.loggedIn(alice.0, alice.1)
        let b = try await server.loggedIn(bob.0, bob.1)
        try await b.send("OPER bob \(bob.1)")
        #expect(try await b.next("491").parameters.first == "bob")
        try await a.send("OPER alice wrong")
        try await a.next("464")
        try await a.send("OPER alice \(alice.1)")
        #expect(try await a.next("381").parameters == ["alice", "You are now an IRC operator"])
        #expect(try await a.next("MODE").parameters == ["alice", "+o"])

        try await b.send("MODE bob +w")
        try await b.next("MODE")
        try await a.send("WALLOPS :restart at noon")
        #expect(try await b.next("WALLOPS").parameters == ["restart at noon"])

        let c = try await server.loggedIn(carol.0, carol.1)
        for client in [b, c] {
            try await client.send("JOIN #r")
            try await client.next("366")
        }
        try await a.send("KILL carol :flooding")
        #expect(try await c.next("ERROR").parameters == ["Killed by alice (flooding)"])
        #expect(try await b.next("QUIT").parameters == ["Killed by alice (flooding)"])

        try await a.send("KLINE 1h bob :spam")
        #expect(try await b.next("ERROR").parameters == ["Banned: spam"])
        #expect(try await a.next("NOTICE").parameters[1].hasPrefix("Added server ban on bob until "))
        let refused = try await server.client()
        #expect(try await refused.register(account: bob.0, password: bob.1, usePASS: true).command == "ERROR")
        #expect(refused.received.contains { $0.command == "464" })
        #expect(refused.received.contains { $0.command == "465" && $0.parameters[1].hasPrefix("You are banned from this server: spam (until ") })

        // A server started afresh on the same users file keeps the ban.
        var logger = Logger(label: "second")
        logger.logLevel = .critical
        var configuration = server.server.configuration
        configuration.listeners = [.init(host: "127.0.0.1", port: 0)]
        let second = try Server(configuration: configuration, logger: logger, group: MultiThreadedEventLoopGroup.singleton)
        try await second.start()
        let viaSecond = try await TestIRCClient.connect(port: second.boundPorts[0], caPath: server.caPath)
        #expect(try await viaSecond.register(account: bob.0, password: bob.1, usePASS: true).command == "ERROR")
        #expect(viaSecond.received.contains { $0.command == "465" })
        await second.shutdown(timeout: .seconds(1))

        // chat-admin lifts it; the running server sees the file change at the next login.
        let lifted = ChildProcess.run([TestBinaries.path("chat-admin"), "ban", "remove", "bob", "--users-file", server.store.path])
        #expect(lifted.status == 0)
        let back = try await server.client()
        #expect(try await back.register(account: bob.0, password: bob.1).command == "001")

        for line in ["OPER refused: the account has no operator role", "OPER refused: wrong password", "OPER: now a server operator",
                     "WALLOPS: restart at noon", "KILL carol", "KLINE bob until "] {
            #expect(server.logs.contains("operator action: \(line)"), "log lacks: \(line)")
        }
        await server.stop()
    }
}

/// History over TLS: replay on JOIN to a client without chathistory, and a server started afresh
/// on the same database answering CHATHISTORY with what the first one stored.
@Suite struct HistoryEndToEndTests {
    @Test func replayAndChathistoryAcrossARestart() async throws {
        let server = try await TestServer.start(accounts: [alice, bob, carol])
        let a = try await server.loggedIn(alice.0, alice.1)
        try await a.send("JOIN #kept")
        try await a.next("366")
        for i in 1...3 { try await a.send("PRIVMSG #kept :kept \(i)") }
        try await a.send("PING sync")
        try await a.next("PONG")
        let b = try await server.loggedIn(bob.0, bob.1)  // no server-time: times in the text
        try await b.send("JOIN #kept")
        for i in 1...3 {
            let replayed = try await b.next("PRIVMSG")
            #expect(replayed.parameters[0] == "#kept" && replayed.parameters[1].hasSuffix("] kept \(i)") && replayed.parameters[1].hasPrefix("[20"))
        }

        // The same database under a new server: the messages are there.
        server.server.history?.flush()
        var logger = Logger(label: "second")
        logger.logLevel = .critical
        var configuration = server.server.configuration
        configuration.listeners = [.init(host: "127.0.0.1", port: 0)]
        let second = try Server(configuration: configuration, logger: logger, group: MultiThreadedEventLoopGroup.singleton)
        try await second.start()
        let c = try await TestIRCClient.connect(port: second.boundPorts[0], caPath: server.caPath)
        #expect(try await c.register(account: carol.0, password: carol.1, capabilities: ["draft/chathistory", "batch", "server-time", "message-tags"]).command == "001")
        try await c.send("JOIN #kept")
        try await c.next("366")
        try await c.send("CHATHISTORY LATEST #kept * 10")
        let open = try await c.next("BATCH")
        #expect(open.parameters[1] == "chathistory" && open.parameters[2] == "#kept")
        var texts: [String] = []
        while let message = try? await c.next("a message of the batch", timeout: 20, where: { $0.command == "PRIVMSG" || $0.command == "BATCH" }), message.command == "PRIVMSG" {
            #expect(message.tag("batch") == String(open.parameters[0].dropFirst()) && message.tag("msgid") != nil && message.tag("time") != nil)
            texts.append(message.parameters[1])
        }
        #expect(texts == ["kept 1", "kept 2", "kept 3"])
        await second.shutdown(timeout: .seconds(1))
        await server.stop()
    }
}

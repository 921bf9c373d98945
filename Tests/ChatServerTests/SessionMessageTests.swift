@testable import ChatServer
import ChatTesting
import Foundation
import IRC
import Testing

/// PRIVMSG, NOTICE, TAGMSG, WHO, WHOIS, AWAY, USERHOST, ISON, MOTD, PING, CAP through the session
/// state machine.
@Suite struct SessionMessageTests {
    let harness = SessionHarness(accounts: ["alice": "pw-alice", "bob": "pw-bob", "carol": "pw-carol"])

    @Test func roomMessagesReachMembersInTheirOwnVariant() {
        let a = harness.login("alice")
        let b = harness.login("bob", capabilities: ["server-time", "account-tag"])
        let c = harness.login("carol")
        for s in [a, b, c] { s.send("JOIN #r") }
        for s in [a, b, c] { s.clear() }
        a.send("PRIVMSG #r :hello")
        #expect(a.received.isEmpty)  // no echo-message
        #expect(b.received == [IRCMessage(tags: [IRCTag("time", "2027-01-15T08:00:00.000Z"), IRCTag("account", "alice")],
                                          source: "alice!alice@user/alice", command: "PRIVMSG", parameters: ["#r", "hello"])])
        #expect(c.received == [IRCMessage(source: "alice!alice@user/alice", command: "PRIVMSG", parameters: ["#r", "hello"])])
    }

    @Test func echoMessageAndCapabilityChangesApplyAtDelivery() {
        let a = harness.login("alice", capabilities: ["echo-message"])
        let b = harness.login("bob")
        a.send("JOIN #r"); b.send("JOIN #r")
        a.clear(); b.clear()
        a.send("PRIVMSG #r :one")
        #expect(a.take().map { $0.parameters.last } == ["one"])
        a.send("CAP REQ -echo-message")
        #expect(a.take().first?.parameters == ["alice", "ACK", "-echo-message"])
        a.send("PRIVMSG #r :two")
        #expect(a.received.isEmpty)
        b.send("CAP REQ :server-time")
        b.clear()
        a.send("PRIVMSG #r :three")
        #expect(b.received.first?.tag("time") != nil)  // capabilities are read when delivering, on the recipient's loop
    }

    @Test func privateMessagesAwayAndErrors() {
        let a = harness.login("alice")
        let b = harness.login("bob")
        b.send("AWAY :lunch")
        #expect(b.take().first?.command == "306")
        a.send("PRIVMSG bob :hi")
        #expect(b.received.first?.parameters == ["bob", "hi"])
        #expect(a.take().map(\.parameters) == [["alice", "bob", "lunch"]])  // 301
        a.send("NOTICE bob :psst")
        #expect(a.received.isEmpty)  // no away reply to a NOTICE
        a.send("PRIVMSG nobody :hi")
        a.send("PRIVMSG #nowhere :hi")
        a.send("PRIVMSG")
        a.send("PRIVMSG bob")
        a.send("NOTICE nobody :quiet")
        #expect(a.received.map(\.command) == ["401", "403", "411", "412"])
    }

    @Test func noExternalMessagesAndOperatorsOnlyMessages() {
        let a = harness.login("alice")
        let b = harness.login("bob")
        let c = harness.login("carol")
        a.send("JOIN #n"); b.send("JOIN #n")
        b.clear()
        c.send("PRIVMSG #n :from outside")
        #expect(c.received.map(\.command) == ["404"])
        a.send("MODE #n -n")
        b.clear()
        c.send("PRIVMSG #n :from outside")
        #expect(b.received.first?.parameters == ["#n", "from outside"])
        b.clear(); a.clear()
        c.send("NOTICE @#n :ops only")
        #expect(a.received.first?.parameters == ["@#n", "ops only"])
        #expect(b.received.isEmpty)
    }

    @Test func tagmsgReachesOnlyMessageTagsClients() {
        let a = harness.login("alice", capabilities: ["message-tags"])
        let b = harness.login("bob", capabilities: ["message-tags"])
        let c = harness.login("carol")
        for s in [a, b, c] { s.send("JOIN #t") }
        for s in [a, b, c] { s.clear() }
        a.send("@+typing=active TAGMSG #t")
        #expect(b.received.first?.tags.filter { $0.key != "msgid" } == [IRCTag("+typing", "active")])
        #expect(c.received.isEmpty)
        a.send("@+typing=active;server-only=x PRIVMSG #t :hi")
        #expect(b.received.last?.tags.filter { $0.key != "msgid" } == [IRCTag("+typing", "active")])  // client-only tags only
        a.send("TAGMSG")
        #expect(a.received.last?.command == "461")
    }

    @Test func whoAndWhois() {
        let a = harness.login("alice")
        let b = harness.login("bob")
        a.send("JOIN #w"); b.send("JOIN #w"); b.send("JOIN #v")
        b.send("AWAY :gone")
        a.clear()
        a.send("WHO #w")
        #expect(a.received.map { $0.parameters } == [
            ["alice", "#w", "alice", "user/alice", "localhost", "alice", "H@", "0 Alice"],
            ["alice", "#w", "bob", "user/bob", "localhost", "bob", "G", "0 Bob"],
            ["alice", "#w", "End of /WHO list"],
        ])
        a.clear()
        harness.now += 42
        a.send("WHOIS bob")
        #expect(a.received.map(\.command) == ["311", "319", "312", "301", "671", "330", "317", "318"])
        #expect(a.received[1].parameters.last == "@#v #w")  // bob made #v, so he operates it
        #expect(a.received[6].parameters[2...3] == ["42", "1800000000"])
        a.clear()
        a.send("WHOIS nobody")
        #expect(a.received.map(\.command) == ["401", "318"])
    }

    @Test func awayNotifyReachesRoommatesWithTheCapability() {
        let a = harness.login("alice")
        let b = harness.login("bob", capabilities: ["away-notify"])
        let c = harness.login("carol")
        for s in [a, b, c] { s.send("JOIN #a") }
        for s in [a, b, c] { s.clear() }
        a.send("AWAY :brb")
        #expect(a.take().map(\.command) == ["306"])
        #expect(b.take() == [IRCMessage(source: "alice!alice@user/alice", command: "AWAY", parameters: ["brb"])])
        #expect(c.received.isEmpty)
        a.send("AWAY")
        #expect(a.received.map(\.command) == ["305"])
        #expect(b.received.first?.parameters == [])
        #expect(harness.core.registry.session(named: "alice")?.away == nil)
    }

    @Test func someoneAwayWhoJoinsIsFollowedByTheirAwayForAwayNotify() {
        let a = harness.login("alice")
        let b = harness.login("bob", capabilities: ["away-notify"])
        let c = harness.login("carol")
        for s in [b, c] { s.send("JOIN #a") }
        a.send("AWAY :on a train")
        for s in [a, b, c] { s.clear() }
        a.send("JOIN #a")
        // The away-notify spec: the AWAY right after the JOIN, for members with the capability.
        #expect(b.take() == [IRCMessage(source: "alice!alice@user/alice", command: "JOIN", parameters: ["#a"]),
                             IRCMessage(source: "alice!alice@user/alice", command: "AWAY", parameters: ["on a train"])])
        #expect(c.take().map(\.command) == ["JOIN"])
        #expect(!a.received.contains { $0.command == "AWAY" })
    }

    @Test func lusersCountsUsersRoomsAndThePeakAndTimeGivesTheServerTime() {
        let a = harness.login("alice")
        let b = harness.login("bob")
        a.send("JOIN #one")
        b.send("JOIN #two")
        b.send("QUIT :bye")
        a.clear()
        a.send("LUSERS")
        #expect(a.received.map { [$0.command] + $0.parameters.dropFirst() } == [
            ["251", "There are 0 users and 1 invisible on 1 servers"],
            ["254", "1", "channels formed"],
            ["255", "I have 1 clients and 0 servers"],
            ["265", "1", "2", "Current local users 1, max 2"],
            ["266", "1", "2", "Current global users 1, max 2"],
        ])
        a.clear()
        a.send("TIME")
        let time = a.received.first
        #expect(time?.command == "391")
        #expect(time?.parameters.dropFirst().first == "localhost")
        #expect(time.map { Int($0.parameters[2]) != nil } == true)
        #expect(time?.parameters.last?.hasSuffix("Z") == true)
    }

    @Test func everyRelayCarriesOneMsgidForClientsWithMessageTags() {
        let a = harness.login("alice", capabilities: ["message-tags", "echo-message"])
        let b = harness.login("bob", capabilities: ["message-tags"])
        let c = harness.login("carol")
        for s in [a, b, c] { s.send("JOIN #m") }
        for s in [a, b, c] { s.clear() }
        a.send("@+draft/reply=x PRIVMSG #m :hello there")
        let echoed = a.received.first { $0.command == "PRIVMSG" }
        let relayed = b.received.first { $0.command == "PRIVMSG" }
        let id = relayed?.tags.first { $0.key == "msgid" }?.value
        #expect(id != nil && id!.count >= 13)
        #expect(echoed?.tags.first { $0.key == "msgid" }?.value == id)  // the echo has the same id
        #expect(relayed?.tags.map(\.key) == ["msgid", "+draft/reply"])
        #expect(c.received.first { $0.command == "PRIVMSG" }?.tags.isEmpty == true)  // no message-tags, no tags
        a.send("PRIVMSG #m :again")
        let next = b.received.last { $0.command == "PRIVMSG" }?.tags.first { $0.key == "msgid" }?.value
        #expect(next != nil && next != id)
    }

    @Test func whoxGivesTheFieldsAskedForInTheSpecsOrder() {
        let a = harness.login("alice")
        let b = harness.login("bob", capabilities: ["userhost-in-names"])
        a.send("JOIN #w"); b.send("JOIN #w")
        b.send("AWAY :lunch")
        a.clear()
        a.send("WHO #w %tcnuhraf,42")
        #expect(a.received("354").map(\.parameters) == [
            ["alice", "42", "#w", "alice", "user/alice", "alice", "H@", "alice", "Alice"],
            ["alice", "42", "#w", "bob", "user/bob", "bob", "G", "bob", "Bob"],
        ])
        #expect(a.received.last?.command == "315")
        a.clear()
        a.send("WHO bob %na")
        #expect(a.received("354").first?.parameters == ["alice", "bob", "bob"])
        a.clear()
        a.send("WHO bob %ti,verylongtoken")
        #expect(a.received("354").first?.parameters == ["alice", "0", "255.255.255.255"])
        // userhost-in-names
        b.clear()
        b.send("NAMES #w")
        #expect(b.received("353").first?.parameters.last == "@alice!alice@user/alice bob!bob@user/bob")
    }

    @Test func monitorTellsOfLoginsAndLogoutsAndWithExtendedMonitorOfAway() {
        let a = harness.login("alice", capabilities: ["away-notify", "extended-monitor"])
        let b = harness.login("bob")
        a.send("MONITOR + bob,carol,bad*nick")
        #expect(a.take() == [IRCMessage(source: "localhost", command: "730", parameters: ["alice", "bob!bob@user/bob"]),
                             IRCMessage(source: "localhost", command: "731", parameters: ["alice", "carol"])])
        let c = harness.login("carol")
        #expect(a.take() == [IRCMessage(source: "localhost", command: "730", parameters: ["alice", "carol!carol@user/carol"])])
        b.send("AWAY :out")  // no room in common: extended-monitor brings it
        #expect(a.take() == [IRCMessage(source: "bob!bob@user/bob", command: "AWAY", parameters: ["out"])])
        c.send("QUIT :bye")
        #expect(a.take() == [IRCMessage(source: "localhost", command: "731", parameters: ["alice", "carol"])])
        a.send("MONITOR L")
        #expect(a.take().map(\.parameters) == [["alice", "bob,carol"], ["alice", "End of MONITOR list"]])
        a.send("MONITOR - BOB")
        a.send("MONITOR S")
        #expect(a.take().map(\.command) == ["731"])
        a.send("MONITOR C")
        a.send("MONITOR L")
        #expect(a.take().map(\.command) == ["733"])
        b.send("QUIT")
        #expect(a.received.isEmpty)  // no longer monitored
    }

    @Test func botModeIsShownInWhoWhoisAndATagOnItsMessages() {
        let a = harness.login("alice")
        let b = harness.login("bob", capabilities: ["message-tags"])
        a.send("JOIN #bots"); b.send("JOIN #bots")
        a.clear()
        a.send("MODE alice +B")
        #expect(a.take() == [IRCMessage(source: "alice!alice@user/alice", command: "MODE", parameters: ["alice", "+B"])])
        a.send("MODE alice")
        #expect(a.take().first?.parameters == ["alice", "+Bi"])
        b.clear()
        a.send("PRIVMSG #bots :beep")
        #expect(b.received.first?.tags.map(\.key) == ["msgid", "bot"])
        b.send("WHO #bots")
        #expect(b.received("352").first?.parameters[6] == "HB@")
        b.send("WHOIS alice")
        #expect(b.received("335").first?.parameters == ["bob", "alice", "is a bot"])
        a.send("MODE alice -B")
        a.clear(); b.clear()
        a.send("PRIVMSG #bots :human again")
        #expect(b.received.first?.tags.map(\.key) == ["msgid"])
        a.send("MODE alice +x")
        #expect(a.received.map(\.command).contains("501"))
    }

    @Test func setnameChangesTheRealNameForThoseWhoAsked() {
        let a = harness.login("alice", capabilities: ["setname"])
        let b = harness.login("bob", capabilities: ["setname"])
        let c = harness.login("carol")
        for s in [a, b, c] { s.send("JOIN #s") }
        for s in [a, b, c] { s.clear() }
        a.send("SETNAME :Alice Liddell")
        let change = IRCMessage(source: "alice!alice@user/alice", command: "SETNAME", parameters: ["Alice Liddell"])
        #expect(a.take() == [change])
        #expect(b.take() == [change])
        #expect(c.received.isEmpty)
        c.send("WHOIS alice")
        #expect(c.received("311").first?.parameters.last == "Alice Liddell")
        a.send("SETNAME :" + String(repeating: "x", count: 391))
        #expect(a.take().first?.parameters[0...1] == ["SETNAME", "INVALID_REALNAME"])
    }

    @Test func helpExplainsEveryCommand() {
        let a = harness.login("alice")
        a.send("HELP")
        #expect(a.received.first?.command == "704" && a.received.last?.command == "706")
        for command in ["AWAY", "CAP", "HELP", "INVITE", "ISON", "JOIN", "KICK", "LIST", "LUSERS", "MODE", "MONITOR", "MOTD", "NAMES",
                        "NOTICE", "PART", "PING", "PRIVMSG", "QUIT", "SETNAME", "TAGMSG", "TIME", "TOPIC", "USERHOST", "WHO", "WHOIS", "WHOWAS",
                        "CHATHISTORY", "MARKREAD", "OWNER", "OPER", "KILL", "WALLOPS", "KLINE", "UNKLINE", "STATS", "CLEARCHAN"] {
            a.clear()
            a.send("HELP \(command.lowercased())")
            #expect(a.received.first?.command == "704" && a.received.first?.parameters[1] == command, "HELP \(command)")
            #expect(a.received.last?.command == "706")
        }
        a.clear()
        a.send("HELP FLY")
        #expect(a.take() == [IRCMessage(source: "localhost", command: "524", parameters: ["alice", "FLY", "No help available on this topic: HELP lists the commands"])])
    }

    @Test func whowasRemembersWhoLeftButNotAReplacedLogin() {
        let a = harness.login("alice")
        let b = harness.login("bob")
        b.send("QUIT :later")
        a.send("WHOWAS bob")
        #expect(a.received.map(\.command) == ["314", "312", "369"])
        #expect(a.received.first?.parameters == ["alice", "bob", "bob", "user/bob", "*", "Bob"])
        a.clear()
        a.send("WHOWAS carol")
        #expect(a.take().map(\.command) == ["406", "369"])
    }

    @Test func listFiltersByMaskAndMemberCount() {
        let a = harness.login("alice")
        let b = harness.login("bob")
        a.send("JOIN #dev,#devops,#lobby")
        b.send("JOIN #lobby,#dev")
        a.clear()
        a.send("LIST #dev*")
        #expect(a.received("322").map { $0.parameters[1] } == ["#dev", "#devops"])
        a.clear()
        a.send("LIST >1")
        #expect(a.received("322").map { $0.parameters[1] } == ["#dev", "#lobby"])
        a.clear()
        a.send("LIST <2,!#devops")
        #expect(a.received("322").isEmpty)
        a.clear()
        a.send("LIST #*,!#dev*")
        #expect(a.received("322").map { $0.parameters[1] } == ["#lobby"])
    }

    @Test func userhostIsonMotdPingAndCap() {
        let a = harness.login("alice")
        _ = harness.login("bob")
        a.send("USERHOST bob nobody")
        a.send("ISON bob nobody alice")
        a.send("MOTD")
        a.send("PING :token")
        a.send("CAP LIST")
        a.send("CAP REQ :no-such-cap")
        a.send("CAP REQ -sasl")
        a.send("CAP BOGUS")
        #expect(a.received.map(\.parameters) == [
            ["alice", "bob=+bob@user/bob"], ["alice", "bob alice"],
            ["alice", "- localhost Message of the day - "], ["alice", "- Test server."], ["alice", "End of /MOTD command."],
            ["localhost", "token"], ["alice", "LIST", ""], ["alice", "NAK", "no-such-cap"], ["alice", "NAK", "-sasl"],
            ["alice", "BOGUS", "Invalid CAP command"],
        ])
    }
}

@Suite struct RelayTimestampTests {
    @Test func serverTimeIsRFC3339WithMillisecondsInUTC() {
        #expect(Relay.timestamp(Date(timeIntervalSince1970: 1_800_000_000.123)) == "2027-01-15T08:00:00.123Z")
        #expect(Relay.timestamp(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(Relay.timestamp(Date(timeIntervalSince1970: 951_782_399.9996)) == "2000-02-29T00:00:00.000Z")  // rounds up across midnight
        #expect(Relay.timestamp(Date(timeIntervalSince1970: 4_102_444_799.5)) == "2099-12-31T23:59:59.500Z")
    }
}

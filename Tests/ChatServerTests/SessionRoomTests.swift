@testable import ChatServer
import ChatTesting
import Foundation
import IRC
import Testing

/// JOIN, PART, TOPIC, NAMES, LIST, KICK, INVITE and MODE as transitions of the session state
/// machine, with the numerics the Modern IRC documentation gives.
@Suite struct SessionRoomTests {
    let harness = SessionHarness(accounts: ["alice": "pw-alice", "bob": "pw-bob", "carol": "pw-carol"])

    @Test func joinMakesTheCreatorOperatorAndTellsEveryone() {
        let a = harness.login("alice")
        a.send("JOIN #Lobby")
        #expect(a.received.map(\.command) == ["JOIN", "353", "366"])
        #expect(a.received[0].source == "alice!alice@user/alice" && a.received[0].parameters == ["#Lobby"])
        #expect(a.received[1].parameters == ["alice", "=", "#Lobby", "@alice"])
        let b = harness.login("bob", capabilities: ["extended-join"])
        a.clear()
        b.send("JOIN #lobby")  // case-insensitive: the same room
        #expect(a.received.map(\.parameters) == [["#Lobby"]])
        #expect(b.received[0].parameters == ["#Lobby", "bob", "Bob"])  // extended-join: account and real name
        #expect(b.received("353").first?.parameters.last == "@alice bob")
        b.clear()
        b.send("JOIN #lobby")  // already there: nothing
        #expect(b.received.isEmpty)
    }

    @Test func joinRefusalsHaveTheirNumerics() {
        let a = harness.login("alice")
        let b = harness.login("bob")
        a.send("JOIN #k")
        a.send("MODE #k +k secret")
        a.send("JOIN #i")
        a.send("MODE #i +i")
        b.send("JOIN #k")
        b.send("JOIN #k wrong")
        b.send("JOIN #i")
        b.send("JOIN nohash")
        #expect(b.received.map(\.command) == ["475", "475", "473", "403"])
        b.clear()
        b.send("JOIN #k,#other secret")
        #expect(b.received("JOIN").map(\.parameters) == [["#k"], ["#other"]])
    }

    @Test func roomLimitPerUser() {
        let harness = SessionHarness(accounts: ["alice": "pw"]) { $0.limits.roomsPerUser = 2 }
        let a = harness.login("alice")
        a.send("JOIN #a,#b,#c")
        #expect(a.received("405").first?.parameters == ["alice", "#c", "You have joined too many rooms (limit 2)"])
        #expect(a.handle!.roomCount == 2)
    }

    @Test func partAndJoinZero() {
        let a = harness.login("alice")
        let b = harness.login("bob")
        a.send("JOIN #x,#y"); b.send("JOIN #x,#y")
        b.clear()
        a.send("PART #x :see you")
        #expect(b.received.first?.parameters == ["#x", "see you"])
        a.send("JOIN 0")
        #expect(b.received.last?.parameters == ["#y", "Left all rooms"])
        #expect(a.handle!.roomCount == 0)
        a.clear()
        a.send("PART #x")
        a.send("PART #nowhere")
        #expect(a.received.map(\.command) == ["442", "403"])
        b.send("PART #x"); b.send("PART #y")
        #expect(harness.core.registry.roomCount == 0)  // empty rooms go away
    }

    @Test func topicIsSetByOperatorsAndReadByAnyone() {
        let a = harness.login("alice")
        let b = harness.login("bob")
        let c = harness.login("carol")
        a.send("JOIN #t"); b.send("JOIN #t")
        a.clear(); b.clear()
        a.send("TOPIC #t")
        #expect(a.take().map(\.command) == ["331"])
        b.send("TOPIC #t :mine now")
        #expect(b.take().first?.command == "482")  // +t by default
        harness.now += 60
        a.send("TOPIC #t :plans")
        #expect(b.take().first?.parameters == ["#t", "plans"])
        c.send("TOPIC #t")
        #expect(c.received.map(\.parameters) == [["carol", "#t", "plans"], ["carol", "#t", "alice!alice@user/alice", "1800000060"]])
        c.send("TOPIC #t :outsider")
        #expect(c.received.last?.command == "442")
        c.clear()
        c.send("JOIN #t")
        #expect(c.received.map(\.command) == ["JOIN", "332", "333", "353", "366"])
    }

    @Test func namesAndList() {
        let a = harness.login("alice")
        let b = harness.login("bob")
        a.send("JOIN #a"); b.send("JOIN #a"); b.send("JOIN #b")
        a.send("TOPIC #a :about a")
        a.clear()
        a.send("NAMES #a,#none")
        #expect(a.received.map(\.parameters) == [["alice", "=", "#a", "@alice bob"], ["alice", "#a", "End of /NAMES list"], ["alice", "#none", "End of /NAMES list"]])
        a.clear()
        a.send("LIST")
        #expect(a.received.map(\.parameters) == [["alice", "Channel", "Users  Name"], ["alice", "#a", "2", "about a"], ["alice", "#b", "1", ""], ["alice", "End of /LIST"]])
        a.clear()
        a.send("LIST #b")
        #expect(a.received("322").map { $0.parameters[1] } == ["#b"])
    }

    @Test func modeParameterErrorsUseTheNumericsTheSpecNames() {
        let a = harness.login("alice")
        let b = harness.login("bob")
        a.send("JOIN #p")
        a.clear()
        a.send("MODE #p +k")
        #expect(a.take().map(\.command) == ["461"])
        a.send("MODE #p +k :two words")
        #expect(a.take() == [IRCMessage(source: "localhost", command: "696", parameters: ["alice", "#p", "k", "two words", "Invalid key: use one word without spaces or commas"])])
        a.send("MODE #p +o nobody")
        #expect(a.take() == [IRCMessage(source: "localhost", command: "401", parameters: ["alice", "nobody", "No such nick"])])
        a.send("MODE #p +o bob")
        #expect(a.take().map(\.command) == ["441"])
        _ = b
    }

    @Test func aMemberLimitKeepsNewcomersOutButNotTheInvited() {
        let a = harness.login("alice")
        let b = harness.login("bob")
        let c = harness.login("carol")
        a.send("JOIN #l")
        a.clear()
        a.send("MODE #l +l many")
        #expect(a.take() == [IRCMessage(source: "localhost", command: "696", parameters: ["alice", "#l", "l", "many", "Invalid limit: a whole number of members from 1 to 100000"])])
        a.send("MODE #l +l 0")
        #expect(a.take().map(\.command) == ["696"])
        a.send("MODE #l +l")
        #expect(a.take().map(\.command) == ["461"])
        a.send("MODE #l +l 2")
        #expect(a.take().first?.parameters == ["#l", "+l", "2"])
        b.send("JOIN #l")
        c.send("JOIN #l")
        #expect(c.take() == [IRCMessage(source: "localhost", command: "471", parameters: ["carol", "#l", "Cannot join channel: it is full (+l)"])])
        a.send("MODE #l")
        #expect(a.received("324").last?.parameters == ["alice", "#l", "+lnt", "2"])
        a.send("INVITE carol #l")
        c.clear()
        c.send("JOIN #l")
        #expect(c.received.first?.command == "JOIN")
        #expect(harness.core.registry.room(named: "#l")?.memberCount == 3)
        a.send("MODE #l -l")
        #expect(b.received.last?.parameters == ["#l", "-l"])
    }

    @Test func inviteNotifyTellsTheRoomsMembersWhoAsked() {
        let harness = SessionHarness(accounts: ["alice": "pw-alice", "bob": "pw-bob", "carol": "pw-carol", "dave": "pw-dave"])
        let a = harness.login("alice")
        let b = harness.login("bob", capabilities: ["invite-notify"])
        let c = harness.login("carol")
        let d = harness.login("dave")
        for s in [a, b, c] { s.send("JOIN #inv") }
        for s in [a, b, c, d] { s.clear() }
        a.send("INVITE dave #inv")
        let invite = IRCMessage(source: "alice!alice@user/alice", command: "INVITE", parameters: ["dave", "#inv"])
        #expect(d.take() == [invite])
        #expect(b.take() == [invite])
        #expect(c.received.isEmpty)
        #expect(a.take().map(\.command) == ["341"])
    }

    @Test func aModeratedRoomHearsOnlyOperatorsAndVoicedMembers() {
        let a = harness.login("alice")
        let b = harness.login("bob")
        let c = harness.login("carol", capabilities: ["multi-prefix"])
        for s in [a, b, c] { s.send("JOIN #mod") }
        a.send("MODE #mod +m")
        for s in [a, b, c] { s.clear() }
        b.send("PRIVMSG #mod :may I?")
        #expect(b.take() == [IRCMessage(source: "localhost", command: "404", parameters: ["bob", "#mod", "Cannot send to channel: it is moderated (+m), ask an operator for voice (+v)"])])
        #expect(a.received.isEmpty && c.received.isEmpty)
        b.send("NOTICE #mod :quietly")
        #expect(b.take().isEmpty && a.received.isEmpty)  // NOTICE gets no error reply, and is not relayed
        a.send("MODE #mod +vv bob alice")
        #expect(c.take().first?.parameters == ["#mod", "+vv", "bob", "alice"])
        b.send("PRIVMSG #mod :thank you")
        #expect(c.take().map(\.command) == ["PRIVMSG"])
        // NAMES: the highest prefix, or all of them with multi-prefix.
        b.clear()
        b.send("NAMES #mod")
        #expect(b.received("353").first?.parameters.last == "@alice +bob carol")
        c.send("NAMES #mod")
        #expect(c.received("353").first?.parameters.last == "@+alice +bob carol")
        c.clear()
        c.send("WHO #mod")
        #expect(c.received("352").map { $0.parameters[6] } == ["H@+", "H+", "H"])
        a.send("MODE #mod -v bob")
        b.clear()
        b.send("PRIVMSG #mod :again?")
        #expect(b.received.first?.command == "404")
        a.send("MODE #mod")
        #expect(a.received("324").last?.parameters == ["alice", "#mod", "+mnt"])
    }

    @Test func bansKeepOutAndSilenceAndMutesOnlySilence() {
        let harness = SessionHarness(accounts: ["alice": "pw-alice", "bob": "pw-bob", "carol": "pw-carol", "dave": "pw-dave"])
        let a = harness.login("alice")
        let b = harness.login("bob")
        let c = harness.login("carol")
        let d = harness.login("dave")
        a.send("JOIN #ban"); b.send("JOIN #ban")
        a.clear(); b.clear()
        a.send("MODE #ban +bbb BOB ~a:carol ~m:dave!*@*")
        #expect(b.take().first?.parameters == ["#ban", "+bbb", "BOB!*@*", "~a:carol", "~m:dave!*@*"])
        a.send("MODE #ban b")
        #expect(a.received("367").map { $0.parameters[2] } == ["BOB!*@*", "~a:carol", "~m:dave!*@*"])
        #expect(a.received("367").first?.parameters[3] == "alice")
        #expect(a.received.last?.command == "368")
        // A banned member stays until kicked but cannot speak; then cannot come back, even invited.
        b.send("PRIVMSG #ban :hello?")
        #expect(b.take().first?.parameters.last == "Cannot send to channel: you are banned or muted here (+b)")
        a.send("KICK #ban bob")
        a.send("INVITE bob #ban")
        b.clear()
        b.send("JOIN #ban")
        #expect(b.take() == [IRCMessage(source: "localhost", command: "474", parameters: ["bob", "#ban", "Cannot join channel: you are banned (+b)"])])
        c.send("JOIN #ban")
        #expect(c.take().first?.command == "474")
        // A mute lets dave in but not speak.
        d.send("JOIN #ban")
        #expect(d.take().first?.command == "JOIN")
        d.send("PRIVMSG #ban :hi")
        #expect(d.take().first?.command == "404")
        // Lifted: carol may join.
        a.send("MODE #ban -b ~a:CAROL")
        c.send("JOIN #ban")
        #expect(c.take().first?.command == "JOIN")
        a.send("MODE #ban +b ~x:what")
        #expect(a.received.last?.command == "696")
    }

    @Test func banMasksMatchLikeOtherServers() {
        #expect(BanMask.glob("*!*@user/bob", "bob!bob@user/bob"))
        #expect(BanMask.glob("b?b!*@*", "bob!bob@user/bob"))
        #expect(!BanMask.glob("b?b!*@*", "bobby!bobby@user/bobby"))
        #expect(BanMask.glob("*", ""))
        #expect(!BanMask.glob("a*c", "abcd"))
        #expect(BanMask.glob("a*c*", "abcd"))
        #expect(BanMask("alice")?.text == "alice!*@*")
        #expect(BanMask("*@user/alice")?.text == "*!*@user/alice")
        #expect(BanMask("") == nil && BanMask("~q:x") == nil && BanMask("~a:") == nil)
    }

    @Test func kickRemovesTheMemberEverywhereAtOnce() {
        let a = harness.login("alice")
        let b = harness.login("bob")
        a.send("JOIN #k"); b.send("JOIN #k")
        b.clear()
        b.send("KICK #k alice")
        #expect(b.take().first?.command == "482")
        a.send("KICK #k carol")
        #expect(a.received.last?.command == "441")
        a.send("KICK #k bob :behave")
        #expect(b.received.first?.parameters == ["#k", "bob", "behave"])
        #expect(b.handle!.roomCount == 0)  // the kicked session's room list changed with the room
        #expect(harness.core.registry.room(named: "#k")?.memberCount == 1)
        b.send("PRIVMSG #k :still here?")
        #expect(b.received.last?.command == "404")
    }

    @Test func inviteLetsSomeoneIntoAnInviteOnlyRoom() {
        let a = harness.login("alice")
        let b = harness.login("bob")
        a.send("JOIN #i"); a.send("MODE #i +i")
        a.clear()
        a.send("INVITE nobody #i")
        a.send("INVITE bob #elsewhere")
        a.send("INVITE bob #i")
        #expect(a.received.map(\.command) == ["401", "403", "341"])
        #expect(b.received.first == IRCMessage(source: "alice!alice@user/alice", command: "INVITE", parameters: ["bob", "#i"]))
        b.send("JOIN #i")
        #expect(b.received.last?.command == "366")
        a.clear()
        a.send("INVITE bob #i")
        #expect(a.received.first?.command == "443")
    }

    @Test func modeQueriesAndChanges() {
        let a = harness.login("alice")
        let b = harness.login("bob")
        let c = harness.login("carol")
        a.send("JOIN #m"); b.send("JOIN #m")
        a.clear(); b.clear()
        a.send("MODE #m +k key")
        #expect(b.take().first?.parameters == ["#m", "+k", "key"])
        b.send("MODE #m")
        #expect(b.received.map(\.command) == ["324", "329"])
        #expect(b.received[0].parameters == ["bob", "#m", "+knt", "key"])
        c.send("MODE #m")
        #expect(c.received[0].parameters == ["carol", "#m", "+knt", "*"])  // outsiders do not see the key
        b.clear()
        b.send("MODE #m -t")
        #expect(b.take().first?.command == "482")
        a.send("MODE #m +o-t bob")
        #expect(b.take().first?.parameters == ["#m", "+o-t", "bob"])
        #expect(harness.core.registry.room(named: "#m")!.isOperator(b.handle!))
        a.clear()
        a.send("MODE #m +z")
        #expect(a.received.first?.command == "472")
    }

    @Test func listQueriesAnswerEndOfListToAnyoneWithoutAnError() {
        // irssi sends MODE #room b on every join; it must not see "You're not a room operator".
        let a = harness.login("alice")
        let b = harness.login("bob")
        let c = harness.login("carol")
        a.send("JOIN #q"); b.send("JOIN #q")
        b.clear()
        b.send("MODE #q b")
        #expect(b.take().map(\.parameters) == [["bob", "#q", "End of channel ban list"]])
        #expect(b.received.isEmpty)
        a.clear()
        a.send("MODE #q +beI")
        #expect(a.received.map(\.command) == ["368", "349", "347"])
        c.send("MODE #q e")
        #expect(c.received.map(\.command) == ["349"])
    }

    @Test func userModes() {
        let a = harness.login("alice")
        _ = harness.login("bob")
        a.send("MODE alice")
        a.send("MODE alice +x")
        a.send("MODE bob")
        a.send("MODE nobody")
        #expect(a.received.map(\.command) == ["221", "501", "221", "502", "401"])
    }
}

import ChatSupport
import ChatTesting
import Foundation
import IRC
import Testing
@testable import ChatServer

/// Findings of the attacker's review (issue 13) that live in the session: spoofed lines, INVITE
/// around a key, secret rooms, look-alike room names, what a mask shows.
@Suite struct SessionSecurityTests {
    let harness = SessionHarness(accounts: ["alice": "pw-a", "bob": "pw-b", "mallory": "pw-m"])

    @Test func aBareCRInvalidatesTheLineAndIsNeverRelayed() {
        let a = harness.login("alice")
        let m = harness.login("mallory")
        a.send("JOIN #p"); m.send("JOIN #p")
        a.clear(); m.clear()
        for line in ["PRIVMSG #p :hello\r:localhost NOTICE alice :SPOOFED by server", "PART #p :bye\rERROR :x",
                     "AWAY :gone\r:localhost 001 alice :x", "@+a\rb=1 TAGMSG #p", "KICK #p alice :\r:evil"] {
            m.send(line)
        }
        #expect(m.received.count == 5)
        #expect(m.received.allSatisfy { $0.command == "FAIL" && $0.parameters[1] == "INVALID_MESSAGE" })
        #expect(a.received.isEmpty)
        #expect(m.handle!.away == nil)
        #expect(m.handle!.roomCount == 1)
    }

    @Test func nothingSerialisedCanSplitIntoTwoLines() {
        let message = IRCMessage(tags: [IRCTag("+k\r\n", "v\r\n\0")], source: "a\rb", command: "PRIVMSG", parameters: ["#x\n", "t\0ext\r:localhost NOTICE"])
        let bytes = message.serialized()
        #expect(bytes.dropLast(2).allSatisfy { $0 != 0x0d && $0 != 0x0a && $0 != 0 })
        #expect(bytes.suffix(2) == [0x0d, 0x0a])
    }

    @Test func tagsWithInvalidKeysAreDropped() throws {
        let parsed = try IRCMessage.parse(Array("@+ok=1;bad\u{7}key=2;+=3;vendor.example/x TAGMSG #p".utf8))
        #expect(parsed.tags == [IRCTag("+ok", "1"), IRCTag("vendor.example/x")])
    }

    @Test func onlyOperatorsInviteIntoAKeyedRoomAndOnlyTheirInvitationsSkipTheKey() {
        let a = harness.login("alice")
        let b = harness.login("bob")
        let m = harness.login("mallory")
        a.send("JOIN #k"); a.send("MODE #k +k sesame")
        b.send("JOIN #k sesame")
        b.clear()
        b.send("INVITE mallory #k")  // bob is a member, not an operator
        #expect(b.received.map(\.command) == ["482"])
        m.send("JOIN #k")
        #expect(m.received.last?.command == "475")
        a.send("INVITE mallory #k")  // an operator's invitation lets her in
        m.clear()
        m.send("JOIN #k")
        #expect(m.received.first?.command == "JOIN")
    }

    @Test func aSecretRoomIsInvisibleToOutsiders() {
        let a = harness.login("alice")
        let m = harness.login("mallory")
        a.send("JOIN #plans"); a.send("MODE #plans +iks sesame"); a.send("TOPIC #plans :secret plans")
        a.send("JOIN #open")
        m.clear()
        m.send("TOPIC #plans")
        m.send("NAMES #plans")
        m.send("WHO #plans")
        m.send("MODE #plans")
        m.send("PRIVMSG #plans :hi")
        m.send("PART #plans")
        #expect(m.received.map(\.command) == ["403", "366", "315", "403", "403", "403"])
        #expect(!m.received.contains { $0.parameters.contains("secret plans") || $0.parameters.contains { $0.contains("alice") } })
        m.clear()
        m.send("LIST")
        #expect(m.received("322").map { $0.parameters[1] } == ["#open"])
        m.clear()
        m.send("WHOIS alice")
        #expect(m.received("319").first?.parameters.last == "@#open")
        // A member sees everything.
        let b = harness.login("bob")
        a.send("INVITE bob #plans")
        b.send("JOIN #plans")
        b.clear()
        b.send("LIST")
        b.send("WHOIS alice")
        #expect(b.received("322").map { $0.parameters[1] } == ["#open", "#plans"])
        #expect(b.received("319").first?.parameters.last == "@#open @#plans")
    }

    @Test func roomNamesRefuseInvisibleAndBidiCharactersAndCompareCanonically() {
        let a = harness.login("alice")
        for name in ["#ab\u{202E}cd", "#\u{0085}x", "#a\u{200B}b", "#a\u{2028}b", "#x\u{00A0}y", "#\u{2066}iso", "#a\u{FEFF}", "#\u{3164}"] {
            a.clear()
            a.send("JOIN \(name)")
            #expect(a.received.map(\.command) == ["403"], "\(name.unicodeScalars.map { String($0.value, radix: 16) })")
        }
        a.clear()
        a.send("JOIN #caf\u{E9}")  // é as one code point (NFC)
        let b = harness.login("bob")
        b.send("JOIN #cafe\u{301}")  // e + combining acute (NFD): the same room
        #expect(harness.core.registry.roomCount == 1)
        #expect(harness.core.registry.allRooms.first?.memberCount == 2)
        #expect(IRCName.isValidRoom("#ünï-côdé") && IRCName.isValidRoom("#日本語") && IRCName.isValidRoom("#emoji🎉"))
    }

    @Test func theUserPartOfEveryMaskIsTheAccountName() {
        let client = harness.connect()
        client.send("PASS alice:pw-a")
        client.send("NICK alice")
        client.send("USER root 0 * :Alice")  // the client machine's login name
        let a = harness.login("bob")
        a.send("JOIN #r")
        client.send("JOIN #r")
        #expect(a.received.last?.source == "alice!alice@user/alice")
        a.send("WHOIS alice")
        #expect(a.received("311").first?.parameters[2] == "alice")
        #expect(!a.received.contains { $0.parameters.contains { $0.contains("root") } })
    }
}

/// SASL EXTERNAL with a registered client certificate, through the state machine.
@Suite struct SessionCertificateTests {
    let fingerprint = String(repeating: "AB", count: 32)

    func register(_ client: TestSession, _ lines: [String]) {
        for line in ["CAP LS 302", "CAP REQ :sasl", "NICK someone", "USER u 0 * :U"] + lines { client.send(line) }
    }

    @Test func aRegisteredCertificateLogsInWithoutAPassword() {
        let harness = SessionHarness(accounts: ["alice": "unused"])
        harness.logins.certificates = [fingerprint: "alice"]
        let client = harness.connect()
        client.presentCertificate(fingerprint)
        register(client, ["AUTHENTICATE EXTERNAL"])
        #expect(client.received.last == IRCMessage(command: "AUTHENTICATE", parameters: ["+"]))
        client.send("AUTHENTICATE +")
        client.send("CAP END")
        #expect(client.received.map(\.command).contains(["900", "903", "NICK", "001"]))
        #expect(client.handle?.nick == "alice")
        #expect(harness.logins.attempts == 0)  // no password check
    }

    @Test func anAuthorizationIdentityMustBeTheCertificatesAccount() {
        let harness = SessionHarness(accounts: ["alice": "a", "bob": "b"])
        harness.logins.certificates = [fingerprint: "alice"]
        let client = harness.connect()
        client.presentCertificate(fingerprint)
        register(client, ["AUTHENTICATE EXTERNAL", "AUTHENTICATE " + Base64.encode(Array("bob".utf8), padded: true)])
        #expect(client.received.suffix(2).map(\.command) == ["FAIL", "904"] || client.received.last?.command == "904")
        #expect(client.session.phase == .registering)
    }

    @Test func withoutACertificateExternalFailsAndPlainStillWorks() {
        let harness = SessionHarness(accounts: ["alice": "pw"])
        let client = harness.connect()
        register(client, ["AUTHENTICATE EXTERNAL"])
        #expect(client.received.last?.command == "904")
        #expect(client.received.last?.parameters.last?.contains("EXTERNAL needs a client certificate") == true)
        client.send("AUTHENTICATE PLAIN")
        client.send("AUTHENTICATE " + SASLPlain.encode(account: "alice", password: Array("pw".utf8)))
        client.send("CAP END")
        #expect(client.handle?.nick == "alice")
    }
}

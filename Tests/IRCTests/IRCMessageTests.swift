import Testing
@testable import IRC

@Suite struct IRCMessageTests {
    func parse(_ s: String) throws -> IRCMessage { try IRCMessage.parse(Array(s.utf8)) }

    @Test func commandAndParameters() throws {
        let m = try parse("privmsg #lobby :hello there")
        #expect(m.command == "PRIVMSG" && m.parameters == ["#lobby", "hello there"] && m.source == nil)
        #expect(try parse("NICK alice").parameters == ["alice"])
        #expect(try parse("USER alice 0 * :Alice Liddell").parameters == ["alice", "0", "*", "Alice Liddell"])
        #expect(try parse("PRIVMSG #a ::-)").parameters == ["#a", ":-)"])
        #expect(try parse("TOPIC #a :").parameters == ["#a", ""])
        #expect(try parse("JOIN   #a    key  ").parameters == ["#a", "key"])
        #expect(try parse("001 alice :Welcome").command == "001")
    }

    @Test func sourceAndTags() throws {
        let m = try parse("@time=2026-11-30T01:02:03.000Z;+draft/react=\\:-)\\s;flag :nick!u@h PRIVMSG #r :hi")
        #expect(m.source == "nick!u@h")
        #expect(m.tag("time") == "2026-11-30T01:02:03.000Z")
        #expect(m.tag("+draft/react") == ";-) ")
        #expect(m.tag("flag") == "")
        #expect(m.tag("missing") == nil)
        #expect(m.tags.last!.isClientOnly == false && m.tags[1].isClientOnly)
    }

    @Test func tagEscapingRoundTrips() throws {
        for value in ["plain", "a;b c\\d\r\ne", "", "\\", "ünï"] {
            let m = IRCMessage(tags: [IRCTag("+x", value)], command: "TAGMSG", parameters: ["#r"])
            let line = m.serialized()
            let back = try IRCMessage.parse(line.dropLast(2))
            #expect(back.tag("+x") == value)
        }
        // The pointer is used only inside the closure (AddressSanitizer caught an escaped one).
        #expect(Array("ab\\".utf8).withUnsafeBufferPointer { IRCMessage.unescapeTagValue($0) } == "ab")
        #expect(Array("\\b".utf8).withUnsafeBufferPointer { IRCMessage.unescapeTagValue($0) } == "b")
    }

    @Test func serialisation() {
        #expect(String(decoding: IRCMessage(source: "srv", command: "001", parameters: ["alice", "Welcome home"]).serialized(), as: UTF8.self) == ":srv 001 alice :Welcome home\r\n")
        #expect(String(decoding: IRCMessage(command: "PING", parameters: ["token"]).serialized(), as: UTF8.self) == "PING token\r\n")
        #expect(String(decoding: IRCMessage(command: "TOPIC", parameters: ["#a", ""]).serialized(), as: UTF8.self) == "TOPIC #a :\r\n")
        #expect(String(decoding: IRCMessage(command: "PRIVMSG", parameters: ["#a", ":)"]).serialized(), as: UTF8.self) == "PRIVMSG #a ::)\r\n")
    }

    @Test func limits() throws {
        let body = "PRIVMSG #a :" + String(repeating: "x", count: 498)  // 510 bytes
        #expect(try parse(body).parameters[1].count == 498)
        #expect(throws: IRCParseError.lineTooLong) { try parse(body + "x") }
        let tags = "@+t=" + String(repeating: "v", count: 4090) + " "  // 4094 bytes of tags
        #expect(try parse(tags + body).tag("+t")?.count == 4090)
        #expect(throws: IRCParseError.tagsTooLong) { try parse("@+t=" + String(repeating: "v", count: 4092) + " " + body) }
        #expect(throws: IRCParseError.tooManyParameters) { try parse("CMD " + (1...16).map(String.init).joined(separator: " ")) }
    }

    @Test func badInput() {
        #expect(throws: IRCParseError.empty) { try parse("   ") }
        #expect(throws: IRCParseError.invalidCommand) { try parse(":source") }
        #expect(throws: IRCParseError.invalidCommand) { try parse("PRIV-MSG x") }
        #expect(throws: IRCParseError.invalidCommand) { try parse("12 x") }
        #expect(throws: IRCParseError.invalidUTF8) { try IRCMessage.parse([0x50, 0x49, 0x4e, 0x47, 0x20, 0xff]) }
        #expect(throws: IRCParseError.invalidUTF8) { try IRCMessage.parse(Array("PING ".utf8) + [0xed, 0xa0, 0x80]) }  // surrogate
        #expect(throws: IRCParseError.invalidUTF8) { try IRCMessage.parse(Array("PING ".utf8) + [0xc0, 0xaf]) }  // overlong
        #expect(throws: IRCParseError.invalidUTF8) { try IRCMessage.parse(Array("PING ".utf8) + [0xe2, 0x82]) }  // truncated
        #expect(throws: IRCParseError.containsNUL) { try IRCMessage.parse(Array("PING a".utf8) + [0]) }
    }

    /// SplitMix64: the same inputs on every run, so a failure can be reproduced.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test func randomLinesParseOrFailCleanlyAndRoundTrip() throws {
        var rng = SeededGenerator(state: 20261203)
        let alphabet: [UInt8] = Array("@:; =\\#PRIVMSG+a".utf8) + [0x00, 0xff, 0xc3, 0xa9, 0x20, 0x0d]
        var parsed = 0
        for _ in 0..<20_000 {
            let line = (0..<Int.random(in: 0...40, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            guard let message = try? IRCMessage.parse(line) else { continue }
            parsed += 1
            // Whatever parses serialises to a line that parses back to the same message.
            var bytes = message.serialized()
            #expect(bytes.suffix(2) == [0x0d, 0x0a])
            bytes.removeLast(2)
            #expect(try IRCMessage.parse(bytes) == message)
        }
        #expect(parsed > 100)  // the alphabet makes valid lines often enough to test something
    }

    @Test func names() {
        #expect(IRCName.isValidNick("alice") && IRCName.isValidNick("a[b]`^{}|\\-_9"))
        #expect(!IRCName.isValidNick("9a") && !IRCName.isValidNick("") && !IRCName.isValidNick(String(repeating: "a", count: 33)) && !IRCName.isValidNick("a b"))
        #expect(IRCName.isValidRoom("#lobby") && IRCName.isValidRoom("#ünï-côdé") && IRCName.isValidRoom("#a.b"))
        #expect(!IRCName.isValidRoom("lobby") && !IRCName.isValidRoom("#") && !IRCName.isValidRoom("#a,b") && !IRCName.isValidRoom("#a b") && !IRCName.isValidRoom("#a\u{7}"))
        #expect(!IRCName.isValidRoom("#" + String(repeating: "x", count: 50)))
        #expect(IRCName.fold("Alice[]") == "alice[]")
    }
}

@Suite struct SASLClientLoginTests {
    func message(_ line: String) -> IRCMessage { try! IRCMessage.parse(Array(line.utf8)) }

    @Test func asksForStandardRepliesAndRetriesWithoutWhenRefused() {
        var login = SASLClientLogin(account: "alice", password: Array("pw".utf8), capabilities: ["server-time"])
        #expect(login.opening.last == "CAP REQ :sasl standard-replies server-time")
        // A server without standard-replies refuses the whole request: ask again without it.
        #expect(login.receive(message(":srv CAP * NAK :sasl standard-replies server-time")) == .send(["CAP REQ :sasl server-time"]))
        #expect(login.receive(message(":srv CAP * ACK :sasl server-time")) == .send(["AUTHENTICATE PLAIN"]))
        // A second refusal means no SASL at all.
        var other = SASLClientLogin(account: "alice", password: Array("pw".utf8))
        _ = other.receive(message(":srv CAP * NAK :sasl standard-replies"))
        #expect(other.receive(message(":srv CAP * NAK :sasl")) == .failed(.saslUnavailable))
    }

    @Test func theFailCodeExplainsTheNumeric() {
        var login = SASLClientLogin(account: "alice", password: Array("pw".utf8))
        #expect(login.receive(message(":srv FAIL AUTHENTICATE ACCOUNT_LOCKED :Account alice is locked")) == .wait)
        #expect(login.receive(message(":srv 904 alice :Account alice is locked")) == .failed(.accountLocked("Account alice is locked")))
        // Without standard replies only the numeric comes: a wrong password.
        var plain = SASLClientLogin(account: "alice", password: Array("pw".utf8))
        #expect(plain.receive(message(":srv 904 alice :SASL authentication failed")) == .failed(.invalidCredentials("SASL authentication failed")))
    }
}

@Suite struct SASLClientOptionalCapabilityTests {
    func message(_ line: String) -> IRCMessage { try! IRCMessage.parse(Array(line.utf8)) }

    @Test func optionalCapabilitiesAreAskedForOnlyWhenListedAndARefusalIsHarmless() {
        var login = SASLClientLogin(account: "alice", password: Array("pw".utf8), capabilities: ["server-time"],
                                    optionalCapabilities: ["batch", "draft/chathistory", "draft/read-marker"])
        #expect(login.opening.last == "CAP REQ :sasl standard-replies server-time")
        #expect(login.receive(message(":srv CAP * LS * :sasl=PLAIN,EXTERNAL server-time batch")) == .wait)
        #expect(login.receive(message(":srv CAP * LS :standard-replies draft/chathistory")) == .wait)
        #expect(login.offered == ["sasl", "server-time", "batch", "standard-replies", "draft/chathistory"])
        // Only what the server listed (not draft/read-marker), after sasl is granted, before AUTHENTICATE.
        #expect(login.receive(message(":srv CAP * ACK :sasl standard-replies server-time"))
            == .send(["CAP REQ :batch draft/chathistory", "AUTHENTICATE PLAIN"]))
        // Refused: the login goes on, without them.
        #expect(login.receive(message(":srv CAP * NAK :batch draft/chathistory")) == .wait)
        #expect(!login.acknowledged.contains("batch"))
        #expect(login.receive(message(":srv 903 alice :SASL authentication successful")) == .send(["CAP END"]))

        var granted = SASLClientLogin(account: "alice", password: Array("pw".utf8), optionalCapabilities: ["batch"])
        _ = granted.receive(message(":srv CAP * LS :sasl batch"))
        #expect(granted.receive(message(":srv CAP * ACK :sasl standard-replies")) == .send(["CAP REQ :batch", "AUTHENTICATE PLAIN"]))
        #expect(granted.receive(message(":srv CAP * ACK :batch")) == .wait)
        #expect(granted.acknowledged == ["sasl", "standard-replies", "batch"])

        // A server that lists none of them: no second request at all.
        var none = SASLClientLogin(account: "alice", password: Array("pw".utf8), optionalCapabilities: ["batch"])
        _ = none.receive(message(":srv CAP * LS :sasl"))
        #expect(none.receive(message(":srv CAP * ACK :sasl")) == .send(["AUTHENTICATE PLAIN"]))
    }
}

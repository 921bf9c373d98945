import ChatSupport
import ChatAuth
import IRC
import Testing
@testable import ChatServer

/// The registration state machine on its own: messages in, actions out, no sockets.
@Suite struct RegistrationTests {
    func message(_ line: String) -> IRCMessage { try! IRCMessage.parse(Array(line.utf8)) }

    /// Feeds lines; returns the serialised replies, "VERIFY account method", "COMPLETE account" and "CLOSE reason".
    func run(_ machine: inout Registration, _ lines: [String]) -> [String] {
        lines.flatMap { describe(machine.receive(message($0))) }
    }

    func describe(_ actions: [Registration.Action]) -> [String] {
        actions.map { action in
            switch action {
            case let .send(m): return String(decoding: m.serialized().dropLast(2), as: UTF8.self)
            case let .verify(account, password, method): return "VERIFY \(account) \(String(decoding: password.bytes, as: UTF8.self)) \(method)"
            case let .complete(account, nick, user, _, caps): return "COMPLETE \(account) \(nick) \(user) \(caps.names.joined(separator: ","))"
            case let .close(reason): return "CLOSE \(reason)"
            case let .verifyCertificate(fingerprint, account): return "CERTIFICATE \(fingerprint) \(account ?? "-")"
            }
        }
    }

    @Test func saslPlainFlow() {
        var m = Registration(serverName: "srv")
        #expect(run(&m, ["CAP LS 302"]) == [":srv CAP * LS :sasl=PLAIN,EXTERNAL server-time message-tags echo-message account-tag extended-join away-notify cap-notify multi-prefix standard-replies account-notify invite-notify userhost-in-names extended-monitor setname batch draft/chathistory draft/read-marker draft/event-playback labeled-response"])
        #expect(run(&m, ["NICK Al", "USER al 0 * :Alice"]).isEmpty)  // waits for CAP END
        #expect(run(&m, ["CAP REQ :sasl server-time"]) == [":srv CAP Al ACK :sasl server-time"])
        #expect(run(&m, ["AUTHENTICATE PLAIN"]) == ["AUTHENTICATE +"])
        let payload = SASLPlain.encode(account: "alice", password: Array("correct horse".utf8))
        #expect(run(&m, ["AUTHENTICATE \(payload)"]) == ["VERIFY alice correct horse sasl"])
        #expect(describe(m.loginFinished(.success(account: "alice"), via: .sasl)) == [
            ":srv 900 Al alice!alice@user/alice alice :You are now logged in as alice",  // the nick becomes the account name
            ":srv 903 Al :SASL authentication successful",
        ])
        #expect(run(&m, ["CAP END"]) == ["COMPLETE alice Al al sasl,server-time,cap-notify"])
        #expect(m.isComplete)
    }

    @Test func noLoginNoChat() {
        var m = Registration(serverName: "srv")
        #expect(run(&m, ["NICK bob", "USER bob 0 * :Bob"]) == [
            ":srv 464 bob :Password required: log in with SASL PLAIN or PASS account:password",
            "CLOSE Login required: use SASL PLAIN, or PASS account:password",
        ])
        #expect(!m.isComplete)
    }

    @Test func passForms() {
        var m = Registration(serverName: "srv")
        #expect(run(&m, ["PASS alice:pa:ss word", "NICK x", "USER x 0 * :X"]) == ["VERIFY alice pa:ss word pass"])
        #expect(describe(m.loginFinished(.success(account: "alice"), via: .pass)) == ["COMPLETE alice x x "])
        var n = Registration(serverName: "srv")
        #expect(run(&n, ["PASS secret words", "NICK bob", "USER bob 0 * :B"]) == ["VERIFY bob secret words pass"])
        // Without standard-replies: the numeric only (standard replies are for clients that ask).
        #expect(describe(n.loginFinished(.invalidCredentials, via: .pass)) == [
            ":srv 464 bob :Password incorrect: wrong account name or password",
            "CLOSE Password incorrect: wrong account name or password",
        ])
        var o = Registration(serverName: "srv")
        _ = run(&o, ["CAP LS 302", "CAP REQ standard-replies", "PASS secret words", "NICK bob", "USER bob 0 * :B", "CAP END"])
        #expect(describe(o.loginFinished(.invalidCredentials, via: .pass)) == [
            ":srv FAIL PASS INVALID_CREDENTIALS :Password incorrect: wrong account name or password",
            ":srv 464 bob :Password incorrect: wrong account name or password",
            "CLOSE Password incorrect: wrong account name or password",
        ])
    }

    @Test func threeSASLFailuresClose() {
        var m = Registration(serverName: "srv")
        _ = run(&m, ["CAP LS", "CAP REQ sasl", "NICK a", "USER a 0 * :A"])
        let payload = SASLPlain.encode(account: "a", password: Array("wrong-password".utf8))
        for attempt in 1...3 {
            #expect(run(&m, ["AUTHENTICATE PLAIN", "AUTHENTICATE \(payload)"]).last == "VERIFY a wrong-password sasl")
            let result = describe(m.loginFinished(.invalidCredentials, via: .sasl))
            #expect(result.contains(":srv 904 a :SASL authentication failed: wrong account name or password"))
            #expect(result.contains("CLOSE Too many failed login attempts") == (attempt == 3))
        }
    }

    @Test func lockedBusyAndThrottledHaveTheirOwnCodes() {
        var m = Registration(serverName: "srv")
        _ = run(&m, ["CAP LS", "CAP REQ :sasl standard-replies", "NICK a", "USER a 0 * :A"])
        #expect(describe(m.loginFinished(.locked(account: "a"), via: .sasl)) == [
            ":srv FAIL AUTHENTICATE ACCOUNT_LOCKED :Account a is locked: ask the server's operator",
            ":srv 904 a :Account a is locked: ask the server's operator",
        ])
        #expect(describe(m.loginFinished(.busy, via: .sasl)).first == ":srv FAIL AUTHENTICATE SERVER_BUSY :Server busy: try again in a few seconds")
        #expect(describe(m.loginFinished(.throttled(retryAfter: 3.2), via: .sasl)).last == "CLOSE Too many failed logins: try again in 4 seconds")
    }

    @Test func saslDetails() {
        var m = Registration(serverName: "srv")
        _ = run(&m, ["CAP LS 302", "NICK a"])
        #expect(run(&m, ["AUTHENTICATE SCRAM-SHA-256"]) == [":srv 908 a PLAIN,EXTERNAL :are available SASL mechanisms", ":srv 904 a :SASL authentication failed: the mechanisms are PLAIN,EXTERNAL"])
        #expect(run(&m, ["AUTHENTICATE PLAIN", "AUTHENTICATE *"]) == ["AUTHENTICATE +", ":srv 906 a :SASL authentication aborted"])
        // A payload of exactly 400 characters is continued by the next line.
        let password = String(repeating: "p", count: 300)
        let payload = SASLPlain.encode(account: "a", password: Array(password.utf8))
        let chunks = stride(from: 0, to: payload.count, by: 400).map { String(Array(payload)[$0..<min($0 + 400, payload.count)]) }
        #expect(chunks.count == 2 && chunks[0].count == 400)
        #expect(run(&m, ["AUTHENTICATE PLAIN"] + chunks.map { "AUTHENTICATE \($0)" }) == ["AUTHENTICATE +", "VERIFY a \(password) sasl"])
        var n = Registration(serverName: "srv")
        #expect(run(&n, ["AUTHENTICATE PLAIN", "AUTHENTICATE !!!!"]).contains(":srv 904 * :SASL authentication failed: malformed PLAIN message"))
    }

    @Test func saslLengthsFollowSASL31() {
        // 905 is for one parameter over 400 bytes.
        var m = Registration(serverName: "srv")
        _ = run(&m, ["CAP LS 302", "CAP REQ sasl", "NICK a"])
        #expect(run(&m, ["AUTHENTICATE PLAIN", "AUTHENTICATE " + String(repeating: "A", count: 401)])
            == ["AUTHENTICATE +", ":srv 905 a :SASL message too long: send it in chunks of 400 bytes"])
        // 400-byte chunks that add up to more than a PLAIN message can hold fail with 904.
        let chunk = "AUTHENTICATE " + String(repeating: "A", count: 400)
        let replies = run(&m, ["AUTHENTICATE PLAIN"] + Array(repeating: chunk, count: 11))  // 4,400 > 4,096
        #expect(replies.first == "AUTHENTICATE +")
        #expect(replies.dropFirst().allSatisfy { $0.hasPrefix(":srv 904 a ") } && replies.count == 2)
        #expect(!replies.contains { $0.contains(" 905 ") })
    }

    @Test func registrationEndingDuringSASLAbortsItWith906First() {
        var m = Registration(serverName: "srv")
        _ = run(&m, ["CAP LS 302", "CAP REQ sasl", "NICK a", "USER a 0 * :A", "AUTHENTICATE PLAIN"])
        #expect(run(&m, ["CAP END"]) == [
            ":srv 906 a :SASL authentication aborted: registration ended before it finished",
            ":srv 464 a :Password required: log in with SASL PLAIN or PASS account:password",
            "CLOSE Login required: use SASL PLAIN, or PASS account:password",
        ])
    }

    @Test func commandsBeforeRegistration() {
        var m = Registration(serverName: "srv")
        #expect(run(&m, ["JOIN #a"]) == [":srv 451 * :You have not registered: log in with SASL PLAIN or PASS account:password first"])
        #expect(run(&m, ["NICK 9bad"]) == [":srv 432 * 9bad :Erroneous nickname: use letters, digits and -_[]\\`^{}|, starting with a letter"])
        #expect(run(&m, ["USER a"]) == [":srv 461 * USER :Not enough parameters"])
        #expect(run(&m, ["PING x"]) == [":srv PONG srv x"])
        #expect(run(&m, ["CAP REQ :sasl bogus"]) == [":srv CAP * NAK :sasl bogus"])
    }

    @Test func saslPlainDecoder() throws {
        let decoded = try SASLPlain.decode(Array(SASLPlain.encode(account: "alice", password: Array("pw d".utf8)).utf8))
        #expect(decoded.account == "alice" && decoded.password == Array("pw d".utf8))
        #expect(throws: SASLPlain.Failure.notBase64) { try SASLPlain.decode(Array("abc".utf8)) }
        #expect(throws: SASLPlain.Failure.wrongShape) { try SASLPlain.decode(Array("YWJj".utf8)) }
        let other = Base64.encode(Array("bob\0alice\0pw".utf8), padded: true)
        #expect(throws: SASLPlain.Failure.identityMismatch) { try SASLPlain.decode(Array(other.utf8)) }
        let same = Base64.encode(Array("Alice\0alice\0pw".utf8), padded: true)
        #expect(try SASLPlain.decode(Array(same.utf8)).account == "alice")
    }
}

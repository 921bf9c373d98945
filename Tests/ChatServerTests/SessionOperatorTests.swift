import ChatAuth
@testable import ChatServer
import ChatTesting
import Foundation
import IRC
import Testing

/// Server operators as transitions of the session state machine: OPER, user modes o and w,
/// KILL, WALLOPS, KLINE/UNKLINE/STATS k, CLEARCHAN, acting in any room, and losing the role.
@Suite struct SessionOperatorTests {
    let harness = SessionHarness(accounts: ["alice": "pw-alice", "bob": "pw-bob", "carol": "pw-carol"], operators: ["alice"])

    /// alice, logged in and made a server operator.
    func oper() -> TestSession {
        let a = harness.login("alice")
        a.send("OPER alice pw-alice")
        #expect(a.received.map(\.command) == ["381", "MODE"])
        a.clear()
        return a
    }

    @Test func operNeedsTheRoleAndTheAccountsOwnPassword() {
        let b = harness.login("bob")
        b.send("OPER bob pw-bob")  // no role
        #expect(b.received.map(\.command) == ["491"])
        #expect(b.handle?.isOperator == false)

        let a = harness.login("alice")
        a.send("OPER bob pw-bob")  // someone else's name
        a.send("OPER alice wrong")
        a.send("OPER alice")
        #expect(a.received.map(\.command) == ["491", "464", "461"])
        #expect(a.handle?.isOperator == false)
        #expect(harness.logins.attempts == 2 + 1)  // two logins, one password check for OPER

        a.clear()
        a.send("OPER ALICE pw-alice")  // the name ignores case
        #expect(a.received[0].command == "381" && a.received[0].parameters == ["alice", "You are now an IRC operator"])
        #expect(a.received[1].source == "alice!alice@user/alice" && a.received[1].command == "MODE" && a.received[1].parameters == ["alice", "+o"])
        #expect(a.handle?.isOperator == true)
        a.clear()
        a.send("MODE alice")
        #expect(a.received.map(\.parameters) == [["alice", "+io"]])
    }

    @Test func operatorsShowInWhoAndWhois() {
        let a = oper()
        let b = harness.login("bob")
        a.send("JOIN #r")
        b.send("JOIN #r")
        b.clear()
        b.send("WHOIS alice")
        #expect(b.received("313").first?.parameters == ["bob", "alice", "is an IRC operator"])
        b.send("WHO #r")
        #expect(b.received("352").map { $0.parameters[6] } == ["H*@", "H"])
        b.send("WHO #r %nf")
        #expect(b.received("354").map(\.parameters) == [["bob", "alice", "H*@"], ["bob", "bob", "H"]])
        b.clear()
        b.send("WHOIS bob")
        #expect(b.received("313").isEmpty)
    }

    @Test func minusOGivesUpOperatorStatusAndPlusOIsIgnored() {
        let a = oper()
        a.send("MODE alice -o")
        #expect(a.received.map(\.parameters) == [["alice", "-o"]])
        #expect(a.handle?.isOperator == false)
        a.clear()
        a.send("MODE alice +o")  // only OPER makes an operator
        #expect(a.received.map(\.parameters) == [["alice", "+i"]])
        #expect(a.handle?.isOperator == false)
        a.clear()
        a.send("KILL bob")
        #expect(a.received.map(\.command) == ["481"])
    }

    @Test func losingTheRoleEndsOperatorStatus() {
        let a = oper()
        harness.policy.setOperator("alice", false)
        #expect(a.handle?.isOperator == false)
        #expect(a.received.map(\.command) == ["MODE"])
        #expect(a.received.first?.parameters == ["alice", "-o"])
    }

    @Test func killEndsTheSessionAndTheRoomSeesWhy() {
        let b = harness.login("bob")
        let c = harness.login("carol")
        b.send("KILL carol :no")
        #expect(b.received.map(\.command) == ["481"])
        #expect(!c.isClosed)

        let a = oper()
        b.send("JOIN #r")
        c.send("JOIN #r")
        b.clear()
        a.send("KILL nobody")
        #expect(a.received.map(\.command) == ["401"])
        a.send("KILL carol :spamming")
        #expect(c.closedWith == "Killed by alice (spamming)")
        #expect(b.received.map(\.command) == ["QUIT"])
        #expect(b.received.first?.parameters == ["Killed by alice (spamming)"])
        #expect(harness.core.registry.session(named: "carol") == nil)
    }

    @Test func wallopsReachThoseWithPlusW() {
        let a = oper()
        let b = harness.login("bob")
        let c = harness.login("carol")
        b.send("MODE bob +w")
        #expect(b.received.map(\.parameters) == [["bob", "+w"]])
        b.send("MODE bob")
        #expect(b.received.last?.parameters == ["bob", "+iw"])
        b.clear()
        c.send("WALLOPS :hello")
        #expect(c.received.map(\.command) == ["481"])
        #expect(b.received.isEmpty)
        c.clear()
        a.send("WALLOPS :maintenance at noon")
        #expect(b.received.map(\.command) == ["WALLOPS"])
        #expect(b.received.first?.source == "alice!alice@user/alice" && b.received.first?.parameters == ["maintenance at noon"])
        #expect(c.received.isEmpty)
        #expect(a.received.isEmpty)  // alice has no +w
    }

    @Test func operatorsActInAnyRoom() {
        let b = harness.login("bob")
        let c = harness.login("carol")
        b.send("JOIN #r")
        b.send("MODE #r +st")
        c.send("JOIN #r")
        c.clear()
        let a = harness.login("alice")
        a.send("MODE #r +m")  // secret: a plain user does not see it
        a.send("KICK #r carol")
        #expect(a.received.map(\.command) == ["403", "403"])
        a.send("OPER alice pw-alice")
        a.clear()
        a.send("MODE #r +m")
        a.send("TOPIC #r :closed for today")
        a.send("KICK #r carol :go home")
        #expect(a.received.isEmpty)  // not a member: no echo
        #expect(c.received.map(\.command) == ["MODE", "TOPIC", "KICK"])
        #expect(c.received[0].parameters == ["#r", "+m"])
        #expect(c.received[2].parameters == ["#r", "carol", "go home"])
        #expect(c.handle?.roomCount == 0)
        a.send("MODE #r")
        #expect(a.received("324").first?.parameters == ["alice", "#r", "+mnst"])
    }

    @Test func clearchanEmptiesARoom() {
        let a = oper()
        let b = harness.login("bob")
        let c = harness.login("carol")
        b.send("JOIN #spam"); c.send("JOIN #spam")
        b.send("CLEARCHAN #spam")
        #expect(b.received.last?.command == "481")
        b.clear()
        a.send("CLEARCHAN #spam :bot nest")
        #expect(b.received.map(\.command) == ["KICK", "KICK"])
        #expect(b.received.map { $0.parameters[1] }.sorted() == ["bob", "carol"])
        #expect(harness.core.registry.room(named: "#spam") == nil)
        #expect(a.received.map(\.command) == ["NOTICE"])
        #expect(a.received.first?.parameters.last == "CLEARCHAN: removed 2 members from #spam")
    }

    @Test func klineOnAnAccountEndsItsSessionAndRefusesItsLogins() {
        let a = oper()
        let b = harness.login("bob")
        a.send("KLINE 2h bob :flooding")
        #expect(b.closedWith == "Banned: flooding")
        #expect(a.received.map(\.command) == ["NOTICE"])
        #expect(a.received[0].parameters[1].hasPrefix("Added server ban on bob until "))

        // A right password is refused, with 464 (PASS) and 465 before ERROR.
        let again = harness.connect(address: "198.51.100.9")
        again.send("PASS bob:pw-bob")
        again.send("NICK bob")
        again.send("USER bob 0 * :Bob")
        #expect(again.received.map(\.command) == ["464", "465", "ERROR"])
        #expect(again.received[1].parameters[1].hasPrefix("You are banned from this server: flooding (until "))
        #expect(again.session.phase == .closed)

        a.clear()
        a.send("STATS k")
        #expect(a.received.map(\.command) == ["216", "219"])
        #expect(Array(a.received[0].parameters[1...2]) == ["K", "bob"])
        #expect(a.received[0].parameters.suffix(2) == ["alice", "flooding"])

        // The ban ends on its own.
        harness.now += 2 * 3600 + 1
        let later = harness.login("bob")
        #expect(later.session.phase == .registered)
    }

    @Test func unklineLiftsABan() {
        let a = oper()
        a.send("KLINE carol")
        a.send("UNKLINE carol")
        #expect(a.received.last?.parameters.last == "Removed server ban on carol (set by alice: No reason given)")
        a.send("UNKLINE carol")
        #expect(a.received.last?.parameters.last == "no server ban on 'carol'")
        #expect(harness.login("carol").session.phase == .registered)
    }

    @Test func klineOnAnAddressRangeRefusesBeforeAnyPasswordCheck() {
        let a = oper()
        let b = harness.login("bob", address: "203.0.113.50")
        let c = harness.login("carol", address: "198.51.100.1")
        a.send("KLINE *@203.0.113.0/24 :botnet")
        #expect(b.closedWith == "Banned: botnet")
        #expect(!c.isClosed)
        let attempts = harness.logins.attempts
        let again = harness.connect(address: "203.0.113.99")
        again.send("CAP LS 302")
        again.send("CAP REQ :sasl standard-replies")
        again.send("AUTHENTICATE PLAIN")
        again.send("AUTHENTICATE " + Base64Text.encode("\0carol\0pw-carol"))
        #expect(again.received.suffix(4).map(\.command) == ["FAIL", "904", "465", "ERROR"])
        #expect(again.received("FAIL").first?.parameters[1] == "BANNED")
        #expect(harness.logins.attempts == attempts)  // no hashing for a banned address
    }

    @Test func klineRefusesBadTargetsAndBansThatCoverTheOperator() {
        let a = oper()
        a.send("KLINE nick!user@host")
        a.send("KLINE 192.0.2.0/24")  // alice logged in from 192.0.2.1
        a.send("KLINE alice")
        a.send("KLINE 30m")
        #expect(a.received.map(\.command) == ["NOTICE", "NOTICE", "NOTICE", "461"])
        #expect(a.received[0].parameters[1].contains("is neither an account name nor an address or range"))
        #expect(a.received[1].parameters[1].hasPrefix("KLINE: refused: that ban would cover you"))
        #expect(harness.policy.bans.isEmpty)
        let b = harness.login("bob")
        b.send("KLINE carol")
        b.send("STATS k")
        #expect(b.received.map(\.command) == ["481", "481"])
    }
}

/// Base64 for SASL PLAIN in tests.
enum Base64Text {
    static func encode(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
}

import ChatHistory
@testable import ChatServer
import ChatTesting
import Foundation
import IRC
import Testing

/// History through the session state machine: what is stored, CHATHISTORY and its errors, replay
/// on JOIN for clients that do not fetch history, and private messages kept for an offline account.
@Suite struct SessionHistoryTests {
    let store: SQLiteHistory
    let harness: SessionHarness

    init() throws {
        let folder = NSTemporaryDirectory() + "securechat-session-history-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        store = try SQLiteHistory(path: folder + "/history.sqlite", durabilityMilliseconds: 0)
        harness = SessionHarness(accounts: ["alice": "pw-a", "bob": "pw-b", "carol": "pw-c"], history: store) { $0.history.replayOnJoin = 3 }
    }

    static let caps = ["draft/chathistory", "batch", "server-time", "message-tags", "account-tag"]

    @Test func chathistoryLatestBeforeAndTheBatch() {
        let a = harness.login("alice", capabilities: Self.caps)
        a.send("JOIN #r")
        for i in 1...5 {
            harness.now += 1
            a.send("PRIVMSG #r :line \(i)")
        }
        a.clear()
        a.send("CHATHISTORY LATEST #r * 2")
        let r = a.take()
        #expect(r.map(\.command) == ["BATCH", "PRIVMSG", "PRIVMSG", "BATCH"])
        let id = String(r[0].parameters[0].dropFirst())
        #expect(r[0].parameters == ["+" + id, "chathistory", "#r"] && r.last?.parameters == ["-" + id])
        #expect(r[1].parameters == ["#r", "line 4"] && r[2].parameters == ["#r", "line 5"])
        #expect(r[1].tag("batch") == id && r[1].tag("account") == "alice" && r[1].tag("time") == Relay.timestamp(Date(timeIntervalSince1970: 1_800_000_004)))
        #expect(r[1].source == "alice!alice@user/alice")
        let msgid = r[1].tag("msgid")!
        a.send("CHATHISTORY BEFORE #r msgid=\(msgid) 10")
        #expect(a.take().filter { $0.command == "PRIVMSG" }.map { $0.parameters[1] } == ["line 1", "line 2", "line 3"])
        a.send("CHATHISTORY AFTER #r timestamp=2027-01-15T08:00:02.000Z 2")
        #expect(a.take().filter { $0.command == "PRIVMSG" }.map { $0.parameters[1] } == ["line 3", "line 4"])
        a.send("CHATHISTORY BETWEEN #r timestamp=2027-01-15T08:00:01.000Z timestamp=2027-01-15T08:00:04.000Z 10")
        #expect(a.take().filter { $0.command == "PRIVMSG" }.map { $0.parameters[1] } == ["line 2", "line 3"])
        a.send("CHATHISTORY AROUND #r msgid=\(msgid) 2")
        #expect(a.take().filter { $0.command == "PRIVMSG" }.map { $0.parameters[1] } == ["line 3", "line 4"])
    }

    @Test func eventPlaybackBringsJoinsPartsKicksTopicsModesAndQuitsOnlyToThoseWhoAsk() {
        let a = harness.login("alice", capabilities: Self.caps + ["draft/event-playback"])
        let b = harness.login("bob", capabilities: Self.caps)
        a.send("JOIN #ev")
        harness.now += 1
        b.send("JOIN #ev")
        harness.now += 1
        a.send("TOPIC #ev :plans")
        a.send("MODE #ev +m")
        a.send("PRIVMSG #ev :hello")
        harness.now += 1
        a.send("KICK #ev bob :later")
        b.send("JOIN #ev")
        b.send("PART #ev :gone")
        b.send("JOIN #ev")
        b.close(reason: "off")
        a.clear()
        a.send("CHATHISTORY LATEST #ev * 20")
        let events = a.take().filter { $0.command != "BATCH" }
        #expect(events.map(\.command) == ["JOIN", "JOIN", "TOPIC", "MODE", "PRIVMSG", "KICK", "JOIN", "PART", "JOIN", "QUIT"])
        #expect(events[5].parameters == ["#ev", "bob", "later"] && events[9].parameters == ["off"])
        #expect(Set(events.compactMap { $0.tag("msgid") }).count == events.count)
        // Without the capability: the message alone, the limit counting messages only.
        let c = harness.login("carol", capabilities: Self.caps)
        c.send("JOIN #ev")
        c.clear()
        c.send("CHATHISTORY LATEST #ev * 1")
        #expect(c.take().filter { $0.command != "BATCH" }.map(\.parameters) == [["#ev", "hello"]])
        // TARGETS counts messages, not events.
        c.send("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z 10")
        #expect(c.take().filter { $0.command == "CHATHISTORY" }.map { $0.parameters[1] } == ["#ev"])
    }

    @Test func aQuitKeepsTheMsgidEveryoneSawInEachRoom() {
        let a = harness.login("alice", capabilities: Self.caps + ["draft/event-playback"])
        let b = harness.login("bob", capabilities: Self.caps)
        a.send("JOIN #x,#y")
        b.send("JOIN #x,#y")
        a.clear()
        b.close(reason: "bye")
        let live = a.received("QUIT")
        #expect(live.count == 1)
        a.clear()
        a.send("CHATHISTORY LATEST #x * 1")
        let inX = a.received("QUIT")
        a.clear()
        a.send("CHATHISTORY LATEST #y * 1")
        let inY = a.received("QUIT")
        #expect(inX.count == 1 && inY.count == 1)
        #expect(inX.first?.tag("msgid") == live.first?.tag("msgid") && inY.first?.tag("msgid") == live.first?.tag("msgid"))
    }

    @Test func historyRequestsAreRateLimitedPerClient() {
        let a = harness.login("alice", capabilities: Self.caps)
        a.send("JOIN #r")
        a.clear()
        for _ in 0..<20 { a.send("CHATHISTORY LATEST #r * 1") }
        #expect(a.received("FAIL").isEmpty)
        a.clear()
        a.send("CHATHISTORY LATEST #r * 1")
        #expect(a.take().map { $0.parameters.prefix(4) } == [["CHATHISTORY", "MESSAGE_ERROR", "LATEST", "#r"]])
        harness.now += 1
        for _ in 0..<4 { a.send("CHATHISTORY LATEST #r * 1") }
        #expect(a.received("FAIL").isEmpty)
        a.send("CHATHISTORY LATEST #r * 1")
        #expect(a.received("FAIL").count == 1)
    }

    @Test func onlyMembersAndPartiesReadAndBadRequestsFail() {
        let a = harness.login("alice", capabilities: Self.caps)
        let b = harness.login("bob", capabilities: Self.caps)
        a.send("JOIN #secret")
        a.send("PRIVMSG #secret :not for bob")
        b.send("CHATHISTORY LATEST #secret * 10")
        #expect(b.take().map { $0.parameters.prefix(3) } == [["CHATHISTORY", "INVALID_TARGET", "LATEST"]])
        a.clear()
        for bad in ["CHATHISTORY", "CHATHISTORY LATEST #secret", "CHATHISTORY LATEST #secret * zero", "CHATHISTORY BEFORE #secret * 5",
                    "CHATHISTORY SIDEWAYS #secret * 5", "CHATHISTORY TARGETS timestamp=x timestamp=y 5"] {
            a.send(bad)
        }
        #expect(a.take().map { $0.command == "FAIL" ? $0.parameters[1] : $0.command } == ["NEED_MORE_PARAMS", "NEED_MORE_PARAMS", "INVALID_PARAMS", "INVALID_PARAMS", "INVALID_PARAMS", "INVALID_PARAMS"])
        // A private conversation: both parties read it, from either side.
        a.send("PRIVMSG bob :psst")
        b.clear()
        b.send("CHATHISTORY LATEST alice * 10")
        #expect(b.take().filter { $0.command == "PRIVMSG" }.map(\.parameters) == [["bob", "psst"]])
        let c = harness.login("carol", capabilities: Self.caps)
        c.send("CHATHISTORY LATEST alice * 10")
        #expect(c.take().filter { $0.command == "PRIVMSG" }.isEmpty)  // carol's conversation with alice is empty
    }

    @Test func targetsListsMyConversations() {
        let a = harness.login("alice", capabilities: Self.caps)
        _ = harness.login("bob")
        a.send("JOIN #one")
        a.send("PRIVMSG #one :hi")
        harness.now += 1
        a.send("PRIVMSG bob :hey")
        a.clear()
        a.send("CHATHISTORY TARGETS timestamp=2020-01-01T00:00:00.000Z timestamp=2030-01-01T00:00:00.000Z 10")
        let r = a.take()
        #expect(r.first?.parameters[1] == "draft/chathistory-targets")
        #expect(r.filter { $0.command == "CHATHISTORY" }.map { $0.parameters[1] } == ["bob", "#one"])
    }

    @Test func replayOnJoinForClientsWithoutChathistory() {
        let a = harness.login("alice")
        a.send("JOIN #r")
        for i in 1...5 { a.send("PRIVMSG #r :said \(i)") }
        a.send("PART #r")
        harness.now += 1  // what was said before the JOIN is replayed; what comes after, live
        // irssi-like: no server-time, no batch: the last 3, with their time in the text.
        let b = harness.login("bob")
        b.send("JOIN #r")
        let replayed = b.received("PRIVMSG")
        #expect(replayed.map { $0.parameters[1] } == ["[2027-01-15 08:00:00Z] said 3", "[2027-01-15 08:00:00Z] said 4", "[2027-01-15 08:00:00Z] said 5"])
        #expect(b.received.last?.command == "PRIVMSG")  // after the JOIN and NAMES
        // With server-time and batch: the original time as a tag, the text untouched.
        let c = harness.login("carol", capabilities: ["server-time", "batch"])
        c.send("JOIN #r")
        #expect(c.received("PRIVMSG").map { $0.parameters[1] } == ["said 3", "said 4", "said 5"])
        #expect(c.received("BATCH").count == 2 && c.received("PRIVMSG").allSatisfy { $0.tag("time") != nil && $0.tag("batch") != nil })
        // A client that fetches history itself gets no replay.
        let d = harness.login("alice", capabilities: Self.caps)
        d.send("JOIN #r")
        #expect(d.received("PRIVMSG").isEmpty)
    }

    @Test func privateMessagesToAnOfflineAccountArriveAtItsLogin() {
        let a = harness.login("alice")
        a.send("PRIVMSG bob :are you there?")
        #expect(a.received.map(\.command) == ["301"])
        #expect(a.received[0].parameters.last == "is offline: your message is kept and delivered at their next login")
        a.send("PRIVMSG nobody :hello")
        #expect(a.received.last?.command == "401")  // no such account: nothing kept
        let b = harness.connect()
        b.send("PASS bob:pw-b")
        b.send("NICK bob")
        b.send("USER bob 0 * :Bob")
        #expect(b.received("PRIVMSG").map(\.parameters) == [["bob", "[2027-01-15 08:00:00Z] are you there?"]])
        #expect(b.received("PRIVMSG").first?.source == "alice!alice@user/alice")
        // Once seen, not again.
        b.close(reason: "bye")
        harness.now += 10
        let again = harness.login("bob")
        again.send("PING x")
        #expect(harness.logins.attempts >= 2)
        #expect(again.received("PRIVMSG").isEmpty)
    }

    @Test func readMarkersMoveForwardAndFollowTheAccount() {
        let a = harness.login("alice", capabilities: ["draft/read-marker"])
        a.send("JOIN #r")
        #expect(a.received.map(\.command) == ["JOIN", "353", "MARKREAD", "366"])
        #expect(a.received[2].parameters == ["#r", "*"])
        a.clear()
        a.send("MARKREAD #r timestamp=2027-01-15T08:00:05.000Z")
        a.send("MARKREAD #r timestamp=2027-01-15T08:00:01.000Z")  // never back
        a.send("MARKREAD #r")
        #expect(a.take().map(\.parameters) == Array(repeating: ["#r", "timestamp=2027-01-15T08:00:05.000Z"], count: 3))
        a.send("MARKREAD bob timestamp=2027-01-15T08:00:09.000Z")  // a private conversation
        #expect(a.take().first?.parameters == ["bob", "timestamp=2027-01-15T08:00:09.000Z"])
        a.send("MARKREAD #elsewhere")
        a.send("MARKREAD #r yesterday")
        a.send("MARKREAD")
        #expect(a.take().map { $0.parameters[1] } == ["INVALID_PARAMS", "INVALID_PARAMS", "NEED_MORE_PARAMS"])
        // Another device logs in to the account: it finds the marker on joining.
        let other = harness.login("alice", capabilities: ["draft/read-marker"])
        other.send("PART #r")  // it was rejoined at login; join again to see the marker arrive
        other.send("JOIN #r")
        #expect(other.received("MARKREAD").first?.parameters == ["#r", "timestamp=2027-01-15T08:00:05.000Z"])
        // And in the database, for the next start.
        store.flush()
        let reopened = try! SQLiteHistory(path: store.path, durabilityMilliseconds: 0)
        #expect(reopened.readMarker(account: "alice", target: "#r") == 1_800_000_005_000)
        reopened.close()
    }

    @Test func historyOffMeansNoCapNoTokenAndAPoliteRefusal() {
        let plain = SessionHarness(accounts: ["alice": "pw"])
        let a = plain.connect()
        a.send("CAP LS 302")
        let listing = a.received.first?.parameters.last ?? ""
        #expect(listing.contains("batch") && listing.contains("draft/chathistory") == false, "CAP LS: \(listing)")
        let b = plain.login("alice")
        b.send("CHATHISTORY LATEST #x * 5")
        #expect(b.received.first?.parameters.prefix(2) == ["CHATHISTORY", "UNKNOWN_COMMAND"])
        let on = harness.core.isupportLines.flatMap { $0 }
        #expect(on.contains("CHATHISTORY=100") && on.contains("MSGREFTYPES=timestamp,msgid"))
        #expect(!plain.core.isupportLines.flatMap { $0 }.contains("CHATHISTORY=100"))
    }
}

/// Rooms that outlive their members and restarts, owners, and rooms that follow an account.
@Suite struct SessionRoomPersistenceTests {
    let path: String

    init() throws {
        let folder = NSTemporaryDirectory() + "securechat-rooms-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        path = folder + "/history.sqlite"
    }

    func harness(_ store: SQLiteHistory, rejoin: Bool = true) -> SessionHarness {
        SessionHarness(accounts: ["alice": "pw-a", "bob": "pw-b"], history: store) { $0.rooms.rejoinOnLogin = rejoin }
    }

    @Test func topicModesAndOwnerSurviveAnEmptyRoomAndARestart() throws {
        var store = try SQLiteHistory(path: path, durabilityMilliseconds: 0)
        var h = harness(store)
        let a = h.login("alice")
        a.send("JOIN #Team")
        a.send("TOPIC #team :plans for Monday")
        a.send("MODE #team +sk secret")
        a.send("MODE #team +bb carol ~a:mallory")
        a.send("PART #team")
        #expect(h.core.registry.room(named: "#team") == nil)  // empty: gone from memory
        store.flush()
        store.close()

        // A new server on the same database.
        store = try SQLiteHistory(path: path, durabilityMilliseconds: 0)
        defer { store.close() }
        h = harness(store)
        let b = h.login("bob")
        b.send("JOIN #team secret")  // bob joins first, with the key: not the owner, so no @
        #expect(b.received("332").first?.parameters.last == "plans for Monday")
        #expect(b.received("353").first?.parameters.last == "bob")
        b.send("MODE #team")
        #expect(b.received("324").first?.parameters == ["bob", "#Team", "+knst", "secret"])
        // The ban list too, with who set each ban and when.
        b.send("MODE #team +b")
        #expect(b.received("367").map { Array($0.parameters.dropFirst(2)) } == [["carol!*@*", "alice", "1800000000"], ["~a:mallory", "alice", "1800000000"]])
        // The owner is operator whenever she joins, even after someone else.
        let a2 = h.login("alice")
        a2.send("JOIN #team")
        #expect(a2.received("353").first?.parameters.last == "bob @alice")
        a2.send("TOPIC #team :new plans")
        #expect(a2.received("482").isEmpty)
    }

    @Test func theOwnerHandsOwnershipOn() throws {
        let store = try SQLiteHistory(path: path, durabilityMilliseconds: 0)
        defer { store.close() }
        let h = harness(store)
        let a = h.login("alice")
        let b = h.login("bob")
        a.send("JOIN #club")
        b.send("JOIN #club")
        b.send("OWNER #club bob")
        #expect(b.received.last?.command == "482")
        a.clear()
        a.send("OWNER #club")
        a.send("OWNER #club nobody")
        a.send("OWNER #club Bob")
        #expect(a.received.map(\.command) == ["NOTICE", "401", "MODE", "NOTICE"])
        #expect(a.received[0].parameters.last == "#club is owned by alice")
        #expect(a.received[2].parameters == ["#club", "+o", "bob"] && a.received[3].parameters.last == "#club is now owned by bob")
        #expect(store.room("#club")?.owner == "bob")
        // The new owner is operator whenever it comes back; the old one no longer.
        b.send("PART #club")
        a.send("PART #club")
        a.send("JOIN #club")
        b.clear()
        b.send("JOIN #club")
        #expect(b.received("353").first?.parameters.last == "alice @bob")
    }

    @Test func roomsFollowTheAccountToItsNextLogin() throws {
        let store = try SQLiteHistory(path: path, durabilityMilliseconds: 0)
        defer { store.close() }
        let h = harness(store)
        let a = h.login("alice")
        a.send("JOIN #one,#two,#three")
        a.send("PART #two")
        a.close(reason: "bye")
        // The next login finds #one and #three, in the order joined, without asking.
        let again = h.connect()
        again.send("PASS alice:pw-a")
        again.send("NICK alice")
        again.send("USER alice 0 * :Alice")
        #expect(again.received("JOIN").map(\.parameters) == [["#one"], ["#three"]])
        #expect(again.received("353").count == 2)
        // Switched off: nothing is joined.
        let off = harness(store, rejoin: false)
        let b = off.connect()
        b.send("PASS alice:pw-a")
        b.send("NICK alice")
        b.send("USER alice 0 * :Alice")
        #expect(b.received("JOIN").isEmpty)
    }

    @Test func roomsNobodyUsesExpireButLiveAndRecentlyUsedOnesStay() throws {
        let store = try SQLiteHistory(path: path, durabilityMilliseconds: 0)
        defer { store.close() }
        let h = SessionHarness(accounts: ["alice": "pw-a", "bob": "pw-b"], history: store) { $0.history.roomExpiryDays = 30 }
        let start = h.now
        let a = h.login("alice")
        let b = h.login("bob")
        a.send("JOIN #old")
        a.send("PART #old")
        b.send("JOIN #live")
        a.send("JOIN #chatty")
        h.now += 35 * 86_400
        a.send("PRIVMSG #chatty :still here")
        a.close(reason: "bye")  // a quit: #chatty is kept, empty, last used by that message
        store.flush()
        #expect(h.core.expireRooms(now: start + 40 * 86_400) == ["#old"])
        #expect(store.room("#old") == nil && store.room("#live") != nil && store.room("#chatty") != nil)
        // Ten days on, #chatty's last message is over 30 days old too.
        #expect(h.core.expireRooms(now: start + 70 * 86_400) == ["#chatty"])
        #expect(store.memberships(of: "alice").isEmpty)
    }
}

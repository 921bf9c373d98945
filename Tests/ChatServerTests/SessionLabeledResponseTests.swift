import ChatHistory
@testable import ChatServer
import ChatTesting
import Foundation
import IRC
import Testing

/// IRCv3 labeled-response: a labeled command's replies carry its label, tagged, batched or as ACK.
@Suite struct SessionLabeledResponseTests {
    let harness = SessionHarness(accounts: ["alice": "pw-a", "bob": "pw-b"], operators: ["alice"])
    static let caps = ["labeled-response", "batch", "message-tags", "echo-message"]

    @Test func oneReplyIsTaggedSeveralAreBatchedNoneIsAnAck() {
        let a = harness.login("alice", capabilities: Self.caps)
        a.send("@label=p1 PING :tok")
        #expect(a.take() == [IRCMessage(tags: [IRCTag("label", "p1")], source: "localhost", command: "PONG", parameters: ["localhost", "tok"])])
        a.send("@label=j1 JOIN #r")
        let join = a.take()
        #expect(join.first?.command == "BATCH" && join.first?.tag("label") == "j1" && join.first?.parameters.last == "labeled-response")
        let id = String(join.first!.parameters[0].dropFirst())
        #expect(join.dropFirst().dropLast().allSatisfy { $0.tag("batch") == id })
        #expect(join.dropFirst().dropLast().map(\.command) == ["JOIN", "353", "366"])
        #expect(join.last?.parameters == ["-" + id])
        // PRIVMSG to a room: the echo carries the label; others get it without.
        let b = harness.login("bob", capabilities: ["message-tags"])
        b.send("JOIN #r")
        a.clear()
        b.clear()
        a.send("@label=m1 PRIVMSG #r :hi")
        let echo = a.take()
        #expect(echo.count == 1 && echo.first?.tag("label") == "m1" && echo.first?.parameters == ["#r", "hi"])
        #expect(b.take().map { $0.tag("label") } == [nil])
        // Nothing to say: ACK.
        a.send("@label=n1 NOTICE #r :shh")  // the echo is the reply
        #expect(a.take().first?.tag("label") == "n1")
        a.send("CAP REQ -echo-message")
        a.clear()
        a.send("@label=n2 PRIVMSG #r :quiet")
        #expect(a.take() == [IRCMessage(tags: [IRCTag("label", "n2")], source: "localhost", command: "ACK", parameters: [])])
        // An error reply is labeled like any other.
        a.send("@label=e1 PRIVMSG nobody :x")
        #expect(a.take().map { "\($0.command) \($0.tag("label") ?? "-")" } == ["401 e1"])
    }

    @Test func withoutTheCapabilityOrWithABadLabelNothingChanges() {
        let plain = harness.login("bob", capabilities: ["message-tags"])
        plain.send("@label=x PING :t")
        #expect(plain.take().map { $0.tag("label") } == [nil])
        let a = harness.login("alice", capabilities: Self.caps)
        a.send("@label=\(String(repeating: "x", count: 65)) PING :t")
        #expect(a.take().map { $0.tag("label") } == [nil])
    }

    @Test func laterAnswersCarryTheLabelTooHistoryAndOper() throws {
        let folder = NSTemporaryDirectory() + "securechat-labeled-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteHistory(path: folder + "/history.sqlite", durabilityMilliseconds: 0)
        defer { store.close() }
        let h = SessionHarness(accounts: ["alice": "pw-a"], operators: ["alice"], history: store)
        let a = h.login("alice", capabilities: Self.caps + ["draft/chathistory"])
        a.send("JOIN #r")
        a.send("PRIVMSG #r :one")
        a.clear()
        a.send("@label=h1 CHATHISTORY LATEST #r * 5")
        let r = a.take()
        // The chathistory batch sits inside the labeled-response batch.
        #expect(r.map(\.command) == ["BATCH", "BATCH", "PRIVMSG", "BATCH", "BATCH"])
        #expect(r[0].tag("label") == "h1" && r[0].parameters.last == "labeled-response")
        let outer = String(r[0].parameters[0].dropFirst())
        #expect(r[1].tag("batch") == outer && r[1].parameters.dropFirst().first == "chathistory")
        #expect(r[2].tag("batch") == String(r[1].parameters[0].dropFirst()))
        #expect(r[4].parameters == ["-" + outer])
        a.send("@label=o1 OPER alice pw-a")
        #expect(a.take().contains { $0.tag("label") == "o1" })
    }
}

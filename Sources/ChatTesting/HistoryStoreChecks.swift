import ChatHistory
import Foundation

/// What every history store must answer alike, checked the same way against SQLite and
/// PostgreSQL. Each check fills an empty store and returns what differed from the expected
/// answers (empty: all as expected), for the test to report.
public enum HistoryStoreChecks {
    /// `n` messages in `target`, one a second from t0, msgids m1…mn in "#room", TARGET-i elsewhere.
    public static func fill(_ store: any HistoryStore, _ target: String = "#room", count n: Int, t0: Int64 = 1_000_000) {
        for i in 1...n {
            store.append(StoredMessage(msgid: target == "#room" ? "m\(i)" : "\(target)-\(i)", time: t0 + Int64(i) * 1000, target: target, sender: "alice",
                                       kind: "PRIVMSG", line: ":alice!alice@user/alice PRIVMSG \(target) :message \(i)"))
        }
        store.flush()
    }

    /// Collects "what: got X, expected Y" lines.
    private struct Differences {
        var lines: [String] = []
        mutating func check<T: Equatable>(_ what: String, _ got: T, _ expected: T) {
            if got != expected { lines.append("\(what): got \(got), expected \(expected)") }
        }
    }

    private static func ids(_ messages: [StoredMessage]) -> [String] { messages.map(\.msgid) }

    /// Every CHATHISTORY form, oldest first, in a store with 10 messages in #room and 3 in #other.
    public static func queryForms(_ store: any HistoryStore) throws -> [String] {
        fill(store, count: 10)
        fill(store, "#other", count: 3, t0: 5_000_000)
        let t = { (i: Int64) in HistoryReference.time(1_000_000 + i * 1000) }
        var d = Differences()
        func q(_ query: HistoryQuery) throws -> [String] { ids(try store.query(query)) }
        d.check("latest 3", try q(.latest(target: "#room", after: nil, limit: 3)), ["m8", "m9", "m10"])
        d.check("latest after m7", try q(.latest(target: "#room", after: .msgid("m7"), limit: 100)), ["m8", "m9", "m10"])
        d.check("latest after t8", try q(.latest(target: "#room", after: t(8), limit: 100)), ["m9", "m10"])
        d.check("before m5", try q(.before(target: "#room", .msgid("m5"), limit: 2)), ["m3", "m4"])
        d.check("before t5", try q(.before(target: "#room", t(5), limit: 10)), ["m1", "m2", "m3", "m4"])
        d.check("after m5", try q(.after(target: "#room", .msgid("m5"), limit: 2)), ["m6", "m7"])
        d.check("after t9", try q(.after(target: "#room", t(9), limit: 10)), ["m10"])
        d.check("around m5", try q(.around(target: "#room", .msgid("m5"), limit: 4)), ["m3", "m4", "m5", "m6"])
        d.check("between m2 m6", try q(.between(target: "#room", .msgid("m2"), .msgid("m6"), limit: 10)), ["m3", "m4", "m5"])
        d.check("between m2 m9, 2", try q(.between(target: "#room", .msgid("m2"), .msgid("m9"), limit: 2)), ["m3", "m4"])
        // Backwards: the nearest to the first reference, still oldest first.
        d.check("between m9 m2, 2", try q(.between(target: "#room", .msgid("m9"), .msgid("m2"), limit: 2)), ["m7", "m8"])
        d.check("between t2 t5", try q(.between(target: "#room", t(2), t(5), limit: 10)), ["m3", "m4"])
        // A msgid of another conversation, or unknown: nothing.
        d.check("before an unknown msgid", try q(.before(target: "#room", .msgid("nope"), limit: 5)), [])
        d.check("an empty room", try q(.latest(target: "#nobody", after: nil, limit: 5)), [])
        d.check("the line", try store.query(.latest(target: "#room", after: nil, limit: 1)).first?.line, ":alice!alice@user/alice PRIVMSG #room :message 10")
        return d.lines
    }

    /// CHATHISTORY TARGETS: rooms asked for and the account's private conversations, newest first.
    public static func targets(_ store: any HistoryStore) throws -> [String] {
        fill(store, "#a", count: 2, t0: 0)
        fill(store, "#b", count: 1, t0: 10_000)
        fill(store, HistoryTarget.privateKey("bob", "alice"), count: 1, t0: 20_000)
        fill(store, HistoryTarget.privateKey("carol", "dave"), count: 1, t0: 30_000)
        var d = Differences()
        // Newest activity first; carol and dave's is not alice's.
        d.check("alice's", try store.targets(rooms: ["#a", "#b"], account: "alice", from: 0, to: 100_000, limit: 10).map(\.key), ["alice,bob", "#b", "#a"])
        d.check("bob's, 1", try store.targets(rooms: ["#a"], account: "bob", from: 0, to: 100_000, limit: 1).map(\.key), ["alice,bob"])
        d.check("from 10.5 s", try store.targets(rooms: ["#a", "#b"], account: "x", from: 10_500, to: 100_000, limit: 10).map(\.key), ["#b"])
        return d.lines
    }

    /// Purging by age (5 days) and by count (20 per conversation).
    public static func retention(_ store: any HistoryStore) throws -> [String] {
        let day: Int64 = 86_400_000
        let now = Date(timeIntervalSince1970: 100 * 86_400)
        for i in 0..<10 {  // one a day, days 90 to 99
            store.append(StoredMessage(msgid: "d\(i)", time: (90 + Int64(i)) * day, target: "#old", sender: "a", kind: "PRIVMSG", line: "x"))
        }
        fill(store, "#busy", count: 50, t0: 99 * day)
        store.purge(HistoryRetention(days: 5, messagesPerTarget: 20), now: now)
        store.flush()
        var d = Differences()
        d.check("#old", ids(try store.query(.latest(target: "#old", after: nil, limit: 100))), ["d5", "d6", "d7", "d8", "d9"])
        let busy = ids(try store.query(.latest(target: "#busy", after: nil, limit: 100)))
        d.check("#busy", [busy.count.description, busy.first ?? "", busy.last ?? ""], ["20", "#busy-31", "#busy-50"])
        return d.lines
    }
}

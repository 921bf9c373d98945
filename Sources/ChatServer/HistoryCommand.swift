import ChatAuth
import ChatHistory
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IRC

/// Work for the history store, done off the event loop (`ServerCore.perform(_:account:)`), whose
/// answer comes back to the session (`Session.historyFinished`).
public enum HistoryJob: Sendable {
    /// A CHATHISTORY request; `target` as the client named it; `events`: with room events
    /// (draft/event-playback).
    case chathistory(subcommand: String, target: String, query: HistoryQuery, events: Bool)
    /// CHATHISTORY TARGETS: `rooms` maps the folded names of the rooms the client is in to their names.
    case targets(rooms: [String: String], from: Int64, to: Int64, limit: Int)
    /// The last messages of a room just joined, said before `before` (the JOIN's time, ms): what
    /// came after is delivered live. For clients that do not fetch history themselves.
    case replay(room: String, key: String, limit: Int, before: Int64)
    /// Private messages sent to the account while it was offline.
    case missed
}

public enum HistoryResult: Sendable {
    case messages([StoredMessage])
    case targets([(name: String, latest: Int64)])
    case failed(String)
}

extension ServerCore {
    /// Runs `job` against the history store for `account` (folded). Blocking: call off the loops.
    /// `after`: the store's `sequence` when the job was made; the answer includes those writes
    /// (someone who joins right after a message gets it in the replay), waiting for the writer
    /// up to a second (one stuck on a full disk does not hold reads).
    public func perform(_ job: HistoryJob, account: String, after sequence: Int? = nil) -> HistoryResult {
        guard let history else { return .failed("history is off") }
        // Only a read of one conversation with a message of it still on its way waits.
        let sequence = sequence ?? history.sequence
        switch job {
        case let .chathistory(_, _, query, _): history.waitUntilStored(sequence, target: query.target, within: 1)
        case let .replay(_, key, _, _): history.waitUntilStored(sequence, target: key, within: 1)
        case .targets, .missed: history.waitUntilStored(sequence, within: 1)
        }
        do {
            switch job {
            case let .chathistory(_, _, query, events):
                return .messages(try history.query(query, events: events))
            case let .targets(rooms, from, to, limit):
                let found = try history.targets(rooms: Array(rooms.keys), account: account, from: from, to: to, limit: limit)
                return .targets(found.map { key, latest in (rooms[key] ?? HistoryTarget.otherParty(of: key, for: account) ?? key, latest) })
            case let .replay(_, key, limit, before):
                return .messages(try history.query(.before(target: key, .time(before), limit: limit)))
            case .missed:
                let since = try history.lastSeen(account) ?? 0
                var missed: [StoredMessage] = []
                for (key, _) in try history.targets(rooms: [], account: account, from: since, to: Int64.max, limit: 50) {
                    missed += try history.query(.after(target: key, .time(since), limit: HistoryCommand.maximumLimit)).filter { $0.sender != account }
                }
                return .messages(missed.sorted { $0.time < $1.time })
            }
        } catch {
            logger.error("history: \(error)")
            return .failed("\(error)")
        }
    }
}

extension ServerCore {
    /// Forgets the kept rooms nobody has joined or spoken in for `history.roomExpiryDays` and
    /// that nobody is in now; returns their names. Blocking (reads the store): off the loops.
    @discardableResult
    public func expireRooms(now: Date = Date()) -> [String] {
        let days = configuration.history.roomExpiryDays
        guard let history, days > 0 else { return [] }
        let cutoff = Int(now.timeIntervalSince1970) - days * 86_400
        var expired: [String] = []
        for record in history.rooms where record.lastUsed < cutoff && registry.room(named: record.name) == nil {
            let folded = IRCName.fold(record.name)
            let latest = (try? history.query(.latest(target: folded, after: nil, limit: 1), events: true))?.last?.time ?? 0
            guard latest < Int64(cutoff) * 1000 else { continue }
            history.deleteRoom(folded)
            expired.append(record.name)
            logger.notice("room expired: nobody used it for \(days) days (history.roomExpiryDays)", metadata: ["room": "\(record.name)"])
        }
        return expired
    }
}

/// CHATHISTORY (IRCv3 draft/chathistory), storing what is relayed, replay on JOIN and private
/// messages missed while offline.
enum HistoryCommand {
    /// The most messages one request returns (ISUPPORT CHATHISTORY).
    static let maximumLimit = 100

    /// How many CHATHISTORY requests a client may make: a burst (a client fetching every room
    /// after connecting), then a steady rate. Each reads the database on a shared thread.
    struct RequestBudget {
        static let burst = 20.0
        static let perSecond = 4.0
        private var tokens = burst
        private var last: Date?

        /// Takes one request from the budget; false when it is spent.
        mutating func take(now: Date) -> Bool {
            if let last { tokens = min(Self.burst, tokens + max(0, now.timeIntervalSince(last)) * Self.perSecond) }
            last = now
            guard tokens >= 1 else { return false }
            tokens -= 1
            return true
        }
    }

    /// Milliseconds since 1970 of `date`, as the relay's `time` tag shows it.
    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }

    /// Stores a relayed message of `c.me` in conversation `key`.
    static func store(_ relay: Relay, key: String, _ c: CommandContext) {
        guard let history = c.core.history else { return }
        store(relay, key: key, sender: c.me.folded, time: milliseconds(c.now), history: history)
    }

    /// Stores a relayed message of `sender` (folded) in conversation `key`, at `time` (ms).
    static func store(_ relay: Relay, key: String, sender: String, time: Int64, history: any HistoryStore) {
        if let message = storedMessage(relay, key: key, sender: sender, time: time) { history.append(message) }
    }

    /// What is kept of a relayed message; nil for what is not kept (typing notices).
    static func storedMessage(_ relay: Relay, key: String, sender: String, time: Int64) -> StoredMessage? {
        if relay.command == "TAGMSG" && relay.clientTags.allSatisfy({ $0.key == "+typing" || $0.key == "+draft/typing" }) { return nil }
        let line = IRCMessage(tags: relay.clientTags + (relay.fromBot ? [IRCTag("bot")] : []), source: relay.source, command: relay.command, parameters: relay.parameters)
        return StoredMessage(msgid: relay.msgid, time: time, target: key, sender: sender, kind: relay.command,
                             line: String(decoding: line.serialized().dropLast(2), as: UTF8.self))
    }

    /// Keeps the room events (JOIN, PART, KICK, TOPIC, MODE) among `actions`, for
    /// draft/event-playback: each under its room, with the msgid its recipients got.
    static func storeEvents(_ actions: [Session.Action], by me: SessionHandle, core: ServerCore, now: Date) {
        guard let history = core.history else { return }
        for case let .deliver(relay, _, _, _) in actions where HistoryEvent.kinds.contains(relay.command) {
            guard let room = relay.parameters.first, room.hasPrefix("#") else { continue }
            storeEvent(relay, key: IRCName.fold(room), by: me, history: history, now: now)
        }
    }

    /// Keeps one room event under conversation `key` (a QUIT is kept once per room).
    static func storeEvent(_ relay: Relay, key: String, by me: SessionHandle, history: any HistoryStore, now: Date) {
        let line = IRCMessage(source: relay.source, command: relay.command, parameters: relay.parameters)
        history.append(StoredMessage(msgid: relay.msgid, time: milliseconds(now), target: key, sender: me.folded, kind: relay.command,
                                     line: String(decoding: line.serialized().dropLast(2), as: UTF8.self)))
    }

    /// `CHATHISTORY <subcommand> …`: checked here, answered by `Session.historyFinished`.
    static func chathistory(_ message: IRCMessage, _ c: inout CommandContext) -> Session.Action? {
        let p = message.parameters
        func fail(_ code: String, _ parameters: [String], _ text: String) -> Session.Action? {
            c.out.reply("FAIL", ["CHATHISTORY", code] + parameters + [text])
            return nil
        }
        guard c.core.history != nil else { return fail("UNKNOWN_COMMAND", [p.first ?? "*"], "History is not kept on this server") }
        guard let sub = p.first?.uppercased() else { return fail("NEED_MORE_PARAMS", ["*"], "Missing parameters: CHATHISTORY <subcommand> …") }
        func limit(_ text: String) -> Int? {
            guard let n = Int(text), n > 0 else { return nil }
            return min(n, maximumLimit)
        }
        if sub == "TARGETS" {
            guard p.count >= 4 else { return fail("NEED_MORE_PARAMS", [sub], "CHATHISTORY TARGETS <timestamp> <timestamp> <limit>") }
            guard case let .time(from)? = reference(p[1]), case let .time(to)? = reference(p[2]), let n = limit(p[3]) else {
                return fail("INVALID_PARAMS", [sub], "CHATHISTORY TARGETS takes two timestamp=… and a limit from 1")
            }
            var rooms: [String: String] = [:]
            for room in c.me.rooms.values { rooms[room.folded] = room.name }
            return .history(.targets(rooms: rooms, from: from, to: to, limit: n))
        }
        guard ["LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN"].contains(sub) else {
            return fail("INVALID_PARAMS", [sub], "Unknown subcommand: LATEST, BEFORE, AFTER, AROUND, BETWEEN or TARGETS")
        }
        let needed = sub == "BETWEEN" ? 5 : 4
        guard p.count >= needed else { return fail("NEED_MORE_PARAMS", [sub], "Not enough parameters for CHATHISTORY \(sub)") }
        let target = p[1]
        // Only a member of a room, or a party to a private conversation, reads its history.
        let key: String
        if target.hasPrefix("#") {
            guard let room = c.me.room(folded: IRCName.fold(target)) else {
                return fail("INVALID_TARGET", [sub, target], "You are not in \(target)")
            }
            key = room.folded
        } else {
            guard IRCName.isValidNick(target) else { return fail("INVALID_TARGET", [sub, target], "Not a room or a nick") }
            key = HistoryTarget.privateKey(c.me.folded, IRCName.fold(target))
        }
        guard let n = limit(p[needed - 1]) else { return fail("INVALID_PARAMS", [sub, p[needed - 1]], "The limit must be a number from 1") }
        let query: HistoryQuery
        switch sub {
        case "LATEST":
            if p[2] == "*" {
                query = .latest(target: key, after: nil, limit: n)
            } else if let ref = reference(p[2]) {
                query = .latest(target: key, after: ref, limit: n)
            } else {
                return fail("INVALID_PARAMS", [sub, p[2]], "Expected *, timestamp=… or msgid=…")
            }
        case "BETWEEN":
            guard let a = reference(p[2]), let b = reference(p[3]) else {
                return fail("INVALID_PARAMS", [sub, p[2]], "Expected timestamp=… or msgid=… twice")
            }
            query = .between(target: key, a, b, limit: n)
        default:
            guard let ref = reference(p[2]) else { return fail("INVALID_PARAMS", [sub, p[2]], "Expected timestamp=… or msgid=…") }
            switch sub {
            case "BEFORE": query = .before(target: key, ref, limit: n)
            case "AFTER": query = .after(target: key, ref, limit: n)
            default: query = .around(target: key, ref, limit: n)
            }
        }
        return .history(.chathistory(subcommand: sub, target: target, query: query, events: c.capabilities.contains(.eventPlayback)))
    }

    /// `MARKREAD <target> [timestamp=…]` (draft/read-marker): without a time, where the account
    /// has read up to; with one, moves it forward (never back). The answer is always
    /// `MARKREAD <target> timestamp=…` (or `*` when nothing was read yet).
    static func markread(_ message: IRCMessage, _ c: inout CommandContext) {
        let p = message.parameters
        func fail(_ code: String, _ text: String) { c.out.reply("FAIL", ["MARKREAD", code] + (p.isEmpty ? [] : [p[0]]) + [text]) }
        guard let history = c.core.history else { return fail("INTERNAL_ERROR", "History is not kept on this server") }
        guard let target = p.first, !target.isEmpty else { return fail("NEED_MORE_PARAMS", "MARKREAD <target> [timestamp=…]") }
        let key: String
        if target.hasPrefix("#") {
            guard let room = c.me.room(folded: IRCName.fold(target)) else { return fail("INVALID_PARAMS", "You are not in \(target)") }
            key = room.folded
        } else {
            guard IRCName.isValidNick(target) else { return fail("INVALID_PARAMS", "Not a room or a nick") }
            key = HistoryTarget.privateKey(c.me.folded, IRCName.fold(target))
        }
        var time = history.readMarker(account: c.me.folded, target: key)
        if p.count > 1 {
            guard case let .time(ms)? = reference(p[1]) else { return fail("INVALID_PARAMS", "Expected timestamp=YYYY-MM-DDThh:mm:ss.sssZ") }
            time = history.setReadMarker(account: c.me.folded, target: key, time: ms)
        }
        c.out.reply("MARKREAD", [target, marker(time)])
    }

    /// `timestamp=…` of a marker, or `*`.
    static func marker(_ time: Int64?) -> String {
        time.map { "timestamp=" + Relay.timestamp(Date(timeIntervalSince1970: Double($0) / 1000)) } ?? "*"
    }

    /// `timestamp=2026-12-03T12:00:00.000Z` or `msgid=…`.
    static func reference(_ text: String) -> HistoryReference? {
        if text.hasPrefix("msgid=") {
            let id = String(text.dropFirst(6))
            return id.isEmpty || id.count > 100 ? nil : .msgid(id)
        }
        guard text.hasPrefix("timestamp="), let ms = parseTime(String(text.dropFirst(10))) else { return nil }
        return .time(ms)
    }

    /// RFC 3339 UTC ("2026-12-03T12:00:00.123Z", fraction optional) to milliseconds.
    static func parseTime(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.last == UInt8(ascii: "Z") else { return nil }
        let whole = String(decoding: bytes[0..<19], as: UTF8.self) + "Z"
        guard let seconds = Timestamp.parse(whole) else { return nil }
        var millis: Int64 = 0
        if bytes.count > 20 {
            guard bytes[19] == UInt8(ascii: "."), bytes.count <= 31 else { return nil }
            let fraction = bytes[20..<(bytes.count - 1)]
            guard !fraction.isEmpty, fraction.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            let digits = Array(fraction.prefix(3)) + Array(repeating: UInt8(ascii: "0"), count: max(0, 3 - fraction.count))
            millis = Int64(String(decoding: digits, as: UTF8.self)) ?? 0
        } else if bytes.count != 20 {
            return nil
        }
        return Int64(seconds) * 1000 + millis
    }

    /// The answer to a history job for `me`: a CHATHISTORY batch, a replay of a room just joined,
    /// the private messages missed while offline, or the FAIL that says why not; in a BATCH when
    /// the client has the capability.
    static func answer(_ job: HistoryJob, _ result: HistoryResult, to me: SessionHandle, capabilities: Capabilities,
                       serverName: String, into out: inout SessionOutput) {
        let batch = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let batching = capabilities.contains(.batch)
        func open(_ type: String, _ parameters: [String]) {
            if batching { out.reply("BATCH", ["+" + batch, type] + parameters) }
        }
        func close() {
            if batching { out.reply("BATCH", ["-" + batch]) }
        }
        func replay(_ messages: [StoredMessage], in name: String) {
            guard !messages.isEmpty else { return }
            open("chathistory", [name])
            for stored in messages {
                if let message = HistoryCommand.message(stored, batch: batch, capabilities: capabilities, prefixTime: true) { out.send(message) }
            }
            close()
        }
        switch (job, result) {
        case let (.chathistory(subcommand, target, _, _), .failed(text)):
            out.reply("FAIL", ["CHATHISTORY", "MESSAGE_ERROR", subcommand, target, "Could not read the history: \(text)"])
        case let (.chathistory(_, target, _, _), .messages(messages)):
            open("chathistory", [target])
            for stored in messages {
                if let message = HistoryCommand.message(stored, batch: batch, capabilities: capabilities, prefixTime: false) { out.send(message) }
            }
            close()
        case let (.targets, .targets(found)):
            open("draft/chathistory-targets", [])
            for (name, latest) in found {
                let time = Relay.timestamp(Date(timeIntervalSince1970: Double(latest) / 1000))
                var message = IRCMessage(source: serverName, command: "CHATHISTORY", parameters: ["TARGETS", name, "timestamp=" + time])
                if batching { message.tags = [IRCTag("batch", batch)] }
                out.send(message)
            }
            close()
        case (.targets, .failed(let text)):
            out.reply("FAIL", ["CHATHISTORY", "MESSAGE_ERROR", "TARGETS", "*", "Could not read the history: \(text)"])
        case let (.replay(room, _, _, _), .messages(messages)):
            replay(messages, in: room)
        case let (.missed, .messages(messages)):
            replay(messages, in: me.nick)
        default:
            break
        }
    }

    /// The stored message as this client gets it: server tags by its capabilities, `batch` when
    /// in one. Without server-time, a replayed message's text starts with its time.
    static func message(_ stored: StoredMessage, batch: String?, capabilities: Capabilities, prefixTime: Bool) -> IRCMessage? {
        guard var message = try? IRCMessage.parse(Array(stored.line.utf8), maximumTagBytes: 8191, maximumLineBytes: 16384) else { return nil }
        if message.command == "TAGMSG" && !capabilities.contains(.messageTags) { return nil }
        let time = Relay.timestamp(Date(timeIntervalSince1970: Double(stored.time) / 1000))
        var tags: [IRCTag] = []
        if let batch, capabilities.contains(.batch) { tags.append(IRCTag("batch", batch)) }
        if capabilities.contains(.serverTime) { tags.append(IRCTag("time", time)) }
        if capabilities.contains(.accountTag) { tags.append(IRCTag("account", stored.sender)) }
        if capabilities.contains(.messageTags) {
            tags.append(IRCTag("msgid", stored.msgid))
            tags += message.tags
        }
        message.tags = tags
        if prefixTime && !capabilities.contains(.serverTime), message.command == "PRIVMSG" || message.command == "NOTICE", message.parameters.count >= 2 {
            // "[2026-12-03 12:00:05Z] text": clients without server-time still see when it was said.
            let shown = String(time.prefix(10)) + " " + String(time.dropFirst(11).prefix(8)) + "Z"
            let text = message.parameters[1]
            message.parameters[1] = text.hasPrefix("\u{1}ACTION ") ? "\u{1}ACTION [\(shown)] " + text.dropFirst(8) : "[\(shown)] " + text
        }
        return message
    }
}

import IRC

/// Turns IRC messages into `ChatEvent`s: a plain value with the little state that needs (member
/// lists and room lists arrive over several numerics). No I/O.
public struct EventTranslator {
    public private(set) var nick: String
    private var pendingNames: [String: [String]] = [:]
    private var pendingRooms: [RoomSummary] = []
    /// Open batches (by reference tag): a chathistory answer collects its messages; TARGETS
    /// its conversations.
    private var batches: [String: Batch] = [:]

    private struct Batch {
        var type: String
        var target: String
        var events: [ChatEvent] = []
        var conversations: [Conversation] = []
    }

    public init(nick: String) {
        self.nick = nick
    }

    public mutating func translate(_ m: IRCMessage) -> [ChatEvent] {
        if m.command == "BATCH", let reference = m.parameters.first, reference.count > 1 {
            let id = String(reference.dropFirst())
            if reference.hasPrefix("+") {
                let type = m.parameters.count > 1 ? m.parameters[1] : ""
                batches[id] = Batch(type: type, target: m.parameters.count > 2 ? m.parameters[2] : "")
                return []
            }
            guard reference.hasPrefix("-"), let batch = batches.removeValue(forKey: id) else { return [] }
            switch batch.type {
            case "chathistory": return [.history(target: batch.target, events: batch.events)]
            case "draft/chathistory-targets": return [.conversations(batch.conversations)]
            default: return batch.events
            }
        }
        if let id = m.tag("batch"), batches[id] != nil {
            if m.command == "CHATHISTORY", m.parameters.count >= 3, m.parameters[0] == "TARGETS", m.parameters[2].hasPrefix("timestamp=") {
                batches[id]!.conversations.append(Conversation(name: m.parameters[1], latest: String(m.parameters[2].dropFirst(10))))
                return []
            }
            var inner = m
            inner.tags.removeAll { $0.key == "batch" }
            let events = translate(inner)
            batches[id]!.events += events
            return []
        }
        let time = m.tag("time") ?? ""
        let sender = m.source.map { String($0.prefix { $0 != "!" }) } ?? ""
        let p = m.parameters
        switch m.command {
        case "PRIVMSG", "NOTICE":
            guard p.count >= 2 else { return [] }
            var text = p[1]
            var kind: ChatEvent.MessageKind = m.command == "NOTICE" ? .notice : .normal
            if text.hasPrefix("\u{1}ACTION ") {
                text = String(text.dropFirst(8))
                if text.hasSuffix("\u{1}") { text.removeLast() }
                kind = .action
            }
            if m.source == nil || !(m.source?.contains("!") ?? false) {
                return [.notice(text: text)]  // from the server
            }
            return [.message(time: time, target: p[0], sender: sender, text: text, kind: kind, msgid: m.tag("msgid"))]
        case "JOIN":
            guard let room = p.first else { return [] }
            return [.joined(time: time, room: room, nick: sender)]
        case "PART":
            guard let room = p.first else { return [] }
            return [.parted(time: time, room: room, nick: sender, reason: p.count > 1 ? p[1] : nil)]
        case "QUIT":
            return [.quit(time: time, nick: sender, reason: p.first)]
        case "KICK":
            guard p.count >= 2 else { return [] }
            return [.kicked(time: time, room: p[0], nick: p[1], by: sender, reason: p.count > 2 ? p[2] : nil)]
        case "TOPIC":
            guard p.count >= 2 else { return [] }
            return [.topic(time: time, room: p[0], text: p[1], by: sender)]
        case "AWAY":
            return [.away(time: time, nick: sender, message: p.first)]
        case "NICK":
            if let new = p.first, IRCName.fold(sender) == IRCName.fold(nick) { nick = new }
            return []
        case "ERROR":
            return [.closing(reason: p.first ?? "closing")]
        case "MARKREAD":
            guard p.count >= 2 else { return [] }
            return [.readMarker(target: p[0], time: p[1].hasPrefix("timestamp=") ? String(p[1].dropFirst(10)) : nil)]
        case "332":
            guard p.count >= 3 else { return [] }
            return [.topic(time: "", room: p[1], text: p[2], by: nil)]
        case "353":
            guard p.count >= 4 else { return [] }
            pendingNames[p[2], default: []].append(contentsOf: p[3].split(separator: " ").map(String.init))
            return []
        case "366":
            guard p.count >= 2 else { return [] }
            let names = pendingNames.removeValue(forKey: p[1]) ?? []
            return [.members(room: p[1], nicks: names)]
        case "321":
            pendingRooms = []
            return []
        case "322":
            guard p.count >= 4 else { return [] }
            pendingRooms.append(RoomSummary(name: p[1], members: Int(p[2]) ?? 0, topic: p[3]))
            return []
        case "323":
            defer { pendingRooms = [] }
            return [.rooms(pendingRooms)]
        case "PING", "PONG", "CAP", "333", "329", "001", "002", "003", "004", "005", "375", "376", "315":
            return []
        case "372":
            return [.notice(text: p.last.map { $0.hasPrefix("- ") ? String($0.dropFirst(2)) : $0 } ?? "")]
        case "352":
            // WHO reply: nick, flags.
            guard p.count >= 7 else { return [] }
            return [.notice(text: "\(p[5])\(p[6].contains("@") ? " (operator)" : "")\(p[6].hasPrefix("G") ? " (away)" : "")")]
        default:
            // Other numerics: show their text.
            if m.command.count == 3, m.command.allSatisfy(\.isNumber), let last = p.last, p.count >= 2 {
                let subject = p.dropFirst().dropLast().joined(separator: " ")
                return [.notice(text: subject.isEmpty ? last : "\(subject): \(last)")]
            }
            if m.command == "FAIL", p.count >= 3 {
                // FAIL CHATHISTORY <code> <subcommand> <target> :text (INVALID_TARGET, MESSAGE_ERROR…)
                if p[0] == "CHATHISTORY", p.count >= 5 { return [.historyFailed(target: p[3], text: p.last!)] }
                return [.notice(text: p.last!)]
            }
            return []
        }
    }
}

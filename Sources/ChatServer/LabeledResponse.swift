import IRC

/// IRCv3 labeled-response: the replies to a command sent with a `label` tag carry the label back,
/// so a client knows which command they answer. One reply is tagged; several are grouped in a
/// `labeled-response` batch; none gives an `ACK`. Replies that come later (history, KLINE) carry
/// it on their own.
enum LabeledResponse {
    /// The longest label accepted; a longer one is ignored (the command is still carried out).
    static let maximumLength = 64

    /// The label of `message`, if the client asked for labeled-response and gave a usable one.
    static func label(of message: IRCMessage, capabilities: Capabilities) -> String? {
        guard capabilities.contains(.labeledResponse),
              let value = message.tags.first(where: { $0.key == "label" })?.value,
              !value.isEmpty, value.utf8.count <= maximumLength else { return nil }
        return value
    }

    /// `actions` with this session's replies labeled. What `me` would receive of its own relays
    /// (a JOIN, an echoed message) is taken out of the delivery and labeled with the rest.
    static func apply(_ label: String, to actions: [Session.Action], me: SessionHandle?, capabilities: Capabilities, serverName: String) -> [Session.Action] {
        var replies: [IRCMessage] = []
        var others: [Session.Action] = []
        var firstReply: Int?
        var handedOn = false
        for action in actions {
            switch action {
            case let .send(message):
                if firstReply == nil { firstReply = others.count }
                replies.append(message)
            case let .deliver(relay, audience, except, requiring):
                if let me, except == nil, capabilities.isSuperset(of: requiring), audience.sessions.contains(where: { $0 === me }) {
                    if firstReply == nil { firstReply = others.count }
                    replies.append(relay.message(for: capabilities))
                    others.append(.deliver(relay, to: audience, except: me, requiring: requiring))
                } else {
                    others.append(action)
                }
            case .close:
                return actions  // QUIT and friends: the connection ends, nothing to label
            case let .history(job, nil) where replies.isEmpty && !handedOn:
                others.append(.history(job, label: label))
                handedOn = true
            case let .administer(task, nil) where replies.isEmpty && !handedOn:
                others.append(.administer(task, label: label))
                handedOn = true
            case .verifyOper:
                others.append(action)
                handedOn = true  // `operFinished` labels its answer
            default:
                others.append(action)
            }
        }
        if handedOn && replies.isEmpty { return others }
        let labeled = wrap(replies, label: label, capabilities: capabilities, serverName: serverName).map { Session.Action.send($0) }
        others.insert(contentsOf: labeled, at: firstReply ?? others.count)
        return others
    }

    /// `replies` labeled: one tagged, several in a batch, none as an ACK.
    static func wrap(_ replies: [IRCMessage], label: String, capabilities: Capabilities, serverName: String) -> [IRCMessage] {
        let tag = IRCTag("label", label)
        switch replies.count {
        case 0:
            return [IRCMessage(tags: [tag], source: serverName, command: "ACK", parameters: [])]
        case 1:
            var only = replies[0]
            only.tags.insert(tag, at: 0)
            return [only]
        default:
            // Without batch a client cannot group them: they go as they are.
            guard capabilities.contains(.batch) else { return replies }
            let id = "L" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
            var out = [IRCMessage(tags: [tag], source: serverName, command: "BATCH", parameters: ["+" + id, "labeled-response"])]
            for var reply in replies {
                // Messages of a batch inside this one keep theirs; that batch's BATCH lines join this one.
                if !reply.tags.contains(where: { $0.key == "batch" }) { reply.tags.insert(IRCTag("batch", id), at: 0) }
                out.append(reply)
            }
            out.append(IRCMessage(source: serverName, command: "BATCH", parameters: ["-" + id]))
            return out
        }
    }
}

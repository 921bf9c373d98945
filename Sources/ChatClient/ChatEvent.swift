/// Something that happened on the server, in the terms a person reads: the client library turns
/// IRC messages into these, and the terminal client prints them.
public enum ChatEvent: Sendable, Equatable {
    /// A message in a room (`target` "#room") or to you (`target` is your nick); `time` is the
    /// server's (RFC 3339); `msgid` the server's id for it (with message-tags).
    case message(time: String, target: String, sender: String, text: String, kind: MessageKind, msgid: String? = nil)
    case joined(time: String, room: String, nick: String)
    case parted(time: String, room: String, nick: String, reason: String?)
    case quit(time: String, nick: String, reason: String?)
    case kicked(time: String, room: String, nick: String, by: String, reason: String?)
    case topic(time: String, room: String, text: String, by: String?)
    case members(room: String, nicks: [String])
    case rooms([RoomSummary])
    case away(time: String, nick: String, message: String?)
    /// A line from the server that is not chat (a reply, an error, the MOTD).
    case notice(text: String)
    /// The server said why it is closing the connection.
    case closing(reason: String)
    /// Earlier messages of `target` (a `CHATHISTORY` answer), oldest first; possibly none.
    case history(target: String, events: [ChatEvent])
    /// A `CHATHISTORY` request about `target` failed (the server's words).
    case historyFailed(target: String, text: String)
    /// How far the account has read `target` (draft/read-marker): a server time, or nil when
    /// it has read nothing there yet.
    case readMarker(target: String, time: String?)
    /// Conversations with messages in a time span (`CHATHISTORY TARGETS`), latest first.
    case conversations([Conversation])

    public enum MessageKind: Sendable, Equatable { case normal, action, notice }
}

/// One line of the room list.
public struct RoomSummary: Sendable, Equatable {
    public var name: String
    public var members: Int
    public var topic: String
    public init(name: String, members: Int, topic: String) {
        self.name = name
        self.members = members
        self.topic = topic
    }
}

/// A room or private conversation and the time of its latest message.
public struct Conversation: Sendable, Equatable {
    public var name: String
    public var latest: String
    public init(name: String, latest: String) {
        self.name = name
        self.latest = latest
    }
}

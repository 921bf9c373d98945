/// Something that happened on the server, in the terms a person reads: the client library turns
/// IRC messages into these, and the terminal client prints them.
public enum ChatEvent: Sendable, Equatable {
    /// A message in a room (`target` "#room") or to you (`target` is your nick); `time` is the
    /// server's (RFC 3339).
    case message(time: String, target: String, sender: String, text: String, kind: MessageKind)
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

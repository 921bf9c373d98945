/// The IRCv3 capabilities SecureChat offers.
public struct Capabilities: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let sasl = Capabilities(rawValue: 1 << 0)
    public static let serverTime = Capabilities(rawValue: 1 << 1)
    public static let messageTags = Capabilities(rawValue: 1 << 2)
    public static let echoMessage = Capabilities(rawValue: 1 << 3)
    public static let accountTag = Capabilities(rawValue: 1 << 4)
    public static let extendedJoin = Capabilities(rawValue: 1 << 5)
    public static let awayNotify = Capabilities(rawValue: 1 << 6)
    public static let capNotify = Capabilities(rawValue: 1 << 7)
    public static let multiPrefix = Capabilities(rawValue: 1 << 8)
    /// `FAIL`/`WARN`/`NOTE` replies (IRCv3 standard replies): sent only to clients that ask.
    public static let standardReplies = Capabilities(rawValue: 1 << 9)
    /// ACCOUNT when someone's account changes. Offered because clients look for it to trust the
    /// account they learn from extended-join and WHOX; here an account never changes during a
    /// session (login comes before registration, and there is no logout), so none is ever sent.
    public static let accountNotify = Capabilities(rawValue: 1 << 10)
    /// INVITE relayed to the room's other members when someone is invited.
    public static let inviteNotify = Capabilities(rawValue: 1 << 11)
    /// NAMES lists `nick!user@host` instead of the nick alone.
    public static let userhostInNames = Capabilities(rawValue: 1 << 12)
    /// MONITOR also brings the monitored users' AWAY changes (with away-notify).
    public static let extendedMonitor = Capabilities(rawValue: 1 << 13)
    /// SETNAME: real-name changes, seen by those who share a room (and asked).
    public static let setname = Capabilities(rawValue: 1 << 14)
    /// IRCv3 batch: related messages grouped (history is sent in a `chathistory` batch).
    public static let batch = Capabilities(rawValue: 1 << 15)
    /// IRCv3 draft/chathistory: the client fetches history itself (offered when history is on).
    public static let chathistory = Capabilities(rawValue: 1 << 16)
    /// IRCv3 draft/read-marker: where the account has read up to, shared by its clients.
    public static let readMarker = Capabilities(rawValue: 1 << 17)
    /// IRCv3 draft/event-playback: history includes the room's joins, parts, quits, kicks, topic
    /// and mode changes (offered when history is on).
    public static let eventPlayback = Capabilities(rawValue: 1 << 18)
    /// IRCv3 labeled-response: the replies to a command that carries a `label` tag carry it
    /// back (one reply tagged, several in a `labeled-response` batch, none as an `ACK`).
    public static let labeledResponse = Capabilities(rawValue: 1 << 19)

    /// Names in the order `CAP LS` lists them.
    public static let names: [(Capabilities, String)] = [
        (.sasl, "sasl"), (.serverTime, "server-time"), (.messageTags, "message-tags"), (.echoMessage, "echo-message"),
        (.accountTag, "account-tag"), (.extendedJoin, "extended-join"), (.awayNotify, "away-notify"),
        (.capNotify, "cap-notify"), (.multiPrefix, "multi-prefix"), (.standardReplies, "standard-replies"),
        (.accountNotify, "account-notify"), (.inviteNotify, "invite-notify"), (.userhostInNames, "userhost-in-names"),
        (.extendedMonitor, "extended-monitor"), (.setname, "setname"), (.batch, "batch"), (.chathistory, "draft/chathistory"),
        (.readMarker, "draft/read-marker"), (.eventPlayback, "draft/event-playback"), (.labeledResponse, "labeled-response"),
    ]

    /// Every capability this server knows.
    public static let all = Capabilities(names.map(\.0))

    public static func named(_ name: String) -> Capabilities? {
        names.first { $0.1 == name }?.0
    }

    /// The SASL mechanisms offered: PLAIN (account and password) and EXTERNAL (a client
    /// certificate registered with the account).
    public static let saslMechanisms = "PLAIN,EXTERNAL"

    /// `CAP LS` text; with version 302 `sasl` carries its mechanism list.
    public static func listing(version: Int, offered: Capabilities = .all) -> String {
        names.filter { offered.contains($0.0) }.map { cap, name in cap == .sasl && version >= 302 ? "sasl=" + saslMechanisms : name }.joined(separator: " ")
    }

    /// A `CAP REQ` list ("away-notify -echo-message"): what to add and what to remove, or nil
    /// when it names a capability this server does not offer (the whole request is then refused
    /// with NAK, as the spec requires).
    public static func parseRequest(_ text: String, offered: Capabilities = .all) -> (add: Capabilities, remove: Capabilities)? {
        var add: Capabilities = []
        var remove: Capabilities = []
        for word in text.split(separator: " ") {
            let removing = word.hasPrefix("-")
            guard let cap = named(String(removing ? word.dropFirst() : word[...])), offered.contains(cap) else { return nil }
            if removing { remove.insert(cap) } else { add.insert(cap) }
        }
        return (add, remove)
    }

    /// The names of the capabilities in this set.
    public var names: [String] { Self.names.filter { contains($0.0) }.map(\.1) }
}

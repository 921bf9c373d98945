import Foundation

/// How events look: on a terminal ("[12:03:04] #lobby <bob> hi") and in script mode, a stable
/// one-line-per-event format documented in `chat-client --help`:
///
///     TIME TARGET <NICK> TEXT         a message (TARGET is #room, or @nick for private ones)
///     TIME TARGET * NICK ACTION       an action (/me)
///     TIME TARGET -NICK- TEXT         a notice
///     TIME TARGET -!- TEXT            an event in words (joins, parts, quits, topics, kicks)
///     - -!- TEXT                      a reply from the server
///
/// TIME is the server's RFC 3339 time ("-" when the server gave none).
public struct EventFormatter {
    public enum Style { case terminal, script }
    public let style: Style
    public let nick: String

    public init(style: Style, nick: String) {
        self.style = style
        self.nick = nick
    }

    public func time(_ value: String) -> String {
        switch style {
        case .script:
            return value.isEmpty ? "-" : value
        case .terminal:
            // "2026-11-30T12:03:04.123Z" → local "[12:03:04]".
            guard !value.isEmpty, let date = Self.parse(value) else { return "[" + Self.clock(Date()) + "]" }
            return "[" + Self.clock(date) + "]"
        }
    }

    /// An RFC 3339 time (with or without fractions of a second).
    public static func parse(_ value: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: value) ?? ISO8601DateFormatter().date(from: value)
    }

    static func clock(_ date: Date) -> String {
        var time = time_t(date.timeIntervalSince1970)
        var parts = tm()
        localtime_r(&time, &parts)
        return String(format: "%02d:%02d:%02d", parts.tm_hour, parts.tm_min, parts.tm_sec)
    }

    /// The line for `event`, or nil if it is not shown.
    public func format(_ event: ChatEvent) -> String? {
        switch event {
        case let .message(t, target, sender, text, kind, _):
            let place = target.hasPrefix("#") ? target : "@" + (sender == nick ? target : sender)
            let clean = Self.printable(text)
            switch kind {
            case .normal: return "\(time(t)) \(place) <\(sender)> \(clean)"
            case .action: return "\(time(t)) \(place) * \(sender) \(clean)"
            case .notice: return "\(time(t)) \(place) -\(sender)- \(clean)"
            }
        case let .joined(t, room, who):
            return "\(time(t)) \(room) -!- \(who) joined"
        case let .parted(t, room, who, reason):
            return "\(time(t)) \(room) -!- \(who) left\(reason.map { " (\(Self.printable($0)))" } ?? "")"
        case let .quit(t, who, reason):
            return "\(time(t)) * -!- \(who) quit\(reason.map { " (\(Self.printable($0)))" } ?? "")"
        case let .kicked(t, room, who, by, reason):
            return "\(time(t)) \(room) -!- \(who) was removed by \(by)\(reason.map { " (\(Self.printable($0)))" } ?? "")"
        case let .topic(t, room, text, by):
            if let by { return "\(time(t)) \(room) -!- \(by) set the topic: \(Self.printable(text))" }
            return "\(time(t)) \(room) -!- topic: \(Self.printable(text))"
        case let .members(room, nicks):
            return "\(time("")) \(room) -!- \(nicks.count) here: \(nicks.joined(separator: " "))"
        case let .rooms(list):
            if list.isEmpty { return "\(time("")) * -!- no rooms yet: /join ROOM makes one" }
            return list.map { "\(time("")) \($0.name) -!- \($0.members) \($0.members == 1 ? "member" : "members")\($0.topic.isEmpty ? "" : ": " + Self.printable($0.topic))" }.joined(separator: "\n")
        case let .away(t, who, message):
            return "\(time(t)) * -!- \(who) \(message.map { "is away: \(Self.printable($0))" } ?? "is back")"
        case let .notice(text):
            return "\(style == .script ? "-" : time("")) -!- \(Self.printable(text))"
        case let .closing(reason):
            return "\(style == .script ? "-" : time("")) -!- server: \(Self.printable(reason))"
        case let .historyFailed(target, text):
            return "\(style == .script ? "-" : time("")) -!- \(target): \(Self.printable(text))"
        case .history, .readMarker, .conversations:
            return nil  // placed by the client, event by event
        }
    }

    /// Control characters (escape sequences a peer might send to the terminal) become visible;
    /// mIRC formatting codes stay, for the display to render (`Formatting`) or remove.
    public static func printable(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if Formatting.codes.contains(scalar.value) {
                out.unicodeScalars.append(scalar)
            } else if scalar.value < 0x20 || scalar.value == 0x7f || (scalar.value >= 0x80 && scalar.value < 0xa0) {
                if scalar.value == 0x01 { continue }
                out += "^" + String(UnicodeScalar(UInt8((scalar.value + 0x40) & 0x7f)))
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

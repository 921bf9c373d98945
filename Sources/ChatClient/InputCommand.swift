/// What a person typed at the prompt: text for the current room, or a slash command.
public enum InputCommand: Sendable, Equatable {
    case say(String)
    case help
    case join(String)
    case part(String?)
    case rooms
    case who
    case msg(String, String)
    case me(String)
    case topic(String?)
    case switchTo(String)
    case away(String?)
    case quit(String?)
    /// Earlier messages of the current room or conversation (how many; nil: the default).
    case history(Int?)
    /// Something that cannot be done, with the hint to show.
    case invalid(String)

    /// Parses one line. Room names get a leading '#' if they lack one.
    public static func parse(_ line: String) -> InputCommand? {
        let trimmed = line.trimmingTrailingNewline
        if trimmed.isEmpty { return nil }
        guard trimmed.hasPrefix("/"), !trimmed.hasPrefix("//") else {
            // "//text" sends "/text" literally.
            return .say(trimmed.hasPrefix("//") ? String(trimmed.dropFirst()) : trimmed)
        }
        let parts = trimmed.dropFirst().split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        let name = parts.first.map { $0.lowercased() } ?? ""
        let rest = parts.count > 1 ? String(parts[1]).trimmingSpaces : ""
        let argument: String? = rest.isEmpty ? nil : rest
        switch name {
        case "help", "?": return .help
        case "join", "j":
            guard let wanted = argument?.split(separator: " ").first else { return .invalid("usage: /join ROOM") }
            return .join(room(String(wanted)))
        case "part", "leave": return .part(argument.map { room(String($0.split(separator: " ")[0])) })
        case "rooms", "list": return .rooms
        case "who", "names": return .who
        case "msg", "query":
            let words = rest.split(separator: " ", maxSplits: 1)
            guard words.count == 2 else { return .invalid("usage: /msg NAME TEXT") }
            return .msg(String(words[0]), String(words[1]))
        case "me":
            guard let argument else { return .invalid("usage: /me ACTION") }
            return .me(argument)
        case "topic": return .topic(argument)
        case "switch", "go":
            guard let argument else { return .invalid("usage: /switch ROOM") }
            return .switchTo(room(argument))
        case "away": return .away(argument)
        case "quit", "exit", "bye": return .quit(argument)
        case "history", "more":
            guard let argument else { return .history(nil) }
            guard let n = Int(argument), n > 0 else { return .invalid("usage: /history [N] — N earlier messages, 1 to \(maximumHistory)") }
            return .history(min(n, maximumHistory))
        default:
            return .invalid("unknown command /\(name) — /help lists the commands; start a line with // to send it as text")
        }
    }

    /// The most earlier messages one /history fetches (the server's own limit is usually 100).
    public static let maximumHistory = 100
    /// How many /history fetches without a number.
    public static let defaultHistory = 50

    /// "#name" for "name" or "#name".
    public static func room(_ name: String) -> String { name.hasPrefix("#") ? name : "#" + name }

    /// The commands, for Tab completion.
    public static let names = ["away", "help", "history", "join", "me", "msg", "part", "quit", "rooms", "switch", "topic", "who"]

    public static let helpText = helpText(fullScreen: false)

    public static func helpText(fullScreen: Bool) -> String {
        var text = """
        Commands:
          /help               this list
          /join ROOM          join a room (it becomes the current room)
          /part [ROOM]        leave the current room (or ROOM); in a private conversation, close it
          /switch ROOM        talk in another room you have joined
          /rooms              list rooms with member counts and topics
          /who                members of the current room
          /msg NAME TEXT      a private message
          /me ACTION          an action ("* alice waves")
          /topic [TEXT]       show or set the current room's topic
          /away [TEXT]        mark yourself away (no text: back)
          /history [N]        N earlier messages here (default 50), from the server's history
          /quit [REASON]      leave (Ctrl-D on an empty line and Ctrl-C too)
        Anything else is said in the current room; start with // to say something that begins with /.
        Long messages are split to fit the server's limit.
        On a server that keeps history, joining a room shows what was said before, with a line
        where what you have not read begins; what you read is remembered for your other devices.
        Keys: ←/→ Home/End Ctrl-A/E move, Ctrl-←/→ or Alt-B/F jump words, Ctrl-K/U/W cut,
          ↑/↓ your earlier lines, Tab completes names, rooms and commands.
        """
        if fullScreen {
            text += """

            Windows: Alt-1…9 go to window n, Alt-←/→ or Ctrl-P/Ctrl-N the previous/next one,
              PageUp/PageDown scroll, Ctrl-L redraws. The status line lists windows with unread
              messages (n:name(count)); a ! marks a mention or a private message.
            """
        }
        return text
    }
}

extension String {
    var trimmingTrailingNewline: String {
        var s = self
        while s.hasSuffix("\n") || s.hasSuffix("\r") { s.removeLast() }
        return s
    }

    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}

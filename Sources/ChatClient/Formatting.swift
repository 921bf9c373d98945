/// mIRC formatting codes (what irssi and WeeChat users send for bold, colours and the like):
/// rendered as terminal attributes in terminal mode, removed in script mode. Other control
/// characters are still shown visibly (`^X`), so a peer cannot move the cursor or change the
/// terminal's state.
public enum Formatting {
    /// The codes: bold ^B, colour ^C, hex colour ^D, reset ^O, monospace ^Q, reverse ^V,
    /// strikethrough ^^, italic ^], underline ^_.
    static let codes: Set<UInt32> = [0x02, 0x03, 0x04, 0x0f, 0x11, 0x16, 0x1d, 0x1e, 0x1f]

    /// `text` without formatting codes (colour numbers included), other controls made visible.
    public static func stripped(_ text: String) -> String {
        render(text, ansi: false)
    }

    /// `text` with formatting as ANSI SGR sequences, ending with a reset when anything was set.
    public static func ansi(_ text: String) -> String {
        render(text, ansi: true)
    }

    /// Terminal columns `text` takes once rendered (formatting takes none).
    public static func width(_ text: String) -> Int {
        TextWidth.of(stripped(text))
    }

    private struct Style: Equatable {
        var bold = false, italic = false, underline = false, strike = false, reverse = false
        var foreground: Int?, background: Int?

        var sgr: String {
            var parts = ["0"]
            if bold { parts.append("1") }
            if italic { parts.append("3") }
            if underline { parts.append("4") }
            if reverse { parts.append("7") }
            if strike { parts.append("9") }
            if let foreground { parts.append("38;5;\(Formatting.palette[foreground])") }
            if let background { parts.append("48;5;\(Formatting.palette[background])") }
            return "\u{1b}[" + parts.joined(separator: ";") + "m"
        }
    }

    /// mIRC colours 0–15 as xterm-256 colours.
    static let palette = [15, 0, 4, 2, 9, 1, 5, 202, 11, 10, 6, 14, 12, 13, 8, 7]

    private static func render(_ text: String, ansi: Bool) -> String {
        var out = ""
        var style = Style()
        var styled = false
        let scalars = Array(text.unicodeScalars)
        var i = 0
        func emit() {
            guard ansi else { return }
            out += style.sgr
            styled = style != Style()
        }
        func digits(_ max: Int) -> Int? {
            var n = 0
            var count = 0
            while count < max, i < scalars.count, let d = Int(String(scalars[i])), scalars[i].isASCII {
                n = n * 10 + d
                count += 1
                i += 1
            }
            return count == 0 ? nil : n
        }
        while i < scalars.count {
            let scalar = scalars[i]
            i += 1
            switch scalar.value {
            case 0x02: style.bold.toggle(); emit()
            case 0x1d: style.italic.toggle(); emit()
            case 0x1f: style.underline.toggle(); emit()
            case 0x1e: style.strike.toggle(); emit()
            case 0x16: style.reverse.toggle(); emit()
            case 0x11: break
            case 0x0f: style = Style(); emit()
            case 0x03:
                if let fg = digits(2) {
                    style.foreground = fg < 16 ? fg : nil
                    if i + 1 < scalars.count, scalars[i] == ",", scalars[i + 1].isASCII, Int(String(scalars[i + 1])) != nil {
                        i += 1
                        if let bg = digits(2) { style.background = bg < 16 ? bg : nil }
                    }
                } else {
                    style.foreground = nil
                    style.background = nil
                }
                emit()
            case 0x04:
                // Hex colours: skipped (RRGGBB[,RRGGBB]), not drawn.
                var n = 0
                while n < 6, i < scalars.count, scalars[i].properties.isASCIIHexDigit { i += 1; n += 1 }
                if i + 1 < scalars.count, scalars[i] == ",", scalars[i + 1].properties.isASCIIHexDigit {
                    i += 1
                    n = 0
                    while n < 6, i < scalars.count, scalars[i].properties.isASCIIHexDigit { i += 1; n += 1 }
                }
            case 0x01:
                break  // CTCP delimiters
            case 0..<0x20, 0x7f, 0x80..<0xa0:
                out += "^" + String(UnicodeScalar(UInt8((scalar.value + 0x40) & 0x7f)))
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        if ansi && styled { out += "\u{1b}[0m" }
        return out
    }
}

/// Splits a long message into messages that fit the server's line limit, as irssi does: at
/// spaces where possible, never inside a UTF-8 sequence or a character.
public enum MessageSplitter {
    /// The bytes of text a `PRIVMSG target :text` from `nick` can carry: the server relays it
    /// as `:nick!nick@user/nick PRIVMSG target :text\r\n`, and the whole line must fit in
    /// `lineLength` (512 by the specifications, without tags).
    public static func room(lineLength: Int = 512, nick: String, target: String) -> Int {
        let prefix = ":\(nick)!\(nick)@user/\(nick) PRIVMSG \(target) :"
        return max(16, lineLength - prefix.utf8.count - 2)
    }

    /// `text` in pieces of at most `limit` bytes of UTF-8, cut after the last space that fits (the
    /// space is dropped), or between characters when a word is longer than a whole piece.
    public static func split(_ text: String, limit: Int) -> [String] {
        guard text.utf8.count > limit else { return [text] }
        var pieces: [String] = []
        var rest = Substring(text)
        while rest.utf8.count > limit {
            var used = 0
            var end = rest.startIndex
            var lastSpace: String.Index?
            for index in rest.indices {
                let size = rest[index].utf8.count
                if used + size > limit { break }
                used += size
                end = rest.index(after: index)
                if rest[index] == " " { lastSpace = index }
            }
            if end < rest.endIndex && rest[end] == " " { lastSpace = end }  // the piece ends just before a space
            if let space = lastSpace, rest.distance(from: rest.startIndex, to: space) > 0 {
                pieces.append(String(rest[..<space]))
                rest = rest[rest.index(after: space)...]
            } else {
                if end == rest.startIndex { end = rest.index(after: end) }  // one character over the limit: never loop
                pieces.append(String(rest[..<end]))
                rest = rest[end...]
            }
        }
        if !rest.isEmpty { pieces.append(String(rest)) }
        return pieces
    }
}

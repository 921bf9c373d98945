import Foundation

/// The full-screen terminal client's screen as a plain value: one window per room and private
/// conversation (window 1 is the server's), each with its own scrollback, unread count and
/// mention mark; a status line; the input line. `render` lays it out for any size, so the layout
/// is tested without a terminal.
public struct ChatScreen: Sendable {
    public struct Window: Sendable, Equatable {
        /// "#room", a nick for a private conversation, or "" for the server window.
        public var name: String
        public var lines: [String] = []
        /// Messages since the window was last looked at.
        public var unread = 0
        /// Someone mentioned you, or wrote to you privately, since you last looked.
        public var mentioned = false
        /// Rows scrolled up from the bottom (PageUp).
        public var scroll = 0

        public var title: String { name.isEmpty ? "server" : name }
    }

    public static let scrollbackLimit = 2000

    public private(set) var windows: [Window] = [Window(name: "")]
    public private(set) var current = 0
    public var nick: String
    public var away = false
    /// "connected", "reconnecting…", "disconnected".
    public var connection = "connecting"
    /// A line shown instead of the activity list: a paste waiting for a yes, "sending 3 of 12".
    public var notice: String?

    public init(nick: String) {
        self.nick = nick
    }

    public var currentWindow: Window { windows[current] }
    /// The room or nick the current window talks to, or nil in the server window.
    public var currentTarget: String? { windows[current].name.isEmpty ? nil : windows[current].name }

    public func index(of name: String) -> Int? {
        windows.firstIndex { $0.name.lowercased() == name.lowercased() }
    }

    /// The window for `name`, opened (at the end) if it is not there; "" is the server's.
    @discardableResult
    public mutating func open(_ name: String) -> Int {
        if let i = index(of: name) { return i }
        windows.append(Window(name: name))
        return windows.count - 1
    }

    /// Closes a room's or conversation's window (never the server's).
    public mutating func close(_ name: String) {
        guard let i = index(of: name), i > 0 else { return }
        windows.remove(at: i)
        if current >= i { current = max(0, current - 1) }
    }

    /// Adds a line to `name`'s window (opened if needed). `counts`: it is a message (unread
    /// counts); `mention`: it names you or is private.
    public mutating func add(_ line: String, to name: String, counts: Bool = false, mention: Bool = false) {
        let i = open(name)
        for row in line.split(separator: "\n", omittingEmptySubsequences: false) {
            windows[i].lines.append(String(row))
        }
        if windows[i].lines.count > Self.scrollbackLimit {
            windows[i].lines.removeFirst(windows[i].lines.count - Self.scrollbackLimit)
        }
        if i != current {
            if counts { windows[i].unread += 1 }
            if mention { windows[i].mentioned = true }
        }
    }

    /// Puts earlier lines (`/history`) above what `name`'s window holds; they count as read.
    /// Beyond the scrollback limit, the oldest go.
    public mutating func prepend(_ lines: [String], to name: String) {
        let i = open(name)
        let rows = lines.flatMap { $0.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
        windows[i].lines.insert(contentsOf: rows, at: 0)
        if windows[i].lines.count > Self.scrollbackLimit {
            windows[i].lines.removeFirst(windows[i].lines.count - Self.scrollbackLimit)
        }
    }

    /// Makes window `i` (0-based) current and marks it read.
    public mutating func select(_ i: Int) {
        guard windows.indices.contains(i) else { return }
        current = i
        windows[i].unread = 0
        windows[i].mentioned = false
    }

    public mutating func select(_ name: String) -> Bool {
        guard let i = index(of: name) else { return false }
        select(i)
        return true
    }

    public mutating func next() { select((current + 1) % windows.count) }
    public mutating func previous() { select((current + windows.count - 1) % windows.count) }

    /// PageUp / PageDown: a page of `rows` rows in the current window.
    public mutating func page(up: Bool, rows: Int) {
        let step = max(1, rows - 1)
        windows[current].scroll = max(0, windows[current].scroll + (up ? step : -step))
    }

    // MARK: Layout

    /// The screen for `width` × `height`: the rows to draw, top to bottom (with ANSI attributes),
    /// and where the cursor goes (0-based row and column).
    public func render(width: Int, height: Int, input: LineEditor) -> (rows: [String], cursorRow: Int, cursorColumn: Int) {
        let width = max(10, width)
        let height = max(3, height)
        let body = height - 2
        // The conversation: the window's lines wrapped to the width, the last `body` rows, minus
        // the scroll.
        var wrapped: [String] = []
        let window = windows[current]
        for line in window.lines.suffix(body + window.scroll + body) {
            wrapped += Self.wrap(line, width: width)
        }
        let scroll = min(window.scroll, max(0, wrapped.count - body))
        let end = wrapped.count - scroll
        var rows = Array(wrapped[max(0, end - body)..<end])
        if rows.count < body { rows = Array(repeating: "", count: body - rows.count) + rows }
        rows.append(statusLine(width: width, scrolled: scroll > 0))
        let prompt = "[\(window.title)] "
        let promptWidth = min(TextWidth.of(prompt), width / 2)
        let shown = input.visible(width: width - promptWidth)
        rows.append(String(TextWidth.prefix(of: prompt, fitting: promptWidth).0) + shown.text)
        return (rows, height - 1, promptWidth + shown.cursorColumn)
    }

    /// The status line: your nick and away state, the current window, the windows with activity
    /// (unread counts; `!` and bold for a mention or a private message), the connection.
    func statusLine(width: Int, scrolled: Bool) -> String {
        var parts = ["[\(nick)\(away ? " (away)" : "")]", "[\(current + 1):\(windows[current].title)\(scrolled ? " -more-" : "")]"]
        if let notice {
            parts.append("[\(notice)]")
        } else {
            let active = windows.indices.filter { $0 != current && (windows[$0].unread > 0 || windows[$0].mentioned) }
            if !active.isEmpty {
                let items = active.map { i -> String in
                    let w = windows[i]
                    let item = "\(i + 1):\(w.title)\(w.unread > 0 ? "(\(w.unread))" : "")\(w.mentioned ? "!" : "")"
                    return w.mentioned ? "\u{02}\(item)\u{02}" : item
                }
                parts.append("[Act: " + items.joined(separator: " ") + "]")
            }
        }
        parts.append("[\(connection)]")
        let text = parts.joined(separator: " ")
        // Reverse video throughout: a mention's bold ends back in reverse video. Too long for the
        // width: cut, without the bold.
        let fits = Formatting.width(text) <= width
        let (shown, used) = fits ? (Formatting.ansi(text).replacingOccurrences(of: "\u{1b}[0m", with: "\u{1b}[0;7m"), Formatting.width(text))
            : TextWidth.prefix(of: Formatting.stripped(text), fitting: width)
        return "\u{1b}[7m" + shown.replacingOccurrences(of: "\u{1b}[0m", with: "\u{1b}[0;7m") + String(repeating: " ", count: max(0, width - used)) + "\u{1b}[0m"
    }

    /// `line` (with mIRC formatting) cut into rows of at most `width` columns, each rendered with
    /// ANSI attributes; formatting carries over from one row to the next.
    public static func wrap(_ line: String, width: Int) -> [String] {
        var rows: [String] = []
        var row = ""
        var used = 0
        var carried = ""  // the formatting codes seen so far, replayed at the start of each row
        var scalars = Array(line.unicodeScalars)[...]
        // Tokens: a formatting code (with a colour's digits) or one character.
        while !scalars.isEmpty {
            let first = scalars.first!
            if Formatting.codes.contains(first.value) {
                var code = String(first)
                scalars = scalars.dropFirst()
                if first.value == 0x03 {
                    var digits = 0
                    while digits < 2, let s = scalars.first, s.isASCII, ("0"..."9").contains(Character(s)) { code.unicodeScalars.append(s); scalars = scalars.dropFirst(); digits += 1 }
                    if digits > 0, scalars.count >= 2, scalars.first == ",", let s = scalars.dropFirst().first, s.isASCII, ("0"..."9").contains(Character(s)) {
                        code.unicodeScalars.append(","); scalars = scalars.dropFirst()
                        digits = 0
                        while digits < 2, let s = scalars.first, s.isASCII, ("0"..."9").contains(Character(s)) { code.unicodeScalars.append(s); scalars = scalars.dropFirst(); digits += 1 }
                    }
                }
                row += code
                carried += code
                continue
            }
            // One grapheme cluster: take scalars while they extend it.
            var cluster = String(first)
            scalars = scalars.dropFirst()
            while let next = scalars.first {
                let extended = cluster + String(next)
                if extended.count == 1 && !Formatting.codes.contains(next.value) { cluster = extended; scalars = scalars.dropFirst() } else { break }
            }
            let shown = Formatting.stripped(cluster)
            let w = TextWidth.of(shown)
            if used + w > width && used > 0 {
                rows.append(Formatting.ansi(row))
                row = carried
                used = 0
            }
            row += cluster
            used += w
        }
        rows.append(Formatting.ansi(row))
        return rows
    }
}

/// The line being typed at the terminal: key bytes in, what to do out. A plain value, so every
/// editing key is tested without a terminal.
///
/// Keys: ←/→ and Ctrl-B/F move; Ctrl-←/→ and Alt-B/F jump words; Home/End and Ctrl-A/E; Backspace,
/// Delete and Ctrl-D delete; Ctrl-K, Ctrl-U and Ctrl-W cut to the end, to the start, the word before;
/// ↑/↓ walk the history of this session; Tab completes names, rooms and commands (again: the next
/// candidate); Enter submits. Window keys (Alt-1…9, Alt-←/→, Ctrl-N/P, PageUp/PageDown, Ctrl-L)
/// and a bracketed paste are reported for the screen to act on.
public struct LineEditor: Sendable {
    public enum Action: Equatable, Sendable {
        /// Redraw the input line.
        case redraw
        /// The person pressed Enter.
        case submit(String)
        /// Ctrl-C, or Ctrl-D on an empty line.
        case quit
        /// A paste of more than one line (bracketed paste); the lines, without the last empty one.
        case paste([String])
        /// Alt-1…9: window n (1-based).
        case window(Int)
        case nextWindow, previousWindow
        case pageUp, pageDown
        /// Ctrl-L: redraw the whole screen.
        case refresh
        case none
    }

    /// What Tab completes from: the names in the current room, the rooms, and the commands.
    public struct Completions: Sendable, Equatable {
        public var nicks: [String]
        public var rooms: [String]
        public var commands: [String]
        public init(nicks: [String] = [], rooms: [String] = [], commands: [String] = []) {
            self.nicks = nicks
            self.rooms = rooms
            self.commands = commands
        }
    }

    public private(set) var text: [Character] = []
    /// Index in `text` of the character the cursor is on (text.count: at the end).
    public private(set) var cursor = 0
    public var completions = Completions()
    private var history: [String] = []
    private var historyIndex: Int?
    private var draft: [Character] = []
    public static let historyLimit = 500
    private var pendingUTF8: [UInt8] = []
    private var escape: [UInt8]?
    private var pasting: [UInt8]?
    /// The last completion, to cycle through candidates with repeated Tab.
    private var completing: (start: Int, candidates: [String], index: Int, suffix: String)?

    public init() {}

    public var line: String { String(text) }

    /// Replaces the line (and puts the cursor at its end).
    public mutating func set(_ line: String) {
        text = Array(line)
        cursor = text.count
    }

    public mutating func feed(_ byte: UInt8) -> Action {
        if pasting != nil { return feedPaste(byte) }
        if escape != nil { return feedEscape(byte) }
        if byte != 0x09 { completing = nil }
        switch byte {
        case 0x1b:
            escape = []
            return .none
        case 0x03:
            return .quit
        case 0x04:  // Ctrl-D: delete, or quit on an empty line
            if text.isEmpty { return .quit }
            return delete(at: cursor)
        case 0x0d, 0x0a:
            let submitted = line
            if !submitted.isEmpty {
                if history.last != submitted { history.append(submitted) }
                if history.count > Self.historyLimit { history.removeFirst() }
            }
            historyIndex = nil
            text.removeAll()
            cursor = 0
            return .submit(submitted)
        case 0x7f, 0x08:
            return cursor > 0 ? delete(at: cursor - 1) : .none
        case 0x01: return move(to: 0)
        case 0x05: return move(to: text.count)
        case 0x02: return move(to: cursor - 1)
        case 0x06: return move(to: cursor + 1)
        case 0x0b:  // Ctrl-K
            text.removeSubrange(cursor...)
            return .redraw
        case 0x15:  // Ctrl-U
            text.removeSubrange(..<cursor)
            cursor = 0
            return .redraw
        case 0x17:  // Ctrl-W
            let start = wordStart(before: cursor)
            text.removeSubrange(start..<cursor)
            cursor = start
            return .redraw
        case 0x09:
            return complete()
        case 0x0c: return .refresh
        case 0x0e: return .nextWindow
        case 0x10: return .previousWindow
        case 0x00..<0x20:
            return .none
        default:
            pendingUTF8.append(byte)
            if let scalar = String(validating: pendingUTF8, as: UTF8.self) {
                pendingUTF8.removeAll()
                insert(scalar)
                return .redraw
            }
            if pendingUTF8.count >= 4 { pendingUTF8.removeAll() }
            return .none
        }
    }

    private mutating func insert(_ string: String) {
        // Characters combine with what is before them (an accent, a ZWJ sequence): rebuild the
        // clusters around the cursor.
        let before = String(text[..<cursor]) + string
        let after = text[cursor...]
        let merged = Array(before)
        text = merged + after
        cursor = merged.count
    }

    private mutating func delete(at index: Int) -> Action {
        guard index >= 0, index < text.count else { return .none }
        text.remove(at: index)
        if index < cursor { cursor -= 1 }
        return .redraw
    }

    private mutating func move(to index: Int) -> Action {
        cursor = max(0, min(text.count, index))
        return .redraw
    }

    private func wordStart(before index: Int) -> Int {
        var i = index
        while i > 0 && text[i - 1] == " " { i -= 1 }
        while i > 0 && text[i - 1] != " " { i -= 1 }
        return i
    }

    private func wordEnd(after index: Int) -> Int {
        var i = index
        while i < text.count && text[i] == " " { i += 1 }
        while i < text.count && text[i] != " " { i += 1 }
        return i
    }

    // MARK: Escape sequences

    private mutating func feedEscape(_ byte: UInt8) -> Action {
        var sequence = escape!
        sequence.append(byte)
        if sequence.count == 1 {
            switch byte {
            case UInt8(ascii: "["), UInt8(ascii: "O"):
                escape = sequence
                return .none
            case UInt8(ascii: "1")...UInt8(ascii: "9"):
                escape = nil
                return .window(Int(byte - UInt8(ascii: "0")))
            case UInt8(ascii: "b"), UInt8(ascii: "B"):
                escape = nil
                return move(to: wordStart(before: cursor))
            case UInt8(ascii: "f"), UInt8(ascii: "F"):
                escape = nil
                return move(to: wordEnd(after: cursor))
            case 0x1b:
                escape = []  // ESC ESC: start again
                return .none
            default:
                escape = nil
                return .none
            }
        }
        // ESC [ parameters final, or ESC O final.
        guard (0x40...0x7e).contains(byte) else {
            escape = sequence.count > 16 ? nil : sequence
            return .none
        }
        escape = nil
        let body = String(decoding: sequence.dropFirst().dropLast(), as: UTF8.self)
        let parameters = body.split(separator: ";").map(String.init)
        let modifier = parameters.count > 1 ? Int(parameters[1]) ?? 1 : 1  // 3 Alt, 5 Ctrl
        switch (Character(UnicodeScalar(byte)), parameters.first ?? "") {
        case ("D", _):
            if modifier == 3 { return .previousWindow }
            return modifier == 5 ? move(to: wordStart(before: cursor)) : move(to: cursor - 1)
        case ("C", _):
            if modifier == 3 { return .nextWindow }
            return modifier == 5 ? move(to: wordEnd(after: cursor)) : move(to: cursor + 1)
        case ("A", _): return historyStep(-1)
        case ("B", _): return historyStep(1)
        case ("H", _): return move(to: 0)
        case ("F", _): return move(to: text.count)
        case ("~", "1"), ("~", "7"): return move(to: 0)
        case ("~", "4"), ("~", "8"): return move(to: text.count)
        case ("~", "3"): return delete(at: cursor)
        case ("~", "5"): return .pageUp
        case ("~", "6"): return .pageDown
        case ("~", "200"):
            pasting = []
            return .none
        default: return .none
        }
    }

    /// Inside a bracketed paste: everything up to ESC [ 201 ~.
    private mutating func feedPaste(_ byte: UInt8) -> Action {
        pasting!.append(byte)
        let end: [UInt8] = [0x1b, 0x5b, 0x32, 0x30, 0x31, 0x7e]
        guard pasting!.count >= end.count, Array(pasting!.suffix(end.count)) == end else {
            if pasting!.count > 1 << 20 { pasting = nil }  // a megabyte without an end: drop it
            return .none
        }
        let bytes = pasting!.dropLast(end.count)
        pasting = nil
        var pasted = String(decoding: bytes, as: UTF8.self)
        if pasted.contains("\r") { pasted = pasted.split(separator: "\r\n", omittingEmptySubsequences: false).joined(separator: "\n").map { $0 == "\r" ? "\n" : $0 }.reduce(into: "") { $0.append($1) } }
        var lines = pasted.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        while lines.last?.isEmpty == true { lines.removeLast() }
        if lines.count <= 1 {
            insert(lines.first ?? "")
            return .redraw
        }
        // The line typed so far comes first.
        lines[0] = line + lines[0]
        text.removeAll()
        cursor = 0
        return .paste(lines)
    }

    private mutating func historyStep(_ step: Int) -> Action {
        guard !history.isEmpty else { return .none }
        let current = historyIndex ?? history.count
        let next = max(0, min(history.count, current + step))
        if next == current { return .none }
        if historyIndex == nil { draft = text }
        historyIndex = next == history.count ? nil : next
        text = next == history.count ? draft : Array(history[next])
        cursor = text.count
        return .redraw
    }

    // MARK: Tab completion

    private mutating func complete() -> Action {
        if var state = completing, !state.candidates.isEmpty {
            // Again: the next candidate in place of the last.
            state.index = (state.index + 1) % state.candidates.count
            let replacement = Array(state.candidates[state.index] + state.suffix)
            text.replaceSubrange(state.start..<cursor, with: replacement)
            cursor = state.start + replacement.count
            completing = state
            return .redraw
        }
        let start = wordStart(before: cursor)
        let word = String(text[start..<cursor]).lowercased()
        let isFirst = text[..<start].allSatisfy { $0 == " " }
        let pool: [String]
        var suffix = " "
        if word.hasPrefix("/") && isFirst {
            pool = completions.commands
        } else if word.hasPrefix("#") {
            pool = completions.rooms
        } else {
            pool = completions.nicks
            if isFirst { suffix = ": " }
        }
        let candidates = pool.filter { $0.lowercased().hasPrefix(word) }.sorted { $0.lowercased() < $1.lowercased() }
        guard let first = candidates.first, !word.isEmpty || !pool.isEmpty else { return .none }
        let replacement = Array(first + suffix)
        text.replaceSubrange(start..<cursor, with: replacement)
        cursor = start + replacement.count
        completing = (start, candidates, 0, suffix)
        return .redraw
    }

    // MARK: Drawing

    /// The part of the line to draw in `width` columns, scrolled sideways so the cursor is visible,
    /// and the cursor's column in it. Widths are per Unicode (`TextWidth`).
    public func visible(width: Int) -> (text: String, cursorColumn: Int) {
        guard width > 1 else { return ("", 0) }
        let widths = text.map(TextWidth.of)
        // Scroll in steps of a third of the width, so typing does not shift the text each key.
        var start = 0
        var before = widths[..<cursor].reduce(0, +)
        let step = max(1, width / 3)
        while before >= width - 1 {
            // Drop characters from the left until the cursor fits, a step at a time.
            var dropped = 0
            while dropped < step && start < cursor {
                dropped += widths[start]
                start += 1
            }
            before -= dropped
        }
        var out = ""
        var used = 0
        var i = start
        while i < text.count && used + widths[i] <= width - 1 {
            out.append(text[i])
            used += widths[i]
            i += 1
        }
        return (out, before)
    }
}

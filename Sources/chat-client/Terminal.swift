import ChatClient
import Foundation

/// Where the client shows things and reads keys: the full-screen terminal, the line mode, or
/// plain lines for scripts.
protocol Display: AnyObject, Sendable {
    /// Puts the terminal in the mode this display needs.
    func start()
    /// Puts it back as it was.
    func stop()
    /// A line for `window` (a room, a nick, or nil for the current window). `counts`: a message
    /// (unread counts); `mention`: it names you or is private.
    func show(_ line: String, in window: String?, counts: Bool, mention: Bool)
    /// Earlier lines of `window` (`/history`): above its lines on the full screen, printed
    /// as they come elsewhere.
    func showEarlier(_ lines: [String], in window: String)
    /// Where typed text goes: the current room or conversation.
    var current: String? { get }
    /// Makes `target` current (opening its window); nil: none.
    func setCurrent(_ target: String?)
    /// A room was left: its window closes.
    func closed(_ target: String)
    func setConnection(_ state: String)
    func setAway(_ away: Bool)
    /// A line that replaces the activity list for a while (a paste waiting, "sending 3 of 12").
    func setNotice(_ text: String?)
    func setCompletions(_ completions: LineEditor.Completions)
    /// Feeds one key byte; returns what the app must do (window keys are handled here).
    func key(_ byte: UInt8) -> LineEditor.Action
    /// The terminal was resized.
    func resized()
}

/// Raw mode and writing to the terminal, shared by the two terminal displays.
// @unchecked Sendable: `saved` and `raw` are touched only with `lock` held (the subclasses take
// it around every call).
class TerminalBase: @unchecked Sendable {
    let lock = NSLock()
    private var saved = termios()
    var raw = false

    func enterRawMode() {
        guard tcgetattr(0, &saved) == 0 else { return }
        var settings = saved
        settings.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        settings.c_iflag &= ~tcflag_t(IXON | ICRNL)
        withUnsafeMutableBytes(of: &settings.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        tcsetattr(0, TCSAFLUSH, &settings)
        raw = true
    }

    func leaveRawMode() {
        if raw {
            tcsetattr(0, TCSAFLUSH, &saved)
            raw = false
        }
    }

    /// Columns and rows of the terminal (80×24 if it cannot tell).
    static func size() -> (width: Int, height: Int) {
        var size = winsize()
        if ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0, size.ws_row > 0 { return (Int(size.ws_col), Int(size.ws_row)) }
        return (80, 24)
    }

    func write(_ text: String) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Foundation.write(1, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { if errno == EINTR { continue }; return }
            offset += n
        }
    }
}

/// The full-screen mode (the default on a terminal): the current window's conversation above, a
/// status line, the input line at the bottom; redrawn whole on every change and on resize.
// @unchecked Sendable: every stored var is touched only with `lock` held.
final class FullScreenDisplay: TerminalBase, Display, @unchecked Sendable {
    private var screen: ChatScreen
    private var editor = LineEditor()
    private var resizeSource: DispatchSourceSignal?

    init(nick: String) {
        screen = ChatScreen(nick: nick)
    }

    func start() {
        lock.lock()
        defer { lock.unlock() }
        enterRawMode()
        // The alternate screen (the shell's screen comes back on exit), bracketed paste on.
        write("\u{1b}[?1049h\u{1b}[?2004h\u{1b}[H\u{1b}[2J")
        signal(SIGWINCH, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGWINCH, queue: .global())
        source.setEventHandler { [weak self] in self?.resized() }
        source.resume()
        resizeSource = source
        redrawLocked()
    }

    func stop() {
        lock.lock()
        defer { lock.unlock() }
        resizeSource?.cancel()
        if raw { write("\u{1b}[?2004l\u{1b}[?1049l") }
        leaveRawMode()
    }

    func show(_ line: String, in window: String?, counts: Bool, mention: Bool) {
        locked {
            screen.add(line, to: window ?? screen.currentTarget ?? "", counts: counts, mention: mention)
        }
    }

    func showEarlier(_ lines: [String], in window: String) {
        locked { screen.prepend(lines, to: window) }
    }

    var current: String? { lock.lock(); defer { lock.unlock() }; return screen.currentTarget }

    func setCurrent(_ target: String?) {
        locked { screen.select(screen.open(target ?? "")) }
    }

    func closed(_ target: String) { locked { screen.close(target) } }
    func setConnection(_ state: String) { locked { screen.connection = state } }
    func setAway(_ away: Bool) { locked { screen.away = away } }
    func setNotice(_ text: String?) { locked { screen.notice = text } }
    func setCompletions(_ completions: LineEditor.Completions) {
        lock.lock()
        editor.completions = completions
        lock.unlock()
    }

    func key(_ byte: UInt8) -> LineEditor.Action {
        lock.lock()
        defer { lock.unlock() }
        let action = editor.feed(byte)
        let rows = Self.size().height - 2
        switch action {
        case let .window(n): screen.select(n - 1)
        case .nextWindow: screen.next()
        case .previousWindow: screen.previous()
        case .pageUp: screen.page(up: true, rows: rows)
        case .pageDown: screen.page(up: false, rows: rows)
        case .refresh: write("\u{1b}[2J")
        case .none: return action
        default: break
        }
        redrawLocked()
        return action
    }

    func resized() { locked { write("\u{1b}[2J") } }

    private func locked(_ change: () -> Void) {
        lock.lock()
        change()
        redrawLocked()
        lock.unlock()
    }

    private func redrawLocked() {
        guard raw else { return }
        let (width, height) = Self.size()
        let frame = screen.render(width: width, height: height, input: editor)
        var out = "\u{1b}[?25l"
        for (i, row) in frame.rows.enumerated() {
            out += "\u{1b}[\(i + 1);1H\u{1b}[2K" + row
        }
        out += "\u{1b}[\(frame.cursorRow + 1);\(frame.cursorColumn + 1)H\u{1b}[?25h"
        write(out)
    }
}

/// The line mode (`--line`): incoming lines printed above a prompt at the bottom, which scrolls
/// sideways when the line is longer than the terminal is wide.
// @unchecked Sendable: every stored var is touched only with `lock` held.
final class LineDisplay: TerminalBase, Display, @unchecked Sendable {
    private var editor = LineEditor()
    private var target: String?
    private var notice: String?

    func start() {
        lock.lock()
        enterRawMode()
        redrawLocked()
        lock.unlock()
    }

    func stop() {
        lock.lock()
        defer { lock.unlock() }
        if raw { write("\r\u{1b}[K") }
        leaveRawMode()
    }

    func show(_ line: String, in window: String?, counts: Bool, mention: Bool) {
        lock.lock()
        write("\r\u{1b}[K")
        for row in Formatting.ansi(line).split(separator: "\n", omittingEmptySubsequences: false) {
            write(String(row) + "\r\n")
        }
        redrawLocked()
        lock.unlock()
    }

    func showEarlier(_ lines: [String], in window: String) {
        for line in lines { show(line, in: window, counts: false, mention: false) }
    }

    var current: String? { lock.lock(); defer { lock.unlock() }; return target }

    func setCurrent(_ target: String?) {
        lock.lock()
        self.target = target
        redrawLocked()
        lock.unlock()
    }

    func closed(_ target: String) {}
    func setConnection(_ state: String) {}
    func setAway(_ away: Bool) {}
    func setNotice(_ text: String?) {
        lock.lock()
        notice = text
        redrawLocked()
        lock.unlock()
    }
    func setCompletions(_ completions: LineEditor.Completions) {
        lock.lock()
        editor.completions = completions
        lock.unlock()
    }

    func key(_ byte: UInt8) -> LineEditor.Action {
        lock.lock()
        defer { lock.unlock() }
        let action = editor.feed(byte)
        if action != .none { redrawLocked() }
        return action
    }

    func resized() {}

    private func redrawLocked() {
        guard raw else { return }
        let prompt = notice.map { "[\($0)] " } ?? "[\(target ?? "no room")] "
        let width = Self.size().width
        let promptWidth = min(TextWidth.of(prompt), width / 2)
        let shown = editor.visible(width: width - promptWidth)
        let column = promptWidth + shown.cursorColumn
        write("\r\u{1b}[K" + TextWidth.prefix(of: prompt, fitting: promptWidth).0 + shown.text + "\r" + (column > 0 ? "\u{1b}[\(column)C" : ""))
    }
}

/// Script mode: one line per event on standard output, formatting removed.
// @unchecked Sendable: lock: `target` is touched only with `lock` held.
final class ScriptDisplay: Display, @unchecked Sendable {
    private let lock = NSLock()
    private var target: String?

    func start() {}
    func stop() {}
    func show(_ line: String, in window: String?, counts: Bool, mention: Bool) {
        FileHandle.standardOutput.write(Data((Formatting.stripped(line) + "\n").utf8))
    }
    func showEarlier(_ lines: [String], in window: String) {
        for line in lines { show(line, in: window, counts: false, mention: false) }
    }
    var current: String? { lock.lock(); defer { lock.unlock() }; return target }
    func setCurrent(_ target: String?) { lock.lock(); self.target = target; lock.unlock() }
    func closed(_ target: String) {}
    func setConnection(_ state: String) {}
    func setAway(_ away: Bool) {}
    func setNotice(_ text: String?) {}
    func setCompletions(_ completions: LineEditor.Completions) {}
    func key(_ byte: UInt8) -> LineEditor.Action { .none }
    func resized() {}
}

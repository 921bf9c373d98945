import ChatClient
import Foundation

/// The terminal in raw mode: a prompt with the line being typed at the bottom, incoming lines
/// printed above it without garbling what is being typed.
final class Terminal: @unchecked Sendable {
    private let lock = NSLock()
    private var editor = LineEditor()
    private var saved = termios()
    private var raw = false
    private var prompt = "> "

    /// Switches the terminal to raw mode (no echo, no line buffering, Ctrl-C as a key).
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

    /// Restores the terminal as it was.
    func restore() {
        lock.lock()
        defer { lock.unlock() }
        if raw {
            write("\r\u{1b}[K")
            tcsetattr(0, TCSAFLUSH, &saved)
            raw = false
        }
    }

    func setPrompt(_ text: String) {
        lock.lock()
        prompt = text
        redrawLocked()
        lock.unlock()
    }

    /// Prints `text` above the prompt, then redraws the prompt and the partial line.
    func show(_ text: String) {
        lock.lock()
        write("\r\u{1b}[K")
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            write(String(line) + "\r\n")
        }
        redrawLocked()
        lock.unlock()
    }

    /// Feeds one key byte; returns what the editor decided.
    func key(_ byte: UInt8) -> LineEditor.Action {
        lock.lock()
        defer { lock.unlock() }
        let action = editor.feed(byte)
        switch action {
        case .redraw: redrawLocked()
        case .submit: write("\r\u{1b}[K"); redrawLocked()
        default: break
        }
        return action
    }

    private func redrawLocked() {
        guard raw else { return }
        write("\r\u{1b}[K" + prompt + editor.line)
    }

    private func write(_ text: String) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Foundation.write(1, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { if errno == EINTR { continue }; return }
            offset += n
        }
    }
}

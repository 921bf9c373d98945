@testable import ChatClient
import Testing

/// The terminal client's pieces as plain values: every editing key, the width rules, formatting,
/// message splitting and the screen's layout.
@Suite struct LineEditorTests {
    func type(_ editor: inout LineEditor, _ text: String) {
        for byte in text.utf8 { _ = editor.feed(byte) }
    }

    func keys(_ editor: inout LineEditor, _ sequence: String) -> [LineEditor.Action] {
        sequence.utf8.map { editor.feed($0) }
    }

    @Test func cursorMovementAndEditing() {
        var e = LineEditor()
        type(&e, "hello world")
        _ = keys(&e, "\u{1b}[D\u{1b}[D")  // ←←
        type(&e, "X")
        #expect(e.line == "hello worXld" && e.cursor == 10)
        _ = keys(&e, "\u{1}")  // Ctrl-A
        #expect(e.cursor == 0)
        _ = keys(&e, "\u{1b}[F")  // End
        #expect(e.cursor == e.text.count)
        _ = keys(&e, "\u{1b}[H\u{1b}[C")  // Home →
        _ = keys(&e, "\u{1b}[3~")  // Delete
        #expect(e.line == "hllo worXld")
        _ = keys(&e, "\u{5}\u{7f}")  // Ctrl-E, Backspace
        #expect(e.line == "hllo worXl")
        _ = keys(&e, "\u{1b}[1;5D")  // Ctrl-←: start of the word
        #expect(e.cursor == 5)
        _ = keys(&e, "\u{b}")  // Ctrl-K
        #expect(e.line == "hllo ")
        _ = keys(&e, "\u{1b}b")  // Alt-B
        #expect(e.cursor == 0)
        _ = keys(&e, "\u{1b}f")  // Alt-F
        #expect(e.cursor == 4)
        _ = keys(&e, "\u{15}")  // Ctrl-U cuts to the start
        #expect(e.line == " " && e.cursor == 0)
        type(&e, "one two three")
        _ = keys(&e, "\u{17}")  // Ctrl-W: the word before the cursor
        #expect(e.line == "one two  ")
        #expect(keys(&e, "\r") == [.submit("one two  ")])
        #expect(e.line.isEmpty && e.cursor == 0)
    }

    @Test func ctrlDDeletesOrQuitsAndCtrlCQuits() {
        var e = LineEditor()
        #expect(keys(&e, "\u{4}") == [.quit])
        type(&e, "ab")
        _ = keys(&e, "\u{1}")
        #expect(keys(&e, "\u{4}") == [.redraw] && e.line == "b")
        #expect(keys(&e, "\u{3}") == [.quit])
    }

    @Test func historyWalksBackAndForwardAndKeepsTheDraft() {
        var e = LineEditor()
        for line in ["first", "second"] { type(&e, line); _ = keys(&e, "\r") }
        type(&e, "draft")
        _ = keys(&e, "\u{1b}[A")
        #expect(e.line == "second")
        _ = keys(&e, "\u{1b}[A\u{1b}[A")
        #expect(e.line == "first")
        _ = keys(&e, "\u{1b}[B\u{1b}[B")
        #expect(e.line == "draft")
    }

    @Test func tabCompletesNamesRoomsAndCommandsAndCycles() {
        var e = LineEditor()
        e.completions = .init(nicks: ["bob", "Bea", "carol"], rooms: ["#lobby", "#dev"], commands: ["/join", "/me"])
        type(&e, "b")
        _ = keys(&e, "\t")
        #expect(e.line == "Bea: ")  // first word: a name gets ": "
        _ = keys(&e, "\t")
        #expect(e.line == "bob: ")
        type(&e, "see #d")
        _ = keys(&e, "\t")
        #expect(e.line == "bob: see #dev ")
        var c = LineEditor()
        c.completions = e.completions
        type(&c, "/jo")
        _ = keys(&c, "\t")
        #expect(c.line == "/join ")
        type(&c, "car")
        _ = keys(&c, "\t")
        #expect(c.line == "/join carol ")
    }

    @Test func windowKeysAndBracketedPaste() {
        var e = LineEditor()
        #expect(keys(&e, "\u{1b}3") == [.none, .window(3)])
        #expect(keys(&e, "\u{1b}[1;3C").last == .nextWindow)
        #expect(keys(&e, "\u{1b}[1;3D").last == .previousWindow)
        #expect(keys(&e, "\u{e}") == [.nextWindow] && keys(&e, "\u{10}") == [.previousWindow])
        #expect(keys(&e, "\u{1b}[5~").last == .pageUp && keys(&e, "\u{1b}[6~").last == .pageDown)
        #expect(keys(&e, "\u{c}") == [.refresh])
        type(&e, "typed ")
        let actions = keys(&e, "\u{1b}[200~one\r\ntwo\nthree\n\u{1b}[201~")
        #expect(actions.last == .paste(["typed one", "two", "three"]))
        #expect(e.line.isEmpty)
        // One line pasted is just typed.
        #expect(keys(&e, "\u{1b}[200~just this\u{1b}[201~").last == .redraw)
        #expect(e.line == "just this")
    }

    @Test func longLinesScrollSidewaysWithTheCursorVisible() {
        var e = LineEditor()
        type(&e, String(repeating: "a", count: 50) + "END")
        let shown = e.visible(width: 20)
        #expect(shown.text.hasSuffix("END") && TextWidth.of(shown.text) <= 19)
        #expect(shown.cursorColumn == TextWidth.of(shown.text))
        _ = keys(&e, "\u{1}")
        #expect(e.visible(width: 20).cursorColumn == 0)
        // Wide characters: the cursor column counts two for each.
        var w = LineEditor()
        type(&w, "日本語👍🏽x")
        #expect(w.visible(width: 40).cursorColumn == 9)
    }
}

@Suite struct TextWidthTests {
    @Test func widthsPerUnicode() {
        #expect(TextWidth.of("hello") == 5)
        #expect(TextWidth.of("日本") == 4)  // East Asian wide
        #expect(TextWidth.of("한글") == 4)
        #expect(TextWidth.of("👍") == 2 && TextWidth.of("👍🏽") == 2)  // emoji, with a skin tone
        #expect(TextWidth.of("👨‍👩‍👧") == 2)  // a ZWJ family is one picture
        #expect(TextWidth.of("🇫🇷") == 2)
        #expect(TextWidth.of("e\u{301}") == 1)  // combining accent
        #expect(TextWidth.of("❤️") == 2 && TextWidth.of("❤") == 1)  // VS16 makes it emoji
        #expect(TextWidth.of("שלום") == 4 && TextWidth.of("مرحبا") == 5)
        #expect(TextWidth.of("\u{200b}") == 0)
        #expect(TextWidth.prefix(of: "ab日c", fitting: 3) == ("ab", 2))
    }
}

@Suite struct FormattingTests {
    @Test func mIRCCodesBecomeAttributesOrAreRemoved() {
        let text = "\u{2}bold\u{2} \u{3}4,1red\u{3} \u{1d}it\u{f} plain \u{4}ff0000hex"
        #expect(Formatting.stripped(text) == "bold red it plain hex")
        let ansi = Formatting.ansi(text)
        #expect(ansi.contains("\u{1b}[0;1mbold") && ansi.contains("38;5;9") && ansi.contains("48;5;0") && ansi.contains("\u{1b}[0;3mit"))
        #expect(ansi.hasSuffix("\u{1b}[0m plain hex"))
        #expect(Formatting.ansi("\u{2}still bold").hasSuffix("bold\u{1b}[0m"))  // reset at the end when needed
        #expect(Formatting.width(text) == 21)
        // Other control characters stay visible, so nobody drives the terminal.
        #expect(Formatting.ansi("evil\u{1b}[2J") == "evil^[[2J")
        #expect(Formatting.stripped("a\u{3}12") == "a")
    }

    @Test func splitsAtSpacesAndCharacters() {
        #expect(MessageSplitter.split("short", limit: 10) == ["short"])
        #expect(MessageSplitter.split("aaa bbb ccc", limit: 7) == ["aaa bbb", "ccc"])
        #expect(MessageSplitter.split("abcdefghij", limit: 4) == ["abcd", "efgh", "ij"])
        // Never inside a character: four 3-byte characters in 7 bytes is 2 + 2.
        #expect(MessageSplitter.split("日本語日", limit: 7) == ["日本", "語日"])
        let limit = MessageSplitter.room(nick: "alice", target: "#lobby")
        #expect(limit == 512 - ":alice!alice@user/alice PRIVMSG #lobby :".utf8.count - 2)
        let long = (0..<99).map { _ in "abcd" }.joined(separator: " ")
        let pieces = MessageSplitter.split(long, limit: limit)
        #expect(pieces.count == 2 && pieces.joined(separator: " ") == long && pieces.allSatisfy { $0.utf8.count <= limit })
    }
}

@Suite struct ChatScreenTests {
    @Test func earlierLinesGoAboveAndDoNotCountAsUnread() {
        var screen = ChatScreen(nick: "alice")
        screen.add("[12:00:03] <bob> three", to: "#lobby")
        _ = screen.select("#lobby")
        screen.add("[12:00:04] <bob> four", to: "#lobby")
        screen.prepend(["[11:59:59] 2 earlier messages:", "[12:00:01] <bob> one", "[12:00:02] <bob> two"], to: "#lobby")
        #expect(screen.currentWindow.lines == ["[11:59:59] 2 earlier messages:", "[12:00:01] <bob> one", "[12:00:02] <bob> two",
                                               "[12:00:03] <bob> three", "[12:00:04] <bob> four"])
        #expect(screen.currentWindow.unread == 0)
        // Beyond the scrollback limit the oldest lines go, the newest stay.
        screen.prepend(Array(repeating: "old", count: ChatScreen.scrollbackLimit), to: "#lobby")
        #expect(screen.currentWindow.lines.count == ChatScreen.scrollbackLimit && screen.currentWindow.lines.last == "[12:00:04] <bob> four")
    }

    @Test func windowsCountUnreadAndMentions() {
        var s = ChatScreen(nick: "alice")
        s.select(s.open("#lobby"))
        s.open("#dev")
        s.add("<bob> hi", to: "#dev", counts: true)
        s.add("<bob> alice?", to: "#dev", counts: true, mention: true)
        s.add("-!- carol joined", to: "#dev")
        s.add("<bob> here", to: "#lobby", counts: true)  // the window in front: nothing to mark
        #expect(s.windows[2].unread == 2 && s.windows[2].mentioned && s.windows[1].unread == 0)
        let status = s.statusLine(width: 80, scrolled: false)
        #expect(strippingANSI(status).hasPrefix("[alice] [2:#lobby] [Act: 3:#dev(2)!] [connecting]"), "\(strippingANSI(status))")
        #expect(status.contains("\u{1b}[0;7;1m3:#dev(2)!") || status.contains("1m3:#dev(2)!"))  // the mention in bold
        s.select(2)
        #expect(s.windows[2].unread == 0 && !s.windows[2].mentioned)
        s.close("#dev")
        #expect(s.current == 1 && s.windows.count == 2)
    }

    @Test func layoutFitsAnySizeAndScrolls() {
        var s = ChatScreen(nick: "alice")
        s.select(s.open("#lobby"))
        for i in 1...40 { s.add("[12:00:00] <bob> message number \(i) with some words to wrap", to: "#lobby", counts: true) }
        var input = LineEditor()
        for byte in "typing".utf8 { _ = input.feed(byte) }
        let frame = s.render(width: 40, height: 15, input: input)
        #expect(frame.rows.count == 15)
        #expect(frame.rows.allSatisfy { Formatting.width(strippingANSI($0)) <= 40 })
        #expect(strippingANSI(frame.rows[12]).contains("number 40") || strippingANSI(frame.rows[12]).contains("to wrap"))
        #expect(strippingANSI(frame.rows[14]) == "[#lobby] typing" && frame.cursorRow == 14 && frame.cursorColumn == 15)
        s.page(up: true, rows: 13)
        let scrolled = s.render(width: 40, height: 15, input: input)
        #expect(!scrolled.rows.contains { strippingANSI($0).contains("number 40") })
        #expect(strippingANSI(scrolled.rows[13]).contains("-more-"))
        // Formatting carries over a wrap.
        let rows = ChatScreen.wrap("\u{2}" + String(repeating: "b", count: 15), width: 10)
        #expect(rows.count == 2 && rows[1].hasPrefix("\u{1b}[0;1m"))
    }

    func strippingANSI(_ text: String) -> String {
        var out = ""
        var inEscape = false
        for c in text.unicodeScalars {
            if inEscape { if c.value >= 0x40 && c.value <= 0x7e && c != "[" { inEscape = false }; continue }
            if c == "\u{1b}" { inEscape = true; continue }
            out.unicodeScalars.append(c)
        }
        return out
    }
}

import IRC
import Testing
@testable import ChatClient

@Suite struct InputCommandTests {
    @Test func historyCommand() {
        #expect(InputCommand.parse("/history") == .history(nil))
        #expect(InputCommand.parse("/history 20") == .history(20))
        #expect(InputCommand.parse("/more 500") == .history(InputCommand.maximumHistory))
        guard case .invalid(let hint)? = InputCommand.parse("/history lots") else {
            Issue.record("expected a hint")
            return
        }
        #expect(hint.hasPrefix("usage: /history [N]"))
    }

    @Test func parsing() {
        #expect(InputCommand.parse("hello there") == .say("hello there"))
        #expect(InputCommand.parse("//slash at start") == .say("/slash at start"))
        #expect(InputCommand.parse("") == nil)
        #expect(InputCommand.parse("/join lobby") == .join("#lobby"))
        #expect(InputCommand.parse("/JOIN #Lobby") == .join("#Lobby"))
        #expect(InputCommand.parse("/part") == .part(nil))
        #expect(InputCommand.parse("/part dev") == .part("#dev"))
        #expect(InputCommand.parse("/rooms") == .rooms)
        #expect(InputCommand.parse("/who") == .who)
        #expect(InputCommand.parse("/msg bob hi there") == .msg("bob", "hi there"))
        #expect(InputCommand.parse("/msg bob") == .invalid("usage: /msg NAME TEXT"))
        #expect(InputCommand.parse("/me waves") == .me("waves"))
        #expect(InputCommand.parse("/topic") == .topic(nil))
        #expect(InputCommand.parse("/topic new topic") == .topic("new topic"))
        #expect(InputCommand.parse("/switch dev") == .switchTo("#dev"))
        #expect(InputCommand.parse("/away") == .away(nil))
        #expect(InputCommand.parse("/away lunch") == .away("lunch"))
        #expect(InputCommand.parse("/quit") == .quit(nil))
        #expect(InputCommand.parse("/quit see you") == .quit("see you"))
        #expect(InputCommand.parse("/help") == .help)
        guard case let .invalid(hint)? = InputCommand.parse("/frobnicate") else { Issue.record("accepted"); return }
        #expect(hint.contains("/help"))
    }
}

@Suite struct TranslationAndFormatTests {
    func events(_ lines: [String], nick: String = "alice") -> [ChatEvent] {
        var translator = EventTranslator(nick: nick)
        return lines.flatMap { translator.translate(try! IRCMessage.parse(Array($0.utf8))) }
    }

    @Test func translatesChatIntoEvents() {
        let t = "@time=2026-11-30T12:00:00.000Z "
        #expect(events([t + ":bob!~bob@user/bob PRIVMSG #lobby :hi"]) == [.message(time: "2026-11-30T12:00:00.000Z", target: "#lobby", sender: "bob", text: "hi", kind: .normal)])
        #expect(events([":bob!~b@h PRIVMSG #lobby :\u{1}ACTION waves\u{1}"]) == [.message(time: "", target: "#lobby", sender: "bob", text: "waves", kind: .action)])
        #expect(events([":srv 353 alice = #lobby :@alice bob", ":srv 353 alice = #lobby :carol", ":srv 366 alice #lobby :End"]) == [.members(room: "#lobby", nicks: ["@alice", "bob", "carol"])])
        #expect(events([":srv 321 alice Channel :Users", ":srv 322 alice #a 3 :topic a", ":srv 322 alice #b 1 :", ":srv 323 alice :End"]) == [.rooms([RoomSummary(name: "#a", members: 3, topic: "topic a"), RoomSummary(name: "#b", members: 1, topic: "")])])
        #expect(events([":bob!~b@h KICK #lobby carol :bye"]) == [.kicked(time: "", room: "#lobby", nick: "carol", by: "bob", reason: "bye")])
        #expect(events(["ERROR :Server shutting down"]) == [.closing(reason: "Server shutting down")])
        #expect(events([":srv 401 alice nobody :No such nick"]) == [.notice(text: "nobody: No such nick")])
    }

    @Test func historyBatchesReadMarkersAndTargets() {
        let t = "2026-11-30T12:00:00.000Z"
        // A chathistory batch becomes one event with its messages, oldest first; a live message
        // in the middle of it stays live.
        #expect(events([
            ":srv BATCH +h1 chathistory #lobby",
            "@batch=h1;time=\(t);msgid=a1 :bob!b@h PRIVMSG #lobby :one",
            "@time=\(t) :carol!c@h PRIVMSG #lobby :live",
            "@batch=h1;time=\(t);msgid=a2 :bob!b@h NOTICE #lobby :two",
            ":srv BATCH -h1",
        ]) == [
            .message(time: t, target: "#lobby", sender: "carol", text: "live", kind: .normal),
            .history(target: "#lobby", events: [
                .message(time: t, target: "#lobby", sender: "bob", text: "one", kind: .normal, msgid: "a1"),
                .message(time: t, target: "#lobby", sender: "bob", text: "two", kind: .notice, msgid: "a2"),
            ]),
        ])
        #expect(events([":srv BATCH +e chathistory #empty", ":srv BATCH -e"]) == [.history(target: "#empty", events: [])])
        #expect(events([":srv MARKREAD #lobby timestamp=\(t)", ":srv MARKREAD bob *"])
            == [.readMarker(target: "#lobby", time: t), .readMarker(target: "bob", time: nil)])
        #expect(events([":srv BATCH +t draft/chathistory-targets", "@batch=t :srv CHATHISTORY TARGETS bob timestamp=\(t)", ":srv BATCH -t"])
            == [.conversations([Conversation(name: "bob", latest: t)])])
        #expect(events([":srv FAIL CHATHISTORY MESSAGE_ERROR BEFORE #lobby :Too many history requests"])
            == [.historyFailed(target: "#lobby", text: "Too many history requests")])
        // A batch of another type passes its messages through.
        #expect(events([":srv BATCH +n netsplit", "@batch=n :bob!b@h QUIT :gone", ":srv BATCH -n"]) == [.quit(time: "", nick: "bob", reason: "gone")])
    }

    @Test func scriptFormatIsStable() {
        let f = EventFormatter(style: .script, nick: "alice")
        let time = "2026-11-30T12:00:00.000Z"
        #expect(f.format(.message(time: time, target: "#lobby", sender: "bob", text: "hi", kind: .normal)) == "\(time) #lobby <bob> hi")
        #expect(f.format(.message(time: time, target: "alice", sender: "bob", text: "psst", kind: .normal)) == "\(time) @bob <bob> psst")
        #expect(f.format(.message(time: time, target: "bob", sender: "alice", text: "yes?", kind: .normal)) == "\(time) @bob <alice> yes?")
        #expect(f.format(.message(time: time, target: "#lobby", sender: "bob", text: "waves", kind: .action)) == "\(time) #lobby * bob waves")
        #expect(f.format(.joined(time: time, room: "#lobby", nick: "bob")) == "\(time) #lobby -!- bob joined")
        #expect(f.format(.quit(time: time, nick: "bob", reason: "Quit: bye")) == "\(time) * -!- bob quit (Quit: bye)")
        #expect(f.format(.topic(time: time, room: "#lobby", text: "new", by: "bob")) == "\(time) #lobby -!- bob set the topic: new")
        #expect(f.format(.kicked(time: time, room: "#lobby", nick: "carol", by: "bob", reason: nil)) == "\(time) #lobby -!- carol was removed by bob")
        #expect(f.format(.notice(text: "No such nick")) == "- -!- No such nick")
        // A peer cannot send escape sequences to the terminal.
        #expect(EventFormatter.printable("evil\u{1b}[2Jtext\u{7}") == "evil^[[2Jtext^G")
    }
}

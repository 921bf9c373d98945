import ChatSupport
import ChatClient
import IRC
import Foundation

/// The client's main loop: what the person types, what the server says, and reconnecting.
// @unchecked Sendable: loop-bound: its vars are touched only by the task running `run()`; the
// tasks and the input thread it starts capture only `sink` (an AsyncStream continuation), the
// Sendable `ChatConnection` and immutable values, and hand everything back through the stream.
final class ClientApp: @unchecked Sendable {
    enum Input {
        case command(InputCommand)
        case emptyLine
        case quitKey
        case endOfInput
        case paste([String])
        case event(ChatEvent)
        case disconnected(generation: Int)
        case pasteSent(Int)
        /// Time to tell the server what has been read (every few seconds).
        case markTick
    }

    enum Mode { case fullScreen, line, script }

    let options: ChatClientOptions
    let mode: Mode
    let reconnect: Bool
    let firstRoom: String?
    let display: any Display
    private let (inputs, sink) = AsyncStream<Input>.makeStream()
    private var connection: ChatConnection?
    private var generation = 0
    /// The rooms joined, in order: rejoined after a reconnect.
    private var rooms: [String] = []
    /// Who is in each room (by folded room name), for Tab completion and to place quits.
    private var members: [String: Set<String>] = [:]
    private var lastServerReason: String?
    private var formatter: EventFormatter
    /// A multi-line paste waiting for Enter, and the one being sent.
    private var pendingPaste: (lines: [String], target: String)?
    private var pasteTask: Task<Void, Never>?
    /// Past the welcome burst: the first room joined or the first command typed.
    private var welcomed = false
    /// What the history view knows of each conversation (by folded room or nick).
    private var backlogs: [String: Backlog] = [:]
    /// Lines to send once the current input is handled (history requests, read markers).
    private var outbox: [String] = []
    /// History requests beyond what the server takes at once (someone in 30 rooms), sent as the
    /// budget refills.
    private var historyQueue: [String] = []
    private var historyTokens = ClientApp.historyBurst

    /// One room or private conversation, for the backlog and the read marker.
    struct Backlog {
        enum Request { case join, earlier, missed, markerForMissed }
        var name: String
        /// Server times (RFC 3339) of the oldest and newest messages shown, and the oldest's id
        /// (two messages can share a millisecond: /history asks for what is before the id).
        var oldest: String?
        var oldestMsgid: String?
        var newest: String?
        /// Where the account has read up to (the server's read marker), and whether the server said.
        var marker: String?
        var markerKnown = false
        /// The read marker as last sent or heard.
        var marked: String?
        /// The history request waiting for its answer: one at a time.
        var waiting: Request?
        /// The latest message of a private conversation (CHATHISTORY TARGETS).
        var latest: String?
        /// The newest message shown when the backlog was asked for: after a reconnect, what
        /// was shown already is not shown again.
        var shownUpTo: String?
    }

    /// Messages fetched with a room on joining.
    static let backlogOnJoin = 50
    /// Private conversations whose missed messages are fetched after logging in.
    static let missedConversations = 8
    /// Seconds between read-marker updates, so reading does not eat the flood budget.
    static let markInterval = 3.0
    /// History requests sent at once, and how many more each `markInterval`: under SecureChat's
    /// per-client budget (20 at once, then 4 a second).
    static let historyBurst = 16.0
    static let historyPerTick = 9.0

    init(options: ChatClientOptions, mode: Mode, reconnect: Bool, firstRoom: String?) {
        self.options = options
        self.mode = mode
        self.reconnect = reconnect
        self.firstRoom = firstRoom
        self.formatter = EventFormatter(style: mode == .script ? .script : .terminal, nick: options.account)
        switch mode {
        case .fullScreen: display = FullScreenDisplay(nick: options.account)
        case .line: display = LineDisplay()
        case .script: display = ScriptDisplay()
        }
    }

    var interactive: Bool { mode != .script }

    /// Runs until the person quits or the connection is lost for good; returns the exit status.
    /// A wrong password at the first connection is thrown, so the caller can ask again.
    func run() async throws -> Int32 {
        let connection = try await ChatConnection.connect(options)
        display.start()
        defer { display.stop() }
        attach(connection)
        display.setConnection("connected")
        if interactive {
            status("connected to \(options.host):\(options.port) as \(connection.nick) (\(connection.tls.version), \(connection.tls.cipherSuite)) — /help lists the commands")
        }
        if let firstRoom {
            // The room is current at once, so lines typed or piped before the JOIN comes back go there.
            rooms = [firstRoom]
            display.setCurrent(firstRoom)
            try? await connection.send("JOIN \(firstRoom)")
        }
        updateCompletions()
        startInputThread()
        startMarkTicks()
        await sendOutbox()
        for await input in inputs {
            switch input {
            case let .event(event):
                handle(event)
            case .markTick:
                markRead()
                historyTokens = min(Self.historyBurst, historyTokens + Self.historyPerTick)
                sendQueuedHistory()
            case let .command(command):
                if let status = await perform(command) { return status }
            case .emptyLine:
                if let paste = pendingPaste { sendPaste(paste.lines, to: paste.target) }
            case let .paste(lines):
                await pasted(lines)
            case let .pasteSent(n):
                if let paste = pendingPaste, n < paste.lines.count {
                    display.setNotice("sending \(n) of \(paste.lines.count) pasted lines")
                } else {
                    pendingPaste = nil
                    pasteTask = nil
                    display.setNotice(nil)
                }
            case .quitKey, .endOfInput:
                markRead()
                await sendOutbox()
                await self.connection?.quit(reason: "Leaving")
                return 0
            case let .disconnected(g) where g == generation:
                if let status = await reconnectOrStop() { return status }
            case .disconnected:
                break
            }
            await sendOutbox()
        }
        return 0
    }

    private func attach(_ connection: ChatConnection) {
        self.connection = connection
        formatter = EventFormatter(style: mode == .script ? .script : .terminal, nick: connection.nick)
        // Requests made on the old connection will not be answered; the new one has a fresh budget.
        for key in backlogs.keys { backlogs[key]!.waiting = nil }
        historyQueue = []
        historyTokens = Self.historyBurst
        if connection.fetchesHistory && connection.capabilities.contains("draft/read-marker") {
            // Private messages that came while away: which conversations have news (then
            // their read markers, then what is newer).
            let now = Date()
            requestHistory("CHATHISTORY TARGETS timestamp=\(ServerTime.string(now.addingTimeInterval(-30 * 86400))) timestamp=\(ServerTime.string(now.addingTimeInterval(60))) 50")
        }
        generation += 1
        let g = generation
        let sink = self.sink
        Task {
            for await event in connection.events { sink.yield(.event(event)) }
            sink.yield(.disconnected(generation: g))
        }
    }

    /// A line from the client itself, with the time like every other line.
    private func status(_ text: String, in window: String? = nil) {
        display.show(formatterStatus(text), in: window, counts: false, mention: false)
    }

    private var nick: String { connection?.nick ?? options.account }

    private func isMe(_ other: String) -> Bool { other.lowercased() == nick.lowercased() }

    private func updateCompletions() {
        let room = display.current.map { $0.lowercased() }
        let nicks = room.flatMap { members[$0] }.map { Array($0).filter { !isMe($0) } } ?? []
        display.setCompletions(LineEditor.Completions(nicks: nicks, rooms: rooms, commands: InputCommand.names.map { "/" + $0 }))
    }

    /// Where an event goes, and whether it counts as unread or as a mention.
    private func handle(_ event: ChatEvent) {
        var window: String?
        var counts = false
        var mention = false
        switch event {
        case let .message(time, target, sender, text, _, msgid):
            if target.hasPrefix("#") {
                window = target
                counts = !isMe(sender)
                mention = counts && Self.mentions(text, nick: nick)
            } else {
                // A private conversation has the other person's name.
                window = isMe(sender) ? target : sender
                counts = !isMe(sender)
                mention = counts
            }
            if let window { seen(time, msgid: msgid, in: window) }
        case let .joined(_, room, who):
            window = room
            if isMe(who) {
                welcomed = true
                // A room joined again after a reconnect does not take the place of the current one.
                let isNew = !rooms.contains { $0.lowercased() == room.lowercased() }
                if isNew { rooms.append(room) }
                members[room.lowercased()] = [who]
                if isNew || display.current == nil { display.setCurrent(room) }
                requestBacklog(room, joinedAt: event)
            } else {
                members[room.lowercased(), default: []].insert(who)
            }
        case let .parted(_, room, who, _), let .kicked(_, room, who, _, _):
            window = room
            if isMe(who) {
                rooms.removeAll { $0.lowercased() == room.lowercased() }
                members[room.lowercased()] = nil
                display.closed(room)
                if let line = formatter.format(event) { display.show(line, in: mode == .fullScreen ? "" : nil, counts: false, mention: false) }
                if display.current?.lowercased() == room.lowercased() { display.setCurrent(rooms.last) }
                updateCompletions()
                return
            }
            members[room.lowercased()]?.remove(who)
        case let .quit(_, who, _):
            // Shown in each room they were in (the current window when unknown).
            let theirs = rooms.filter { members[$0.lowercased()]?.contains(who) == true }
            for room in theirs { members[room.lowercased()]?.remove(who) }
            if let line = formatter.format(event) {
                if theirs.isEmpty || mode != .fullScreen {
                    display.show(line, in: nil, counts: false, mention: false)
                } else {
                    for room in theirs { display.show(line, in: room, counts: false, mention: false) }
                }
            }
            updateCompletions()
            return
        case let .topic(_, room, _, _):
            window = room
        case let .members(room, nicks):
            window = room
            members[room.lowercased()] = Set(nicks.map { String($0.drop { "@+".contains($0) }) })
        case let .away(_, who, message):
            if isMe(who) { display.setAway(message != nil) }
        case let .closing(reason):
            lastServerReason = reason
        case .notice(let text):
            // The welcome burst (before the first room) goes to the server window; replies
            // after it to the window in front, where the person typed.
            if !welcomed { window = "" }
            if text.hasPrefix("You have been marked as being away") { display.setAway(true) }
            if text.hasPrefix("You are no longer marked as being away") { display.setAway(false) }
        case .rooms:
            break
        case let .history(target, events):
            received(events, in: target)
            return
        case let .historyFailed(target, _):
            backlogs[target.lowercased()]?.waiting = nil
            window = target.hasPrefix("#") ? target : nil
        case let .readMarker(target, time):
            heardMarker(time, in: target)
            return
        case let .conversations(list):
            missedConversations(list)
            return
        }
        updateCompletions()
        if let line = line(for: event, in: window) {
            display.show(line, in: window, counts: counts, mention: mention)
        }
    }

    /// The line for `event` in `window`.
    private func line(for event: ChatEvent, in window: String?) -> String? {
        guard var line = formatter.format(event) else { return nil }
        if mode == .fullScreen, let window, !window.isEmpty {
            // In a room's own window its name before each line says nothing.
            for place in [window, "@" + window] {
                if let range = line.range(of: "] \(place) "), line.distance(from: line.startIndex, to: range.lowerBound) <= 10 {
                    line.replaceSubrange(range, with: "] ")
                    break
                }
            }
        }
        return line
    }

    // MARK: History and the read marker

    /// Whether server time `a` is later than `b` (an unknown time is never later).
    private static func isLater(_ a: String?, than b: String?) -> Bool {
        guard let a, let dateA = EventFormatter.parse(a) else { return false }
        guard let b, let dateB = EventFormatter.parse(b) else { return true }
        return dateA > dateB
    }

    private func backlog(_ name: String) -> Backlog {
        backlogs[name.lowercased()] ?? Backlog(name: name)
    }

    /// A message at `time` was shown in `window`.
    private func seen(_ time: String, msgid: String?, in window: String) {
        guard !time.isEmpty else { return }
        var b = backlog(window)
        if b.oldest == nil || Self.isLater(b.oldest, than: time) { (b.oldest, b.oldestMsgid) = (time, msgid) }
        if Self.isLater(time, than: b.newest) { b.newest = time }
        backlogs[window.lowercased()] = b
    }

    /// On joining: what was said before the JOIN (what comes after it arrives live).
    private func requestBacklog(_ room: String, joinedAt event: ChatEvent) {
        guard connection?.fetchesHistory == true else { return }
        var b = backlog(room)
        guard b.waiting == nil else { return }
        guard case let .joined(time, _, _) = event else { return }
        b.waiting = .join
        b.markerKnown = false
        b.shownUpTo = b.newest
        backlogs[room.lowercased()] = b
        let before = time.isEmpty ? ServerTime.string(Date()) : time
        requestHistory("CHATHISTORY BEFORE \(room) timestamp=\(before) \(Self.backlogOnJoin)")
    }

    /// `/history N`: the N messages before the oldest one shown.
    private func earlier(in target: String, count: Int) {
        guard connection?.fetchesHistory == true else {
            status("this server keeps no history for clients to fetch (it does not offer draft/chathistory)")
            return
        }
        var b = backlog(target)
        guard b.waiting == nil else {
            status("still fetching earlier messages of \(target)")
            return
        }
        b.waiting = .earlier
        backlogs[target.lowercased()] = b
        if let id = b.oldestMsgid {
            requestHistory("CHATHISTORY BEFORE \(target) msgid=\(id) \(count)")
        } else if let oldest = b.oldest {
            requestHistory("CHATHISTORY BEFORE \(target) timestamp=\(oldest) \(count)")
        } else {
            requestHistory("CHATHISTORY LATEST \(target) * \(count)")
        }
    }

    /// The server's read marker for `target`: kept, and for a private conversation with news,
    /// what came after it is fetched.
    private func heardMarker(_ time: String?, in target: String) {
        var b = backlog(target)
        b.marker = time
        b.markerKnown = true
        if Self.isLater(time, than: b.marked) { b.marked = time }
        if b.waiting == .markerForMissed {
            if time == nil || Self.isLater(b.latest, than: time) {
                b.waiting = .missed
                requestHistory(time.map { "CHATHISTORY AFTER \(target) timestamp=\($0) \(Self.backlogOnJoin)" } ?? "CHATHISTORY LATEST \(target) * 20")
            } else {
                b.waiting = nil
            }
        }
        backlogs[target.lowercased()] = b
    }

    /// CHATHISTORY TARGETS after logging in: private conversations may hold missed messages.
    private func missedConversations(_ list: [Conversation]) {
        for conversation in list.filter({ !$0.name.hasPrefix("#") }).prefix(Self.missedConversations) {
            var b = backlog(conversation.name)
            guard b.waiting == nil, Self.isLater(conversation.latest, than: b.newest) else { continue }
            b.waiting = .markerForMissed
            b.latest = conversation.latest
            b.shownUpTo = b.newest
            backlogs[conversation.name.lowercased()] = b
            outbox.append("MARKREAD \(conversation.name)")
        }
    }

    /// A CHATHISTORY answer: the backlog of a room just joined (with the "new since you were
    /// last here" line where unread messages begin), earlier messages (/history), or private
    /// messages missed while away.
    private func received(_ events: [ChatEvent], in target: String) {
        var b = backlog(target)
        let request = b.waiting
        b.waiting = nil
        // After a reconnect, what was shown already is not shown again.
        let fresh = request == .earlier ? events : events.filter {
            guard case let .message(time, _, _, _, _, _) = $0 else { return false }
            return b.shownUpTo == nil || Self.isLater(time, than: b.shownUpTo)
        }
        let window = target
        var lines: [String] = []
        var markerShown = false
        var first: (time: String, msgid: String?)?
        for event in fresh {
            guard case let .message(time, _, sender, _, _, msgid) = event else { continue }
            if request != .earlier, !markerShown, b.markerKnown, b.marker != nil, !isMe(sender), Self.isLater(time, than: b.marker) {
                lines.append(mode == .script ? "- \(target) -!- new since you were last here" : "──── new since you were last here ────")
                markerShown = true
            }
            if let line = line(for: event, in: window) { lines.append(line) }
            if first == nil { first = (time, msgid) }
            if request != .earlier, Self.isLater(time, than: b.newest) { b.newest = time }
        }
        // Earlier messages are older than all shown (even those of the same millisecond).
        if let first, request == .earlier || b.oldest == nil || !Self.isLater(first.time, than: b.oldest) {
            (b.oldest, b.oldestMsgid) = first
        }
        backlogs[target.lowercased()] = b
        switch request {
        case .earlier?:
            if lines.isEmpty {
                status("no earlier messages in \(target)", in: window)
            } else if mode == .fullScreen {
                display.showEarlier([formatterStatus("\(lines.count) earlier messages:")] + lines, in: window)
            } else {
                status("\(lines.count) earlier messages in \(target):", in: window)
                display.showEarlier(lines, in: window)
                status("end of earlier messages in \(target)", in: window)
            }
        default:
            let unread = request == .missed
            for line in lines { display.show(line, in: window, counts: unread, mention: unread) }
        }
    }

    private func formatterStatus(_ text: String) -> String {
        mode == .script ? "-!- \(text)" : "\(formatter.time("")) -!- \(text)"
    }

    /// Moves the read marker to the newest message shown: of every conversation, or on the full
    /// screen of the window in front only (what is in the others has not been read yet).
    private func markRead() {
        guard connection?.capabilities.contains("draft/read-marker") == true else { return }
        let front = display.current?.lowercased()
        for (key, b) in backlogs where Self.isLater(b.newest, than: b.marked) {
            if mode == .fullScreen && key != front { continue }
            if b.name.hasPrefix("#") && !rooms.contains(where: { $0.lowercased() == key }) { continue }
            backlogs[key]!.marked = b.newest
            outbox.append("MARKREAD \(b.name) timestamp=\(b.newest!)")
        }
    }

    /// A CHATHISTORY request: sent now if the budget allows, else when it refills.
    private func requestHistory(_ line: String) {
        historyQueue.append(line)
        sendQueuedHistory()
    }

    private func sendQueuedHistory() {
        while historyTokens >= 1, !historyQueue.isEmpty {
            historyTokens -= 1
            outbox.append(historyQueue.removeFirst())
        }
    }

    private func sendOutbox() async {
        guard let connection, !outbox.isEmpty else { return }
        let lines = outbox
        outbox = []
        for line in lines { try? await connection.send(line) }
    }

    private func startMarkTicks() {
        let sink = self.sink
        Task {
            while true {
                try? await Task.sleep(nanoseconds: UInt64(Self.markInterval * 1e9))
                if case .terminated = sink.yield(.markTick) { return }
            }
        }
    }

    /// Whether `text` names `nick` as a word.
    static func mentions(_ text: String, nick: String) -> Bool {
        let lowered = Formatting.stripped(text).lowercased()
        let name = nick.lowercased()
        var searchFrom = lowered.startIndex
        while let range = lowered.range(of: name, range: searchFrom..<lowered.endIndex) {
            let before = range.lowerBound == lowered.startIndex ? nil : lowered[lowered.index(before: range.lowerBound)]
            let after = range.upperBound == lowered.endIndex ? nil : lowered[range.upperBound]
            func isWordCharacter(_ c: Character?) -> Bool { c.map { $0.isLetter || $0.isNumber || "_-[]\\`^{}|".contains($0) } ?? false }
            if !isWordCharacter(before) && !isWordCharacter(after) { return true }
            searchFrom = range.upperBound
        }
        return false
    }

    /// Carries out a typed command; returns an exit status when the client should stop.
    private func perform(_ command: InputCommand) async -> Int32? {
        guard let connection else { return nil }
        welcomed = true
        if pendingPaste != nil && pasteTask == nil {
            // Anything but Enter drops a paste that was waiting for a yes.
            pendingPaste = nil
            display.setNotice(nil)
            status("paste dropped")
        }
        func send(_ line: String) async { try? await connection.send(line) }
        func needTarget() -> String? {
            let target = display.current
            if target == nil { status("you are not in a room: /join ROOM first (/rooms lists them)") }
            return target
        }
        switch command {
        case let .say(text):
            guard let target = needTarget() else { return nil }
            await say(text, to: target)
        case .help:
            display.show(InputCommand.helpText(fullScreen: mode == .fullScreen), in: nil, counts: false, mention: false)
        case let .join(room):
            await send("JOIN \(room)")
        case let .part(room):
            guard let room = room ?? needTarget() else { return nil }
            if !room.hasPrefix("#") {
                display.closed(room)  // a private conversation's window
                return nil
            }
            await send("PART \(room)")
        case .rooms:
            await send("LIST")
        case .who:
            guard let room = needTarget() else { return nil }
            await send("NAMES \(room)")
        case let .msg(nick, text):
            await say(text, to: nick)
        case let .me(action):
            guard let target = needTarget() else { return nil }
            await send("PRIVMSG \(target) :\u{1}ACTION \(action)\u{1}")
        case let .topic(text):
            guard let room = needTarget() else { return nil }
            await send(text.map { "TOPIC \(room) :\($0)" } ?? "TOPIC \(room)")
        case let .switchTo(room):
            if let joined = rooms.first(where: { $0.lowercased() == room.lowercased() }) {
                display.setCurrent(joined)
                if mode != .fullScreen { status("now talking in \(joined)") }
                updateCompletions()
            } else {
                status("you are not in \(room): /join \(room) first")
            }
        case let .away(text):
            await send(text.map { "AWAY :\($0)" } ?? "AWAY")
        case let .quit(reason):
            markRead()
            await sendOutbox()
            await connection.quit(reason: reason ?? "Leaving")
            return 0
        case let .history(count):
            guard let target = needTarget() else { return nil }
            earlier(in: target, count: count ?? InputCommand.defaultHistory)
        case let .invalid(hint):
            status(hint)
        }
        return nil
    }

    /// A message, split into as many as the server's line limit needs (as irssi does).
    private func say(_ text: String, to target: String) async {
        guard let connection else { return }
        let limit = MessageSplitter.room(nick: nick, target: target)
        for piece in MessageSplitter.split(text, limit: limit) {
            try? await connection.send("PRIVMSG \(target) :\(piece)")
        }
    }

    /// A paste of several lines: on a terminal it waits for Enter; lines are then sent at a pace
    /// below the server's flood limit, so what is typed meanwhile is not queued behind them.
    private func pasted(_ lines: [String]) async {
        guard let target = display.current else {
            status("you are not in a room: the \(lines.count) pasted lines were not sent")
            return
        }
        if lines.count > 1 && mode != .script {
            pendingPaste = (lines, target)
            display.setNotice("paste of \(lines.count) lines to \(target): Enter sends, anything else drops it")
            return
        }
        for line in lines { await say(line, to: target) }
    }

    private func sendPaste(_ lines: [String], to target: String) {
        guard let connection, pasteTask == nil else { return }
        display.setNotice("sending 0 of \(lines.count) pasted lines")
        let sink = self.sink
        let nick = self.nick
        pasteTask = Task {
            for (i, line) in lines.enumerated() {
                // The server allows a burst, then a few lines a second: stay under it.
                if i >= 8 { try? await Task.sleep(nanoseconds: 400_000_000) }
                let limit = MessageSplitter.room(nick: nick, target: target)
                for piece in MessageSplitter.split(line.isEmpty ? " " : line, limit: limit) {
                    try? await connection.send("PRIVMSG \(target) :\(piece)")
                }
                sink.yield(.pasteSent(i + 1))
            }
        }
    }

    /// After the connection dropped: reconnect (with --reconnect, or when asked on a terminal),
    /// rejoining the rooms, the current one staying current; or stop with status 8.
    private func reconnectOrStop() async -> Int32? {
        let reason = lastServerReason ?? "the connection was lost"
        status("disconnected: \(reason)")
        display.setConnection("disconnected")
        let wanted = rooms
        var delay = 1.0
        var lastFailure: String?
        var attempts = 0
        // Signed in again elsewhere (the server ends the older session with this reason): going
        // back on our own would end that one, and two clients with --reconnect would take turns
        // for ever. Only a person's Enter takes the session back.
        let replaced = reason.contains("logged in from another connection")
        if replaced { status("not reconnecting: this account signed in from another connection") }
        while true {
            if !reconnect || replaced {
                guard interactive else { return 8 }
                status(replaced ? "press Enter to sign in here again (the other connection will be closed), or Ctrl-D to quit"
                                : "press Enter to reconnect, or Ctrl-D to quit")
                if !(await waitForEnterOrQuit()) { return 8 }
            } else {
                status("reconnecting in \(Int(delay)) s")
                display.setConnection("reconnecting in \(Int(delay)) s")
                try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                delay = min(delay * 2, 30)
            }
            attempts += 1
            do {
                let connection = try await ChatConnection.connect(options)
                lastServerReason = nil
                attach(connection)
                display.setConnection("connected")
                status("reconnected as \(connection.nick)")
                for room in wanted { try? await connection.send("JOIN \(room)") }
                return nil
            } catch {
                // The full explanation once; after that, only that it failed again.
                let text = "\(error)"
                if text == lastFailure {
                    status("reconnect failed again (attempt \(attempts))")
                } else {
                    status("reconnect failed: \(text)")
                }
                lastFailure = text
                if case ChatClientError.wrongPassword = error { return 5 }
            }
        }
    }

    private func waitForEnterOrQuit() async -> Bool {
        for await input in inputs {
            switch input {
            case .emptyLine, .command: return true
            case .quitKey, .endOfInput: return false
            default: continue
            }
        }
        return false
    }

    private func startInputThread() {
        let sink = self.sink
        let interactive = self.interactive
        let display = self.display
        let thread = Thread {
            if interactive {
                var byte: UInt8 = 0
                while read(0, &byte, 1) == 1 {
                    switch display.key(byte) {
                    case let .submit(line):
                        sink.yield(InputCommand.parse(line).map { .command($0) } ?? .emptyLine)
                    case let .paste(lines):
                        sink.yield(.paste(lines))
                    case .quit:
                        sink.yield(.quitKey)
                        return
                    default:
                        break
                    }
                }
                sink.yield(.endOfInput)
            } else {
                while let line = readLine(strippingNewline: true) {
                    sink.yield(InputCommand.parse(line).map { .command($0) } ?? .emptyLine)
                }
                sink.yield(.endOfInput)
            }
        }
        thread.start()
    }
}

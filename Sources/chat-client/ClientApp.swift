import ChatSupport
import ChatClient
import Foundation

/// The client's main loop: what the person types, what the server says, and reconnecting.
final class ClientApp: @unchecked Sendable {
    enum Input {
        case command(InputCommand)
        case emptyLine
        case quitKey
        case endOfInput
        case event(ChatEvent)
        case disconnected(generation: Int)
    }

    let options: ChatClientOptions
    let interactive: Bool
    let reconnect: Bool
    let firstRoom: String?
    let terminal = Terminal()
    private let (inputs, sink) = AsyncStream<Input>.makeStream()
    private var connection: ChatConnection?
    private var generation = 0
    private var rooms: [String] = []
    private var current: String?
    private var lastServerReason: String?
    private var formatter: EventFormatter

    init(options: ChatClientOptions, interactive: Bool, reconnect: Bool, firstRoom: String?) {
        self.options = options
        self.interactive = interactive
        self.reconnect = reconnect
        self.firstRoom = firstRoom
        self.formatter = EventFormatter(style: interactive ? .terminal : .script, nick: options.account)
    }

    /// Runs until the person quits or the connection is lost for good; returns the exit status.
    func run() async throws -> Int32 {
        let connection = try await ChatConnection.connect(options)
        if interactive { terminal.enterRawMode() }
        defer { if interactive { terminal.restore() } }
        attach(connection)
        if interactive {
            show("connected to \(options.host):\(options.port) as \(connection.nick) (\(connection.tls.version), \(connection.tls.cipherSuite)) — /help lists the commands")
        }
        if let firstRoom {
            // The room is current at once, so lines typed or piped before the JOIN comes back go there.
            rooms = [firstRoom]
            current = firstRoom
            try? await connection.send("JOIN \(firstRoom)")
        }
        startInputThread()
        updatePrompt()
        for await input in inputs {
            switch input {
            case let .event(event):
                track(event)
                if let line = formatter.format(event) { show(line) }
            case let .command(command):
                if let status = await perform(command) { return status }
            case .emptyLine:
                break
            case .quitKey, .endOfInput:
                await self.connection?.quit(reason: "Leaving")
                return 0
            case let .disconnected(g) where g == generation:
                if let status = await reconnectOrStop() { return status }
            case .disconnected:
                break
            }
        }
        return 0
    }

    private func attach(_ connection: ChatConnection) {
        self.connection = connection
        formatter = EventFormatter(style: interactive ? .terminal : .script, nick: connection.nick)
        generation += 1
        let g = generation
        let sink = self.sink
        Task {
            for await event in connection.events { sink.yield(.event(event)) }
            sink.yield(.disconnected(generation: g))
        }
    }

    private func show(_ line: String) {
        if interactive {
            terminal.show(line)
        } else {
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }

    private func updatePrompt() {
        guard interactive else { return }
        terminal.setPrompt("[\(current ?? "no room")] ")
    }

    private func isMe(_ nick: String) -> Bool {
        nick.lowercased() == (connection?.nick ?? options.account).lowercased()
    }

    private func track(_ event: ChatEvent) {
        switch event {
        case let .joined(_, room, nick) where isMe(nick):
            if !rooms.contains(where: { $0.lowercased() == room.lowercased() }) { rooms.append(room) }
            current = room
            updatePrompt()
        case let .parted(_, room, nick, _) where isMe(nick), let .kicked(_, room, nick, _, _) where isMe(nick):
            rooms.removeAll { $0.lowercased() == room.lowercased() }
            if current?.lowercased() == room.lowercased() { current = rooms.last }
            updatePrompt()
        case let .closing(reason):
            lastServerReason = reason
        default:
            break
        }
    }

    /// Carries out a typed command; returns an exit status when the client should stop.
    private func perform(_ command: InputCommand) async -> Int32? {
        guard let connection else { return nil }
        func send(_ line: String) async { try? await connection.send(line) }
        func needRoom() -> String? {
            if current == nil { show("-!- you are not in a room: /join ROOM first (/rooms lists them)") }
            return current
        }
        switch command {
        case let .say(text):
            guard let room = needRoom() else { return nil }
            await send("PRIVMSG \(room) :\(text)")
        case .help:
            show(InputCommand.helpText)
        case let .join(room):
            await send("JOIN \(room)")
        case let .part(room):
            guard let room = room ?? needRoom() else { return nil }
            await send("PART \(room)")
        case .rooms:
            await send("LIST")
        case .who:
            guard let room = needRoom() else { return nil }
            await send("NAMES \(room)")
        case let .msg(nick, text):
            await send("PRIVMSG \(nick) :\(text)")
        case let .me(action):
            guard let room = needRoom() else { return nil }
            await send("PRIVMSG \(room) :\u{1}ACTION \(action)\u{1}")
        case let .topic(text):
            guard let room = needRoom() else { return nil }
            await send(text.map { "TOPIC \(room) :\($0)" } ?? "TOPIC \(room)")
        case let .switchTo(room):
            if let joined = rooms.first(where: { $0.lowercased() == room.lowercased() }) {
                current = joined
                updatePrompt()
                show("-!- now talking in \(joined)")
            } else {
                show("-!- you are not in \(room): /join \(room) first")
            }
        case let .away(text):
            await send(text.map { "AWAY :\($0)" } ?? "AWAY")
        case let .quit(reason):
            await connection.quit(reason: reason ?? "Leaving")
            return 0
        case let .invalid(hint):
            show("-!- \(hint)")
        }
        return nil
    }

    /// After the connection dropped: reconnect (with --reconnect, or when asked on a terminal),
    /// rejoining the rooms; or stop with status 8.
    private func reconnectOrStop() async -> Int32? {
        let reason = lastServerReason ?? "the connection was lost"
        show("-!- disconnected: \(reason)")
        let wanted = rooms
        var delay = 1.0
        while true {
            if !reconnect {
                guard interactive else { return 8 }
                show("-!- press Enter to reconnect, or Ctrl-D to quit")
                if !(await waitForEnterOrQuit()) { return 8 }
            } else {
                show("-!- reconnecting in \(Int(delay)) s")
                try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                delay = min(delay * 2, 30)
            }
            do {
                let connection = try await ChatConnection.connect(options)
                lastServerReason = nil
                rooms = []
                current = nil
                attach(connection)
                show("-!- reconnected as \(connection.nick)")
                for room in wanted { try? await connection.send("JOIN \(room)") }
                return nil
            } catch {
                show("-!- reconnect failed: \(error)")
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
        let terminal = self.terminal
        let thread = Thread {
            if interactive {
                var byte: UInt8 = 0
                while read(0, &byte, 1) == 1 {
                    switch terminal.key(byte) {
                    case let .submit(line):
                        sink.yield(InputCommand.parse(line).map { .command($0) } ?? .emptyLine)
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

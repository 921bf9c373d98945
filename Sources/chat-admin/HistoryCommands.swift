import ArgumentParser
import ChatAuth
import ChatHistory
import Foundation

struct History: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The history database: delete old messages of a room, or export them.",
        discussion: """
        The database is the config's "history.database", else history.sqlite next to the users \
        file, or --database; in a cluster (a "cluster" block in the config), PostgreSQL. It may \
        be used while the server runs.
        """,
        subcommands: [HistoryPurge.self, HistoryExport.self])
}

/// Options the history commands share.
struct HistoryLocation: ParsableArguments {
    @OptionGroup var database: RoomDatabase
    @Option(help: "The room (# optional).") var room: String

    func open() throws -> (any HistoryAdministration, String) {
        (try database.open(), RoomDatabase.key(room))
    }
}

struct HistoryPurge: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "purge", abstract: "Delete a room's messages older than a date.")
    @OptionGroup var where_: HistoryLocation
    @Option(help: "Delete what was said before this UTC date or time (2026-12-01 or 2026-12-01T12:00:00Z).") var before: String

    func run() throws {
        try reporting {
            let iso = before.count == 10 ? before + "T00:00:00Z" : before
            guard let seconds = Timestamp.parse(iso) else {
                throw AdminError("--before '\(before)' is not a date: use 2026-12-01 or 2026-12-01T12:00:00Z (UTC)")
            }
            let (store, room) = try where_.open()
            defer { store.close() }
            let deleted = try store.delete(target: room, before: Int64(seconds) * 1000)
            print("deleted \(deleted) messages of \(room) from before \(iso)")
        }
    }
}

struct HistoryExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Print a room's messages as JSON lines, oldest first.",
        discussion: "Each line: {\"time\": RFC 3339, \"msgid\", \"account\", \"kind\", \"line\": the IRC line as relayed}.")
    @OptionGroup var where_: HistoryLocation

    func run() throws {
        try reporting {
            let (store, room) = try where_.open()
            defer { store.close() }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            struct Line: Encodable { let time: String; let msgid: String; let account: String; let kind: String; let line: String }
            var count = 0
            try store.all(target: room) { m in
                let date = Date(timeIntervalSince1970: Double(m.time) / 1000)
                let time = String(Timestamp.string(date).dropLast()) + String(format: ".%03dZ", Int(m.time % 1000))
                let data = try encoder.encode(Line(time: time, msgid: m.msgid, account: m.sender, kind: m.kind, line: m.line))
                FileHandle.standardOutput.write(data + Data([0x0a]))
                count += 1
            }
            FileHandle.standardError.write(Data("chat-admin: exported \(count) messages of \(room)\n".utf8))
        }
    }
}

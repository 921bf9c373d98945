import ArgumentParser
import ChatAuth
import Foundation

struct Role: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show or set an account's role: operator or user.",
        discussion: """
        An account with the operator role becomes a server operator in a session by typing \
        OPER <account> <password> (its own password); it is never an operator without that. \
        Removing the role takes operator status from its live session within a second.
        """)

    @OptionGroup var location: Location
    @Argument(help: "The account.") var name: String
    @Argument(help: "operator or user; omit it to show the role.") var role: String?

    func run() throws {
        try reporting {
            let (store, _) = try location.store()
            guard let role else {
                guard let account = try store.load().account(named: name) else { throw UsersFileError.noSuchAccount(name) }
                print("\(account.name): \(account.isOperator ? "operator" : "user")")
                return
            }
            let makeOperator: Bool
            switch role.lowercased() {
            case "operator", "oper": makeOperator = true
            case "user", "none": makeOperator = false
            default: throw AdminError("unknown role '\(role)': use operator or user")
            }
            let now = Timestamp.string(Date())
            let changed: String = try store.update { database in
                var found = ""
                try database.modify(name) { account in
                    account.isOperator = makeOperator
                    account.updated = now
                    found = account.name
                }
                return found
            }
            print(makeOperator
                ? "'\(changed)' has the operator role: in a session, OPER \(changed) <password> makes it a server operator"
                : "'\(changed)' is a user: a live operator session loses operator status within a second")
        }
    }
}

struct Ban: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Server bans (IRC's K-lines): an account or an address range, for a time or for good.",
        discussion: """
        Bans are kept in the users file, so they survive restarts; a running server applies a new \
        one within a second, ending the sessions it covers. Operators do the same in IRC with \
        KLINE, UNKLINE and STATS k.
        """,
        subcommands: [BanAdd.self, BanList.self, BanRemove.self])
}

struct BanAdd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Ban an account or an address range from the server.")

    @OptionGroup var location: Location
    @Argument(help: "An account (alice), an address (192.0.2.7, 2001:db8::1) or a range (192.0.2.0/24, 2001:db8::/32).")
    var target: String
    @Option(name: .customLong("for"), help: "How long: 30m, 12h, 7d, 2w; without it the ban has no end.")
    var duration: String?
    @Option(help: "Why: shown to the banned user and in the log.")
    var reason: String = "Banned by the server's administrator"

    func run() throws {
        try reporting {
            let parsed = try ServerBan.Target(parsing: target)
            guard !reason.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }), reason.utf8.count <= 300 else {
                throw AdminError("--reason must be one line of at most 300 bytes, without control characters")
            }
            var seconds: TimeInterval?
            if let duration {
                guard let value = ServerBan.parseDuration(duration) else { throw ServerBanError.invalidDuration(duration) }
                seconds = value
            }
            let (store, _) = try location.store()
            let now = Date()
            let ban = ServerBan(target: parsed, reason: reason, setBy: "chat-admin (\(Self.systemUser))", created: now,
                                expires: seconds.map { now.addingTimeInterval($0) })
            let replaced = try store.update { database in database.addBan(ban, at: now) }
            print("\(replaced == nil ? "banned" : "replaced the ban on") \(parsed) \(ban.expires.map { "until \($0)" } ?? "without end"): \(reason)")
            if case let .account(name) = parsed, try store.load().account(named: name) == nil {
                print("note: there is no account '\(name)' yet; the ban applies if one is created")
            }
        }
    }

    static var systemUser: String {
        if let name = ProcessInfo.processInfo.environment["SUDO_USER"] ?? ProcessInfo.processInfo.environment["USER"], !name.isEmpty { return name }
        return "uid \(getuid())"
    }
}

struct BanList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the server bans in force.")

    @OptionGroup var location: Location

    func run() throws {
        try reporting {
            let (store, _) = try location.store()
            let now = Date()
            let bans = try store.load().bans.filter { $0.isActive(at: now) }
            if bans.isEmpty {
                print("no server bans in \(store.location)")
                return
            }
            let width = max(6, bans.map(\.target.description.count).max() ?? 6)
            func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
            print("\(pad("TARGET", width))  \(pad("UNTIL", 20))  \(pad("SET BY", 16))  REASON")
            for ban in bans {
                print("\(pad(ban.target.description, width))  \(pad(ban.expires ?? "no end", 20))  \(pad(ban.setBy, 16))  \(ban.reason)")
            }
        }
    }
}

struct BanRemove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Lift a server ban.")

    @OptionGroup var location: Location
    @Argument(help: "The account or range, as 'ban list' shows it.") var target: String

    func run() throws {
        try reporting {
            let parsed = try ServerBan.Target(parsing: target)
            let (store, _) = try location.store()
            let removed = try store.update { database in try database.removeBan(parsed, at: Date()) }
            print("lifted the ban on \(removed.target) (set by \(removed.setBy): \(removed.reason))")
        }
    }
}

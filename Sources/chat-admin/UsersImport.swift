import ArgumentParser
import ChatAuth
import Foundation

struct Users: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users",
        abstract: "Move accounts between stores.",
        subcommands: [UsersImport.self])
}

/// Moves a users file into the configured store: the cluster's PostgreSQL when the config has a
/// "cluster" block. The hashes move as they are: nobody has to choose a new password.
struct UsersImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Copy every account and ban of a users file (JSON) into the configured store, all or nothing.",
        discussion: """
        For moving a single server to a cluster: with the cluster's config, \
        'chat-admin users import /var/lib/securechat/users.json' copies the accounts (password \
        hashes, roles, locks, client certificates) and the server bans into PostgreSQL. An account \
        that already exists there stops the import and nothing is written. The file is only read.
        """)

    @OptionGroup var location: Location
    @Argument(help: "The users file to read.") var file: String

    func run() throws {
        try reporting {
            let source = try UsersStore(path: file).load()
            let (store, _) = try location.store()
            if let usersFile = (store as? UsersStore)?.path, URL(fileURLWithPath: usersFile).standardized == URL(fileURLWithPath: file).standardized {
                throw AdminError("\(file) is the configured users file itself — give the config with the \"cluster\" block (--config)")
            }
            let moved = try store.update { database in
                for account in source.accounts {
                    if let existing = database.account(named: account.name) {
                        throw AdminError("account '\(existing.name)' already exists in \(store.location); nothing was imported")
                    }
                    try database.add(account)
                }
                for ban in source.bans { _ = database.addBan(ban, at: Date()) }
                return (source.accounts.count, source.bans.count)
            }
            print("imported \(moved.0) accounts and \(moved.1) bans from \(file) into \(store.location)")
        }
    }
}

import ArgumentParser
import ChatAuth
import ChatCluster
import Foundation
import TLS

@main
struct ChatAdmin: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-admin",
        abstract: "Manage SecureChat accounts, operator roles, server bans and development certificates.",
        discussion: """
        Accounts live in the users file named by the server's config (default Config/server.json, \
        key "usersFile"), or in --users-file. Changes are locked and atomic, so chat-admin may run \
        while the server does; the server picks them up at the next login. Passwords are read from \
        a no-echo prompt, or one line on standard input with --password-stdin; never from arguments.
        """,
        subcommands: [AddUser.self, Passwd.self, DelUser.self, List.self, Lock.self, Unlock.self, Verify.self, Role.self, Ban.self, History.self, RoomAdmin.self, Import.self, Users.self, ClientCertificates.self, Certs.self]
    )
}

/// Options every account command shares.
struct Location: ParsableArguments {
    @Option(help: "The server's config file; its \"usersFile\" (or \"cluster\" database) and \"passwordHashing\" are used.")
    var config: String = "Config/server.json"

    @Option(help: "The users file to change (overrides the config's).")
    var usersFile: String?

    func settings() throws -> AdminSettings {
        try AdminSettings.resolve(config: config, usersFile: usersFile)
    }

    /// The users file, or the cluster's PostgreSQL when the config has a "cluster" block (and no
    /// --users-file was given).
    func store() throws -> (any AccountStore, AdminSettings) {
        let settings = try settings()
        if usersFile == nil, let cluster = settings.cluster {
            return (PostgresAccountStore(settings: cluster.postgres), settings)
        }
        return (UsersStore(path: settings.usersFile), settings)
    }
}

/// Runs `body`, turning any error into one line on standard error and exit status 1.
func reporting(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("chat-admin: error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

func checkName(_ name: String) throws {
    if let problem = AccountName.problem(name) { throw AdminError("invalid account name: \(problem)") }
}

struct AddUser: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "adduser", abstract: "Create an account; asks for its password twice.")

    @OptionGroup var location: Location
    @Argument(help: "Account name: letters, digits and -_[]\\`^{}|, starting with a letter, at most 32.")
    var name: String
    @Flag(help: "Read the password from one line of standard input (for scripts).")
    var passwordStdin = false

    func run() throws {
        try reporting {
            try checkName(name)
            let (store, settings) = try location.store()
            if let existing = try store.load().account(named: name) {
                throw UsersFileError.accountExists(existing.name)
            }
            let password = try PasswordInput.newPassword(for: name, fromStdin: passwordStdin)
            let hash = try PasswordHash.make(password: password, parameters: settings.hashing)
            let now = Timestamp.string(Date())
            try store.update { database in
                try database.add(Account(name: name, hash: hash.phc, created: now, updated: now))
            }
            print("added account '\(name)' to \(store.location)")
        }
    }
}

struct Passwd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "passwd", abstract: "Set a new password for an account.")

    @OptionGroup var location: Location
    @Argument(help: "The account.") var name: String
    @Flag(help: "Read the password from one line of standard input.") var passwordStdin = false

    func run() throws {
        try reporting {
            let (store, settings) = try location.store()
            guard let account = try store.load().account(named: name) else { throw UsersFileError.noSuchAccount(name) }
            let password = try PasswordInput.newPassword(for: account.name, fromStdin: passwordStdin)
            let hash = try PasswordHash.make(password: password, parameters: settings.hashing)
            let now = Timestamp.string(Date())
            try store.update { database in
                try database.modify(name) { account in
                    account.hash = hash.phc
                    account.updated = now
                }
            }
            print("changed the password of '\(account.name)'")
        }
    }
}

struct DelUser: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "deluser", abstract: "Delete an account (asks first on a terminal).")

    @OptionGroup var location: Location
    @Argument(help: "The account.") var name: String
    @Flag(name: .shortAndLong, help: "Do not ask for confirmation.") var yes = false

    func run() throws {
        try reporting {
            let (store, _) = try location.store()
            guard let account = try store.load().account(named: name) else { throw UsersFileError.noSuchAccount(name) }
            if !yes && isatty(0) == 1 {
                FileHandle.standardError.write(Data("Delete account '\(account.name)'? This cannot be undone. [y/N] ".utf8))
                guard let answer = readLine(), answer.lowercased().hasPrefix("y") else {
                    print("nothing deleted")
                    return
                }
            }
            try store.update { database in try database.remove(name) }
            print("deleted account '\(account.name)'")
        }
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List accounts: name, created, updated, locked, role (never hashes).")

    @OptionGroup var location: Location

    func run() throws {
        try reporting {
            let (store, _) = try location.store()
            let accounts = try store.load().accounts
            if accounts.isEmpty {
                print("no accounts in \(store.location) — add one with: chat-admin adduser NAME")
                return
            }
            let width = max(4, accounts.map(\.name.count).max() ?? 4)
            func pad(_ s: String) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
            print("\(pad("NAME"))  CREATED               UPDATED               LOCKED  ROLE")
            for account in accounts {
                print("\(pad(account.name))  \(account.created)  \(account.updated)  \(account.locked ? "yes   " : "no    ")  \(account.isOperator ? "operator" : "user")")
            }
        }
    }
}

/// lock and unlock share everything but the flag.
struct LockChange {
    static func set(_ locked: Bool, name: String, location: Location) throws {
        try reporting {
            let (store, _) = try location.store()
            let now = Timestamp.string(Date())
            let changed: String = try store.update { database in
                var found = ""
                try database.modify(name) { account in
                    account.locked = locked
                    account.updated = now
                    found = account.name
                }
                return found
            }
            print(locked ? "locked '\(changed)': a running server ends its sessions within a second, and it cannot log in until 'chat-admin unlock \(changed)'" : "unlocked '\(changed)'")
        }
    }
}

struct Lock: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Lock an account: its logins are refused, its data kept.")
    @OptionGroup var location: Location
    @Argument(help: "The account.") var name: String
    func run() throws { try LockChange.set(true, name: name, location: location) }
}

struct Unlock: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Unlock a locked account.")
    @OptionGroup var location: Location
    @Argument(help: "The account.") var name: String
    func run() throws { try LockChange.set(false, name: name, location: location) }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a password: exit status 0 if it is right, 1 if not.",
        discussion: "Reports a locked account, but checks its password all the same.")

    @OptionGroup var location: Location
    @Argument(help: "The account.") var name: String
    @Flag(help: "Read the password from one line of standard input.") var passwordStdin = false

    func run() throws {
        try reporting {
            let (store, _) = try location.store()
            guard let account = try store.load().account(named: name) else { throw UsersFileError.noSuchAccount(name) }
            let hash: PasswordHash
            do { hash = try PasswordHash(phc: account.hash) } catch {
                throw AdminError("account '\(account.name)' has a \(error) — reset it with 'chat-admin passwd \(account.name)'")
            }
            let password = try PasswordInput.existingPassword(for: account.name, fromStdin: passwordStdin)
            guard try hash.verify(password) else { throw AdminError("wrong password for '\(account.name)'") }
            print("password OK for '\(account.name)'\(account.locked ? " (the account is locked)" : "")")
        }
    }
}

struct Certs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Development certificates: a local CA and a server certificate.",
        subcommands: [CertsInit.self, CertsShow.self])
}

struct CertsInit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create the development CA (if missing) and a new server certificate.",
        discussion: "The certificate is for localhost, 127.0.0.1 and ::1 plus every --name. Keys are written with mode 0600. Clients trust ca.crt (chat-client --ca Certs/ca.crt).")

    @Option(name: .customLong("name"), help: "An extra DNS name or IP address for the certificate (repeatable).")
    var names: [String] = []
    @Option(help: "The folder for ca.crt, ca.key, server.crt and server.key.")
    var dir: String = "Certs"
    @Option(help: "Days the server certificate is valid (1 to 825).")
    var days: Int = 365

    func run() throws {
        try reporting {
            guard (1...825).contains(days) else { throw AdminError("--days must be from 1 to 825") }
            let certs = DevelopmentCertificates(directory: dir)
            let info = try certs.create(extraNames: names, validDays: days)
            print("created \(certs.certificatePath) and \(certs.keyPath) (CA: \(certs.caCertificatePath))")
            CertsShow.describe(info)
        }
    }
}

struct CertsShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show a PEM certificate file: subject, names, validity, SHA-256 fingerprint.")

    @Argument(help: "A PEM file with one or more certificates.") var file: String

    func run() throws {
        try reporting {
            let chain = try Certificate.load(pemFile: file)
            for (i, certificate) in chain.enumerated() {
                if chain.count > 1 { print("certificate \(i + 1) of \(chain.count):") }
                Self.describe(certificate.info)
            }
        }
    }

    static func describe(_ info: CertificateInfo) {
        let now = Int(Date().timeIntervalSince1970)
        let status = info.notAfter < now ? " (EXPIRED)" : info.notBefore > now ? " (NOT YET VALID)" : ""
        print("  subject:     \(info.subject)")
        print("  issuer:      \(info.issuer)")
        if !info.names.isEmpty { print("  names:       \(info.names.joined(separator: ", "))") }
        print("  valid:       \(CertificateInfo.formatDate(info.notBefore)) to \(CertificateInfo.formatDate(info.notAfter))\(status)")
        print("  SHA-256:     \(info.sha256Fingerprint)")
        if info.isCA { print("  CA:          yes") }
    }
}

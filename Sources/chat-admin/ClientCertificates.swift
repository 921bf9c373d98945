import ArgumentParser
import ChatAuth
import Foundation
import TLS

/// `chat-admin cert`: the client certificates an account logs in with (SASL EXTERNAL).
struct ClientCertificates: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cert",
        abstract: "Client certificates that log in to an account with SASL EXTERNAL (no password).",
        discussion: """
        A user makes a certificate (chat-client cert init, or any self-signed one) and gives you \
        its SHA-256 fingerprint or the certificate file (never the key). Logins with it cost no \
        password hashing. A certificate belongs to one account.
        """,
        subcommands: [Add.self, List.self, Remove.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a certificate (its SHA-256 fingerprint, or a PEM file) for an account.")
        @OptionGroup var location: Location
        @Argument(help: "The account.") var name: String
        @Argument(help: "The SHA-256 fingerprint (hex, colons allowed) or a PEM certificate file.") var certificate: String

        func run() throws {
            try ClientCertificates.edit(certificate, location) { database, fingerprint, now in
                if let owner = database.account(withCertificate: fingerprint) {
                    throw AdminError("that certificate is already registered for '\(owner.name)' — remove it there first (chat-admin cert remove \(owner.name) \(fingerprint))")
                }
                var found = ""
                try database.modify(name) { account in
                    account.certificates.append(fingerprint)
                    account.updated = now
                    found = account.name
                }
                return "'\(found)' can now log in with SASL EXTERNAL using the certificate \(fingerprint)"
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an account's certificates (or every account's).")
        @OptionGroup var location: Location
        @Argument(help: "The account (all accounts when left out).") var name: String?

        func run() throws {
            try reporting {
                let (store, _) = try location.store()
                let database = try store.load()
                let accounts: [Account]
                if let name {
                    guard let account = database.account(named: name) else { throw UsersFileError.noSuchAccount(name) }
                    accounts = [account]
                } else {
                    accounts = database.accounts.filter { !$0.certificates.isEmpty }
                }
                for account in accounts {
                    if account.certificates.isEmpty { print("\(account.name): no certificates") }
                    for fingerprint in account.certificates { print("\(account.name) \(fingerprint)") }
                }
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a certificate from an account.")
        @OptionGroup var location: Location
        @Argument(help: "The account.") var name: String
        @Argument(help: "The SHA-256 fingerprint or the PEM certificate file.") var certificate: String

        func run() throws {
            try ClientCertificates.edit(certificate, location) { database, fingerprint, now in
                guard let account = database.account(named: name) else { throw UsersFileError.noSuchAccount(name) }
                guard account.certificates.contains(fingerprint) else {
                    throw AdminError("'\(account.name)' has no certificate \(fingerprint) — 'chat-admin cert list \(account.name)' shows its certificates")
                }
                try database.modify(name) { account in
                    account.certificates.removeAll { $0 == fingerprint }
                    account.updated = now
                }
                return "removed the certificate \(fingerprint) from '\(account.name)'"
            }
        }
    }

    /// Changes the users file under its lock with the certificate's fingerprint and the time,
    /// then prints what `change` says it did.
    static func edit(_ certificate: String, _ location: Location,
                     _ change: @escaping (inout UsersDatabase, String, String) throws -> String) throws {
        try reporting {
            let fingerprint = try ClientCertificates.fingerprint(of: certificate)
            let (store, _) = try location.store()
            let now = Timestamp.string(Date())
            print(try store.update { try change(&$0, fingerprint, now) })
        }
    }

    /// A fingerprint as typed, or the fingerprint of the first certificate in a PEM file.
    static func fingerprint(of argument: String) throws -> String {
        if let fingerprint = ClientCertificate.normalizedFingerprint(argument) { return fingerprint }
        guard FileManager.default.fileExists(atPath: argument) else {
            throw AdminError("'\(argument)' is neither a SHA-256 fingerprint (64 hex digits, colons allowed) nor a certificate file")
        }
        guard let certificate = try Certificate.load(pemFile: argument).first else {
            throw AdminError("\(argument) holds no PEM certificate")
        }
        return ClientCertificate.normalizedFingerprint(certificate.info.sha256Fingerprint)!
    }
}

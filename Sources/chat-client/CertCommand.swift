import ArgumentParser
import ChatSupport
import Foundation
import TLS

/// `chat-client cert init`: a self-signed client certificate to log in with, no password.
struct CertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cert", abstract: "Your client certificate, to log in without a password (SASL EXTERNAL).",
        subcommands: [Initialize.self])

    struct Initialize: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Make a self-signed client certificate and key (the key mode 0600), and print its fingerprint.")

        @Option(help: "The folder for client.crt and client.key.") var dir = FileManager.default.homeDirectoryForCurrentUser.path + "/.config/securechat"
        @Option(help: "A name for the certificate (its CN), for example your account.") var name = "securechat-client"

        func run() throws {
            let certificatePath = dir + "/client.crt"
            let keyPath = dir + "/client.key"
            for path in [certificatePath, keyPath] where FileManager.default.fileExists(atPath: path) {
                FileHandle.standardError.write(Data("chat-client: \(path) already exists: refused, so that a registered certificate is never lost; remove it first or choose another --dir\n".utf8))
                throw ExitCode(2)
            }
            do {
                try SecretFile.makeDirectory(dir, mode: 0o700)
                let (certificate, key) = try ClientCertificate.makeSelfSigned(commonName: name)
                try SecretFile.writeAtomically(Array(key.pem().utf8), to: keyPath, mode: 0o600)
                try SecretFile.writeAtomically(Array(certificate.pem().utf8), to: certificatePath, mode: 0o644)
                let fingerprint = ClientCertificate.normalizedFingerprint(certificate.info.sha256Fingerprint)!
                print("""
                created \(certificatePath) and \(keyPath) (keep the key to yourself)
                SHA-256 fingerprint: \(fingerprint)
                next: the server's operator runs   chat-admin cert add ACCOUNT \(fingerprint)
                then: chat-client --user ACCOUNT --cert \(certificatePath) --key \(keyPath)
                """)
            } catch {
                FileHandle.standardError.write(Data("chat-client: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
    }
}

import ChatSupport
import ChatAuth
import Foundation

/// Reads passwords without putting them on the command line: a no-echo prompt on a terminal, or
/// one line from standard input with `--password-stdin`.
enum PasswordInput {
    /// A new password: asked twice on a terminal, checked against the rules.
    static func newPassword(for name: String, fromStdin: Bool) throws -> Password {
        let password: Password
        if fromStdin {
            password = try readStdinLine()
        } else {
            let first = try prompt("New password for \(name): ")
            let second = try prompt("Repeat the password: ")
            guard first.bytes == second.bytes else { throw AdminError("the two passwords differ; nothing was changed") }
            password = first
        }
        if let problem = password.problem {
            throw AdminError("\(problem); nothing was changed (passwords need at least \(Password.minimumCharacters) characters, at most \(Password.maximumBytes) bytes of UTF-8)")
        }
        return password
    }

    /// An existing password, asked once.
    static func existingPassword(for name: String, fromStdin: Bool) throws -> Password {
        fromStdin ? try readStdinLine() : try prompt("Password for \(name): ")
    }

    static func readStdinLine() throws -> Password {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while read(0, &byte, 1) == 1 {
            if byte == 0x0a { break }
            bytes.append(byte)
            if bytes.count > Password.maximumBytes + 2 { break }
        }
        if bytes.last == 0x0d { bytes.removeLast() }
        if bytes.isEmpty { throw AdminError("no password on standard input (expected one line)") }
        return Password(bytes: bytes)
    }

    static func prompt(_ text: String) throws -> Password {
        guard let password = Password.readFromTerminal(prompt: text) else {
            throw AdminError("standard input is not a terminal, so there is no one to ask for a password — pipe it in with --password-stdin")
        }
        return password
    }
}

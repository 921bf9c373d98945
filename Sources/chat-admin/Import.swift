import ChatSupport
import ArgumentParser
import ChatAuth
import Foundation

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create many accounts from a file, all or nothing.",
        discussion: """
        One account per line: NAME, or NAME,PASSWORD (the password is everything after the first \
        comma). Empty lines and lines starting with # are skipped. With --generate-passwords, lines \
        without a password get a strong random one, and NAME,PASSWORD is printed once for each, for \
        you to hand out. If any line is wrong, its line number is reported and nothing is written. \
        Hashing runs on all cores.
        """)

    @OptionGroup var location: Location
    @Argument(help: "The file to import ('-' for standard input).") var file: String
    @Flag(help: "Generate passwords for lines that have none and print NAME,PASSWORD.") var generatePasswords = false

    func run() throws {
        try reporting {
            let (store, settings) = try location.store()
            let text: String
            if file == "-" {
                text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            } else {
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw AdminError("cannot read \(file) — check the path")
                }
                guard let decoded = String(data: data, encoding: .utf8) else { throw AdminError("\(file) is not UTF-8 text") }
                text = decoded
            }
            let entries = try parse(text)
            let existing = try store.load()
            for entry in entries {
                if let account = existing.account(named: entry.name) {
                    throw AdminError("line \(entry.line): account '\(account.name)' already exists; nothing was imported")
                }
            }
            let parameters = settings.hashing
            // Hash on every core: each hash is independent.
            var hashes = [String?](repeating: nil, count: entries.count)
            let failure = FirstFailure()
            hashes.withUnsafeMutableBufferPointer { slots in
                let slots = SendableSlots(slots)
                DispatchQueue.concurrentPerform(iterations: entries.count) { i in
                    do {
                        let hash = try PasswordHash.make(password: entries[i].password, parameters: parameters)
                        slots.set(i, hash.phc)
                    } catch {
                        failure.record("\(error)")
                    }
                }
            }
            if let failure = failure.value { throw AdminError("hashing failed: \(failure); nothing was imported") }
            let now = Timestamp.string(Date())
            try store.update { database in
                for (i, entry) in entries.enumerated() {
                    do {
                        try database.add(Account(name: entry.name, hash: hashes[i]!, created: now, updated: now))
                    } catch {
                        throw AdminError("line \(entry.line): \(error); nothing was imported")
                    }
                }
            }
            for entry in entries where entry.generated {
                print("\(entry.name),\(String(decoding: entry.password.bytes, as: UTF8.self))")
            }
            FileHandle.standardError.write(Data("imported \(entries.count) accounts into \(store.location)\n".utf8))
        }
    }

    struct Entry {
        var line: Int
        var name: String
        var password: Password
        var generated: Bool
    }

    func parse(_ text: String) throws -> [Entry] {
        var entries: [Entry] = []
        var seen: [String: Int] = [:]
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = index + 1
            var content = Substring(raw)
            if content.hasSuffix("\r") { content = content.dropLast() }
            if content.trimmingCharacters(in: .whitespaces).isEmpty || content.hasPrefix("#") { continue }
            let name: String
            var password: Password?
            if let comma = content.firstIndex(of: ",") {
                name = content[..<comma].trimmingCharacters(in: .whitespaces)
                password = Password(String(content[content.index(after: comma)...]))
            } else {
                name = content.trimmingCharacters(in: .whitespaces)
            }
            if let problem = AccountName.problem(name) {
                throw AdminError("line \(line): \(problem); nothing was imported")
            }
            if let first = seen[AccountName.folded(name)] {
                throw AdminError("line \(line): '\(name)' repeats line \(first); nothing was imported")
            }
            seen[AccountName.folded(name)] = line
            var generated = false
            if password == nil {
                guard generatePasswords else {
                    throw AdminError("line \(line): no password for '\(name)' — write NAME,PASSWORD or use --generate-passwords; nothing was imported")
                }
                password = try Password.generate()
                generated = true
            }
            if let problem = password!.problem {
                throw AdminError("line \(line): \(problem); nothing was imported")
            }
            entries.append(Entry(line: line, name: name, password: password!, generated: generated))
        }
        if entries.isEmpty { throw AdminError("\(file) has no accounts to import") }
        return entries
    }
}

/// Lets concurrentPerform's workers fill distinct slots of one buffer.
// @unchecked Sendable: immutable (`let base`); no lock needed: each worker writes only its own slot,
// and the buffer is read after all finish.
struct SendableSlots: @unchecked Sendable {
    let base: UnsafeMutableBufferPointer<String?>
    init(_ base: UnsafeMutableBufferPointer<String?>) { self.base = base }
    func set(_ i: Int, _ value: String) { base[i] = value }
}

/// The first error reported by concurrent workers.
// @unchecked Sendable: its one var is read and written only under its lock.
final class FirstFailure: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: String?
    func record(_ message: String) { lock.lock(); if stored == nil { stored = message }; lock.unlock() }
    var value: String? { lock.lock(); defer { lock.unlock() }; return stored }
}

import ChatSupport
import ChatTesting
import Foundation
import Testing
@testable import ChatAuth

/// A fresh folder per test.
func temporaryFolder() -> String {
    let path = NSTemporaryDirectory() + "securechat-auth-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func fileBytes(_ path: String) -> [UInt8]? { FileManager.default.contents(atPath: path).map(Array.init) }

func mode(_ path: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1 }

let fastHash = try! PasswordHash.make(password: Password("password1"), parameters: ScryptParameters(ln: 4, r: 8, p: 1)).phc

func account(_ name: String, locked: Bool = false, hash: String = fastHash) -> Account {
    Account(name: name, hash: hash, created: "2026-11-30T00:00:00Z", updated: "2026-11-30T00:00:00Z", locked: locked)
}

@Suite struct UsersStoreTests {
    @Test func createsTheFile0600AndRoundTrips() throws {
        let store = UsersStore(path: temporaryFolder() + "/users.json")
        try store.update { try $0.add(account("alice")) }
        try store.update { try $0.add(account("Bob", locked: true)) }
        #expect(mode(store.path) == 0o600)
        let loaded = try store.load()
        #expect(loaded.accounts.map(\.name) == ["alice", "Bob"])
        #expect(loaded.account(named: "BOB")?.locked == true)
        #expect(throws: UsersFileError.accountExists("alice")) { try store.update { try $0.add(account("ALICE")) } }
        #expect(throws: UsersFileError.noSuchAccount("carol")) { try store.update { try $0.remove("carol") } }
    }

    @Test func missingFileIsEmpty() throws {
        #expect(try UsersStore(path: temporaryFolder() + "/none.json").load().accounts.isEmpty)
    }

    @Test func corruptedFileIsReportedWithLineAndColumnAndNeverOverwritten() throws {
        let store = UsersStore(path: temporaryFolder() + "/users.json")
        let garbage = "{\n  \"version\": 1,\n  \"accounts\": [ {\"name\": \"alice\",, } ]\n}\n"
        try garbage.write(toFile: store.path, atomically: false, encoding: .utf8)
        let error = #expect(throws: UsersFileError.self) { try store.load() }
        #expect(error == .invalidJSON(path: store.path, line: 3, column: 34, reason: "expected a quoted key"))
        #expect("\(error!)".contains("left untouched"))
        #expect(throws: UsersFileError.self) { try store.update { try $0.add(account("bob")) } }
        #expect(fileBytes(store.path) == Array(garbage.utf8))
    }

    @Test func truncatedFileIsNeverOverwritten() throws {
        let store = UsersStore(path: temporaryFolder() + "/users.json")
        for name in ["alice", "bob", "carol"] { try store.update { try $0.add(account(name)) } }
        let whole = fileBytes(store.path)!
        let half = Array(whole.prefix(whole.count / 2))
        try Data(half).write(to: URL(fileURLWithPath: store.path))
        let error = #expect(throws: UsersFileError.self) { try store.load() }
        #expect("\(error!)".contains("truncated"))
        #expect(throws: UsersFileError.self) { try store.update { try $0.remove("alice") } }
        #expect(fileBytes(store.path) == half)
    }

    @Test(arguments: [
        ("{\"version\": 2, \"accounts\": []}", "schema version 2"),
        ("[1, 2]", "top level must be an object"),
        ("{\"version\": 1, \"accounts\": [{\"name\": \"a\", \"hash\": 5, \"created\": \"\", \"updated\": \"\", \"locked\": false}]}", "accounts[0].hash: expected a string"),
        ("{\"version\": 1, \"accounts\": [{\"name\": \"a\", \"created\": \"\", \"updated\": \"\", \"locked\": false}]}", "accounts[0]: missing \"hash\""),
        ("{\"version\": 1, \"accounts\": [{\"name\": \"9a\", \"hash\": \"\", \"created\": \"\", \"updated\": \"\", \"locked\": false}]}", "accounts[0]: '9a' must start with a letter"),
        ("{\"version\": 1, \"accounts\": [{\"name\": \"ab\", \"hash\": \"\", \"created\": \"\", \"updated\": \"\", \"locked\": false}, {\"name\": \"AB\", \"hash\": \"\", \"created\": \"\", \"updated\": \"\", \"locked\": false}]}", "accounts[1]: 'AB' repeats 'ab'"),
    ])
    func damagedContentIsExplained(content: String, expected: String) throws {
        let store = UsersStore(path: temporaryFolder() + "/users.json")
        try content.write(toFile: store.path, atomically: false, encoding: .utf8)
        let error = #expect(throws: UsersFileError.self) { try store.load() }
        #expect("\(error!)".contains(expected), "\(error!)")
        #expect("\(error!)".contains(store.path))
    }

    @Test func diskFullLeavesTheOldFileIntact() throws {
        var store = UsersStore(path: temporaryFolder() + "/users.json")
        try store.update { try $0.add(account("alice")) }
        let before = fileBytes(store.path)
        store.writeBytes = { _, _ in ENOSPC }
        let error = #expect(throws: UsersFileError.self) { try store.update { try $0.add(account("bob")) } }
        #expect("\(error!)".contains("No space left on device"))
        #expect("\(error!)".contains("the previous file is intact"))
        #expect(fileBytes(store.path) == before)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: (store.path as NSString).deletingLastPathComponent)
        #expect(leftovers.sorted() == ["users.json", "users.json.lock"])
    }

    @Test func jsonSyntaxLocator() {
        #expect(JSONSyntax.firstProblem(in: Array("{\"a\": [1, 2.5e3, true, null, \"x\\u00e9\"]}".utf8)) == nil)
        #expect(JSONSyntax.firstProblem(in: Array("{\"a\": 01x}".utf8))?.reason == "expected ',' or '}', found '1'")
        #expect(JSONSyntax.firstProblem(in: Array("".utf8))?.reason.contains("truncated") == true)
        #expect(JSONSyntax.firstProblem(in: Array("{\"a\": \"b".utf8))?.reason == "the file ends inside a string (truncated?)")
        #expect(JSONSyntax.firstProblem(in: Array("{} x".utf8))?.column == 4)
        #expect(JSONSyntax.firstProblem(in: Array(String(repeating: "[", count: 100).utf8))?.reason == "nested too deeply")
    }
}

/// chat-admin as a separate process: the lock and the atomic write across processes.
@Suite(.serialized) struct ChatAdminProcessTests {
    static var chatAdmin: String { TestBinaries.path("chat-admin") }

    /// Starts chat-admin with `arguments`, writing `input` to its standard input.
    static func start(_ arguments: [String], input: String?) throws -> ChildProcess {
        let child = try ChildProcess([chatAdmin] + arguments, input: true, output: .discard)
        if let input { child.write(input) }
        child.closeInput()
        return child
    }

    @Test func twentyConcurrentAddusersAllLand() throws {
        let folder = temporaryFolder()
        let users = folder + "/users.json"
        try "{\"usersFile\": \"users.json\", \"passwordHashing\": {\"ln\": 6, \"r\": 8, \"p\": 1}}".write(toFile: folder + "/server.json", atomically: true, encoding: .utf8)
        let processes = try (0..<20).map { i in
            try Self.start(["adduser", "user\(i)", "--config", folder + "/server.json", "--password-stdin"], input: "password-\(i)\n")
        }
        let statuses = processes.map { $0.finish(timeout: 60) }
        #expect(statuses.allSatisfy { $0 == 0 })
        let names = Set(try UsersStore(path: users).load().accounts.map(\.name))
        #expect(names == Set((0..<20).map { "user\($0)" }))
        #expect(mode(users) == 0o600)
    }

    @Test func writerKilledMidWriteLeavesOldOrNewFile() throws {
        let folder = temporaryFolder()
        let config = folder + "/server.json"
        try "{\"usersFile\": \"users.json\", \"passwordHashing\": {\"ln\": 4, \"r\": 8, \"p\": 1}}".write(toFile: config, atomically: true, encoding: .utf8)
        let store = UsersStore(path: folder + "/users.json")
        // A big file (about 2 MB) makes each write take long enough to be interrupted.
        try store.update { db in db = UsersDatabase(accounts: (0..<10_000).map { account("seed\($0)") }) }
        // How long one uninterrupted run takes, to spread the kills over all of it.
        let started = Date()
        let calibration = try Self.start(["adduser", "calibration", "--config", config, "--password-stdin"], input: "password-c\n")
        calibration.finish(timeout: 60)
        let duration = Date().timeIntervalSince(started)
        var known = Set(try store.load().accounts.map(\.name))
        var landed = 0
        var lost = 0
        for round in 0..<16 {
            let process = try Self.start(["adduser", "killed\(round)", "--config", config, "--password-stdin"], input: "password-\(round)\n")
            // Not a wait: a random moment in the write to kill the process at, the point of this test.
            usleep(UInt32(Double.random(in: 0.3...1.1) * duration * 1_000_000))
            process.signal(SIGKILL)
            process.finish(timeout: 10)
            let now = Set(try store.load().accounts.map(\.name))  // must parse every time
            #expect(now.isSuperset(of: known))
            #expect(now.subtracting(known).isSubset(of: ["killed\(round)"]))
            if now.contains("killed\(round)") { landed += 1 } else { lost += 1 }
            known = now
        }
        print("kill test: one run takes \(Int(duration * 1000)) ms; \(landed) writes landed whole, \(lost) were cut off before the rename")
        #expect(landed + lost == 16)
        // The next writer removes the dead writers' temporary files.
        try store.update { try $0.add(account("after")) }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty)
    }
}

/// Finding 8 of issue 13: a users file others may change, or a link in its place, is refused.
@Suite struct UsersFileSafetyTests {
    @Test func aFileOthersCanWriteIsRefusedAndOneTheyCanReadIsWarned() throws {
        let store = UsersStore(path: temporaryFolder() + "/users.json")
        try store.update { try $0.add(account("alice")) }
        chmod(store.path, 0o666)
        #expect(throws: UsersFileError.writableByOthers(path: store.path, mode: UInt32(S_IFREG | 0o666))) { try store.load() }
        #expect("\(UsersFileError.writableByOthers(path: store.path, mode: 0o100666))".contains("chmod 600 \(store.path)"))
        chmod(store.path, 0o644)
        #expect(try store.load().accounts.count == 1)
        let lines = Lines()
        _ = try AccountDirectory(store: store, report: { lines.append($0) })
        #expect(lines.all == ["users file \(store.path) can be read by other users (mode 644): run chmod 600 \(store.path)"])
    }

    @Test func aSymbolicLinkIsRefusedNotFollowedNorReplaced() throws {
        let folder = temporaryFolder()
        let real = UsersStore(path: folder + "/real.json")
        try real.update { try $0.add(account("alice")) }
        let linked = UsersStore(path: folder + "/users.json")
        try FileManager.default.createSymbolicLink(atPath: linked.path, withDestinationPath: real.path)
        #expect(throws: UsersFileError.symbolicLink(path: linked.path)) { try linked.load() }
        #expect(throws: UsersFileError.symbolicLink(path: linked.path)) { try linked.update { try $0.add(account("bob")) } }
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: linked.path) == real.path)  // still a link
        #expect("\(UsersFileError.symbolicLink(path: linked.path))".contains("point \"usersFile\" in the configuration at the real file"))
        // chat-admin says the same and changes nothing.
        try "{\"usersFile\": \"users.json\"}".write(toFile: folder + "/server.json", atomically: true, encoding: .utf8)
        let result = ChildProcess.run([TestBinaries.path("chat-admin"), "list", "--config", folder + "/server.json"])
        #expect(result.status != 0)
        #expect(result.output.contains("is a symbolic link: refused"))
    }

    @Test func aReloadOfAnUnsafeFileKeepsTheLastGoodCopy() throws {
        let store = UsersStore(path: temporaryFolder() + "/users.json")
        try store.update { try $0.add(account("alice")) }
        let lines = Lines()
        let directory = try AccountDirectory(store: store, report: { lines.append($0) })
        try store.update { try $0.add(account("mallory")) }
        chmod(store.path, 0o666)
        directory.reload()
        #expect(directory.lookup("mallory") == nil)
        #expect(directory.lookup("alice") != nil)
        #expect(lines.all.contains { $0.contains("can be changed by other users") && $0.contains("keeping the last good copy (1 accounts)") })
    }

    @Test func changesThatEndSessionsAreReported() throws {
        let store = UsersStore(path: temporaryFolder() + "/users.json")
        try store.update { for name in ["alice", "bob", "carol", "dave"] { try $0.add(account(name)) } }
        let directory = try AccountDirectory(store: store)
        let seen = Lines()
        directory.setChangeHandler { for change in $0 { seen.append("\(change)") } }
        let other = try PasswordHash.make(password: Password("another one"), parameters: ScryptParameters(ln: 4, r: 8, p: 1)).phc
        try store.update { database in
            try database.remove("alice")
            try database.modify("bob") { $0.locked = true }
            try database.modify("carol") { $0.hash = other }
        }
        directory.reload()
        #expect(seen.all == ["deleted(\"alice\")", "locked(\"bob\")", "passwordChanged(\"carol\")"])
    }
}

/// chat-admin cert add, list and remove against a users file.
@Suite struct ChatAdminCertificateTests {
    @Test func addListAndRemoveAClientCertificate() throws {
        let folder = temporaryFolder()
        let store = UsersStore(path: folder + "/users.json")
        try store.update { try $0.add(account("alice")) }
        try "{\"usersFile\": \"users.json\"}".write(toFile: folder + "/server.json", atomically: true, encoding: .utf8)
        let admin = TestBinaries.path("chat-admin")
        let config = ["--config", folder + "/server.json"]
        let colons = (0..<32).map { _ in "ab" }.joined(separator: ":")
        let added = ChildProcess.run([admin, "cert", "add", "alice", colons] + config)
        #expect(added.status == 0, "\(added.output)")
        let fingerprint = String(repeating: "AB", count: 32)
        #expect(try store.load().account(named: "alice")?.certificates == [fingerprint])
        #expect(ChildProcess.run([admin, "cert", "list", "alice"] + config).output.contains("alice \(fingerprint)"))
        let twice = ChildProcess.run([admin, "cert", "add", "alice", fingerprint] + config)
        #expect(twice.status != 0 && twice.output.contains("already registered for 'alice'"))
        let bad = ChildProcess.run([admin, "cert", "add", "alice", "not-a-fingerprint"] + config)
        #expect(bad.status != 0 && bad.output.contains("neither a SHA-256 fingerprint"))
        #expect(ChildProcess.run([admin, "cert", "remove", "alice", fingerprint] + config).status == 0)
        #expect(try store.load().account(named: "alice")?.certificates == [])
    }
}

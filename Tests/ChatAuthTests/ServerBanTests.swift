@testable import ChatAuth
import ChatTesting
import Foundation
import Testing

/// Server bans and the operator role as the users file keeps them, and chat-admin's role and
/// ban commands.
@Suite struct ServerBanTests {
    @Test func targetsParseAsOperatorsTypeThem() throws {
        #expect(try ServerBan.Target(parsing: "alice") == .account("alice"))
        #expect(try ServerBan.Target(parsing: "~a:Alice") == .account("Alice"))
        #expect(try ServerBan.Target(parsing: "*@192.0.2.7").description == "192.0.2.7")
        #expect(try ServerBan.Target(parsing: "192.0.2.77/24").description == "192.0.2.0/24")
        #expect(try ServerBan.Target(parsing: "2001:DB8:0:0::1/32").description == "2001:db8::/32")
        for bad in ["nick!user@host", "", "1.2.3.4/33", "2001:db8::/129", "*@example.com", "alice bob"] {
            #expect(throws: ServerBanError.invalidTarget(bad)) { try ServerBan.Target(parsing: bad) }
        }
    }

    @Test func rangesMatchIPv4IPv6AndMappedAddresses() throws {
        let v4 = try #require(AddressRange("198.51.100.0/24"))
        #expect(v4.contains("198.51.100.1") && v4.contains("198.51.100.255"))
        #expect(v4.contains("::ffff:198.51.100.9"))  // as a dual-stack listener sees it
        #expect(!v4.contains("198.51.101.1") && !v4.contains("2001:db8::1") && !v4.contains("garbage"))
        let v6 = try #require(AddressRange("2001:db8:aa00::/40"))
        #expect(v6.contains("2001:db8:aaff:1::5") && !v6.contains("2001:db8:ab00::1"))
        let one = try #require(AddressRange("203.0.113.5"))
        #expect(one.contains("203.0.113.5") && !one.contains("203.0.113.6"))
        #expect(try #require(AddressRange("0.0.0.0/0")).contains("8.8.8.8"))
        #expect(ServerBan.Target.account("Bob").covers(account: "bob", address: "x") && !ServerBan.Target.account("bob").covers(account: nil, address: "x"))
    }

    @Test func durations() {
        #expect(ServerBan.parseDuration("90m") == .some(5400))
        #expect(ServerBan.parseDuration("2h") == .some(7200))
        #expect(ServerBan.parseDuration("7d") == .some(604_800))
        #expect(ServerBan.parseDuration("1w") == .some(604_800))
        #expect(ServerBan.parseDuration("30") == .some(1800))  // minutes, the K-line habit
        #expect(ServerBan.parseDuration("perm") == .some(nil))
        #expect(ServerBan.parseDuration("0") == .some(nil))
        for bad in ["", "h", "-5m", "alice", "5y", "99999999d", "١٢m"] { #expect(ServerBan.parseDuration(bad) == nil) }
    }

    @Test func bansAndRolesSurviveTheFileAndExpire() throws {
        let store = UsersStore(path: temporaryFolder() + "/users.json")
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        try store.update { db in
            var alice = account("alice")
            alice.isOperator = true
            try db.add(alice)
            try db.add(account("bob"))
            db.addBan(ServerBan(target: .account("bob"), reason: "spam", setBy: "alice", created: now, expires: now + 3600), at: now)
            db.addBan(ServerBan(target: .addresses(AddressRange("192.0.2.0/24")!), reason: "botnet", setBy: "chat-admin (root)", created: now, expires: nil), at: now)
        }
        let text = try String(contentsOfFile: store.path, encoding: .utf8)
        #expect(text.contains("\"operator\" : true") && text.contains("\"addresses\" : \"192.0.2.0/24\"") && text.contains("\"expires\" : \"2027-01-15T09:00:00Z\""))
        let db = try store.load()
        #expect(db.account(named: "alice")?.isOperator == true && db.account(named: "bob")?.isOperator == false)
        #expect(db.ban(account: "BOB", address: "203.0.113.1", at: now)?.reason == "spam")
        #expect(db.ban(account: nil, address: "192.0.2.200", at: now)?.reason == "botnet")
        #expect(db.ban(account: "bob", address: "203.0.113.1", at: now + 3600) == nil)  // expired
        #expect(db.ban(account: "carol", address: "203.0.113.1", at: now) == nil)
        // Accounts without the role or bans are written as before.
        #expect(!text.contains("\"operator\" : false"))
    }

    @Test func aDamagedBanIsReportedWithItsPlace() throws {
        let store = UsersStore(path: temporaryFolder() + "/users.json")
        let json = #"{"version": 1, "accounts": [], "bans": [{"addresses": "10.0.0.0/99", "reason": "x", "setBy": "y", "created": "2026-01-01T00:00:00Z"}]}"#
        try json.write(toFile: store.path, atomically: true, encoding: .utf8)
        chmod(store.path, 0o600)
        #expect { try store.load() } throws: { error in
            "\(error)".contains("bans[0].addresses: '10.0.0.0/99' is not an address or CIDR range")
        }
    }

    @Test func theDirectoryReportsNewBansAndLostRoles() throws {
        let store = UsersStore(path: temporaryFolder() + "/users.json")
        try store.update { db in
            var alice = account("alice")
            alice.isOperator = true
            try db.add(alice)
        }
        let directory = try AccountDirectory(store: store)
        let seen = Box<[AccountDirectory.Change]>([])
        directory.setChangeHandler { changes in seen.value += changes }
        #expect(directory.cachedAccount("ALICE")?.isOperator == true)
        let ban = ServerBan(target: .account("mallory"), reason: "r", setBy: "alice", created: Date(), expires: nil)
        try directory.addBan(ban)
        #expect(seen.value == [.banned(ban)])
        #expect(directory.ban(account: "mallory", address: "::1") == ban)
        try store.update { db in try db.modify("alice") { $0.isOperator = false } }
        directory.reload()
        #expect(seen.value.last == .demoted("alice"))
        try directory.removeBan(.account("Mallory"))
        #expect(directory.ban(account: "mallory", address: "::1") == nil)
        #expect(throws: ServerBanError.notFound("mallory")) { try directory.removeBan(.account("mallory")) }
    }
}

/// A value shared with a callback in a test (callbacks run on the calling thread here).
final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

/// chat-admin role and ban, as an administrator types them.
@Suite(.serialized) struct ChatAdminRoleAndBanTests {
    func run(_ arguments: [String], in folder: String) -> (status: Int32, output: String) {
        ChildProcess.run([TestBinaries.path("chat-admin")] + arguments + ["--users-file", folder + "/users.json"])
    }

    @Test func roleSetsShowsAndRefusesUnknownRoles() throws {
        let folder = temporaryFolder()
        let store = UsersStore(path: folder + "/users.json")
        try store.update { try $0.add(account("alice")) }
        #expect(run(["role", "alice"], in: folder).output.contains("alice: user"))
        let made = run(["role", "alice", "operator"], in: folder)
        #expect(made.status == 0 && made.output.contains("OPER alice <password>"))
        #expect(try store.load().account(named: "alice")?.isOperator == true)
        #expect(run(["list"], in: folder).output.contains("operator"))
        let bad = run(["role", "alice", "admin"], in: folder)
        #expect(bad.status == 1 && bad.output.contains("unknown role 'admin': use operator or user"))
        #expect(run(["role", "nobody", "operator"], in: folder).output.contains("no account 'nobody'"))
        #expect(run(["role", "alice", "user"], in: folder).status == 0)
        #expect(try store.load().account(named: "alice")?.isOperator == false)
    }

    @Test func banAddListRemove() throws {
        let folder = temporaryFolder()
        let store = UsersStore(path: folder + "/users.json")
        try store.update { try $0.add(account("alice")) }
        let added = run(["ban", "add", "alice", "--for", "7d", "--reason", "abuse"], in: folder)
        #expect(added.status == 0 && added.output.contains("banned alice until "))
        #expect(run(["ban", "add", "2001:db8::/32"], in: folder).status == 0)
        let list = run(["ban", "list"], in: folder).output
        #expect(list.contains("alice") && list.contains("abuse") && list.contains("2001:db8::/32") && list.contains("no end"))
        #expect(try store.load().bans.count == 2)
        let bad = run(["ban", "add", "bob!x@y"], in: folder)
        #expect(bad.status == 1 && bad.output.contains("is neither an account name nor an address or range"))
        #expect(run(["ban", "add", "bob", "--for", "soon"], in: folder).output.contains("'soon' is not a duration"))
        #expect(run(["ban", "add", "bob", "--reason", "two\nlines"], in: folder).output.contains("--reason must be one line"))
        #expect(run(["ban", "remove", "alice"], in: folder).output.contains("lifted the ban on alice"))
        #expect(run(["ban", "remove", "alice"], in: folder).output.contains("no server ban on 'alice'"))
        #expect(try store.load().bans.map(\.target.description) == ["2001:db8::/32"])
    }
}

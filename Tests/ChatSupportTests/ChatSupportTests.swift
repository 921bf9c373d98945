import ChatSupport
import Foundation
import Testing

@Suite struct Base64Tests {
    @Test func matchesFoundationPaddedAndUnpadded() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            let foundation = Data(bytes).base64EncodedString()
            #expect(Base64.encode(bytes, padded: true) == foundation)
            #expect(Base64.encode(bytes) == foundation.replacingOccurrences(of: "=", with: ""))
            #expect(Base64.decode(foundation.utf8, padded: true) == bytes)
            #expect(Base64.decode(Base64.encode(bytes).utf8) == bytes)
        }
    }

    @Test func refusesWhatIsNotCanonical() {
        #expect(Base64.decode("A".utf8) == nil)
        #expect(Base64.decode("AA".utf8) == [0])
        #expect(Base64.decode("AB".utf8) == nil)  // non-zero trailing bits
        #expect(Base64.decode("AA==".utf8) == nil)  // padding where none is expected
        #expect(Base64.decode("AA".utf8, padded: true) == nil)  // missing padding
        #expect(Base64.decode("AA=A".utf8, padded: true) == nil)
        #expect(Base64.decode("A===".utf8, padded: true) == nil)
        #expect(Base64.decode("YWJj".utf8, padded: true) == Array("abc".utf8))
        #expect(Base64.decode("a b=".utf8, padded: true) == nil)
    }
}

@Suite struct AtomicFileTests {
    let folder: String = {
        let path = NSTemporaryDirectory() + "securechat-atomic-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    @Test func writesWithTheExactModeAndReplacesWhole() throws {
        let path = folder + "/secret"
        let old = umask(0)
        defer { umask(old) }
        try AtomicFile.write(Array("first".utf8), to: path, mode: 0o600)
        try AtomicFile.write(Array("second".utf8), to: path, mode: 0o600)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "second")
        let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["secret"])  // no temporary left
    }

    @Test func aFailedWriteLeavesTheOldFileAndNoTemporary() throws {
        let path = folder + "/secret"
        try AtomicFile.write(Array("old".utf8), to: path, mode: 0o600)
        #expect(throws: AtomicFile.Failure(path: path, reason: String(cString: strerror(ENOSPC)))) {
            try AtomicFile.write(Array("new".utf8), to: path, mode: 0o600, writer: { _, _ in ENOSPC })
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "old")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["secret"])
    }
}

/// The server's own JSON, paths and formatting, checked against full Foundation (which the
/// server no longer links, and the tests still do).
@Suite struct WithoutFoundationTests {
    @Test func jsonValuesMatchJSONSerialization() throws {
        let text = #"{"a": [1, -2.5, 3e2, 0, true, false, null], "s": "q\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00x", "o": {"k": "v"}, "e": {}, "l": []}"#
        let ours = try #require(try JSONSyntax.parse(Array(text.utf8)) as? [String: Any])
        let theirs = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(ours["s"] as? String == theirs["s"] as? String)
        #expect(ours["s"] as? String == "q\"\\/\u{8}\u{c}\n\r\té😀x")
        let list = try #require(ours["a"] as? [Any])
        #expect(list.compactMap { ($0 as? JSONNumber)?.text } == ["1", "-2.5", "3e2", "0"])
        #expect((list[2] as? JSONNumber)?.integer == 300 && (list[1] as? JSONNumber)?.integer == nil && (list[1] as? JSONNumber)?.double == -2.5)
        #expect(list[4] as? Bool == true && list[5] as? Bool == false && list[6] is JSONNull)
        #expect((ours["o"] as? [String: Any])?["k"] as? String == "v")
        // A lone surrogate becomes U+FFFD, as in Foundation.
        #expect(try JSONSyntax.parse(Array(#""\ud800x""#.utf8)) as? String == "\u{FFFD}x")
        // Writing: keys sorted, strings escaped; what is written reads back the same.
        let object: [String: Any] = ["b": 1, "a": ["x\"y\n\u{1}", true, 2.5], "c": [String: Any]()]
        let written = JSONSyntax.text(object)
        #expect(written == #"{"a":["x\"y\n\u0001",true,2.5],"b":1,"c":{}}"#)
        let back = try #require(try JSONSerialization.jsonObject(with: Data(written.utf8)) as? [String: Any])
        #expect((back["a"] as? [Any])?.first as? String == "x\"y\n\u{1}")
        // Numbers a program put in a dictionary count too; booleans are not numbers.
        #expect(JSONNumber.integer(5) == 5 && JSONNumber.double(2.5) == 2.5 && JSONNumber.integer(true) == nil && JSONNumber.double("5") == nil)
    }

    @Test func syntaxProblemsSayWhere() {
        #expect(JSONSyntax.firstProblem(in: Array("{\n  \"a\": 1,\n}".utf8))?.description == "line 3, column 1: expected a quoted key")
        #expect(JSONSyntax.firstProblem(in: Array("[1, 2".utf8)) != nil)
        #expect(JSONSyntax.firstProblem(in: Array(#"{"a": "\x"}"#.utf8))?.reason == "unknown escape '\\x'")
    }

    @Test func pathsMatchNSString() {
        // NSString's deletingLastPathComponent's answers (written out: on Linux it crashes on some).
        let folders = ["/a/b/c": "/a/b", "/a/b/": "/a", "/c": "/", "c": "", "a/b": "a", "/": "/", "": "", "/etc/securechat/users.json": "/etc/securechat"]
        for (path, folder) in folders { #expect(Paths.folder(of: path) == folder, "\(path)") }
        for path in ["/a/b/../c/./d//e/", "/../x", "a/../../b", "/etc/securechat/./users.json", "./x"] {
            #expect(Paths.standardized(path) == (path as NSString).standardizingPath, "\(path)")
        }
        #expect(Paths.name(of: "/a/b.json") == "b.json" && Paths.name(of: "b") == "b")
        #expect(Paths.join("", "x") == "x" && Paths.join("/", "x") == "/x" && Paths.join("/a", "x") == "/a/x")
        #expect(PercentEncoding.decode("chat%40example%2forg") == "chat@example/org" && PercentEncoding.decode("%zz") == nil && PercentEncoding.decode("%e9") == nil)
    }

    @Test func digitsMatchStringFormat() {
        // (Exact ties, such as 1.25, may round the other way: printf rounds them to even.)
        for value in [0.0, 0.04, 0.06, 1.26, 2.345, -1.26, 59.96, 123456.789, 9.99] {
            #expect(Digits.fixed(value, 1) == String(format: "%.1f", value), "\(value)")
        }
        #expect(Digits.fixed(2.5, 0) == "3" && Digits.padded(7, 2) == "07" && Digits.padded(2026, 4) == "2026")
    }

    @Test func threadsLocksAndConditions() {
        let condition = Condition()
        nonisolated(unsafe) var count = 0
        for i in 0..<4 {
            Threads.start(name: "test-\(i)") {
                for _ in 0..<1000 {
                    condition.lock()
                    count += 1
                    condition.broadcast()
                    condition.unlock()
                }
            }
        }
        condition.lock()
        let deadline = Deadline.after(seconds: 60)
        while count < 4000 && Deadline.now() < deadline { condition.wait(until: deadline) }
        #expect(count == 4000)
        condition.unlock()
        // A wait with nobody to signal ends at its deadline, and says so.
        condition.lock()
        #expect(condition.wait(until: Deadline.after(seconds: 0.01)) == false)
        condition.unlock()
    }
}

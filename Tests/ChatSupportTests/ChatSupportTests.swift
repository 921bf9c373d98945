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

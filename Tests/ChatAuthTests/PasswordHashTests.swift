import ChatSupport
import Foundation
import Testing
@testable import ChatAuth

@Suite struct PasswordHashTests {
    let fast = ScryptParameters(ln: 10, r: 8, p: 1)

    @Test func roundTripAndWrongPassword() throws {
        let hash = try PasswordHash.make(password: Password("correct horse battery"), parameters: fast)
        #expect(try hash.verify(Password("correct horse battery")))
        #expect(try !hash.verify(Password("correct horse battery!")))
        #expect(try !hash.verify(Password("")))
        let phc = hash.phc
        #expect(phc.hasPrefix("$scrypt$ln=10,r=8,p=1$"))
        let fields = phc.split(separator: "$")
        #expect(fields.count == 4 && fields[2].count == 22 && fields[3].count == 43)
        #expect(try PasswordHash(phc: phc) == hash)
        #expect(!"\(hash)".contains(fields[3]))
    }

    @Test func saltsDiffer() throws {
        let a = try PasswordHash.make(password: Password("same password"), parameters: fast)
        let b = try PasswordHash.make(password: Password("same password"), parameters: fast)
        #expect(a.salt != b.salt && a.hash != b.hash)
    }

    @Test func defaultParametersNeedAnExplicitMemoryLimit() throws {
        // N=2^15 r=8 needs 32 MiB + overhead: OpenSSL's default cap (maxmem 0) refuses it.
        let p = ScryptParameters.default
        #expect(p == ScryptParameters(ln: 15, r: 8, p: 3) && p.meetsOWASPFloor)
        let out = try PasswordHash.derive(password: Array("pw".utf8), salt: Array("0123456789abcdef".utf8), parameters: p)
        #expect(out.count == 32)
    }

    @Test func knownAnswerFromRFC7914() throws {
        // RFC 7914 section 12, second vector: "password", "NaCl", N=1024, r=8, p=16, 64 bytes.
        let out = try PasswordHash.derive(password: Array("password".utf8), salt: Array("NaCl".utf8),
                                          parameters: ScryptParameters(ln: 10, r: 8, p: 16), length: 64)
        let hex = out.map { String(format: "%02x", $0) }.joined()
        #expect(hex == "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640")
    }

    @Test(arguments: [
        "", "scrypt", "$scrypt$", "$scrypt$ln=10,r=8,p=1$", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        "$scrypt$ln=10,r=8$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        "$scrypt$ln=10,r=8,p=1,p=2$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        "$scrypt$ln=99,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        "$scrypt$ln=x,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        "$scrypt$ln=99999999999999999999,r=8,p=1$c2FsdA$aGFzaA",
        "$scrypt$ln=10,r=8,p=1$@@@@$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHRzYWx0==$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHRzYWx0$",
        "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g$extra",
        "$scrypt$ln=10,r=0,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
    ])
    func malformedStringsAreRefusedWithAReason(phc: String) {
        do {
            _ = try PasswordHash(phc: phc)
            Issue.record("accepted \(phc)")
        } catch {
            guard case let .malformed(reason) = error else { Issue.record("\(error)"); return }
            #expect(!reason.isEmpty)
            #expect("\(error)".hasPrefix("malformed password hash: "))
        }
    }

    @Test func randomGarbageNeverCrashesTheParser() {
        var generator = SystemRandomNumberGenerator()
        let pieces = ["$", "scrypt", "ln=", "r=", "p=", ",", "=", "10", "8", "1", "AAAA", "+/", "==", "\u{0}", "é", "99999999999"]
        for _ in 0..<5000 {
            let text = (0..<Int.random(in: 0...12, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            _ = try? PasswordHash(phc: text)
        }
    }

    @Test func policyComparisons() {
        let policy = ScryptParameters.default
        #expect(ScryptParameters(ln: 14, r: 8, p: 3).isWeaker(than: policy))
        #expect(ScryptParameters(ln: 15, r: 8, p: 1).isWeaker(than: policy))
        #expect(!ScryptParameters(ln: 16, r: 8, p: 3).isWeaker(than: policy))
        #expect(!ScryptParameters(ln: 10, r: 8, p: 1).meetsOWASPFloor)
        for row in ScryptParameters.owaspRows { #expect(row.meetsOWASPFloor) }
        #expect(throws: PasswordHashError.self) { try ScryptParameters(ln: 40, r: 8, p: 1).validate() }
    }

    @Test func passwordRules() {
        #expect(Password("seven77").problem == "the password is shorter than 8 characters")
        #expect(Password("eight888").problem == nil)
        #expect(Password("with spaces ok").problem == nil)
        #expect(Password("ünïcödé!").problem == nil)  // 8 characters, more bytes
        #expect(Password(bytes: [0x61, 0xff, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68]).problem == "the password is not valid UTF-8")
        #expect(Password(String(repeating: "a", count: 1025)).problem == "the password is longer than 1024 bytes")
        #expect("\(Password("secret-value"))" == "Password(redacted)")
        let generated = try! Password.generate()
        #expect(generated.bytes.count == 20 && generated.problem == nil)
    }
}

@Suite struct AccountNameTests {
    @Test(arguments: ["alice", "A", "a-b_c[d]e\\f`g^h{i}j|k", "bob42", String(repeating: "x", count: 32)])
    func valid(name: String) { #expect(AccountName.problem(name) == nil) }

    @Test(arguments: ["", "1abc", "-abc", "_abc", "ali ce", "alicé", String(repeating: "x", count: 33), "a,b", "a:b", "#room", "a!b", "a@b", "a.b", "a\u{0}b", "a\nb"])
    func invalid(name: String) { #expect(AccountName.problem(name) != nil) }

    @Test func caseIsIgnoredForIdentity() {
        #expect(AccountName.folded("Alice[]") == AccountName.folded("aLICE[]"))
        #expect(AccountName.folded("a{") != AccountName.folded("a["))  // casemapping ascii, not rfc1459
    }
}

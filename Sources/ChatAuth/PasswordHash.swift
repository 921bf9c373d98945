import ChatSupport
import COpenSSL

/// An scrypt password hash in PHC string format: `$scrypt$ln=15,r=8,p=3$<salt>$<hash>` with a
/// 16-byte salt and a 32-byte hash in unpadded standard base64.
///
/// Every record carries its own parameters, so the policy can be raised later and old records are
/// re-hashed at their next successful login.
public struct PasswordHash: Sendable, Hashable, CustomStringConvertible {
    public let parameters: ScryptParameters
    public let salt: [UInt8]
    public let hash: [UInt8]

    public static let saltLength = 16
    public static let hashLength = 32

    /// Hashes `password` with a fresh random salt. Blocks for the length of one scrypt run:
    /// call it from a worker thread, never from an event loop.
    public static func make(password: Password, parameters: ScryptParameters) throws(PasswordHashError) -> PasswordHash {
        try parameters.validate()
        var salt = [UInt8](repeating: 0, count: saltLength)
        guard RAND_bytes(&salt, Int32(saltLength)) == 1 else { throw .randomFailed }
        let hash = try derive(password: password.bytes, salt: salt, parameters: parameters)
        return PasswordHash(parameters: parameters, salt: salt, hash: hash)
    }

    /// Whether `password` matches, compared in constant time. Blocks like `make`.
    public func verify(_ password: Password) throws(PasswordHashError) -> Bool {
        var candidate = try Self.derive(password: password.bytes, salt: salt, parameters: parameters)
        defer { Password.wipe(&candidate) }
        guard candidate.count == hash.count else { return false }
        return CRYPTO_memcmp(candidate, hash, hash.count) == 0
    }

    /// scrypt through OpenSSL's `EVP_PBE_scrypt`, with `maxmem` passed explicitly.
    public static func derive(password: [UInt8], salt: [UInt8], parameters: ScryptParameters, length: Int = hashLength) throws(PasswordHashError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        let ok = password.withUnsafeBufferPointer { pw in
            pw.withMemoryRebound(to: CChar.self) { pwChars in
                EVP_PBE_scrypt(
                    pwChars.baseAddress, pw.count, salt, salt.count,
                    parameters.n, UInt64(parameters.r), UInt64(parameters.p), parameters.maxMemory,
                    &out, length)
            }
        }
        guard ok == 1 else {
            var buffer = [CChar](repeating: 0, count: 256)
            let code = ERR_get_error()
            ERR_error_string_n(code, &buffer, buffer.count)
            ERR_clear_error()
            let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw .hashingFailed(code == 0 ? "no detail from OpenSSL" : text)
        }
        return out
    }

    public init(parameters: ScryptParameters, salt: [UInt8], hash: [UInt8]) {
        self.parameters = parameters
        self.salt = salt
        self.hash = hash
    }

    /// Parses a PHC string, saying exactly which part is wrong.
    public init(phc: String) throws(PasswordHashError) {
        let parts = phc.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0].isEmpty else {
            throw .malformed(reason: "expected $scrypt$ln=…,r=…,p=…$salt$hash, found \(max(parts.count - 1, 0)) '$'-separated fields")
        }
        guard parts[1] == "scrypt" else {
            throw .malformed(reason: "algorithm is '\(parts[1].prefix(20))', expected 'scrypt'")
        }
        var ln: Int?, r: Int?, p: Int?
        for field in parts[2].split(separator: ",", omittingEmptySubsequences: false) {
            let pair = field.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2, pair[1].utf8.count <= 3, let value = Int(pair[1]), value >= 0 else {
                throw .malformed(reason: "parameter '\(field.prefix(20))' is not name=number")
            }
            switch pair[0] {
            case "ln" where ln == nil: ln = value
            case "r" where r == nil: r = value
            case "p" where p == nil: p = value
            default: throw .malformed(reason: "unexpected or repeated parameter '\(pair[0].prefix(20))'")
            }
        }
        guard let ln, let r, let p else {
            throw .malformed(reason: "parameters must be ln, r and p")
        }
        let parameters = ScryptParameters(ln: ln, r: r, p: p)
        do { try parameters.validate() } catch { throw .malformed(reason: error.description) }
        guard let salt = Base64.decode(parts[3].utf8), salt.count >= 8, salt.count <= 64 else {
            throw .malformed(reason: "salt is not unpadded base64 of 8 to 64 bytes")
        }
        guard let hash = Base64.decode(parts[4].utf8), hash.count >= 16, hash.count <= 64 else {
            throw .malformed(reason: "hash is not unpadded base64 of 16 to 64 bytes")
        }
        self.init(parameters: parameters, salt: salt, hash: hash)
    }

    /// The PHC string.
    public var phc: String {
        "$scrypt$ln=\(parameters.ln),r=\(parameters.r),p=\(parameters.p)$\(Base64.encode(salt))$\(Base64.encode(hash))"
    }

    /// Redacted: the parameters only, never the salt or hash.
    public var description: String { "PasswordHash(scrypt \(parameters))" }
}

import COpenSSL
import ChatSupport

/// The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677), PostgreSQL's default password login:
/// the password never crosses the wire, and the server proves it knows the verifier too.
///
/// Without channel binding (`n,,`): PostgreSQL accepts that, and over TLS with a verified
/// certificate the server is already authenticated. The user name goes in the startup message;
/// PostgreSQL ignores the one in SCRAM, so it is empty as libpq sends it.
struct SCRAMClient {
    /// Wiped when the last copy goes (`Password`).
    private let password: Password
    private let clientNonce: String
    private let user: String
    private var authMessage: [UInt8] = []
    private var saltedPassword: [UInt8] = []

    /// `nonce` and `user` are for the RFC's test vectors; PostgreSQL gets a random nonce and no name.
    init(password: Password, nonce: String? = nil, user: String = "") throws(PostgresError) {
        self.password = password
        self.user = user
        if let nonce {
            clientNonce = nonce
        } else {
            var random = [UInt8](repeating: 0, count: 18)
            guard RAND_bytes(&random, Int32(random.count)) == 1 else { throw .authentication("no random bytes for the SCRAM nonce") }
            clientNonce = Base64.encode(random, padded: true)
        }
    }

    private var clientFirstBare: String { "n=\(user),r=\(clientNonce)" }

    /// The first message: the gs2 header and our nonce.
    func firstMessage() -> [UInt8] { Array("n,,\(clientFirstBare)".utf8) }

    /// Answers the server's first message (`r=…,s=…,i=…`) with our proof.
    mutating func finalMessage(serverFirst: [UInt8]) throws(PostgresError) -> [UInt8] {
        guard let text = String(validating: serverFirst, as: UTF8.self) else { throw .authentication("SCRAM: the server's message is not UTF-8") }
        var attributes: [Character: Substring] = [:]
        for part in text.split(separator: ",") where part.count >= 2 && part.dropFirst().first == "=" {
            attributes[part.first!] = part.dropFirst(2)
        }
        guard let nonce = attributes["r"], nonce.hasPrefix(clientNonce), nonce.count > clientNonce.count else {
            throw .authentication("SCRAM: the server's nonce does not extend ours")
        }
        guard let saltText = attributes["s"], let salt = Base64.decode(Array(saltText.utf8), padded: true) else {
            throw .authentication("SCRAM: no salt from the server")
        }
        guard let iterationText = attributes["i"], let iterations = Int32(iterationText), iterations >= 4096 else {
            throw .authentication("SCRAM: the server asks for too few iterations (at least 4096 expected)")
        }
        var salted = [UInt8](repeating: 0, count: 32)
        let derived = password.bytes.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { chars in
                PKCS5_PBKDF2_HMAC(chars.baseAddress, Int32(chars.count), salt, Int32(salt.count), iterations, EVP_sha256(), 32, &salted)
            }
        }
        guard derived == 1 else { throw .authentication("SCRAM: PBKDF2 failed") }
        saltedPassword = salted
        let clientKey = Self.hmac(key: salted, Array("Client Key".utf8))
        let storedKey = Self.sha256(clientKey)
        let withoutProof = "c=biws,r=\(nonce)"
        authMessage = Array("\(clientFirstBare),\(text),\(withoutProof)".utf8)
        let signature = Self.hmac(key: storedKey, authMessage)
        let proof = zip(clientKey, signature).map { $0 ^ $1 }
        return Array("\(withoutProof),p=\(Base64.encode(proof, padded: true))".utf8)
    }

    /// Checks the server's signature (`v=…`): a server that does not know the verifier fails here.
    func verify(serverFinal: [UInt8]) throws(PostgresError) {
        guard let text = String(validating: serverFinal, as: UTF8.self), text.hasPrefix("v="),
              let signature = Base64.decode(Array(text.dropFirst(2).prefix { $0 != "," }.utf8), padded: true)
        else { throw .authentication("SCRAM: the server's final message has no signature") }
        let serverKey = Self.hmac(key: saltedPassword, Array("Server Key".utf8))
        guard signature == Self.hmac(key: serverKey, authMessage) else {
            throw .authentication("SCRAM: the server's signature is wrong — it does not know this password (a server in the middle?)")
        }
    }

    static func hmac(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 32
        _ = HMAC(EVP_sha256(), key, Int32(key.count), data, data.count, &out, &length)
        return out
    }

    static func sha256(_ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        _ = SHA256(data, data.count, &out)
        return out
    }
}

import COpenSSL

#if canImport(Glibc)
import Glibc
#endif

/// A local certificate authority for development and tests, made with OpenSSL's APIs (no shelling
/// out to the `openssl` command): ECDSA P-256 keys, SHA-256 signatures.
///
/// Production servers use real certificates; this exists so that `swift run chat-server` works on a
/// fresh clone with TLS verified end to end, the client trusting only this CA.
public struct CertificateAuthority: Sendable {
    public let certificate: Certificate
    public let key: PrivateKey

    public init(certificate: Certificate, key: PrivateKey) {
        self.certificate = certificate
        self.key = key
    }

    /// A new self-signed CA certificate (CA:TRUE, pathlen 0, keyCertSign and cRLSign).
    ///
    /// - Parameters:
    ///   - commonName: the CA's CN.
    ///   - validFrom: seconds relative to now when validity starts (negative: in the past).
    ///   - validFor: length of validity in seconds.
    public static func generate(
        commonName: String = "SecureChat development CA",
        validFrom: Int = -3600,
        validFor: Int = 10 * 365 * 86400
    ) throws(TLSError) -> CertificateAuthority {
        let key = try PrivateKey.generateP256()
        let x509 = try makeCertificate(
            subject: commonName, publicKey: key, issuer: nil, validFrom: validFrom, validFor: validFor)
        try addExtensions(x509, issuer: x509, [
            (NID_basic_constraints, "critical,CA:TRUE,pathlen:0"),
            (NID_key_usage, "critical,keyCertSign,cRLSign"),
            (NID_subject_key_identifier, "hash"),
        ])
        try sign(x509, with: key)
        return CertificateAuthority(certificate: Certificate(taking: x509), key: key)
    }

    /// Loads a CA certificate and its key from PEM files.
    public static func load(certificatePath: String, keyPath: String) throws(TLSError) -> CertificateAuthority {
        guard let certificate = try Certificate.load(pemFile: certificatePath).first else {
            throw .notPEM(what: "certificate", path: certificatePath, openssl: [])
        }
        let key = try PrivateKey.load(pemFile: keyPath)
        return CertificateAuthority(certificate: certificate, key: key)
    }

    /// Issues a TLS server certificate for `names` (DNS names or IP addresses) with a new P-256 key.
    ///
    /// The first name becomes the CN; every name goes into the subject alternative names.
    public func issueServerCertificate(
        names: [String],
        validFrom: Int = -3600,
        validFor: Int = 365 * 86400
    ) throws(TLSError) -> (certificate: Certificate, key: PrivateKey) {
        guard let first = names.first else {
            throw .invalidConfiguration("a server certificate needs at least one name")
        }
        let key = try PrivateKey.generateP256()
        let x509 = try Self.makeCertificate(
            subject: first, publicKey: key, issuer: certificate.x509, validFrom: validFrom, validFor: validFor)
        let san = names.map { isIPAddress($0) ? "IP:\($0)" : "DNS:\($0)" }.joined(separator: ",")
        try Self.addExtensions(x509, issuer: certificate.x509, [
            (NID_basic_constraints, "critical,CA:FALSE"),
            (NID_key_usage, "critical,digitalSignature"),
            (NID_ext_key_usage, "serverAuth,clientAuth"),
            (NID_subject_key_identifier, "hash"),
            (NID_authority_key_identifier, "keyid:always"),
            (NID_subject_alt_name, san),
        ])
        try Self.sign(x509, with: self.key)
        return (Certificate(taking: x509), key)
    }

    static func makeCertificate(
        subject: String, publicKey: PrivateKey, issuer: OpaquePointer?, validFrom: Int, validFor: Int
    ) throws(TLSError) -> OpaquePointer {
        guard let x509 = X509_new() else {
            throw .openSSLFailure(operation: "allocate a certificate", openssl: OpenSSLError.drain())
        }
        var serial = [UInt8](repeating: 0, count: 16)
        guard RAND_bytes(&serial, Int32(serial.count)) == 1 else {
            X509_free(x509)
            throw .openSSLFailure(operation: "make a random serial number", openssl: OpenSSLError.drain())
        }
        serial[0] &= 0x7f  // positive
        let bn = BN_bin2bn(serial, Int32(serial.count), nil)
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x509))
        BN_free(bn)
        X509_set_version(x509, Int(X509_VERSION_3))
        X509_gmtime_adj(X509_getm_notBefore(x509), validFrom)
        X509_gmtime_adj(X509_getm_notAfter(x509), validFrom + validFor)
        X509_set_pubkey(x509, publicKey.pkey)
        let name = X509_get_subject_name(x509)
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, "SecureChat development", -1, -1, 0)
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, subject, -1, -1, 0)
        X509_set_issuer_name(x509, issuer.map { X509_get_subject_name($0) } ?? name)
        return x509
    }

    static func addExtensions(
        _ x509: OpaquePointer, issuer: OpaquePointer, _ extensions: [(Int32, String)]
    ) throws(TLSError) {
        var ctx = X509V3_CTX()
        X509V3_set_ctx(&ctx, issuer, x509, nil, nil, 0)
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &ctx, nid, value) else {
                throw .openSSLFailure(operation: "add certificate extension \(value)", openssl: OpenSSLError.drain())
            }
            X509_add_ext(x509, ext, -1)
            X509_EXTENSION_free(ext)
        }
    }

    static func sign(_ x509: OpaquePointer, with key: PrivateKey) throws(TLSError) {
        if X509_sign(x509, key.pkey, EVP_sha256()) == 0 {
            throw .openSSLFailure(operation: "sign a certificate", openssl: OpenSSLError.drain())
        }
    }
}

extension PrivateKey {
    /// Loads an unencrypted PEM private key, refusing a file readable by group or others.
    public static func load(pemFile path: String) throws(TLSError) -> PrivateKey {
        let bytes = try SecretFile.read(path, what: "private key", privateKey: true)
        let key: OpaquePointer? = bytes.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            // A callback that supplies no passphrase: never prompt on the terminal.
            return PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in 0 }, nil)
        }
        guard let key else {
            let errors = OpenSSLError.drain()
            if bytes.containsASCII("ENCRYPTED") { throw .encryptedKey(path: path) }
            throw .notPEM(what: "private key", path: path, openssl: errors)
        }
        return PrivateKey(taking: key)
    }
}

/// The development certificate files that `chat-server` and `chat-admin certs init` create.
public struct DevelopmentCertificates: Sendable, Equatable {
    /// The folder that holds the four files.
    public var directory: String
    public var caCertificatePath: String { directory + "/ca.crt" }
    public var caKeyPath: String { directory + "/ca.key" }
    public var certificatePath: String { directory + "/server.crt" }
    public var keyPath: String { directory + "/server.key" }

    public init(directory: String) {
        self.directory = directory
    }

    /// The names every development server certificate carries.
    public static let defaultNames = ["localhost", "127.0.0.1", "::1"]

    /// Whether the server certificate and key exist.
    public var exist: Bool { SecretFile.exists(certificatePath) && SecretFile.exists(keyPath) }

    /// Creates the CA (unless `ca.crt` and `ca.key` exist, which are then reused) and a new
    /// server certificate for localhost, 127.0.0.1, ::1 and `extraNames`. Keys are written 0600,
    /// certificates 0644, each atomically. The server certificate is valid for `validDays` (365 by
    /// default, the longest Mozilla's "intermediate" profile accepts; "modern" wants 90 at most).
    @discardableResult
    public func create(extraNames: [String] = [], validDays: Int = 365) throws(TLSError) -> CertificateInfo {
        try SecretFile.makeDirectory(directory)
        let ca: CertificateAuthority
        if SecretFile.exists(caCertificatePath) && SecretFile.exists(caKeyPath) {
            ca = try CertificateAuthority.load(certificatePath: caCertificatePath, keyPath: caKeyPath)
        } else {
            ca = try CertificateAuthority.generate()
            try SecretFile.writeAtomically(Array(ca.key.pem().utf8), to: caKeyPath, mode: 0o600)
            try SecretFile.writeAtomically(Array(ca.certificate.pem().utf8), to: caCertificatePath, mode: 0o644)
        }
        var names = Self.defaultNames
        for name in extraNames where !names.contains(name) { names.append(name) }
        let leaf = try ca.issueServerCertificate(names: names, validFor: validDays * 86400)
        try SecretFile.writeAtomically(Array(leaf.key.pem().utf8), to: keyPath, mode: 0o600)
        try SecretFile.writeAtomically(Array(leaf.certificate.pem().utf8), to: certificatePath, mode: 0o644)
        return leaf.certificate.info
    }
}

/// Whether `name` is an IPv4 or IPv6 literal.
func isIPAddress(_ name: String) -> Bool {
    var v4 = in_addr()
    var v6 = in6_addr()
    return inet_pton(AF_INET, name, &v4) == 1 || inet_pton(AF_INET6, name, &v6) == 1
}

extension Array where Element == UInt8 {
    func containsASCII(_ needle: String) -> Bool {
        let n = Array(needle.utf8)
        guard n.count <= count else { return false }
        for start in 0...(count - n.count) where self[start] == n[0] {
            if Array(self[start..<(start + n.count)]) == n { return true }
        }
        return false
    }
}

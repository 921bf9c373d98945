import COpenSSL

/// Self-signed client certificates: an identity a user can make for themselves and register
/// with their account (`chat-admin cert add`), then log in with SASL EXTERNAL at no hashing cost.
public enum ClientCertificate {
    /// A new P-256 key and a self-signed certificate for it (CN `commonName`, client
    /// authentication only, valid for `validFor` seconds).
    public static func makeSelfSigned(commonName: String, validFor: Int = 5 * 365 * 86400) throws(TLSError) -> (certificate: Certificate, key: PrivateKey) {
        let key = try PrivateKey.generateP256()
        let x509 = try CertificateAuthority.makeCertificate(subject: commonName, publicKey: key, issuer: nil, validFrom: -3600, validFor: validFor)
        try CertificateAuthority.addExtensions(x509, issuer: x509, [
            (NID_basic_constraints, "critical,CA:FALSE"),
            (NID_key_usage, "critical,digitalSignature"),
            (NID_ext_key_usage, "clientAuth"),
            (NID_subject_key_identifier, "hash"),
        ])
        try CertificateAuthority.sign(x509, with: key)
        return (Certificate(taking: x509), key)
    }

    /// A SHA-256 fingerprint in the one form accounts store: 64 upper-case hex digits. Accepts
    /// colons, spaces and lower case (as `openssl x509 -fingerprint -sha256` and clients print
    /// it); nil for anything else.
    public static func normalizedFingerprint(_ text: String) -> String? {
        let hex = text.uppercased().filter { $0 != ":" && $0 != " " }
        guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit }) else { return nil }
        return hex
    }
}

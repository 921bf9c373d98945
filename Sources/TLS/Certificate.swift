import COpenSSL

#if canImport(Glibc)
import Glibc
#endif

/// An X.509 certificate held by OpenSSL (`X509*`), freed when the last reference goes.
///
/// Immutable after creation, so it is safe to share across threads.
public final class Certificate: @unchecked Sendable {
    let x509: OpaquePointer

    /// Takes ownership of one reference to `x509`.
    init(taking x509: OpaquePointer) {
        self.x509 = x509
    }

    deinit { X509_free(x509) }

    /// Parses every certificate in a PEM file, leaf first.
    public static func load(pemFile path: String) throws(TLSError) -> [Certificate] {
        let bytes = try SecretFile.read(path, what: "certificate")
        let certificates = parse(pem: bytes)
        if certificates.isEmpty {
            throw .notPEM(what: "certificate", path: path, openssl: OpenSSLError.drain())
        }
        ERR_clear_error()
        return certificates
    }

    /// Parses every certificate in PEM text.
    public static func parse(pem bytes: [UInt8]) -> [Certificate] {
        bytes.withUnsafeBytes { raw -> [Certificate] in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return [] }
            defer { BIO_free(bio) }
            var result: [Certificate] = []
            while let x509 = PEM_read_bio_X509(bio, nil, nil, nil) {
                result.append(Certificate(taking: x509))
            }
            return result
        }
    }

    /// The certificate as PEM text.
    public func pem() -> String {
        let bio = BIO_new(BIO_s_mem())!
        defer { BIO_free(bio) }
        PEM_write_bio_X509(bio, x509)
        return bio.memoryContents()
    }

    /// What a person wants to know about the certificate.
    public var info: CertificateInfo { CertificateInfo(x509: x509) }
}

/// A private key held by OpenSSL (`EVP_PKEY*`).
// @unchecked Sendable: immutable — the key is only read after it is loaded (OpenSSL reference-counts it).
public final class PrivateKey: @unchecked Sendable {
    let pkey: OpaquePointer

    init(taking pkey: OpaquePointer) {
        self.pkey = pkey
    }

    deinit { EVP_PKEY_free(pkey) }

    /// A new ECDSA P-256 key.
    public static func generateP256() throws(TLSError) -> PrivateKey {
        guard let ctx = EVP_PKEY_CTX_new_from_name(nil, "EC", nil) else {
            throw .openSSLFailure(operation: "create an EC key context", openssl: OpenSSLError.drain())
        }
        defer { EVP_PKEY_CTX_free(ctx) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(ctx) == 1,
              EVP_PKEY_CTX_set_group_name(ctx, "P-256") == 1,
              EVP_PKEY_generate(ctx, &key) == 1,
              let key
        else {
            throw .openSSLFailure(operation: "generate a P-256 key", openssl: OpenSSLError.drain())
        }
        return PrivateKey(taking: key)
    }

    /// The key as unencrypted PKCS#8 PEM text. Write it only to files with mode 0600.
    public func pem() -> String {
        let bio = BIO_new(BIO_s_mem())!
        defer { BIO_free(bio) }
        PEM_write_bio_PrivateKey(bio, pkey, nil, nil, 0, nil, nil)
        return bio.memoryContents()
    }
}

/// The facts about a certificate that logs, errors and `chat-admin certs show` print.
public struct CertificateInfo: Sendable, Equatable {
    /// The subject, one line ("CN=localhost, O=SecureChat development").
    public var subject: String
    /// The issuer, one line.
    public var issuer: String
    /// DNS names from the subject alternative name extension.
    public var dnsNames: [String]
    /// IP addresses from the subject alternative name extension.
    public var ipAddresses: [String]
    /// Start of validity, seconds since 1970 (UTC).
    public var notBefore: Int
    /// End of validity, seconds since 1970 (UTC).
    public var notAfter: Int
    /// SHA-256 of the DER encoding, as colon-separated upper-case hex.
    public var sha256Fingerprint: String
    /// Whether the certificate is a CA (basicConstraints CA:TRUE).
    public var isCA: Bool

    /// Every name the certificate is valid for, DNS names first.
    public var names: [String] { dnsNames + ipAddresses }

    init(x509: OpaquePointer) {
        subject = X509_get_subject_name(x509).map(Self.oneLine) ?? ""
        issuer = X509_get_issuer_name(x509).map(Self.oneLine) ?? ""
        notBefore = Self.unixTime(X509_get0_notBefore(x509))
        notAfter = Self.unixTime(X509_get0_notAfter(x509))
        isCA = X509_check_ca(x509) != 0
        var dns: [String] = []
        var ips: [String] = []
        if let raw = X509_get_ext_d2i(x509, NID_subject_alt_name, nil, nil) {
            let names = OpaquePointer(raw)
            for i in 0..<copenssl_sk_GENERAL_NAME_num(names) {
                guard let name = copenssl_sk_GENERAL_NAME_value(names, i) else { continue }
                switch name.pointee.type {
                case GEN_DNS:
                    if let s = name.pointee.d.dNSName { dns.append(Self.string(s)) }
                case GEN_IPADD:
                    if let s = name.pointee.d.iPAddress { ips.append(Self.ipString(s)) }
                default:
                    break
                }
            }
            copenssl_GENERAL_NAMES_free(names)
        }
        dnsNames = dns
        ipAddresses = ips
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        X509_digest(x509, EVP_sha256(), &digest, &length)
        sha256Fingerprint = digest[0..<Int(length)].map { byte in
            let hex = String(byte, radix: 16, uppercase: true)
            return byte < 16 ? "0" + hex : hex
        }.joined(separator: ":")
    }

    /// Formats seconds since 1970 as "2026-11-30 12:00:00 UTC".
    public static func formatDate(_ seconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func pad(_ v: Int32, _ width: Int = 2) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1))-\(pad(parts.tm_mday)) "
            + "\(pad(parts.tm_hour)):\(pad(parts.tm_min)):\(pad(parts.tm_sec)) UTC"
    }

    private static func oneLine(_ name: OpaquePointer) -> String {
        let bio = BIO_new(BIO_s_mem())!
        defer { BIO_free(bio) }
        X509_NAME_print_ex(bio, name, 0, copenssl_XN_FLAG_RFC2253())
        return bio.memoryContents()
    }

    private static func unixTime(_ time: UnsafePointer<ASN1_TIME>?) -> Int {
        guard let time else { return 0 }
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return 0 }
        return Int(timegm(&parts))
    }

    private static func string(_ s: UnsafeMutablePointer<ASN1_STRING>) -> String {
        let length = Int(ASN1_STRING_length(s))
        guard let data = ASN1_STRING_get0_data(s), length > 0 else { return "" }
        return String(decoding: UnsafeBufferPointer(start: data, count: length), as: UTF8.self)
    }

    private static func ipString(_ s: UnsafeMutablePointer<ASN1_STRING>) -> String {
        let length = Int(ASN1_STRING_length(s))
        guard let data = ASN1_STRING_get0_data(s) else { return "" }
        var buffer = [CChar](repeating: 0, count: 64)
        let family = length == 4 ? AF_INET : (length == 16 ? AF_INET6 : -1)
        guard family >= 0, inet_ntop(family, data, &buffer, socklen_t(buffer.count)) != nil else { return "?" }
        return String(cString: buffer)
    }
}

extension OpaquePointer {
    /// The bytes held by a memory BIO, as a string.
    func memoryContents() -> String {
        var pointer: UnsafeMutablePointer<CChar>?
        let length = copenssl_BIO_get_mem_data(self, &pointer)
        guard let pointer, length > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
    }
}

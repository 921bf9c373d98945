/// Everything that can go wrong in the TLS layer, each with a description that says what happened
/// and what to do about it.
///
/// Configuration errors name the file and carry OpenSSL's reason; connection errors carry the
/// reason from OpenSSL or the certificate verifier and, where one exists, a hint a person can act on.
public enum TLSError: Error, Sendable, Equatable, CustomStringConvertible {
    // MARK: Configuration
    /// A file named in the configuration does not exist.
    case fileMissing(what: String, path: String)
    /// A file exists but cannot be opened or is not a regular file.
    case fileUnreadable(what: String, path: String, reason: String)
    /// A file could not be parsed as PEM of the expected kind.
    case notPEM(what: String, path: String, openssl: [OpenSSLError])
    /// The private key is encrypted with a passphrase, which a server cannot type.
    case encryptedKey(path: String)
    /// The private key does not belong to the certificate.
    case keyMismatch(certificatePath: String, keyPath: String, openssl: [OpenSSLError])
    /// The private key file can be read by its group or by others.
    case keyPermissions(path: String, mode: UInt32)
    /// The certificate's validity period has ended.
    case certificateExpired(path: String, subject: String, notAfter: String)
    /// The certificate's validity period has not started.
    case certificateNotYetValid(path: String, subject: String, notBefore: String)
    /// The configuration contradicts itself (for example a server without a certificate).
    case invalidConfiguration(String)
    /// An OpenSSL call failed while building a context or a connection.
    case openSSLFailure(operation: String, openssl: [OpenSSLError])

    // MARK: Connections
    /// The peer's certificate did not verify.
    case certificateVerifyFailed(code: Int, reason: String, hint: String)
    /// The handshake failed for another reason (protocol version, ciphers, an alert from the peer).
    case handshakeFailed(reason: String, hint: String?, openssl: [OpenSSLError])
    /// The peer sent plaintext (not a TLS record) where a handshake was expected.
    case plaintextPeer(firstBytes: String)
    /// The handshake did not finish within the configured time.
    case handshakeTimedOut(milliseconds: Int64)
    /// The connection ended during the handshake.
    case closedDuringHandshake
    /// The peer closed the TCP connection without sending TLS close_notify.
    case uncleanShutdown
    /// Decrypting or encrypting failed after the handshake.
    case connectionFailed(reason: String, openssl: [OpenSSLError])
    /// A write was made after the TLS session was shut down.
    case writeAfterClose

    public var description: String {
        switch self {
        case let .fileMissing(what, path):
            return "\(what) file \(path) does not exist — check the path in the configuration"
        case let .fileUnreadable(what, path, reason):
            return "cannot read \(what) file \(path): \(reason) — check that it is a regular file and this user may read it"
        case let .notPEM(what, path, openssl):
            return "\(what) file \(path) is not a PEM \(what) (OpenSSL: \(openssl.reasons)) — it should start with '-----BEGIN'"
        case let .encryptedKey(path):
            return "private key file \(path) is protected by a passphrase, which the server cannot type — store it unencrypted with mode 0600 (openssl pkey -in KEY -out KEY.plain)"
        case let .keyMismatch(certificatePath, keyPath, openssl):
            return "private key \(keyPath) does not match certificate \(certificatePath) (OpenSSL: \(openssl.reasons)) — use the key the certificate was issued for"
        case let .keyPermissions(path, mode):
            let octal = String(mode & 0o777, radix: 8)
            return "private key file \(path) is readable by others (mode \(octal)) — refused; run: chmod 600 \(path)"
        case let .certificateExpired(path, subject, notAfter):
            return "certificate \(path) (\(subject)) expired on \(notAfter) — renew it"
        case let .certificateNotYetValid(path, subject, notBefore):
            return "certificate \(path) (\(subject)) is not valid before \(notBefore) — check the system clock or the certificate"
        case let .invalidConfiguration(message):
            return "invalid TLS configuration: \(message)"
        case let .openSSLFailure(operation, openssl):
            return "OpenSSL failed to \(operation): \(openssl.reasons)"
        case let .certificateVerifyFailed(_, reason, hint):
            return "certificate verify failed: \(reason) — \(hint)"
        case let .handshakeFailed(reason, hint, _):
            if let hint { return "TLS handshake failed: \(reason) — \(hint)" }
            return "TLS handshake failed: \(reason)"
        case let .plaintextPeer(firstBytes):
            return "the peer sent plaintext (\(firstBytes)) instead of a TLS handshake — it must connect with TLS turned on"
        case let .handshakeTimedOut(milliseconds):
            return "TLS handshake did not finish within \(milliseconds) ms — the peer stalled or is not speaking TLS"
        case .closedDuringHandshake:
            return "the connection closed during the TLS handshake — the peer gave up, does not speak TLS, or does not trust this certificate (a client then says so in its own error)"
        case .uncleanShutdown:
            return "the peer closed the connection without a TLS close_notify"
        case let .connectionFailed(reason, _):
            return "TLS connection failed: \(reason)"
        case .writeAfterClose:
            return "write after the TLS session was closed"
        }
    }
}

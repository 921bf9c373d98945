/// The oldest TLS version a context accepts.
public enum TLSVersion: String, Sendable, Codable, CaseIterable {
    case tls12 = "1.2"
    case tls13 = "1.3"
}

/// What a TLS context should do, before any file is read: a plain value, checked and turned into
/// OpenSSL state by `TLSContext`.
///
/// Servers name a certificate chain and its key, and may ask clients for certificates signed by a
/// CA. Clients choose whom to trust (the system store, a CA file, or both) and may present a
/// certificate of their own. Both sides follow Mozilla's "intermediate" profile by default:
/// TLS 1.2 and 1.3, AEAD ciphers with forward secrecy, no renegotiation, no compression.
public struct TLSConfiguration: Sendable, Equatable {
    /// Which side of the handshake this context is for.
    public enum Role: Sendable, Equatable { case server, client }

    /// Where a client finds the certificates it trusts.
    public enum Trust: Sendable, Equatable {
        /// The operating system's trust store.
        case system
        /// Only the CA certificates in this PEM file.
        case caFile(String)
        /// The system store plus the CA certificates in this PEM file.
        case systemAndCAFile(String)
    }

    /// How a client checks the server's certificate.
    public enum Verification: Sendable, Equatable {
        /// Chain to a trusted root and match the server name (the default).
        case full
        /// No verification at all. Only for an explicit `--insecure` a person asked for.
        case none
    }

    public var role: Role
    /// PEM file with the certificate first, then intermediates (server; optional for clients).
    public var certificateChainFile: String?
    /// PEM file with the unencrypted private key, mode 0600 (server; optional for clients).
    public var privateKeyFile: String?
    /// Server only: request client certificates and verify them against this CA file.
    public var clientCAFile: String?
    /// Server only, without `clientCAFile`: ask every client for a certificate, optionally, and
    /// accept any (self-signed ones included) without verifying it. The certificate is then only
    /// an identity, matched by its SHA-256 fingerprint (SASL EXTERNAL); the handshake proves the
    /// client holds its private key.
    public var acceptsAnyClientCertificate = false
    /// Client only: whom to trust.
    public var trust: Trust
    /// Client only: whether to verify the server.
    public var verification: Verification
    /// The oldest version accepted; TLS 1.2 by default.
    public var minimumVersion: TLSVersion
    /// ALPN protocol names, most preferred first; empty for no ALPN.
    public var applicationProtocols: [String]
    /// Whether a server issues session tickets. Off by default: chat connections are long-lived,
    /// and tickets cost memory and a post-handshake flight on every connection.
    public var sessionTickets: Bool

    /// TLS 1.2 cipher suites of Mozilla's intermediate profile (ECDHE with AES-GCM or ChaCha20).
    public static let intermediateCiphers = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// TLS 1.3 cipher suites (all three of the standard AEAD suites).
    public static let tls13CipherSuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

    /// Key exchange groups, in preference order.
    public static let groups = "X25519:P-256:P-384"

    /// A server configuration for a certificate chain and its private key.
    public static func server(certificateChainFile: String, privateKeyFile: String) -> TLSConfiguration {
        TLSConfiguration(
            role: .server, certificateChainFile: certificateChainFile, privateKeyFile: privateKeyFile,
            clientCAFile: nil, trust: .system, verification: .full, minimumVersion: .tls12,
            applicationProtocols: [], sessionTickets: false)
    }

    /// A client configuration that verifies servers against `trust`.
    public static func client(trust: Trust = .system) -> TLSConfiguration {
        TLSConfiguration(
            role: .client, certificateChainFile: nil, privateKeyFile: nil, clientCAFile: nil,
            trust: trust, verification: .full, minimumVersion: .tls12, applicationProtocols: [],
            sessionTickets: false)
    }
}

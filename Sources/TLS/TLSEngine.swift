import ChatSupport
import COpenSSL
import NIOCore

/// What was negotiated on a connection, for logs and for the application.
public struct TLSSessionInfo: Sendable, Equatable {
    /// "TLSv1.3" or "TLSv1.2".
    public var version: String
    /// The cipher suite's OpenSSL name ("TLS_AES_256_GCM_SHA384").
    public var cipherSuite: String
    /// The ALPN protocol both sides agreed on, if any.
    public var applicationProtocol: String?
    /// The peer's certificate, if it presented one.
    public var peerCertificate: CertificateInfo?
}

/// One TLS connection's OpenSSL state (`SSL*`), driven by bytes handed to it: no sockets, no
/// event loop, no clock.
///
/// Ciphertext from the peer goes in with `receive(_:)`; ciphertext for the peer comes out of
/// `takeCiphertext()`, which must be drained after every call (handshake, read, write, shutdown),
/// since any of them may produce records (alerts, tickets, key updates). The engine is confined
/// to one thread at a time; `TLSHandler` keeps it on its channel's event loop.
public final class TLSEngine {
    /// The outcome of a handshake step.
    public enum HandshakeResult: Equatable {
        /// The handshake finished; the session can carry data.
        case complete
        /// More bytes from the peer are needed.
        case inProgress
        /// The handshake failed; any alert for the peer is in `takeCiphertext()`.
        case failed(TLSError)
    }

    /// The outcome of reading plaintext.
    public enum ReadResult: Equatable {
        /// This many plaintext bytes were appended (possibly zero); more input is needed for more.
        case bytes(Int)
        /// The peer sent close_notify after this many bytes.
        case closed(Int)
        /// The session failed.
        case failed(TLSError)
    }

    /// The outcome of starting a TLS shutdown.
    public enum ShutdownResult: Equatable {
        /// Our close_notify is in `takeCiphertext()`; the peer's has not arrived yet.
        case sent
        /// Both close_notify alerts have been exchanged.
        case complete
        /// The session could not be shut down cleanly.
        case failed(TLSError)
    }

    let ssl: OpaquePointer
    private let bio: ByteBufferBIO
    /// The server certificate that failed verification, recorded by the verify callback, so that
    /// the error can say what the certificate is for and when it expired.
    fileprivate var rejectedCertificate: CertificateInfo?
    /// The context this connection was made from (kept alive for as long as the connection).
    public let context: TLSContext
    /// The name the client expects in the server's certificate (client side only).
    public let serverName: String?

    /// Creates the state for one connection.
    ///
    /// - Parameters:
    ///   - context: a server or client context.
    ///   - serverName: client only: the host name or IP address to verify the certificate against;
    ///     DNS names are also sent as SNI. Required when the client verifies the server.
    public init(context: TLSContext, serverName: String? = nil, allocator: ByteBufferAllocator = .init()) throws(TLSError) {
        guard let ssl = SSL_new(context.ctx) else {
            throw .openSSLFailure(operation: "create a connection", openssl: OpenSSLError.drain())
        }
        self.ssl = ssl
        self.context = context
        self.serverName = serverName
        self.bio = ByteBufferBIO(allocator: allocator)
        // The SSL takes the BIO's one reference for both directions.
        SSL_set_bio(ssl, bio.bio, bio.bio)
        let configuration = context.configuration
        switch configuration.role {
        case .server:
            SSL_set_accept_state(ssl)
        case .client:
            SSL_set_connect_state(ssl)
            if let serverName {
                if isIPAddress(serverName) {
                    if configuration.verification == .full {
                        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName)
                    }
                } else {
                    // SNI only for DNS names (RFC 6066).
                    copenssl_SSL_set_tlsext_host_name(ssl, serverName)
                    if configuration.verification == .full {
                        SSL_set1_host(ssl, serverName)
                    }
                }
                if configuration.verification == .full {
                    SSL_set_ex_data(ssl, 0, Unmanaged.passUnretained(self).toOpaque())
                    SSL_set_verify(ssl, SSL_VERIFY_PEER, recordRejectedCertificate)
                }
            } else if configuration.verification == .full {
                throw .invalidConfiguration("a client that verifies the server needs the server's name (host name or IP address)")
            }
        }
    }

    deinit {
        SSL_free(ssl)  // also frees the BIO
    }

    /// Hands ciphertext from the peer to OpenSSL (no copy when nothing is pending).
    public func receive(_ buffer: ByteBuffer) {
        bio.receive(buffer)
    }

    /// Ciphertext waiting to be sent to the peer, if any; the engine keeps no reference to it.
    public func takeCiphertext() -> ByteBuffer? {
        bio.takeOutbound()
    }

    /// Bytes of ciphertext waiting to be sent.
    public var pendingCiphertextBytes: Int { bio.outboundBytes }

    /// Bytes of received ciphertext OpenSSL has not read yet.
    public var pendingInputBytes: Int { bio.inboundBytes }

    /// Whether the handshake has finished.
    public var isHandshakeComplete: Bool { SSL_is_init_finished(ssl) == 1 }

    /// Advances the handshake as far as the received bytes allow.
    public func handshake() -> HandshakeResult {
        ERR_clear_error()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 { return .complete }
        let code = SSL_get_error(ssl, rc)
        switch code {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .inProgress
        default:
            return .failed(handshakeError(code))
        }
    }

    /// Decrypts every complete record received so far, appending the plaintext to `output`.
    ///
    /// Stops early once `limit` bytes were appended; `pendingInputBytes` then tells whether more
    /// ciphertext is waiting.
    public func readPlaintext(into output: inout ByteBuffer, limit: Int = .max) -> ReadResult {
        var total = 0
        while total < limit {
            ERR_clear_error()
            var rc: Int32 = 0
            let count = output.writeWithUnsafeMutableBytes(minimumWritableBytes: 16384) { destination in
                var count = 0
                rc = SSL_read_ex(ssl, destination.baseAddress, destination.count, &count)
                return rc == 1 ? count : 0
            }
            if rc == 1 {
                total += count
                continue
            }
            switch SSL_get_error(ssl, rc) {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                return .bytes(total)
            case SSL_ERROR_ZERO_RETURN:
                return .closed(total)
            default:
                let errors = OpenSSLError.drain()
                return .failed(.connectionFailed(reason: errors.reasons, openssl: errors))
            }
        }
        return .bytes(total)
    }

    /// Makes room for the ciphertext of `count` plaintext bytes, so a large write does not grow
    /// the output buffer record by record.
    public func reserveCiphertext(forPlaintext count: Int) {
        bio.reserveOutbound(count + (count / 16384 + 1) * 32)
    }

    /// Encrypts `buffer`'s readable bytes; the records go to `takeCiphertext()`.
    ///
    /// Empty buffers are skipped (OpenSSL must never be asked to write zero bytes).
    public func writePlaintext(_ buffer: ByteBuffer) -> TLSError? {
        guard buffer.readableBytes > 0 else { return nil }
        ERR_clear_error()
        return buffer.withUnsafeReadableBytes { bytes -> TLSError? in
            var written = 0
            let rc = SSL_write_ex(ssl, bytes.baseAddress, bytes.count, &written)
            if rc == 1 && written == bytes.count { return nil }
            let errors = OpenSSLError.drain()
            if SSL_get_error(ssl, rc) == SSL_ERROR_ZERO_RETURN { return .writeAfterClose }
            return .connectionFailed(reason: errors.reasons, openssl: errors)
        }
    }

    /// Sends close_notify (or completes the exchange if the peer's has arrived).
    public func shutdown() -> ShutdownResult {
        ERR_clear_error()
        let rc = SSL_shutdown(ssl)
        if rc == 1 { return .complete }
        if rc == 0 { return .sent }
        let code = SSL_get_error(ssl, rc)
        if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE { return .sent }
        let errors = OpenSSLError.drain()
        return .failed(.connectionFailed(reason: errors.reasons, openssl: errors))
    }

    /// What was negotiated; meaningful once the handshake is complete.
    public var sessionInfo: TLSSessionInfo {
        let version = Self.staticName(SSL_get_version(ssl))
        let cipher = SSL_get_current_cipher(ssl).flatMap { SSL_CIPHER_get_name($0) }.map(Self.staticName) ?? ""
        var alpnPointer: UnsafePointer<UInt8>?
        var alpnLength: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &alpnPointer, &alpnLength)
        let alpn = alpnPointer.flatMap { pointer -> String? in
            alpnLength == 0 ? nil : String(decoding: UnsafeBufferPointer(start: pointer, count: Int(alpnLength)), as: UTF8.self)
        }
        let peer = SSL_get0_peer_certificate(ssl).map { CertificateInfo(x509: $0) }
        return TLSSessionInfo(version: version, cipherSuite: cipher, applicationProtocol: alpn, peerCertificate: peer)
    }

    /// OpenSSL's names of versions and cipher suites are constants in the library: each is made
    /// a `String` once and shared by every connection that negotiated it. A name as long as
    /// "TLS_AES_256_GCM_SHA384" is a heap allocation of its own, and every connection keeps its
    /// session's (BENCHMARKS.md, "Memory: where it goes").
    private static func staticName(_ name: UnsafePointer<CChar>) -> String {
        let key = UInt(bitPattern: name)
        return namesLock.withLock {
            if let known = names[key] { return known }
            let made = String(cString: name)
            if names.count < 256 { names[key] = made }
            return made
        }
    }

    private static let namesLock = Lock()
    nonisolated(unsafe) private static var names: [UInt: String] = [:]

    // MARK: Errors a person can act on

    private func handshakeError(_ code: Int32) -> TLSError {
        let errors = OpenSSLError.drain()
        let verifyResult = Int(SSL_get_verify_result(ssl))
        if context.configuration.role == .client && verifyResult != Int(X509_V_OK) {
            let reason = String(cString: X509_verify_cert_error_string(verifyResult))
            return .certificateVerifyFailed(code: verifyResult, reason: reason, hint: verifyHint(verifyResult))
        }
        guard let first = errors.first else {
            return .handshakeFailed(reason: "the peer closed the connection", hint: nil, openssl: [])
        }
        let reason = first.reason
        return .handshakeFailed(reason: reason, hint: Self.hint(forReason: reason, role: context.configuration.role), openssl: errors)
    }

    private func verifyHint(_ code: Int) -> String {
        switch Int32(code) {
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT,
             X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
             X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
            return "is the server's CA in --ca?"
        case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
            let expected = serverName ?? "the name you connected to"
            if let names = peerCertificateNames(), !names.isEmpty {
                return "the server's certificate is for \(names.joined(separator: ", ")), not \(expected)"
            }
            return "the server's certificate is not for \(expected)"
        case X509_V_ERR_CERT_HAS_EXPIRED:
            if let info = rejectedCertificate {
                return "the server's certificate expired on \(CertificateInfo.formatDate(info.notAfter)); its operator must renew it"
            }
            return "the server's certificate has expired; its operator must renew it"
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return "the server's certificate is not valid yet; check this machine's clock"
        default:
            return "the server's certificate chain is not acceptable; check the server's certificate and --ca"
        }
    }

    private func peerCertificateNames() -> [String]? {
        if let rejected = rejectedCertificate { return rejected.names }
        if let peer = SSL_get0_peer_certificate(ssl) { return CertificateInfo(x509: peer).names }
        if let chain = SSL_get_peer_cert_chain(ssl), OPENSSL_sk_num(chain) > 0,
           let leaf = OPENSSL_sk_value(chain, 0) {
            return CertificateInfo(x509: OpaquePointer(leaf)).names
        }
        return nil
    }

    /// A sentence that turns OpenSSL's reason into something to do.
    static func hint(forReason reason: String, role: TLSConfiguration.Role) -> String? {
        let peer = role == .server ? "the client" : "the server"
        switch reason {
        case "unsupported protocol":
            return "\(peer) offers only TLS versions this side refuses (SecureChat needs TLS 1.2 or newer); update \(peer) or turn on TLS 1.2 in it"
        case "tlsv1 alert protocol version":
            return "\(peer) refused every TLS version this side offers"
        case "no shared cipher", "sslv3 alert handshake failure", "no suitable signature algorithm":
            return "\(peer) offers no cipher suite of Mozilla's intermediate profile (ECDHE with AES-GCM or ChaCha20)"
        case "wrong version number", "packet length too long", "http request", "https proxy request", "record layer failure":
            return "\(peer) is not speaking TLS; is it using the TLS port with TLS turned on?"
        case "tlsv1 alert unknown ca", "sslv3 alert bad certificate", "sslv3 alert certificate unknown":
            return "\(peer) does not trust this side's certificate; give it the CA file (chat-client --ca, or the IRC client's CA setting)"
        case "peer did not return a certificate":
            return "the client sent no certificate, but this server requires one signed by its client CA"
        default:
            return nil
        }
    }
}

/// Verify callback: keeps OpenSSL's verdict, and remembers the leaf certificate that failed so
/// the error message can describe it (OpenSSL does not keep a rejected peer certificate).
private func recordRejectedCertificate(_ preverify: Int32, _ store: OpaquePointer?) -> Int32 {
    guard preverify == 0, let store, X509_STORE_CTX_get_error_depth(store) == 0,
          let ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()),
          let engineData = SSL_get_ex_data(OpaquePointer(ssl), 0),
          let certificate = X509_STORE_CTX_get_current_cert(store)
    else { return preverify }
    let engine = Unmanaged<TLSEngine>.fromOpaque(engineData).takeUnretainedValue()
    if engine.rejectedCertificate == nil {
        engine.rejectedCertificate = CertificateInfo(x509: certificate)
    }
    return preverify
}

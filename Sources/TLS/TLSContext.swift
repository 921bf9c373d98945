import COpenSSL

#if canImport(Glibc)
import Glibc
#endif

/// A checked, ready-to-use OpenSSL context (`SSL_CTX*`) built from a `TLSConfiguration`.
///
/// Building one reads files and so blocks: do it at start-up, on reload or on a thread pool, never
/// on an event loop. Every problem is reported as a `TLSError` naming the file, with OpenSSL's
/// reason and what to do. The context is immutable after `init` and OpenSSL locks it internally,
/// so one context serves every connection on every event loop.
public final class TLSContext: @unchecked Sendable {
    let ctx: OpaquePointer
    /// The configuration this context was built from.
    public let configuration: TLSConfiguration
    /// The certificate this side presents (leaf first), if any.
    public let certificateChain: [Certificate]
    /// ALPN protocols laid out as [total length][wire format...], kept alive for the server's
    /// selection callback, which receives a pointer to the wire format and reads the byte before it.
    private let alpnWire: UnsafeMutableRawBufferPointer?

    /// Builds and checks a context.
    ///
    /// - Parameters:
    ///   - configuration: what to build.
    ///   - now: seconds since 1970 used to check certificate validity (injected by tests).
    public init(configuration: TLSConfiguration, now: Int? = nil) throws(TLSError) {
        self.configuration = configuration
        let method = configuration.role == .server ? TLS_server_method() : TLS_client_method()
        guard let ctx = SSL_CTX_new(method) else {
            throw .openSSLFailure(operation: "create an SSL context", openssl: OpenSSLError.drain())
        }
        self.ctx = ctx
        var wire: [UInt8] = []
        for name in configuration.applicationProtocols {
            let bytes = Array(name.utf8)
            wire.append(UInt8(truncatingIfNeeded: bytes.count))
            wire.append(contentsOf: bytes)
        }
        if wire.isEmpty || wire.count > 255 {
            alpnWire = nil
        } else {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: wire.count + 1, alignment: 1)
            buffer[0] = UInt8(wire.count)
            UnsafeMutableRawBufferPointer(rebasing: buffer[1...]).copyBytes(from: wire)
            alpnWire = buffer
        }
        var chain: [Certificate] = []
        do throws(TLSError) {
            try Self.validateALPN(configuration.applicationProtocols)
            try Self.applyPolicy(ctx, configuration)
            chain = try Self.loadIdentity(ctx, configuration, now: now ?? Int(time(nil)))
            try Self.loadTrust(ctx, configuration)
            Self.installALPN(ctx, configuration, alpnWire)
        } catch {
            SSL_CTX_free(ctx)
            alpnWire?.deallocate()
            throw error
        }
        certificateChain = chain
    }

    deinit {
        SSL_CTX_free(ctx)
        alpnWire?.deallocate()
    }

    private static func validateALPN(_ names: [String]) throws(TLSError) {
        for name in names where name.utf8.isEmpty || name.utf8.count > 255 {
            throw .invalidConfiguration("ALPN protocol name '\(name)' must be 1 to 255 bytes long")
        }
        if names.reduce(0, { $0 + 1 + $1.utf8.count }) > 255 {
            throw .invalidConfiguration("the ALPN protocol list must fit in 255 bytes; name fewer protocols")
        }
    }

    private static func applyPolicy(_ ctx: OpaquePointer, _ configuration: TLSConfiguration) throws(TLSError) {
        var options = copenssl_SSL_OP_ALL() | copenssl_SSL_OP_NO_COMPRESSION() | copenssl_SSL_OP_NO_RENEGOTIATION()
        if !configuration.sessionTickets { options |= copenssl_SSL_OP_NO_TICKET() }
        SSL_CTX_set_options(ctx, options)
        // Release the read and write buffers whenever they are empty: idle connections stay small.
        copenssl_SSL_CTX_set_mode(ctx, Int(SSL_MODE_RELEASE_BUFFERS))
        let minimum = configuration.minimumVersion == .tls13 ? TLS1_3_VERSION : TLS1_2_VERSION
        guard copenssl_SSL_CTX_set_min_proto_version(ctx, minimum) == 1,
              copenssl_SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) == 1,
              SSL_CTX_set_cipher_list(ctx, TLSConfiguration.intermediateCiphers) == 1,
              SSL_CTX_set_ciphersuites(ctx, TLSConfiguration.tls13CipherSuites) == 1,
              copenssl_SSL_CTX_set1_groups_list(ctx, TLSConfiguration.groups) == 1
        else {
            throw .openSSLFailure(operation: "apply the cipher policy", openssl: OpenSSLError.drain())
        }
        if configuration.role == .server && !configuration.sessionTickets {
            SSL_CTX_set_num_tickets(ctx, 0)
            copenssl_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
        }
        // Never prompt for a passphrase on the terminal.
        SSL_CTX_set_default_passwd_cb(ctx) { _, _, _, _ in 0 }
    }

    private static func loadIdentity(_ ctx: OpaquePointer, _ configuration: TLSConfiguration, now: Int) throws(TLSError) -> [Certificate] {
        switch (configuration.certificateChainFile, configuration.privateKeyFile) {
        case (nil, nil):
            if configuration.role == .server {
                throw .invalidConfiguration("a server needs a certificate chain file and a private key file")
            }
            return []
        case (.some, nil), (nil, .some):
            throw .invalidConfiguration("a certificate chain file and a private key file go together; name both")
        case let (chainPath?, keyPath?):
            let bytes = try SecretFile.read(chainPath, what: "certificate chain")
            let chain = Certificate.parse(pem: bytes)
            guard let leaf = chain.first else {
                throw .notPEM(what: "certificate chain", path: chainPath, openssl: OpenSSLError.drain())
            }
            ERR_clear_error()
            let info = leaf.info
            if info.notAfter < now {
                throw .certificateExpired(
                    path: chainPath, subject: info.subject, notAfter: CertificateInfo.formatDate(info.notAfter))
            }
            if info.notBefore > now {
                throw .certificateNotYetValid(
                    path: chainPath, subject: info.subject, notBefore: CertificateInfo.formatDate(info.notBefore))
            }
            let key = try PrivateKey.load(pemFile: keyPath)
            guard SSL_CTX_use_certificate_chain_file(ctx, chainPath) == 1 else {
                throw .notPEM(what: "certificate chain", path: chainPath, openssl: OpenSSLError.drain())
            }
            guard SSL_CTX_use_PrivateKey(ctx, key.pkey) == 1, SSL_CTX_check_private_key(ctx) == 1 else {
                throw .keyMismatch(certificatePath: chainPath, keyPath: keyPath, openssl: OpenSSLError.drain())
            }
            return chain
        }
    }

    private static func loadTrust(_ ctx: OpaquePointer, _ configuration: TLSConfiguration) throws(TLSError) {
        switch configuration.role {
        case .server:
            guard let caPath = configuration.clientCAFile else {
                if configuration.acceptsAnyClientCertificate {
                    // Verification of the chain is skipped on purpose (see the setting).
                    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE) { _, _ in 1 }
                    let sessionContext = Array("securechat".utf8)
                    SSL_CTX_set_session_id_context(ctx, sessionContext, UInt32(sessionContext.count))
                }
                return
            }
            _ = try SecretFile.read(caPath, what: "client CA")
            guard SSL_CTX_load_verify_locations(ctx, caPath, nil) == 1,
                  let names = SSL_load_client_CA_file(caPath)
            else {
                throw .notPEM(what: "client CA", path: caPath, openssl: OpenSSLError.drain())
            }
            SSL_CTX_set_client_CA_list(ctx, names)
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
            let sessionContext = Array("securechat".utf8)
            SSL_CTX_set_session_id_context(ctx, sessionContext, UInt32(sessionContext.count))
        case .client:
            if configuration.verification == .none {
                SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
                return
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
            let (useSystemStore, caFile): (Bool, String?)
            switch configuration.trust {
            case .system: (useSystemStore, caFile) = (true, nil)
            case let .caFile(path): (useSystemStore, caFile) = (false, path)
            case let .systemAndCAFile(path): (useSystemStore, caFile) = (true, path)
            }
            if useSystemStore {
                guard SSL_CTX_set_default_verify_paths(ctx) == 1 else {
                    throw .openSSLFailure(operation: "load the system trust store", openssl: OpenSSLError.drain())
                }
            }
            if let caFile {
                let bytes = try SecretFile.read(caFile, what: "CA certificate")
                guard !Certificate.parse(pem: bytes).isEmpty,
                      SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1
                else {
                    throw .notPEM(what: "CA certificate", path: caFile, openssl: OpenSSLError.drain())
                }
                ERR_clear_error()
            }
        }
    }

    private static func installALPN(_ ctx: OpaquePointer, _ configuration: TLSConfiguration, _ alpnWire: UnsafeMutableRawBufferPointer?) {
        guard let alpnWire else { return }
        let wire = alpnWire.baseAddress! + 1
        switch configuration.role {
        case .client:
            // Returns 0 on success (inverted convention).
            _ = SSL_CTX_set_alpn_protos(ctx, wire.assumingMemoryBound(to: UInt8.self), UInt32(alpnWire.count - 1))
        case .server:
            SSL_CTX_set_alpn_select_cb(ctx, { _, out, outlen, client, clientLength, arg in
                guard let arg, let out, let outlen, let client else { return SSL_TLSEXT_ERR_NOACK }
                let wire = arg.assumingMemoryBound(to: UInt8.self)
                let count = UInt32(wire[-1])  // the total length is stored just before the list
                var selected: UnsafeMutablePointer<UInt8>?
                var selectedLength: UInt8 = 0
                let result = SSL_select_next_proto(
                    &selected, &selectedLength, wire, count, client, clientLength)
                guard result == OPENSSL_NPN_NEGOTIATED, let selected else { return SSL_TLSEXT_ERR_NOACK }
                out.pointee = UnsafePointer(selected)
                outlen.pointee = selectedLength
                return SSL_TLSEXT_ERR_OK
            }, wire)
        }
    }

}

import Foundation
import Testing
import TLS

/// Each configuration problem is refused with the file's path, OpenSSL's reason and what to do.
@Suite struct TLSContextTests {
    let pki = TestPKI.shared

    private func serverError(cert: String, key: String, now: Int? = nil) -> TLSError? {
        do {
            _ = try TLSContext(configuration: .server(certificateChainFile: cert, privateKeyFile: key), now: now)
            return nil
        } catch {
            return error
        }
    }

    @Test func validServerAndClientContexts() throws {
        let server = try pki.serverContext()
        #expect(server.certificateChain.first?.info.names == ["localhost", "127.0.0.1", "::1"])
        _ = try pki.clientContext()
        _ = try pki.clientContext(trust: .system)
        _ = try pki.clientContext(trust: .systemAndCAFile(pki.caPath))
    }

    @Test func missingCertificateFile() {
        let error = serverError(cert: "/nonexistent/server.crt", key: pki.keyPath)
        #expect(error == .fileMissing(what: "certificate chain", path: "/nonexistent/server.crt"))
        #expect(error!.description.contains("/nonexistent/server.crt does not exist"))
    }

    @Test func unreadableFileIsADirectory() {
        let error = serverError(cert: pki.directory, key: pki.keyPath)
        guard case .fileUnreadable(_, let path, let reason)? = error else {
            Issue.record("expected fileUnreadable, got \(String(describing: error))")
            return
        }
        #expect(path == pki.directory && reason == "not a regular file")
    }

    @Test func notPEM() throws {
        let path = pki.directory + "/garbage.crt"
        try Data("this is not a certificate\n".utf8).write(to: URL(fileURLWithPath: path))
        let error = serverError(cert: path, key: pki.keyPath)
        guard case .notPEM(_, let errorPath, _)? = error else {
            Issue.record("expected notPEM, got \(String(describing: error))")
            return
        }
        #expect(errorPath == path)
        #expect(error!.description.contains("-----BEGIN"))
    }

    @Test func keyDoesNotMatchCertificate() throws {
        let other = try pki.issue("other", names: ["localhost"])
        let error = serverError(cert: pki.certificatePath, key: other.key)
        guard case .keyMismatch(let cert, let key, let openssl)? = error else {
            Issue.record("expected keyMismatch, got \(String(describing: error))")
            return
        }
        #expect(cert == pki.certificatePath && key == other.key)
        #expect(openssl.contains { $0.reason == "key values mismatch" })
        #expect(error!.description.contains("does not match certificate"))
    }

    @Test func keyReadableByOthersIsRefused() throws {
        let issued = try pki.issue("loose", names: ["localhost"])
        chmod(issued.key, 0o644)
        let error = serverError(cert: issued.cert, key: issued.key)
        #expect(error == .keyPermissions(path: issued.key, mode: 0o100644))
        #expect(error!.description.contains("chmod 600 \(issued.key)"))
    }

    @Test func expiredCertificate() throws {
        let issued = try pki.issue("expired", names: ["localhost"], validFrom: -10 * 86400, validFor: 86400)
        let error = serverError(cert: issued.cert, key: issued.key)
        guard case .certificateExpired(let path, let subject, _)? = error else {
            Issue.record("expected certificateExpired, got \(String(describing: error))")
            return
        }
        #expect(path == issued.cert && subject.contains("CN=localhost"))
        #expect(error!.description.contains("renew it"))
    }

    @Test func certificateNotYetValidUsesTheInjectedClock() throws {
        let issued = try pki.issue("future", names: ["localhost"], validFrom: -60, validFor: 86400)
        let error = serverError(cert: issued.cert, key: issued.key, now: Int(Date().timeIntervalSince1970) - 3600)
        guard case .certificateNotYetValid? = error else {
            Issue.record("expected certificateNotYetValid, got \(String(describing: error))")
            return
        }
    }

    @Test func encryptedKeyIsRefusedWithoutPrompting() async throws {
        let path = pki.directory + "/encrypted.key"
        let process = try Subprocess(["openssl", "pkey", "-in", pki.keyPath, "-aes256", "-passout", "pass:secret", "-out", path])
        #expect(await process.waitForExit() == 0)
        chmod(path, 0o600)
        let error = serverError(cert: pki.certificatePath, key: path)
        #expect(error == .encryptedKey(path: path))
    }

    @Test func serverWithoutCertificate() {
        var configuration = TLSConfiguration.client()
        configuration.role = .server
        #expect(throws: TLSError.invalidConfiguration("a server needs a certificate chain file and a private key file")) {
            try TLSContext(configuration: configuration)
        }
    }

    @Test func missingCAFileForClient() {
        #expect(throws: TLSError.fileMissing(what: "CA certificate", path: "/nonexistent/ca.crt")) {
            try TLSContext(configuration: .client(trust: .caFile("/nonexistent/ca.crt")))
        }
    }

    @Test func developmentCertificatesAreValidAndKeysPrivate() async throws {
        let directory = NSTemporaryDirectory() + "securechat-devcerts-\(UUID().uuidString)"
        let certs = DevelopmentCertificates(directory: directory)
        let info = try certs.create(extraNames: ["chat.example.test", "192.0.2.7"])
        #expect(info.dnsNames == ["localhost", "chat.example.test"])
        #expect(info.ipAddresses == ["127.0.0.1", "::1", "192.0.2.7"])
        #expect(!info.isCA)
        for (path, mode) in [(certs.caKeyPath, 0o600), (certs.keyPath, 0o600), (certs.caCertificatePath, 0o644), (certs.certificatePath, 0o644)] {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.posixPermissions] as? Int) == mode, "\(path)")
        }
        let ca = try Certificate.load(pemFile: certs.caCertificatePath)[0].info
        #expect(ca.isCA)
        let verify = try Subprocess(["openssl", "verify", "-CAfile", certs.caCertificatePath, certs.certificatePath])
        #expect(await verify.waitForExit() == 0)
        #expect(verify.text.contains("OK"))

        // A second run reuses the CA and issues a new leaf.
        let again = try certs.create()
        #expect(again.sha256Fingerprint != info.sha256Fingerprint)
        #expect(try Certificate.load(pemFile: certs.caCertificatePath)[0].info == ca)
        try? FileManager.default.removeItem(atPath: directory)
    }
}

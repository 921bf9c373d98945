import ChatAuth
import ChatSupport
import ChatTesting
import Foundation
import Testing
import TLS
@testable import ChatClient

/// Logging in with a self-signed client certificate over real TLS (SASL EXTERNAL): no password,
/// no hashing; only a certificate registered with the account is accepted.
@Suite struct ClientCertificateTests {
    /// A new self-signed certificate and key in a fresh folder; returns their paths and fingerprint.
    static func makeCertificate() throws -> (certificate: String, key: String, fingerprint: String) {
        let folder = NSTemporaryDirectory() + "securechat-clientcert-\(UUID().uuidString)"
        try SecretFile.makeDirectory(folder, mode: 0o700)
        let (certificate, key) = try ClientCertificate.makeSelfSigned(commonName: "alice")
        try SecretFile.writeAtomically(Array(key.pem().utf8), to: folder + "/client.key", mode: 0o600)
        try SecretFile.writeAtomically(Array(certificate.pem().utf8), to: folder + "/client.crt", mode: 0o644)
        return (folder + "/client.crt", folder + "/client.key", ClientCertificate.normalizedFingerprint(certificate.info.sha256Fingerprint)!)
    }

    func options(_ server: TestServer, _ identity: (certificate: String, key: String, fingerprint: String), account: String = "alice") -> ChatClientOptions {
        var options = ChatClientOptions(host: "localhost", port: server.port, account: account, password: Password(bytes: []), trust: .caFile(server.caPath))
        options.clientCertificate = (identity.certificate, identity.key)
        return options
    }

    @Test func aRegisteredCertificateLogsInWithoutAPassword() async throws {
        let server = try await TestServer.start(accounts: [("alice", "alice password")])
        let identity = try Self.makeCertificate()
        try server.store.update { try $0.modify("alice") { $0.certificates = [identity.fingerprint] } }
        #expect(await waitUntil { server.server.directory.lookup(certificate: identity.fingerprint) != nil })  // the server's watcher saw it
        let connection = try await ChatConnection.connect(options(server, identity))
        #expect(connection.nick == "alice")
        #expect(server.logs.contains("logged in account=alice"))
        await connection.quit()
        await server.stop()
    }

    @Test func anUnregisteredCertificateIsRefusedLikeAWrongPassword() async throws {
        let server = try await TestServer.start(accounts: [("alice", "alice password")])
        let identity = try Self.makeCertificate()
        await #expect(throws: ChatClientError.wrongPassword) { _ = try await ChatConnection.connect(options(server, identity)) }
        #expect(server.logs.all.contains { $0.contains("certificate login failed: invalidCredentials") && $0.contains("fingerprint=\(identity.fingerprint)") })
        await server.stop()
    }

    @Test func aCertificateOfALockedAccountIsRefused() async throws {
        let server = try await TestServer.start(accounts: [("alice", "alice password")])
        let identity = try Self.makeCertificate()
        try server.store.update { try $0.modify("alice") { $0.certificates = [identity.fingerprint]; $0.locked = true } }
        #expect(await waitUntil { server.server.directory.lookup(certificate: identity.fingerprint) != nil })
        await #expect(throws: ChatClientError.self) { _ = try await ChatConnection.connect(options(server, identity)) }
        await server.stop()
    }
}

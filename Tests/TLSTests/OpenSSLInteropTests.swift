import Foundation
import NIOCore
import NIOPosix
import Testing
import TLS

/// Our server against `openssl s_client`, our client against `openssl s_server`: peers we did not write.
@Suite struct OpenSSLInteropTests {
    let pki = TestPKI.shared

    @Test(arguments: ["-tls1_3", "-tls1_2"])
    func ourServerWithOpenSSLClient(version: String) async throws {
        let server = try await EchoServer(context: pki.serverContext())
        let client = try Subprocess([
            "openssl", "s_client", "-connect", "127.0.0.1:\(server.port)", version,
            "-CAfile", pki.caPath, "-verify_return_error", "-verify_hostname", "localhost",
            "-servername", "localhost", "-quiet", "-no_ign_eof",
        ])
        defer { client.stop() }
        client.write("hello from s_client\n")
        #expect(await client.waitFor("hello from s_client"), "\(client.text)")
        client.closeInput()
        #expect(await client.waitForExit() == 0)
        #expect(client.text.contains("verify return:1"))
        try await server.stop()
    }

    @Test(arguments: [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")])
    func ourClientWithOpenSSLServer(flag: String, expected: String) async throws {
        var server: Subprocess?
        var port = 0
        for _ in 0..<3 {
            port = try freePort()
            let candidate = try Subprocess([
                "openssl", "s_server", "-accept", "127.0.0.1:\(port)", flag, "-cert", pki.certificatePath,
                "-key", pki.keyPath, "-rev", "-naccept", "1",
            ])
            if await candidate.waitFor("ACCEPT", seconds: 5) { server = candidate; break }
            candidate.stop()
        }
        let openssl = try #require(server)
        defer { openssl.stop() }
        let client = try await TestClient.connect(port: port, context: pki.clientContext())
        let info = try await client.recorder.handshake.futureResult.get()
        #expect(info.version == expected)
        #expect(info.peerCertificate?.subject.contains("CN=localhost") == true)
        try await client.send("abcdef\n")
        let reply = try await client.recorder.bytes(7, on: client.channel.eventLoop).get()
        #expect(String(buffer: reply) == "fedcba\n")
        try await client.channel.close()
    }

    @Test func clientOfferingOnlyTLS11IsRefused() async throws {
        let server = try await EchoServer(context: pki.serverContext())
        // SECLEVEL=0 lets this OpenSSL client offer TLS 1.1 at all.
        let client = try Subprocess([
            "openssl", "s_client", "-connect", "127.0.0.1:\(server.port)", "-tls1_1",
            "-cipher", "DEFAULT@SECLEVEL=0", "-quiet",
        ])
        defer { client.stop() }
        #expect(await client.waitForExit() != 0)
        let error = await server.errors.wait { "\($0)".contains("unsupported protocol") }
        #expect(error.map { "\($0)" } == "TLS handshake failed: unsupported protocol — the client offers only TLS versions this side refuses (SecureChat needs TLS 1.2 or newer); update the client or turn on TLS 1.2 in it")
        try await server.stop()
    }

    @Test func tls13OnlyServerRefusesTLS12Client() async throws {
        let server = try await EchoServer(context: pki.serverContext(minimum: .tls13))
        let client = try Subprocess(["openssl", "s_client", "-connect", "127.0.0.1:\(server.port)", "-tls1_2", "-quiet"])
        defer { client.stop() }
        #expect(await client.waitForExit() != 0)
        let error = await server.errors.wait { "\($0)".contains("unsupported protocol") }
        #expect(error != nil)
        try await server.stop()
    }
}

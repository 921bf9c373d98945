import NIOCore
import Testing
@testable import TLS

/// The engine on its own: two engines talking through ByteBuffers, no sockets, no event loop.
@Suite struct TLSEngineTests {
    let pki = TestPKI.shared

    /// Moves ciphertext between the two engines until neither has anything to send.
    private func pump(_ a: TLSEngine, _ b: TLSEngine) {
        var moved = true
        while moved {
            moved = false
            if let bytes = a.takeCiphertext() { b.receive(bytes); moved = true }
            if let bytes = b.takeCiphertext() { a.receive(bytes); moved = true }
            if !a.isHandshakeComplete { _ = a.handshake() }
            if !b.isHandshakeComplete { _ = b.handshake() }
        }
    }

    private func connectedPair(minimum: TLSVersion = .tls12, clientMaximumTLS12: Bool = false, alpn: [String] = []) throws -> (client: TLSEngine, server: TLSEngine) {
        let server = try TLSEngine(context: pki.serverContext(minimum: minimum, alpn: alpn))
        let client = try TLSEngine(context: pki.clientContext(alpn: alpn), serverName: "localhost")
        if clientMaximumTLS12 {
            _ = SSL_set_max_proto_version_for_tests(client)
        }
        #expect(client.handshake() == .inProgress)
        pump(client, server)
        return (client, server)
    }

    private func send(_ text: String, from a: TLSEngine, to b: TLSEngine) -> String {
        #expect(a.writePlaintext(ByteBuffer(string: text)) == nil)
        b.receive(a.takeCiphertext()!)
        var out = ByteBuffer()
        #expect(b.readPlaintext(into: &out) == .bytes(text.utf8.count))
        return String(buffer: out)
    }

    @Test func handshakeAndDataBothWaysInMemoryTLS13() throws {
        let (client, server) = try connectedPair(alpn: ["irc", "chat/1"])
        #expect(client.isHandshakeComplete && server.isHandshakeComplete)
        #expect(send("PRIVMSG #lobby :hello\r\n", from: client, to: server) == "PRIVMSG #lobby :hello\r\n")
        #expect(send(":server 001 alice :Welcome\r\n", from: server, to: client) == ":server 001 alice :Welcome\r\n")

        let info = client.sessionInfo
        #expect(info.version == "TLSv1.3")
        #expect(info.cipherSuite.hasPrefix("TLS_AES_") || info.cipherSuite.hasPrefix("TLS_CHACHA20"))
        #expect(info.applicationProtocol == "irc")
        let peer = try #require(info.peerCertificate)
        #expect(peer.subject.contains("CN=localhost"))
        #expect(peer.names == ["localhost", "127.0.0.1", "::1"])
        let onDisk = try Certificate.load(pemFile: pki.certificatePath)[0].info
        #expect(peer.sha256Fingerprint == onDisk.sha256Fingerprint)
        #expect(peer.sha256Fingerprint.split(separator: ":").count == 32)
        #expect(server.sessionInfo.peerCertificate == nil)
    }

    @Test func handshakeAndDataTLS12() throws {
        let (client, server) = try connectedPair(clientMaximumTLS12: true)
        #expect(client.sessionInfo.version == "TLSv1.2")
        #expect(client.sessionInfo.cipherSuite == "ECDHE-ECDSA-AES128-GCM-SHA256")
        #expect(send("ping\r\n", from: client, to: server) == "ping\r\n")
        #expect(send("pong\r\n", from: server, to: client) == "pong\r\n")
    }

    @Test func idleConnectionsKeepNoBuffers() throws {
        let (client, server) = try connectedPair()
        _ = send(String(repeating: "x", count: 40_000), from: client, to: server)
        #expect(client.pendingCiphertextBytes == 0 && client.pendingInputBytes == 0)
        #expect(server.pendingCiphertextBytes == 0 && server.pendingInputBytes == 0)
    }

    @Test func partialRecordsWaitForTheRest() throws {
        let (client, server) = try connectedPair()
        #expect(client.writePlaintext(ByteBuffer(string: "split across reads")) == nil)
        var record = client.takeCiphertext()!
        let head = record.readSlice(length: 7)!
        server.receive(head)
        var out = ByteBuffer()
        #expect(server.readPlaintext(into: &out) == .bytes(0))
        server.receive(record)
        #expect(server.readPlaintext(into: &out) == .bytes(18))
        #expect(String(buffer: out) == "split across reads")
    }

    @Test func closeNotifyIsReportedAsClean() throws {
        let (client, server) = try connectedPair()
        #expect(client.shutdown() == .sent)
        server.receive(client.takeCiphertext()!)
        var out = ByteBuffer()
        #expect(server.readPlaintext(into: &out) == .closed(0))
        #expect(server.shutdown() == .complete)
    }

    @Test func writesOfZeroBytesAreSkipped() throws {
        let (client, _) = try connectedPair()
        #expect(client.writePlaintext(ByteBuffer()) == nil)
        #expect(client.takeCiphertext() == nil)
    }

    @Test func garbageFailsTheHandshakeWithAHint() throws {
        let server = try TLSEngine(context: pki.serverContext())
        server.receive(ByteBuffer(bytes: [0x16, 0x03, 0x01, 0xff, 0xff] + Array(repeating: 0x41, count: 64)))
        guard case let .failed(error) = server.handshake() else {
            Issue.record("garbage was accepted")
            return
        }
        #expect(error.description.hasPrefix("TLS handshake failed:"))
    }

    @Test func verifyingClientNeedsAServerName() throws {
        #expect(throws: TLSError.self) { try TLSEngine(context: pki.clientContext(), serverName: nil) }
    }
}

import COpenSSL

/// Caps a client engine at TLS 1.2 (tests only: the product never lowers the maximum).
func SSL_set_max_proto_version_for_tests(_ engine: TLSEngine) -> Int {
    SSL_ctrl(engine.ssl, SSL_CTRL_SET_MAX_PROTO_VERSION, Int(TLS1_2_VERSION), nil)
}

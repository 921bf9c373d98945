import ChatSupport
import ChatTesting
import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import ChatCluster

/// Cluster tests need PostgreSQL; CI installs it, so there they must run (never skipped).
let postgresPresent = ThrowawayPostgres.isAvailable || ProcessInfo.processInfo.environment["CI"] == "true"

@Suite struct SCRAMClientTests {
    /// RFC 7677, section 3: the SCRAM-SHA-256 example exchange.
    @Test func rfc7677Example() throws {
        var client = try SCRAMClient(password: Password("pencil"), nonce: "rOprNGfwEbeRWgbNEkqO", user: "user")
        #expect(String(decoding: client.firstMessage(), as: UTF8.self) == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        let final = try client.finalMessage(serverFirst: Array("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".utf8))
        #expect(String(decoding: final, as: UTF8.self) == "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        try client.verify(serverFinal: Array("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8))
        #expect(throws: PostgresError.self) { try client.verify(serverFinal: Array("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8)) }
    }

    @Test func aNonceThatDoesNotExtendOursIsRefused() throws {
        var client = try SCRAMClient(password: Password("pencil"), nonce: "abc")
        #expect(throws: PostgresError.self) { _ = try client.finalMessage(serverFirst: Array("r=xyz123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".utf8)) }
        #expect(throws: PostgresError.self) { _ = try client.finalMessage(serverFirst: Array("r=abc123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10".utf8)) }
    }
}

@Suite struct PostgresMessageTests {
    @Test func backendMessagesNeedTheWholeMessage() throws {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(ascii: "C"))
        buffer.writeInteger(Int32(4 + 9))
        buffer.writeString("SELECT 3")
        var partial = buffer.getSlice(at: 0, length: 8)!
        #expect(try PostgresMessage.Backend.read(from: &partial) == nil)
        buffer.writeInteger(UInt8(0))
        #expect(try PostgresMessage.Backend.read(from: &buffer) == .commandComplete("SELECT 3"))
        #expect(buffer.readableBytes == 0)
    }

    @Test func dataRowsKeepNulls() throws {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(ascii: "D"))
        buffer.writeInteger(Int32(4 + 2 + 4 + 2 + 4))
        buffer.writeInteger(Int16(2))
        buffer.writeInteger(Int32(2))
        buffer.writeString("hi")
        buffer.writeInteger(Int32(-1))
        #expect(try PostgresMessage.Backend.read(from: &buffer) == .dataRow(["hi", nil]))
    }

    @Test func anAbsurdLengthIsAProtocolViolation() {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(ascii: "D"))
        buffer.writeInteger(Int32(2))
        #expect(throws: PostgresError.self) { _ = try PostgresMessage.Backend.read(from: &buffer) }
    }
}

@Suite(.enabled(if: postgresPresent), .serialized) struct PostgresConnectionTests {
    static func settings(_ server: ThrowawayPostgres, password: String? = nil) -> PostgresSettings {
        PostgresSettings(host: "127.0.0.1", port: server.port, user: server.user, database: "postgres",
                         password: Password(password ?? server.password), security: .disable)
    }

    @Test func queriesWithParametersNotificationsAndErrors() async throws {
        let server = try ThrowawayPostgres.start()
        defer { server.stop() }
        let (notifications, continuation) = AsyncStream<String>.makeStream()
        let connection = try await PostgresConnection.connect(Self.settings(server), on: MultiThreadedEventLoopGroup.singleton.next()) { channel, payload in
            continuation.yield("\(channel):\(payload)")
        }.get()
        // Values travel as parameters, never as SQL: a quote in them is just a character.
        let result = try await connection.query("SELECT $1::text AS a, $2::int + 1 AS b, NULL::text AS c", ["it's", "41"]).get()
        #expect(result.columns == ["a", "b", "c"])
        #expect(result.rows == [["it's", "42", nil]])
        // An error fails that query only; the connection goes on.
        await #expect(throws: PostgresError.self) { _ = try await connection.query("SELECT * FROM no_such_table").get() }
        let after = try await connection.query("SELECT 1 AS one").get()
        #expect(after.value(0, "one") == "1")
        // Pipelined queries answer in order.
        let futures = (0..<50).map { connection.query("SELECT $1::int * 2 AS n", ["\($0)"]) }
        for (i, future) in futures.enumerated() { #expect(try await future.get().value(0, "n") == "\(i * 2)") }
        // Each statement is parsed once per connection and prepared under a name of its own.
        func prepared(_ sql: String) async throws -> String? {
            try await connection.query("SELECT count(*) AS n FROM pg_prepared_statements WHERE statement = $1", [sql]).get().value(0, "n")
        }
        #expect(try await prepared("SELECT $1::int * 2 AS n") == "1")
        // A statement that fails when it runs stays prepared; one the server could not parse is not kept.
        await #expect(throws: PostgresError.self) { _ = try await connection.query("SELECT 10 / $1::int AS q", ["0"]).get() }
        #expect(try await connection.query("SELECT 10 / $1::int AS q", ["2"]).get().value(0, "q") == "5")
        #expect(try await prepared("SELECT 10 / $1::int AS q") == "1")
        #expect(try await prepared("SELECT * FROM no_such_table") == "0")
        await #expect(throws: PostgresError.self) { _ = try await connection.query("SELECT * FROM no_such_table").get() }
        _ = try await connection.query("LISTEN securechat_test").get()
        _ = try await connection.query("SELECT pg_notify('securechat_test', $1)", ["hello"]).get()
        var iterator = notifications.makeAsyncIterator()
        #expect(await iterator.next() == "securechat_test:hello")
        try await connection.close().get()
    }

    @Test func aWrongPasswordSaysSo() async throws {
        let server = try ThrowawayPostgres.start()
        defer { server.stop() }
        do {
            _ = try await PostgresConnection.connect(Self.settings(server, password: "not the password"), on: MultiThreadedEventLoopGroup.singleton.next()).get()
            Issue.record("logged in with a wrong password")
        } catch let error as PostgresError {
            guard case .authentication = error else { Issue.record("expected an authentication error, got \(error)"); return }
            #expect("\(error)".contains("password"))
        }
    }

    /// TLS through the project's own layer: the server's certificate is verified against the CA
    /// given; an unknown CA or a server without TLS is refused with the reason.
    @Test func tlsIsVerified() async throws {
        let certs = TestServer.certificates
        let server = try ThrowawayPostgres.start(tls: (certs.certificatePath, certs.keyPath))
        defer { server.stop() }
        var settings = Self.settings(server)
        settings.security = .verifyFull(.caFile(certs.caCertificatePath))
        let connection = try await PostgresConnection.connect(settings, on: MultiThreadedEventLoopGroup.singleton.next()).get()
        let ssl = try await connection.query("SELECT ssl::text AS ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").get()
        #expect(ssl.value(0, "ssl") == "true")
        try await connection.close().get()

        settings.security = .verifyFull(.system)
        do {
            _ = try await PostgresConnection.connect(settings, on: MultiThreadedEventLoopGroup.singleton.next()).get()
            Issue.record("a certificate from an unknown CA was accepted")
        } catch let error as PostgresError {
            guard case .tls = error else { Issue.record("expected a TLS error, got \(error)"); return }
        }
        let plain = try ThrowawayPostgres.start()
        defer { plain.stop() }
        var noTLS = Self.settings(plain)
        noTLS.security = .verifyFull(.caFile(certs.caCertificatePath))
        do {
            _ = try await PostgresConnection.connect(noTLS, on: MultiThreadedEventLoopGroup.singleton.next()).get()
            Issue.record("a server without TLS was accepted")
        } catch let error as PostgresError {
            #expect("\(error)".contains("does not offer TLS"))
        }
    }

    @Test func noServerIsAClearConnectError() async throws {
        let settings = PostgresSettings(host: "127.0.0.1", port: FreePort.loopback(), user: "x", database: "x", security: .disable)
        await #expect(throws: PostgresError.self) { _ = try await PostgresConnection.connect(settings, on: MultiThreadedEventLoopGroup.singleton.next()).get() }
    }
}

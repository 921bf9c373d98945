import ChatTesting
import Foundation
import IRC
import Testing
@testable import ChatServer

/// IRC over secure WebSocket and the app's files, on the same port as IRC over TLS, through a
/// running server and a hand-written WebSocket client (the browser test is WebAppBrowserTests).
@Suite struct WebSocketEndToEndTests {

    @Test func aWebSocketClientLogsInAndChatsWithAnIRCClient() async throws {
        let server = try await TestServer.start(accounts: [alice, bob])
        let web = try await TestWebSocketClient.connect(port: server.port, caPath: server.caPath, origin: .own,
                                                        protocols: ["binary.ircv3.net", "text.ircv3.net"])
        let head = try await web.responseHead()
        #expect(head.hasPrefix("HTTP/1.1 101"), "\(head)")
        #expect(head.lowercased().contains("sec-websocket-protocol: text.ircv3.net"), "text is chosen when both are offered: \(head)")
        #expect(head.lowercased().components(separatedBy: "upgrade: websocket").count == 2, "one Upgrade header: \(head)")
        try await web.register(account: alice.0, password: alice.1)
        try await web.send("JOIN #web")
        try await web.next("366")
        let irc = try await server.loggedIn(bob.0, bob.1)
        try await irc.send("JOIN #web")
        try await irc.next("366")

        try await irc.send("PRIVMSG #web :from a TLS client")
        let relayed = try await web.next("PRIVMSG")
        #expect(relayed.parameters == ["#web", "from a TLS client"])
        try await web.send("PRIVMSG #web :from a browser")
        #expect(try await irc.next("PRIVMSG").parameters == ["#web", "from a browser"])
        // One IRC line per frame, text frames, no CR LF.
        let frames = web.frames.filter { $0.opcode == 1 }
        #expect(!frames.isEmpty && frames.allSatisfy { !$0.payload.contains(13) && !$0.payload.contains(10) && $0.fin })
        #expect(server.logs.contains("logged in account=alice address=127.0.0.1"))
        await server.stop()
    }

    @Test func binarySubprotocolSendsBinaryFrames() async throws {
        let server = try await TestServer.start(accounts: [alice, bob])
        let web = try await TestWebSocketClient.connect(port: server.port, caPath: server.caPath, protocols: ["binary.ircv3.net"])
        #expect(try await web.responseHead().lowercased().contains("sec-websocket-protocol: binary.ircv3.net"))
        try await web.register(account: alice.0, password: alice.1)
        try await web.send("JOIN #bin")
        try await web.next("366")
        // Relayed messages are framed by the relay, not the bridge: binary too, one per frame.
        let irc = try await server.loggedIn(bob.0, bob.1)
        try await irc.send("JOIN #bin")
        try await irc.next("366")
        try await irc.send("PRIVMSG #bin :first")
        try await irc.send("PRIVMSG #bin :second")
        #expect(try await web.next("PRIVMSG").parameters == ["#bin", "first"])
        #expect(try await web.next("PRIVMSG").parameters == ["#bin", "second"])
        #expect(web.frames.allSatisfy { $0.opcode == 2 && $0.fin && !$0.payload.contains(10) }, "\(web.frames.map(\.opcode))")
        await server.stop()
    }

    @Test func aPageFromAnotherOriginIsRefused() async throws {
        let server = try await TestServer.start(accounts: [alice])
        let foreign = try await TestWebSocketClient.connect(port: server.port, caPath: server.caPath, origin: .value("https://evil.example"))
        let head = try await foreign.responseHead()
        #expect(head.hasPrefix("HTTP/1.1 403"), "\(head)")
        #expect(await waitUntil { String(decoding: foreign.rest, as: UTF8.self).contains("https://evil.example is not in web.allowedOrigins") })
        // The right Origin but no usable key: told what the handshake lacks, not blamed on the Origin.
        let badKey = try await TestWebSocketClient.raw(port: server.port, caPath: server.caPath)
        try await badKey.sendRaw(Array("GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\nOrigin: https://localhost:\(server.port)\r\n\r\n".utf8))
        #expect(try await badKey.responseHead().hasPrefix("HTTP/1.1 400"))
        #expect(await waitUntil { String(decoding: badKey.rest, as: UTF8.self).contains("Sec-WebSocket-Key of 16 bytes") })
        // No Origin at all: refused too, with what to send.
        let bare = try await TestWebSocketClient.connect(port: server.port, caPath: server.caPath, origin: .none)
        #expect(try await bare.responseHead().hasPrefix("HTTP/1.1 403"))
        #expect(await waitUntil { String(decoding: bare.rest, as: UTF8.self).contains("no Origin header") })
        await server.stop()
    }

    @Test func configuredOriginsReplaceTheDefault() async throws {
        let server = try await TestServer.start(accounts: [alice]) { $0.web.allowedOrigins = ["https://chat.example.org"] }
        let allowed = try await TestWebSocketClient.connect(port: server.port, caPath: server.caPath, origin: .value("https://chat.example.org"))
        #expect(try await allowed.responseHead().hasPrefix("HTTP/1.1 101"))
        let own = try await TestWebSocketClient.connect(port: server.port, caPath: server.caPath, origin: .own)
        #expect(try await own.responseHead().hasPrefix("HTTP/1.1 403"))
        await server.stop()
    }

    @Test func lineLimitsPingsAndCloseFollowTheRules() async throws {
        let server = try await TestServer.start(accounts: [alice, bob])
        let web = try await TestWebSocketClient.connect(port: server.port, caPath: server.caPath, origin: .own)
        try await web.register(account: alice.0, password: alice.1)
        let irc = try await server.loggedIn(bob.0, bob.1)
        try await web.send("JOIN #rules")
        try await web.next("366")
        try await irc.send("JOIN #rules")
        try await irc.next("366")

        // An overlong line: 417, as over TLS, and the connection lives on.
        try await web.send("PRIVMSG #rules :" + String(repeating: "x", count: 700))
        try await web.next("417")
        try await web.send("PING still-here")
        #expect(try await web.next("PONG").parameters.last == "still-here")
        // A WebSocket ping gets its pong with the same payload.
        try await web.send(opcode: 9, Array("ws-ping".utf8))
        #expect(try await web.nextFrame("the pong") { $0.opcode == 10 }.text == "ws-ping")
        // A message in fragments is one line.
        try await web.send(opcode: 1, Array("PRIVMSG #rules :in two ".utf8), fin: false)
        try await web.send(opcode: 0, Array("pieces".utf8))
        #expect(try await irc.next("PRIVMSG").parameters.last == "in two pieces")
        // A text frame that is not UTF-8: closed with 1007.
        let broken = try await TestWebSocketClient.connect(port: server.port, caPath: server.caPath)
        try await broken.send(opcode: 1, Array("PING ".utf8) + [0xC3, 0x28])
        #expect(try await broken.nextFrame("the close frame") { $0.opcode == 8 }.closeCode == 1007)
        // A frame far past any line: closed with 1009 (too big).
        try await web.send(opcode: 1, Array(repeating: UInt8(ascii: "y"), count: 40_000))
        let close = try await web.nextFrame("the close frame") { $0.opcode == 8 }
        #expect(close.closeCode == 1009)
        #expect(try await irc.next("QUIT").source?.hasPrefix("alice!") == true)
        await server.stop()
    }

    @Test func theClientsCloseIsAnsweredAndEndsTheSession() async throws {
        let server = try await TestServer.start(accounts: [alice, bob])
        let web = try await TestWebSocketClient.connect(port: server.port, caPath: server.caPath)
        try await web.register(account: alice.0, password: alice.1)
        let irc = try await server.loggedIn(bob.0, bob.1)
        for client in [web] { try await client.send("JOIN #bye"); try await client.next("366") }
        try await irc.send("JOIN #bye")
        try await irc.next("366")
        try await web.send(opcode: 8, [0x03, 0xE8])  // 1000, normal
        #expect(try await web.nextFrame("the answering close") { $0.opcode == 8 }.closeCode == 1000)
        #expect(try await irc.next("QUIT").source?.hasPrefix("alice!") == true)
        #expect(await web.waitUntilClosed())
        await server.stop()
    }

    @Test func shutdownSaysErrorThenCloses() async throws {
        let server = try await TestServer.start(accounts: [alice])
        let web = try await TestWebSocketClient.connect(port: server.port, caPath: server.caPath)
        try await web.register(account: alice.0, password: alice.1)
        await server.stop()
        #expect(try await web.next("ERROR").parameters.last?.contains("shutting down") == true)
        #expect(try await web.nextFrame("the close frame") { $0.opcode == 8 }.closeCode == 1000)
    }

    @Test func theAppIsServedWithItsHeadersAndValidators() async throws {
        let server = try await TestServer.start()
        func request(_ text: String) async throws -> (head: String, body: [UInt8]) {
            let client = try await TestWebSocketClient.raw(port: server.port, caPath: server.caPath)
            try await client.sendRaw(Array(text.utf8))
            let head = try await client.responseHead()
            // A HEAD response announces the length of a body it does not send.
            let length = text.hasPrefix("HEAD") ? 0 : head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].filter { $0 != " " }) } ?? 0
            _ = await waitUntil { client.rest.count >= length || client.isClosed }
            await client.close()
            return (head, client.rest)
        }
        let page = try await request("GET / HTTP/1.1\r\nHost: chat.example.org\r\n\r\n")
        #expect(page.head.hasPrefix("HTTP/1.1 200"))
        for header in ["content-security-policy: default-src 'none'", "strict-transport-security: max-age=", "x-content-type-options: nosniff",
                       "referrer-policy: no-referrer", "content-type: text/html; charset=utf-8", "etag: \""] {
            #expect(page.head.lowercased().contains(header), "\(header) in\n\(page.head)")
        }
        #expect(String(decoding: page.body, as: UTF8.self).contains("<script type=\"module\" src=\"/app.js\">"))
        // No HSTS for localhost or an address: it would pin every port of the name to https.
        for host in ["localhost:8443", "127.0.0.1", "[::1]:21567"] {
            let local = try await request("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n")
            #expect(local.head.hasPrefix("HTTP/1.1 200") && !local.head.lowercased().contains("strict-transport-security"), "\(host): \(local.head)")
        }
        let etag = page.head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("etag:") }!.split(separator: " ").last!
        #expect(try await request("GET / HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: \(etag)\r\n\r\n").head.hasPrefix("HTTP/1.1 304"))
        let zipped = try await request("GET /app.js HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip, br\r\n\r\n")
        #expect(zipped.head.lowercased().contains("content-encoding: gzip") && zipped.body.starts(with: [0x1F, 0x8B]))
        let head = try await request("HEAD /app.css HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(head.head.hasPrefix("HTTP/1.1 200") && head.body.isEmpty && head.head.lowercased().contains("text/css"))
        let missing = try await request("GET /../../etc/passwd HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(missing.head.hasPrefix("HTTP/1.1 404"))
        #expect(try await request("GET /Sources/ HTTP/1.1\r\nHost: localhost\r\n\r\n").head.hasPrefix("HTTP/1.1 404"))
        let post = try await request("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
        #expect(post.head.hasPrefix("HTTP/1.1 405") && post.head.contains("Allow: GET, HEAD"))
        let body = try await request("GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello")
        #expect(body.head.hasPrefix("HTTP/1.1 413"))
        let huge = try await request("GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: \(String(repeating: "z", count: 20_000))\r\n\r\n")
        #expect(huge.head.hasPrefix("HTTP/1.1 4"), "an oversized header is refused: \(huge.head)")
        await server.stop()
    }

    @Test func requestsOnOneConnectionAreRateLimited() async throws {
        let server = try await TestServer.start()
        let client = try await TestWebSocketClient.raw(port: server.port, caPath: server.caPath)
        // More requests at once than the burst: the last are refused with 429 and a reason.
        let many = String(repeating: "GET /icon.svg HTTP/1.1\r\nHost: localhost\r\n\r\n", count: 60)
        try await client.sendRaw(Array(many.utf8))
        #expect(await waitUntil { String(decoding: client.rest, as: UTF8.self).contains("429 Too Many Requests") || client.isClosed })
        #expect(await waitUntil { client.isClosed })
        #expect(String(decoding: client.rest, as: UTF8.self).contains("too many requests on this connection"))
        await server.stop()
    }

    @Test func withTheWebOffTheFirstBytesAreIRC() async throws {
        let server = try await TestServer.start { $0.web.enabled = false }
        let client = try await server.client()
        try await client.send("GET / HTTP/1.1")
        try await client.send("CAP LS 302")
        #expect(try await client.next("CAP").parameters.contains("LS"))
        #expect(!client.received.contains { $0.command.hasPrefix("HTTP") })
        await server.stop()
    }
}

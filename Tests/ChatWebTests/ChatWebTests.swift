import Foundation
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing
@testable import ChatWeb

@Suite struct TransportSnifferTests {
    @Test func httpMethodsAreHTTPAndIRCCommandsAreIRC() {
        for request in ["GET / HTTP/1.1", "HEAD /app.js HTTP/1.1", "POST / HTTP/1.1", "OPTIONS * HTTP/1.1"] {
            #expect(TransportSniffer.classify(Array(request.utf8)) == .http, "\(request)")
        }
        for line in ["CAP LS 302", "NICK alice", "PASS a:b", "USER a 0 * :A", "GETX", "get / HTTP/1.1", "PING x", "\u{16}"] {
            #expect(TransportSniffer.classify(Array(line.utf8)) == .irc, "\(line)")
        }
    }

    @Test func aPrefixOfAMethodWaitsForMore() {
        #expect(TransportSniffer.classify(Array("GE".utf8)) == .undecided)
        #expect(TransportSniffer.classify(Array("OPTIO".utf8)) == .undecided)
        #expect(TransportSniffer.classify(Array("GET".utf8)) == .undecided)
        #expect(TransportSniffer.classify([UInt8]()) == .undecided)
        #expect(TransportSniffer.classify(Array("GET ".utf8)) == .http)
    }

    @Test func anUndecidedConnectionIsClosedAfterItsTimeout() throws {
        let channel = EmbeddedChannel()
        let endpoint = WebEndpoint(allowedOrigins: [], maximumLineBytes: 8705)
        let closed = NIOLockedBool()
        try channel.pipeline.syncOperations.addHandler(TransportSniffer(web: endpoint, timeout: .seconds(30), installIRC: { _ in }, onClose: { closed.set() }))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(string: "GE"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(29))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive && closed.value)
    }

    @Test func ircBytesGoToTheIRCHandlersWithNothingLost() throws {
        let channel = EmbeddedChannel()
        let endpoint = WebEndpoint(allowedOrigins: [], maximumLineBytes: 8705)
        try channel.pipeline.syncOperations.addHandler(TransportSniffer(web: endpoint, timeout: .seconds(30), installIRC: { _ in }))
        try channel.writeInbound(ByteBuffer(string: "CA"))
        try channel.writeInbound(ByteBuffer(string: "P LS 302\r\nNICK a\r\n"))
        var received = ""
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { received += String(buffer: buffer) }
        #expect(received == "CAP LS 302\r\nNICK a\r\n")
        #expect((try? channel.pipeline.syncOperations.handler(type: TransportSniffer.self)) == nil, "the sniffer leaves once it has decided")
    }
}

/// A Bool set once from a handler, read by the test (EmbeddedChannel: one thread).
final class NIOLockedBool: @unchecked Sendable {
    private(set) var value = false
    func set() { value = true }
}

@Suite struct WebSocketIRCBridgeTests {
    /// The frames the bridge wrote (server frames: unmasked), as opcode and payload.
    func frames(_ channel: EmbeddedChannel) throws -> [(opcode: UInt8, payload: [UInt8])] {
        var all: [(UInt8, [UInt8])] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { all += frames(in: buffer) }
        return all
    }

    /// "opcode:payload" for each frame, to compare.
    func described(_ buffer: ByteBuffer) -> [String] {
        frames(in: buffer).map { "\($0.opcode):\(String(decoding: $0.payload, as: UTF8.self))" }
    }

    func frames(in buffer: ByteBuffer) -> [(opcode: UInt8, payload: [UInt8])] {
        var all: [(UInt8, [UInt8])] = []
        var buffer = buffer
        while buffer.readableBytes > 0 {
            let first = buffer.readInteger(as: UInt8.self)!
            #expect(first & 0x80 != 0, "FIN set: one frame per message")
            var length = Int(buffer.readInteger(as: UInt8.self)!)
            #expect(length & 0x80 == 0, "server frames are not masked")
            if length == 126 { length = Int(buffer.readInteger(as: UInt16.self)!) }
            else if length == 127 { length = Int(buffer.readInteger(as: UInt64.self)!) }
            all.append((first & 0x0F, buffer.readBytes(length: length)!))
        }
        return all
    }

    func channel(binary: Bool = false) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(WebSocketIRCBridge(binary: binary))
        return channel
    }

    @Test func serverLinesBecomeOneFramePerLineWithoutCRLF() throws {
        let channel = try channel()
        try channel.writeOutbound(ByteBuffer(string: ":a PRIVMSG #r :one\r\n:a PRIVMSG #r :two\r\n"))
        let written = try frames(channel)
        #expect(written.map(\.opcode) == [1, 1])
        #expect(written.map { String(decoding: $0.payload, as: UTF8.self) } == [":a PRIVMSG #r :one", ":a PRIVMSG #r :two"])
        // A long line: the 16-bit length form.
        try channel.writeOutbound(ByteBuffer(string: String(repeating: "x", count: 300) + "\r\n"))
        #expect(try frames(channel).map(\.payload.count) == [300])
    }

    @Test func binaryModeSendsBinaryFramesAsTheyAre() throws {
        let channel = try channel(binary: true)
        try channel.writeOutbound(ByteBuffer(bytes: Array("PING \u{e9}\r\n".utf8)))
        let written = try frames(channel)
        #expect(written.count == 1 && written[0].opcode == 2 && written[0].payload == Array("PING \u{e9}".utf8))
    }

    @Test func invalidUTF8NeverReachesATextFrame() throws {
        let channel = try channel()
        try channel.writeOutbound(ByteBuffer(bytes: Array("NOTICE x :bad ".utf8) + [0xFF, 0xFE] + Array("\r\n".utf8)))
        #expect(try frames(channel).map { String(decoding: $0.payload, as: UTF8.self) } == ["NOTICE x :bad \u{FFFD}\u{FFFD}"])
    }

    @Test func aTextFrameThatIsNotUTF8ClosesWith1007() throws {
        let channel = try channel()
        try channel.writeInbound(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: [0x50, 0xC3, 0x28])))
        let close = try frames(channel)
        #expect(close.count == 1 && close[0].opcode == 8 && close[0].payload.prefix(2) == [0x03, 0xEF])
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil && !channel.isActive)
        // In binary frames bytes are bytes: the IRC rules for invalid UTF-8 apply after.
        let binary = try self.channel(binary: true)
        try binary.writeInbound(WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(bytes: [0x50, 0xC3, 0x28])))
        #expect(try binary.readInbound(as: ByteBuffer.self) != nil)
    }

    @Test func framesBecomeLinesPingsArePongedAndCloseIsAnswered() throws {
        let channel = try channel()
        try channel.writeInbound(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: "PRIVMSG #r :hi")))
        #expect(try channel.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "PRIVMSG #r :hi\r\n")
        try channel.writeInbound(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer(string: "p")))
        let pong = try frames(channel)
        #expect(pong.count == 1 && pong[0].opcode == 10 && pong[0].payload == Array("p".utf8))
        var code = ByteBuffer()
        code.writeInteger(UInt16(1001))
        try channel.writeInbound(WebSocketFrame(fin: true, opcode: .connectionClose, data: code))
        // Exactly one close frame, with the client's code, though closing passes through the bridge.
        let close = try frames(channel)
        #expect(close.count == 1 && close[0].opcode == 8 && close[0].payload == [0x03, 0xE9])
        #expect(!channel.isActive)
    }

    @Test func aBatchOfLinesBecomesOneFramePerLineInOneBuffer() {
        let batch = ByteBuffer(string: ":a PRIVMSG #r :one\r\n:a PRIVMSG #r :two\r\n")
        let text = WebSocketFraming.frames(of: batch, binary: false, allocator: ByteBufferAllocator())
        #expect(described(text) == ["1::a PRIVMSG #r :one", "1::a PRIVMSG #r :two"])
        // Not UTF-8: a text frame gets U+FFFD (the browser would drop the socket); binary keeps the bytes.
        var bad = ByteBuffer(string: ":a PRIVMSG #r :")
        bad.writeBytes([0xFF, 0x0D, 0x0A])
        #expect(described(WebSocketFraming.frames(of: bad, binary: false, allocator: ByteBufferAllocator())) == ["1::a PRIVMSG #r :\u{FFFD}"])
        #expect(frames(in: WebSocketFraming.frames(of: bad, binary: true, allocator: ByteBufferAllocator())).map(\.payload)
            == [Array(":a PRIVMSG #r :".utf8) + [0xFF]])
    }

    @Test func relaysEnterBelowTheBridgeAndRepliesPassThroughIt() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(WebSocketIRCBridge(binary: true))
        let entry = try #require(WebSocketFraming.relayEntry(in: channel.pipeline.syncOperations))
        #expect(entry.binary)
        // Written from the bridge's context, an already framed relay goes out as it is.
        let framed = WebSocketFraming.frames(of: ByteBuffer(string: ":a PRIVMSG #r :hi\r\n"), binary: true, allocator: channel.allocator)
        entry.context.writeAndFlush(NIOAny(framed), promise: nil)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == framed)
        // A reply written above the bridge is framed by it.
        try channel.writeOutbound(ByteBuffer(string: ":server 001 a :Welcome\r\n"))
        #expect(try frames(channel).map { "\($0.opcode):\(String(decoding: $0.payload, as: UTF8.self))" } == ["2::server 001 a :Welcome"])
        #expect(WebSocketFraming.relayEntry(in: EmbeddedChannel().pipeline.syncOperations) == nil)
    }

    @Test func theUpgradeAnswersWithTheRFCsAcceptHash() {
        // RFC 6455 section 1.3's example.
        #expect(IRCWebSocketUpgrader.accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }
}

@Suite struct WebEndpointTests {
    @Test func textIsChosenFirstAndUnknownProtocolsAreNotAnswered() {
        #expect(WebEndpoint.chooseSubprotocol(["binary.ircv3.net, text.ircv3.net"]) == "text.ircv3.net")
        #expect(WebEndpoint.chooseSubprotocol(["binary.ircv3.net"]) == "binary.ircv3.net")
        #expect(WebEndpoint.chooseSubprotocol(["chat", "superchat"]) == nil)
        #expect(WebEndpoint.chooseSubprotocol([]) == nil)
    }

    @Test func originsCompareWithoutCaseAndNoOriginIsNotABrowser() {
        let endpoint = WebEndpoint(allowedOrigins: ["https://Chat.Example.org"], maximumLineBytes: 8705)
        #expect(endpoint.allows(origin: "https://chat.example.org"))
        #expect(!endpoint.allows(origin: "https://chat.example.org.evil.example"))
        #expect(!endpoint.allows(origin: "http://chat.example.org"))
        #expect(!endpoint.allows(origin: "null"))
        #expect(!endpoint.allows(origin: nil))
    }

    @Test func theCSPAllowsOnlyTheServersOwnSockets() {
        let endpoint = WebEndpoint(allowedOrigins: ["https://chat.example.org", "https://[::1]:6697"], maximumLineBytes: 8705)
        let csp = endpoint.securityHeaders.first { $0.0 == "Content-Security-Policy" }!.1
        #expect(csp.contains("connect-src 'self' wss://chat.example.org;"))
        #expect(!csp.contains("[::1]") && !csp.contains("unsafe") && csp.contains("frame-ancestors 'none'"))
    }

    @Test func theAppsFilesHaveTypesValidatorsAndGzip() throws {
        let assets = WebAssets.app
        #expect(assets.paths == ["/app.css", "/app.js", "/icon.svg", "/index.html", "/irc.js", "/view.js"])
        let page = try #require(assets.asset(for: "/"))
        #expect(page.contentType == "text/html; charset=utf-8" && page.etag.hasPrefix("\"") && page.etag.count == 18)
        let script = try #require(assets.asset(for: "/app.js"))
        let gzipped = try #require(script.gzipped)
        #expect(gzipped.count < script.body.count)
        // The system's gzip reads it back to the same bytes.
        let folder = NSTemporaryDirectory() + "securechat-gzip-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Data(gzipped).write(to: URL(fileURLWithPath: folder + "/app.js.gz"))
        let gunzip = Process()
        gunzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gunzip.arguments = ["-d", folder + "/app.js.gz"]
        try gunzip.run()
        gunzip.waitUntilExit()
        #expect(gunzip.terminationStatus == 0)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/app.js"))) == script.body)
        #expect(assets.asset(for: "/missing.js") == nil && assets.asset(for: "/../index.html") == nil)
    }

    @Test func hstsIsLeftOutForLocalNamesAndAddresses() {
        for host in ["localhost", "LOCALHOST:21567", "dev.localhost", "127.0.0.1", "10.0.0.1:443", "[::1]:21567"] {
            #expect(HTTPFileHandler.isLocalOrAddress(host), "\(host)")
        }
        for host in ["chat.example.org", "chat.example.org:6697", "localhost.example.org", "1.2.3.example"] {
            #expect(!HTTPFileHandler.isLocalOrAddress(host), "\(host)")
        }
    }

    @Test func theAppNeverPutsNetworkTextIntoHTML() throws {
        // The rule from DESIGN.md, checked on the shipped source: no innerHTML, outerHTML,
        // insertAdjacentHTML, document.write or eval anywhere in the app.
        for path in WebAssets.app.paths where path.hasSuffix(".js") {
            let source = String(decoding: WebAssets.app.asset(for: path)!.body, as: UTF8.self)
            for forbidden in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
                #expect(!source.contains(forbidden), "\(path) uses \(forbidden)")
            }
        }
    }
}

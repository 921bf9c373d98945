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
    func channel(binary: Bool = false) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(WebSocketIRCBridge(binary: binary))
        return channel
    }

    @Test func serverLinesBecomeOneFramePerLineWithoutCRLF() throws {
        let channel = try channel()
        try channel.writeOutbound(ByteBuffer(string: ":a PRIVMSG #r :one\r\n:a PRIVMSG #r :two\r\n"))
        let first = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        let second = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(first.opcode == .text && String(buffer: first.data) == ":a PRIVMSG #r :one" && first.fin)
        #expect(String(buffer: second.data) == ":a PRIVMSG #r :two")
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil)
    }

    @Test func binaryModeSendsBinaryFramesAsTheyAre() throws {
        let channel = try channel(binary: true)
        try channel.writeOutbound(ByteBuffer(bytes: Array("PING \u{e9}\r\n".utf8)))
        let frame = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(frame.opcode == .binary && Array(frame.data.readableBytesView) == Array("PING \u{e9}".utf8))
    }

    @Test func invalidUTF8NeverReachesATextFrame() throws {
        let channel = try channel()
        try channel.writeOutbound(ByteBuffer(bytes: Array("NOTICE x :bad ".utf8) + [0xFF, 0xFE] + Array("\r\n".utf8)))
        let frame = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(String(buffer: frame.data) == "NOTICE x :bad \u{FFFD}\u{FFFD}")
    }

    @Test func aTextFrameThatIsNotUTF8ClosesWith1007() throws {
        let channel = try channel()
        try channel.writeInbound(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: [0x50, 0xC3, 0x28])))
        let close = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(close.opcode == .connectionClose && close.data.getInteger(at: close.data.readerIndex, as: UInt16.self) == 1007)
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
        let pong = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(pong.opcode == .pong && String(buffer: pong.data) == "p")
        var code = ByteBuffer()
        code.writeInteger(UInt16(1001))
        try channel.writeInbound(WebSocketFrame(fin: true, opcode: .connectionClose, data: code))
        let close = try #require(try channel.readOutbound(as: WebSocketFrame.self))
        #expect(close.opcode == .connectionClose && close.data.getInteger(at: close.data.readerIndex, as: UInt16.self) == 1001)
        #expect(!channel.isActive)
        // Exactly one close frame, even though closing the channel passes through the bridge.
        #expect(try channel.readOutbound(as: WebSocketFrame.self) == nil)
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

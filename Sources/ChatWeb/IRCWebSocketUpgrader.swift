import ChatSupport
import COpenSSL
import NIOCore
import NIOHTTP1
import NIOWebSocket
import TLS

/// The WebSocket handshake (RFC 6455 section 4.2) for IRC: checks the Origin, the key and the
/// version, answers with the accept hash and the chosen IRCv3 subprotocol, then puts the frame
/// decoder, the bridge and the IRC handlers in the pipeline.
///
/// SwiftNIO's own upgrader would also add its frame encoder, which writes each frame's header and
/// payload separately; the bridge instead writes every line of a relayed batch as frames in one
/// buffer (BENCHMARKS.md, "The web side").
struct IRCWebSocketUpgrader: HTTPServerProtocolUpgrader, Sendable {
    let supportedProtocol = "websocket"
    /// None that the Connection header must name (NIO checks these there); the key and version
    /// are checked below.
    let requiredUpgradeHeaders: [String] = []
    let endpoint: WebEndpoint
    let tlsEvent: TLSEvent?
    let installIRC: @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void

    /// Why an upgrade is not made: the request then goes on to the HTTP handler, which answers it.
    struct Refused: Error {}

    func buildUpgradeResponse(channel: Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        let headers = upgradeRequest.headers
        guard endpoint.allows(origin: headers.first(name: "origin")),
              headers[canonicalForm: "sec-websocket-version"] == ["13"],
              let key = headers.first(name: "sec-websocket-key"),
              Base64.decode(Array(key.utf8), padded: true)?.count == 16 else {
            return channel.eventLoop.makeFailedFuture(Refused())
        }
        var response = initialResponseHeaders
        // (The HTTP upgrade handler may have set these already: one of each, not two.)
        response.replaceOrAdd(name: "Upgrade", value: "websocket")
        response.replaceOrAdd(name: "Connection", value: "upgrade")
        response.add(name: "Sec-WebSocket-Accept", value: Self.accept(key))
        if let chosen = WebEndpoint.chooseSubprotocol(headers[canonicalForm: "sec-websocket-protocol"].map(String.init)) {
            response.add(name: "Sec-WebSocket-Protocol", value: chosen)
        }
        return channel.eventLoop.makeSucceededFuture(response)
    }

    func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        let channel = context.channel
        let offered = upgradeRequest.headers[canonicalForm: "sec-websocket-protocol"].map(String.init)
        return channel.eventLoop.makeCompletedFuture {
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: endpoint.maximumMessageBytes)))
            try sync.addHandler(NIOWebSocketFrameAggregator(
                minNonFinalFragmentSize: 1, maxAccumulatedFrameCount: 64, maxAccumulatedFrameSize: endpoint.maximumMessageBytes))
            let bridge = WebSocketIRCBridge(binary: WebEndpoint.chooseSubprotocol(offered) == "binary.ircv3.net")
            try sync.addHandler(bridge)
            try installIRC(sync)
            // The IRC handlers came after the handshake: tell them what it negotiated.
            if let tlsEvent { try sync.context(handler: bridge).fireUserInboundEventTriggered(tlsEvent) }
        }
    }

    /// base64(SHA-1(key + the RFC's GUID)).
    static func accept(_ key: String) -> String {
        let input = Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8)
        var digest = [UInt8](repeating: 0, count: 20)
        var length: UInt32 = 0
        _ = EVP_Digest(input, input.count, &digest, &length, EVP_sha1(), nil)
        return Base64.encode(digest, padded: true)
    }
}

import Foundation
import IRC
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TLS

/// A bare WebSocket client over TLS for tests: the HTTP upgrade written by hand, frames encoded
/// (masked, as a browser does) and decoded here, so the server's WebSocket code is checked against
/// the RFC, not against itself. Waits are bounded and fail with what was received.
// @unchecked Sendable: `channel` is Sendable and immutable; everything received is in `state`,
// behind its lock.
public final class TestWebSocketClient: @unchecked Sendable {
    public struct Frame: Sendable, Equatable {
        public var fin: Bool
        public var opcode: UInt8
        public var payload: [UInt8]
        public var text: String { String(decoding: payload, as: UTF8.self) }
        /// The status code of a close frame.
        public var closeCode: UInt16? { opcode == 8 && payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil }
    }

    struct State {
        var raw: [UInt8] = []
        var response: String?
        var frames: [Frame] = []
        var cursor = 0
        var closed = false
        var handshake: Bool = false
    }

    public let channel: Channel
    private let state: NIOLockedValueBox<State>

    init(channel: Channel, state: NIOLockedValueBox<State>) {
        self.channel = channel
        self.state = state
    }

    /// The Origin header of the upgrade request.
    public enum Origin: Sendable {
        /// `https://localhost:PORT`: the server's own, as its page would send.
        case own
        case none
        case value(String)
    }

    /// Connects over TLS and sends an upgrade request.
    public static func connect(port: Int, caPath: String, path: String = "/", origin: Origin = .own,
                               protocols: [String] = ["text.ircv3.net"], extraHeaders: [String] = []) async throws -> TestWebSocketClient {
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        var request = "GET \(path) HTTP/1.1\r\nHost: localhost:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        if !protocols.isEmpty { request += "Sec-WebSocket-Protocol: \(protocols.joined(separator: ", "))\r\n" }
        switch origin {
        case .own: request += "Origin: https://localhost:\(port)\r\n"
        case .none: break
        case .value(let value): request += "Origin: \(value)\r\n"
        }
        for header in extraHeaders { request += header + "\r\n" }
        request += "\r\n"
        let client = try await raw(port: port, caPath: caPath)
        try await client.sendRaw(Array(request.utf8))
        _ = try await client.responseHead()
        return client
    }

    /// A TLS connection with nothing sent yet (for raw HTTP requests).
    public static func raw(port: Int, caPath: String) async throws -> TestWebSocketClient {
        let context = try TLSContext(configuration: .client(trust: .caFile(caPath)))
        let state = NIOLockedValueBox(State())
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let handshake = loop.makePromise(of: Void.self)
        let channel = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TLSHandler(context: context, serverName: "localhost", handshakeTimeout: .seconds(120)))
                    try channel.pipeline.syncOperations.addHandler(RawCollector(state: state, handshake: handshake))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await handshake.futureResult.get()
        return TestWebSocketClient(channel: channel, state: state)
    }

    public func sendRaw(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
    }

    /// The HTTP response head (status line and headers), once it has arrived.
    public func responseHead(timeout: Double = 60) async throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let (head, closed, raw) = state.withLockedValue { ($0.response, $0.closed, $0.raw) }
            if let head { return head }
            if closed || Date() > deadline {
                throw TestIRCClient.Timeout(waitingFor: "an HTTP response", received: [String(decoding: raw, as: UTF8.self)])
            }
            try await Task.sleep(nanoseconds: 5_000_000)
        }
    }

    /// Everything after the response head that was not parsed as frames (an HTTP body).
    public var rest: [UInt8] { state.withLockedValue { $0.raw } }
    public var isClosed: Bool { state.withLockedValue { $0.closed } }
    public var frames: [Frame] { state.withLockedValue { $0.frames } }

    /// Sends one frame, masked as RFC 6455 requires of clients.
    public func send(opcode: UInt8, _ payload: [UInt8], fin: Bool = true) async throws {
        var frame: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { frame.append(UInt8((payload.count >> shift) & 0xFF)) }
        }
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try await sendRaw(frame)
    }

    /// Sends one IRC line as a text frame (no CR LF, as the IRCv3 WebSocket spec says).
    public func send(_ line: String) async throws { try await send(opcode: 1, Array(line.utf8)) }

    /// The next frame after the cursor that matches.
    @discardableResult
    public func nextFrame(_ description: String = "a frame", timeout: Double = 60, where predicate: (Frame) -> Bool = { _ in true }) async throws -> Frame {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let (found, closed) = state.withLockedValue { state -> (Frame?, Bool) in
                if let index = state.frames[state.cursor...].firstIndex(where: predicate) {
                    state.cursor = index + 1
                    return (state.frames[index], state.closed)
                }
                return (nil, state.closed)
            }
            if let found { return found }
            if closed || Date() > deadline {
                throw TestIRCClient.Timeout(waitingFor: description + (closed ? " (connection closed)" : ""), received: frames.map { "[\($0.opcode)] \($0.text)" })
            }
            try await Task.sleep(nanoseconds: 5_000_000)
        }
    }

    /// The next IRC message (a text or binary frame) with this command.
    @discardableResult
    public func next(_ command: String, timeout: Double = 60) async throws -> IRCMessage {
        let frame = try await nextFrame(command, timeout: timeout) { frame in
            (frame.opcode == 1 || frame.opcode == 2) && (try? IRCMessage.parse(frame.payload[...]))?.command == command
        }
        return try IRCMessage.parse(frame.payload[...])
    }

    /// Logs in with SASL PLAIN over the WebSocket and waits for 001.
    public func register(account: String, password: String) async throws {
        try await send("CAP LS 302")
        try await send("NICK \(account)")
        try await send("USER \(account) 0 * :web")
        try await send("CAP REQ :sasl")
        try await next("CAP")
        try await send("AUTHENTICATE PLAIN")
        try await next("AUTHENTICATE")
        try await send("AUTHENTICATE " + SASLPlain.encode(account: account, password: Array(password.utf8)))
        try await next("903")
        try await send("CAP END")
        try await next("001")
    }

    /// Waits until the server closes the connection.
    public func waitUntilClosed(timeout: Double = 60) async -> Bool {
        await waitUntil(timeout: timeout) { isClosed }
    }

    public func close() async { try? await channel.close() }
}

/// Collects the response head, then parses server frames (unmasked) from the bytes after it.
// @unchecked Sendable: loop-bound; what it fills is behind the state's lock.
final class RawCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let state: NIOLockedValueBox<TestWebSocketClient.State>
    let handshake: EventLoopPromise<Void>

    init(state: NIOLockedValueBox<TestWebSocketClient.State>, handshake: EventLoopPromise<Void>) {
        self.state = state
        self.handshake = handshake
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        state.withLockedValue { state in
            state.raw += buffer.readableBytesView
            if state.response == nil, let end = state.raw.firstRange(of: Array("\r\n\r\n".utf8)) {
                state.response = String(decoding: state.raw[..<end.lowerBound], as: UTF8.self)
                state.raw.removeSubrange(..<end.upperBound)
            }
            guard let response = state.response, response.hasPrefix("HTTP/1.1 101") else { return }
            while let (frame, size) = Self.parse(state.raw) {
                state.frames.append(frame)
                state.raw.removeFirst(size)
            }
        }
    }

    static func parse(_ bytes: [UInt8]) -> (TestWebSocketClient.Frame, Int)? {
        guard bytes.count >= 2 else { return nil }
        var length = Int(bytes[1] & 0x7F)
        var offset = 2
        if length == 126 {
            guard bytes.count >= 4 else { return nil }
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            offset = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return nil }
            length = bytes[2..<10].reduce(0) { $0 << 8 | Int($1) }
            offset = 10
        }
        guard bytes.count >= offset + length else { return nil }
        return (TestWebSocketClient.Frame(fin: bytes[0] & 0x80 != 0, opcode: bytes[0] & 0x0F, payload: Array(bytes[offset..<offset + length])), offset + length)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSEvent { handshake.succeed(()) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) { handshake.fail(error) }

    func channelInactive(context: ChannelHandlerContext) {
        state.withLockedValue { $0.closed = true }
        handshake.fail(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }
}

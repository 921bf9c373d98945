import ChatWeb
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IRC
import NIOConcurrencyHelpers
import NIOCore

/// A message from a user (or the server) to be delivered to many clients.
///
/// It is serialised at most once per combination of the recipients' capabilities that matter
/// (server-time, account-tag, message-tags with msgid) on each event loop, never once per recipient: every
/// recipient with the same combination gets the same ByteBuffer.
public struct Relay: Sendable {
    public var source: String
    public var command: String
    public var parameters: [String]
    /// RFC 3339 time with milliseconds, for server-time.
    public var time: String
    /// The sender's account, for account-tag.
    public var account: String?
    /// Client-only tags (`+…`), relayed to clients with message-tags.
    public var clientTags: [IRCTag]
    /// The parameters for clients with extended-join (a JOIN with account and real name).
    public var extendedJoinParameters: [String]?
    /// The message's id (IRCv3 `msgid`), the same for every recipient and the echo.
    public var msgid: String
    /// The sender is in bot mode (+B): clients with message-tags get a `bot` tag.
    public var fromBot = false

    public init(source: String, command: String, parameters: [String], time: String, account: String? = nil,
                clientTags: [IRCTag] = [], extendedJoinParameters: [String]? = nil, msgid: String = Relay.newMessageID()) {
        self.source = source
        self.command = command
        self.parameters = parameters
        self.time = time
        self.account = account
        self.clientTags = clientTags
        self.extendedJoinParameters = extendedJoinParameters
        self.msgid = msgid
    }

    /// A message id no other message of this server has: a random prefix drawn when the process
    /// starts (so ids differ across restarts) and a counter, both in base 32.
    public static func newMessageID() -> String {
        let n = messageCounter.withLockedValue { counter -> UInt64 in
            counter &+= 1
            return counter
        }
        return messageIDPrefix + base32(n)
    }

    private static let messageIDPrefix: String = {
        var random = SystemRandomNumberGenerator()
        return base32(random.next() & 0xFF_FFFF_FFFF_FFFF, digits: 12)  // 56 bits
    }()
    private static let messageCounter = NIOLockedValueBox<UInt64>(0)

    private static func base32(_ value: UInt64, digits: Int = 0) -> String {
        let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)
        var bytes: [UInt8] = []
        var rest = value
        repeat {
            bytes.append(alphabet[Int(rest & 31)])
            rest >>= 5
        } while rest > 0 || bytes.count < digits
        return String(decoding: bytes.reversed(), as: UTF8.self)
    }

    /// A small per-delivery cache of serialised variants.
    public struct Cache {
        var buffers: [ByteBuffer?] = Array(repeating: nil, count: 16)
        /// NIO's default allocator, which every channel has: asking a recipient's channel for
        /// it cost two reference-count round trips per delivery (the profile's `channel` and
        /// `bufferAllocatorCached` getters, 6 % of the server's CPU at saturation).
        let allocator = ByteBufferAllocator()
        /// The same variants as WebSocket frames (text, then binary), made on first use.
        var framed: [ByteBuffer?] = []
        public init() {}
    }

    private func variantKey(_ caps: Capabilities) -> Int {
        (caps.contains(.serverTime) ? 1 : 0)
            | (caps.contains(.accountTag) && account != nil ? 2 : 0)
            | (caps.contains(.messageTags) ? 4 : 0)
            | (caps.contains(.extendedJoin) && extendedJoinParameters != nil ? 8 : 0)
    }

    /// The message a recipient with `caps` gets.
    public func message(for caps: Capabilities) -> IRCMessage {
        message(variant: variantKey(caps))
    }

    private func message(variant key: Int) -> IRCMessage {
        var tags: [IRCTag] = []
        if key & 1 != 0 { tags.append(IRCTag("time", time)) }
        if key & 2 != 0 { tags.append(IRCTag("account", account)) }
        if key & 4 != 0 {
            tags.append(IRCTag("msgid", msgid))
            if fromBot { tags.append(IRCTag("bot")) }
            tags.append(contentsOf: clientTags)
        }
        let parameters = key & 8 != 0 ? extendedJoinParameters ?? self.parameters : self.parameters
        return IRCMessage(tags: tags, source: source, command: command, parameters: parameters)
    }

    /// The bytes for a recipient with `caps`, from `cache` when already made.
    public func buffer(for caps: Capabilities, cache: inout Cache) -> ByteBuffer {
        let key = variantKey(caps)
        if let buffer = cache.buffers[key] { return buffer }
        let bytes = message(variant: key).serialized()
        let buffer = cache.allocator.buffer(bytes: bytes)
        cache.buffers[key] = buffer
        return buffer
    }

    /// The bytes for a recipient over WebSocket with `caps`: the variant's line as one frame,
    /// made once per loop for every WebSocket member there, as the line is for TLS members.
    public func frames(for caps: Capabilities, binary: Bool, cache: inout Cache) -> ByteBuffer {
        let key = variantKey(caps) | (binary ? 16 : 0)
        if cache.framed.isEmpty { cache.framed = Array(repeating: nil, count: 32) }
        if let frames = cache.framed[key] { return frames }
        let frames = WebSocketFraming.frames(of: buffer(for: caps, cache: &cache), binary: binary, allocator: cache.allocator)
        cache.framed[key] = frames
        return frames
    }

    /// Now as RFC 3339 UTC with milliseconds ("2026-11-30T01:02:03.456Z"): `ServerTime.string`.
    @inline(__always)
    public static func timestamp(_ date: Date = Date()) -> String { ServerTime.string(date) }
}

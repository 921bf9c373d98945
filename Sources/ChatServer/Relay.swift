import Foundation
import IRC
import NIOCore

/// A message from a user (or the server) to be delivered to many clients.
///
/// It is serialised at most once per combination of the recipients' capabilities that matter
/// (server-time, account-tag, message-tags) on each event loop, never once per recipient: every
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

    public init(source: String, command: String, parameters: [String], time: String, account: String? = nil,
                clientTags: [IRCTag] = [], extendedJoinParameters: [String]? = nil) {
        self.source = source
        self.command = command
        self.parameters = parameters
        self.time = time
        self.account = account
        self.clientTags = clientTags
        self.extendedJoinParameters = extendedJoinParameters
    }

    /// A small per-delivery cache of serialised variants.
    public struct Cache {
        var buffers: [ByteBuffer?] = Array(repeating: nil, count: 16)
        public init() {}
    }

    private func variantKey(_ caps: Capabilities) -> Int {
        (caps.contains(.serverTime) ? 1 : 0)
            | (caps.contains(.accountTag) && account != nil ? 2 : 0)
            | (caps.contains(.messageTags) && !clientTags.isEmpty ? 4 : 0)
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
        if key & 4 != 0 { tags.append(contentsOf: clientTags) }
        let parameters = key & 8 != 0 ? extendedJoinParameters ?? self.parameters : self.parameters
        return IRCMessage(tags: tags, source: source, command: command, parameters: parameters)
    }

    /// The bytes for a recipient with `caps`, from `cache` when already made.
    public func buffer(for caps: Capabilities, cache: inout Cache, allocator: ByteBufferAllocator) -> ByteBuffer {
        let key = variantKey(caps)
        if let buffer = cache.buffers[key] { return buffer }
        let bytes = message(variant: key).serialized()
        let buffer = allocator.buffer(bytes: bytes)
        cache.buffers[key] = buffer
        return buffer
    }

    /// Now as RFC 3339 UTC with milliseconds ("2026-11-30T01:02:03.456Z").
    public static func timestamp(_ date: Date = Date()) -> String {
        let seconds = date.timeIntervalSince1970
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        let millis = Int((seconds - Double(Int(seconds))) * 1000)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec, millis)
    }
}

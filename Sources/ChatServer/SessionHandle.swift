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

/// Where relayed messages for one registered session end up: its connection, on its event loop.
///
/// Called only on the session's own event loop (`SessionHandle.eventLoop`), so the target reads its
/// own capabilities and writes to its channel without a lock.
public protocol DeliveryTarget: AnyObject {
    /// Writes `relay` in the variant this session's capabilities call for, if it has every
    /// capability in `requiring`. `cache` holds variants already serialised on this loop.
    func deliver(_ relay: Relay, cache: inout Relay.Cache, requiring: Capabilities)
    /// End the session with `reason` (a newer login, an operator's change to the account).
    func end(reason: String)
}

/// What every other connection may know of a registered session, safe to read from any loop.
///
/// The identity (nick, user, sign-on time) is immutable. What changes — the away text, the real
/// name, bot mode, the time of the last message, the rooms and the MONITOR list — lives behind one small lock
/// that nothing else is ever taken under. Rooms update `rooms` while holding their own lock, so
/// the order is always room lock, then handle lock.
public final class SessionHandle: Sendable, CustomStringConvertible {
    /// The nick, which is always the account name.
    public let nick: String
    /// `nick` in the server's case mapping, for comparisons.
    public let folded: String
    /// The user part of the mask (`~` + a sanitised form of what the client sent in USER).
    public let username: String
    /// The client's IP address: for logs and limits only, never shown to other users.
    public let address: String
    /// Unix time of registration.
    public let signonTime: Int
    /// The loop that owns the connection; delivery to this session runs there.
    public let eventLoop: EventLoop

    public var host: String { "user/" + nick }
    public var mask: String { "\(nick)!\(username)@\(host)" }

    private struct Presence {
        var away: String?
        var lastMessageTime: Int
        var realname: String
        /// User mode +B (IRCv3 bot mode).
        var isBot = false
        /// User mode +o: a server operator who gave OPER.
        var isOperator = false
        /// User mode +w: receives WALLOPS.
        var wallops = false
        var rooms: [String: Room] = [:]
        /// MONITOR targets: folded nick → as the client gave it.
        var monitoring: [String: String] = [:]
    }

    private let presence: NIOLockedValueBox<Presence>
    // Read and cleared only on `eventLoop` (see DeliveryTarget). A strong reference, cleared by
    // `detach()` when the session leaves: a weak one would give every connection a side table,
    // and every retain and release of it on the delivery path would take the slow path.
    nonisolated(unsafe) private var target: (any DeliveryTarget)?

    public init(nick: String, username: String, realname: String, address: String, signonTime: Int,
                eventLoop: EventLoop, target: (any DeliveryTarget)?) {
        self.nick = nick
        self.folded = IRCName.fold(nick)
        self.username = username
        self.address = address
        self.signonTime = signonTime
        self.eventLoop = eventLoop
        self.presence = NIOLockedValueBox(Presence(lastMessageTime: signonTime, realname: realname))
        self.target = target
    }

    public var description: String { nick }

    /// Tells this session from another of the same account in cluster events: the object's
    /// address while it lives, and the sign-on time.
    public var clusterToken: String {
        String(UInt(bitPattern: ObjectIdentifier(self).hashValue), radix: 36) + "." + String(signonTime, radix: 36)
    }

    // MARK: Presence (any loop)

    /// The real name from USER, changed by SETNAME.
    public var realname: String { presence.withLockedValue { $0.realname } }
    func setRealname(_ text: String) { presence.withLockedValue { $0.realname = text } }

    public var isBot: Bool { presence.withLockedValue { $0.isBot } }
    func setBot(_ value: Bool) { presence.withLockedValue { $0.isBot = value } }

    public var isOperator: Bool { presence.withLockedValue { $0.isOperator } }
    func setOperator(_ value: Bool) { presence.withLockedValue { $0.isOperator = value } }

    public var receivesWallops: Bool { presence.withLockedValue { $0.wallops } }
    func setWallops(_ value: Bool) { presence.withLockedValue { $0.wallops = value } }

    /// The user modes as `+…` (i always; o, w, B when set).
    public var userModes: String {
        presence.withLockedValue { p in "+" + (p.isBot ? "B" : "") + "i" + (p.isOperator ? "o" : "") + (p.wallops ? "w" : "") }
    }

    public var away: String? { presence.withLockedValue { $0.away } }
    func setAway(_ text: String?) { presence.withLockedValue { $0.away = text } }

    public var lastMessageTime: Int { presence.withLockedValue { $0.lastMessageTime } }
    func touch(_ time: Int) { presence.withLockedValue { $0.lastMessageTime = time } }

    /// The rooms this session is in, by folded name.
    var rooms: [String: Room] { presence.withLockedValue { $0.rooms } }
    func room(folded: String) -> Room? { presence.withLockedValue { $0.rooms[folded] } }
    var roomCount: Int { presence.withLockedValue { $0.rooms.count } }

    /// The nicks this session monitors, as given, in no particular order.
    var monitoring: [String] { presence.withLockedValue { Array($0.monitoring.values) } }
    var monitorCount: Int { presence.withLockedValue { $0.monitoring.count } }
    /// Called by `Registry` under its lock.
    func setMonitoring(_ folded: String, _ nick: String?) { presence.withLockedValue { $0.monitoring[folded] = nick } }
    func clearMonitoring() -> [String] {
        presence.withLockedValue { p in
            defer { p.monitoring = [:] }
            return Array(p.monitoring.keys)
        }
    }

    /// Called by `Room` under its lock.
    func didJoin(_ room: Room) { presence.withLockedValue { $0.rooms[room.folded] = room } }
    func didLeave(_ room: Room) {
        presence.withLockedValue { if $0.rooms[room.folded] === room { $0.rooms[room.folded] = nil } }
    }

    // MARK: Delivery (on `eventLoop` only)

    func deliver(_ relay: Relay, cache: inout Relay.Cache, requiring: Capabilities) {
        target?.deliver(relay, cache: &cache, requiring: requiring)
    }

    /// Drops the reference to the connection: called on `eventLoop` when the session has left, so
    /// that messages still on their way to it go nowhere and the connection can be freed.
    func detach() {
        target = nil
    }

    /// Ends the session, on its own loop, telling it and its rooms `reason`.
    public func end(reason: String) {
        eventLoop.execute { self.target?.end(reason: reason) }
    }
}

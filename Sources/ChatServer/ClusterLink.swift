import ChatCluster
import IRC
import NIOCore

/// What one node tells every node (itself included) through the cluster's bus.
public enum ClusterEvent: Sendable, Equatable {
    /// A message to a room: each node delivers it to its own members of `room` (folded), or
    /// only to the room's operators, skipping the session named `except` (the sender without
    /// echo-message).
    case room(Relay, room: String, operatorsOnly: Bool, except: String?, requiring: Capabilities)
}

extension Relay: Equatable {
    public static func == (a: Relay, b: Relay) -> Bool {
        a.msgid == b.msgid && a.source == b.source && a.command == b.command && a.parameters == b.parameters
            && a.time == b.time && a.account == b.account && a.clientTags == b.clientTags && a.fromBot == b.fromBot
    }
}

/// This node's part in a cluster: room messages go out through PostgreSQL and come back, in
/// the database's order, to every node, which delivers them to its own members. Every node
/// shows a room's messages in the same order, with the same msgid and server time.
public final class ClusterLink: Sendable {
    public let node: String
    private let registry: Registry
    private let bus: ClusterBus

    /// Starts listening. Blocking (call before serving).
    public init(settings: ClusterSettings, registry: Registry, eventLoop: EventLoop, report: @escaping @Sendable (String) -> Void) throws {
        self.node = settings.node
        self.registry = registry
        bus = try ClusterBus.start(settings, on: eventLoop, report: report) { payload in
            guard let (_, event) = Self.decode(payload) else {
                report("cluster: ignored an event this node cannot read (a newer node?): \(payload.prefix(80))")
                return
            }
            Self.deliver(event, registry: registry)
        }
    }

    /// Sends `event` to every node; fails when the database did not take it.
    public func publish(_ event: ClusterEvent) -> EventLoopFuture<Void> {
        bus.publish(Self.encode(event, origin: node))
    }

    public func stop() {
        bus.stop()
    }

    /// Delivers an event that came back from the database to this node's sessions.
    static func deliver(_ event: ClusterEvent, registry: Registry) {
        switch event {
        case let .room(relay, room, operatorsOnly, except, requiring):
            guard let local = registry.room(named: room) else { return }
            let audience = operatorsOnly ? Audience(local.roster.filter(\.isOperator).map(\.session)) : local.audience
            audience.deliver(relay, except: except.flatMap { registry.session(named: $0) }, requiring: requiring)
        }
    }

    // MARK: The wire form
    //
    // Line 1: `1 KIND ORIGIN ARGUMENTS…` (words without spaces); line 2: the relayed message as an
    // IRC line with every tag (time, account, msgid, bot, client tags).

    static let allTags: Capabilities = [.serverTime, .accountTag, .messageTags]

    static func encode(_ event: ClusterEvent, origin: String) -> String {
        switch event {
        case let .room(relay, room, operatorsOnly, except, requiring):
            let line = String(decoding: relay.message(for: allTags).serialized().dropLast(2), as: UTF8.self)
            return "1 room \(origin) \(room) \(operatorsOnly ? "o" : "a") \(except ?? "*") \(requiring.rawValue)\n\(line)"
        }
    }

    static func decode(_ payload: String) -> (origin: String, event: ClusterEvent)? {
        guard let newline = payload.firstIndex(of: "\n") else { return nil }
        let words = payload[..<newline].split(separator: " ").map(String.init)
        guard words.count >= 3, words[0] == "1" else { return nil }
        let line = Array(payload[payload.index(after: newline)...].utf8)
        switch words[1] {
        case "room":
            guard words.count == 7, let requiring = UInt32(words[6]),
                  let relay = relay(from: line)
            else { return nil }
            return (words[2], .room(relay, room: words[3], operatorsOnly: words[4] == "o", except: words[5] == "*" ? nil : words[5],
                                    requiring: Capabilities(rawValue: requiring)))
        default:
            return nil
        }
    }

    static func relay(from line: [UInt8]) -> Relay? {
        guard let message = try? IRCMessage.parse(line, maximumTagBytes: IRCMessage.Limits.tags, maximumLineBytes: 4096),
              let source = message.source
        else { return nil }
        func tag(_ key: String) -> String? { message.tags.first { $0.key == key }?.value }
        guard let time = tag("time"), let msgid = tag("msgid") else { return nil }
        var relay = Relay(source: source, command: message.command, parameters: message.parameters, time: time, account: tag("account"),
                          clientTags: message.tags.filter(\.isClientOnly), msgid: msgid)
        relay.fromBot = message.tags.contains { $0.key == "bot" }
        return relay
    }
}

import IRC
import NIOCore

/// The recipients of one relayed message, grouped by event loop: the only delivery path.
///
/// Rooms keep their members' audience ready (rebuilt when someone joins or leaves); private
/// messages, quits and away notices build one from the sessions concerned. `deliver` sends one
/// task to each loop, and on that loop each variant of the message is serialised once and shared
/// by every recipient with the same capabilities. No lock is taken per recipient.
public struct Audience: Sendable {
    /// Sessions grouped by event loop, each group in the order they were given.
    public private(set) var groups: [[SessionHandle]]

    public static let nobody = Audience(groups: [])

    private init(groups: [[SessionHandle]]) {
        self.groups = groups
    }

    /// Groups `sessions` by loop; a session given twice is kept once.
    public init(_ sessions: some Sequence<SessionHandle>) {
        var index: [ObjectIdentifier: Int] = [:]
        var seen = Set<ObjectIdentifier>()
        var groups: [[SessionHandle]] = []
        for session in sessions where seen.insert(ObjectIdentifier(session)).inserted {
            let key = ObjectIdentifier(session.eventLoop)
            if let i = index[key] { groups[i].append(session) } else { index[key] = groups.count; groups.append([session]) }
        }
        self.groups = groups
    }

    public var count: Int { groups.reduce(0) { $0 + $1.count } }
    public var sessions: [SessionHandle] { groups.flatMap { $0 } }

    /// Delivers `relay` to everyone but `except`, to those with every capability in `requiring`.
    /// Runs at once for the caller's own loop, as one task on every other.
    public func deliver(_ relay: Relay, except: SessionHandle? = nil, requiring: Capabilities = []) {
        for group in groups {
            guard let loop = group.first?.eventLoop else { continue }
            if loop.inEventLoop {
                Self.deliver(relay, to: group, except: except, requiring: requiring)
            } else {
                loop.execute { Self.deliver(relay, to: group, except: except, requiring: requiring) }
            }
        }
    }

    private static func deliver(_ relay: Relay, to group: [SessionHandle], except: SessionHandle?, requiring: Capabilities) {
        var cache = Relay.Cache()
        for session in group where session !== except {
            session.deliver(relay, cache: &cache, requiring: requiring)
        }
    }
}

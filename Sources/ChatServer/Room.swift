import ChatHistory
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
import NIOConcurrencyHelpers
import IRC
import NIOCore

/// A room (IRC channel): members, operators, topic and modes, behind its own lock.
///
/// The lock is per room, never global, and is held only to read or change the room: delivery
/// works on a snapshot of the members, grouped by event loop, that is rebuilt only when
/// membership changes.
// @unchecked Sendable: every stored `var` is only touched with `lock` held.
public final class Room: @unchecked Sendable {
    public let name: String
    public let folded: String
    public let createdAt: Int

    public struct Modes: Sendable, Equatable {
        public var inviteOnly = false
        public var topicLocked = true
        public var noExternal = true
        /// +s: hidden from everyone who is not in it (LIST, WHOIS, NAMES, WHO, TOPIC).
        public var secret = false
        public var key: String?
        /// +l: the most members the room takes (invitations still let people in).
        public var limit: Int?
        /// +m: only operators and voiced members (+v) may speak.
        public var moderated = false

        /// "+klnt" style, with the key (when `showKey`) and the limit as parameters.
        public func string(showKey: Bool) -> [String] {
            var flags = "+"
            var parameters: [String] = []
            if inviteOnly { flags += "i" }
            if let key { flags += "k"; parameters.append(showKey ? key : "*") }
            if let limit { flags += "l"; parameters.append(String(limit)) }
            if moderated { flags += "m" }
            if noExternal { flags += "n" }
            if secret { flags += "s" }
            if topicLocked { flags += "t" }
            return [flags] + parameters
        }
    }

    public struct Topic: Sendable, Equatable {
        public var text: String
        public var setBy: String
        public var setAt: Int
    }

    struct Member {
        let session: SessionHandle
        var isOperator: Bool
        var isVoiced = false
    }

    private let lock = NIOLock()
    private var members: [ObjectIdentifier: Member] = [:]
    private var order: [ObjectIdentifier] = []
    private var _audience = Audience.nobody
    private var _topic: Topic?
    private var _modes = Modes()
    private var invited: Set<String> = []
    private var bans: [Ban] = []
    private var closed = false

    /// The account that owns the room (folded): made operator whenever it joins. The first to
    /// join a room without an owner becomes it.
    private var _owner: String?

    init(name: String, now: Int) {
        self.name = name
        self.folded = IRCName.fold(name)
        self.createdAt = now
    }

    /// A room made again from what was saved of it (history on): name, time, topic, modes, owner, bans.
    init(saved record: RoomRecord) {
        self.name = record.name
        self.folded = IRCName.fold(record.name)
        self.createdAt = record.created
        _owner = record.owner
        if let text = record.topic { _topic = Topic(text: text, setBy: record.topicBy, setAt: record.topicTime) }
        _modes.inviteOnly = record.flags.contains("i")
        _modes.moderated = record.flags.contains("m")
        _modes.noExternal = record.flags.contains("n")
        _modes.secret = record.flags.contains("s")
        _modes.topicLocked = record.flags.contains("t")
        _modes.key = record.key
        _modes.limit = record.limit
        bans = record.bans.compactMap { ban in BanMask(ban.mask).map { Ban(mask: $0, setBy: ban.setBy, setAt: ban.setAt) } }
    }

    var owner: String? { lock.withLock { _owner } }
    func setOwner(_ account: String) { lock.withLock { _owner = account } }

    /// Takes the topic, modes, key, limit, owner and bans of `record` (another node of a
    /// cluster changed them); members and their status stay.
    func apply(_ record: RoomRecord) {
        let saved = Room(saved: record)
        lock.withLock {
            _owner = saved._owner
            _topic = saved._topic
            _modes.inviteOnly = saved._modes.inviteOnly
            _modes.moderated = saved._modes.moderated
            _modes.noExternal = saved._modes.noExternal
            _modes.secret = saved._modes.secret
            _modes.topicLocked = saved._modes.topicLocked
            _modes.key = saved._modes.key
            _modes.limit = saved._modes.limit
            bans = saved.bans
        }
    }

    /// What is saved of the room.
    func record(now: Int) -> RoomRecord {
        lock.withLock {
            let m = _modes
            let flags = (m.inviteOnly ? "i" : "") + (m.moderated ? "m" : "") + (m.noExternal ? "n" : "") + (m.secret ? "s" : "") + (m.topicLocked ? "t" : "")
            return RoomRecord(name: name, topic: _topic?.text, topicBy: _topic?.setBy ?? "", topicTime: _topic?.setAt ?? 0, flags: flags,
                              key: m.key, limit: m.limit, owner: _owner, created: createdAt, lastUsed: now,
                              bans: bans.map { RoomRecord.Ban(mask: $0.mask.text, setBy: $0.setBy, setAt: $0.setAt) })
        }
    }

    /// Why a join was refused.
    enum JoinRefusal: Error { case inviteOnly, badKey, full, banned, closed }

    /// A ban with who set it and when (the ban list, 367).
    struct Ban: Sendable {
        let mask: BanMask
        let setBy: String
        let setAt: Int
    }

    /// The most bans a room keeps (ISUPPORT MAXLIST).
    static let maximumBans = 100

    /// Adds `session` (and tells its handle); the first member becomes operator. Returns whether
    /// it is an operator.
    /// `trusted`: a member coming back (rejoined at login) passes +i, +k and +l, not bans.
    func join(_ session: SessionHandle, key: String?, trusted: Bool = false) -> Result<Bool, JoinRefusal> {
        lock.withLock {
            if closed { return .failure(.closed) }
            let id = ObjectIdentifier(session)
            if let member = members[id] { return .success(member.isOperator) }
            let admitted = trusted || invited.contains(session.folded) || _owner == session.folded
            if _modes.inviteOnly && !admitted { return .failure(.inviteOnly) }
            if let required = _modes.key, required != key, !admitted { return .failure(.badKey) }
            if let limit = _modes.limit, members.count >= limit, !admitted { return .failure(.full) }
            // An invitation does not lift a ban: the operators who set it can remove it.
            if bans.contains(where: { $0.mask.bans(session) }) { return .failure(.banned) }
            invited.remove(session.folded)
            // The owner is operator whenever it joins; a room without one is owned by its first member.
            if _owner == nil && members.isEmpty { _owner = session.folded }
            let isOperator = _owner == session.folded
            members[id] = Member(session: session, isOperator: isOperator)
            order.append(id)
            _audience = Audience(order.map { members[$0]!.session })
            session.didJoin(self)
            return .success(isOperator)
        }
    }

    /// Removes `session` (and tells its handle); returns true when the room became empty (and is
    /// now closed).
    func leave(_ session: SessionHandle) -> Bool {
        lock.withLock {
            let id = ObjectIdentifier(session)
            guard members.removeValue(forKey: id) != nil else { return members.isEmpty && closed }
            order.removeAll { $0 == id }
            _audience = Audience(order.map { members[$0]!.session })
            session.didLeave(self)
            if members.isEmpty { closed = true }
            return members.isEmpty
        }
    }

    /// Every member, grouped by event loop, for delivery.
    var audience: Audience { lock.withLock { _audience } }

    func isMember(_ session: SessionHandle) -> Bool { lock.withLock { members[ObjectIdentifier(session)] != nil } }
    func isOperator(_ session: SessionHandle) -> Bool { lock.withLock { members[ObjectIdentifier(session)]?.isOperator ?? false } }
    var memberCount: Int { lock.withLock { members.count } }

    /// A member as NAMES and WHO show them.
    struct Entry {
        let session: SessionHandle
        let isOperator: Bool
        let isVoiced: Bool

        /// "@", "+" or "" (the highest); with multi-prefix, every one that applies ("@+").
        func prefix(all: Bool) -> String { Self.prefix(operator: isOperator, voiced: isVoiced, all: all) }

        static func prefix(operator: Bool, voiced: Bool, all: Bool) -> String {
            if all { return (`operator` ? "@" : "") + (voiced ? "+" : "") }
            return `operator` ? "@" : voiced ? "+" : ""
        }
    }

    /// Members in join order with their status.
    var roster: [Entry] {
        lock.withLock { order.map { let m = members[$0]!; return Entry(session: m.session, isOperator: m.isOperator, isVoiced: m.isVoiced) } }
    }

    /// Whether `session` may speak here: operators and voiced members always; others unless the
    /// room is +m or a ban or mute (`~m:`) matches them.
    func maySpeak(_ session: SessionHandle) -> Bool {
        lock.withLock {
            if let member = members[ObjectIdentifier(session)], member.isOperator || member.isVoiced { return true }
            if _modes.moderated { return false }
            return !bans.contains { $0.mask.silences(session) }
        }
    }

    /// The ban list, oldest first.
    var banList: [Ban] { lock.withLock { bans } }

    enum BanChange { case added, removed, unchanged, full }

    /// Adds or removes a ban (by its text, case-insensitively).
    func changeBan(_ mask: BanMask, adding: Bool, by setter: String, at time: Int) -> BanChange {
        lock.withLock {
            let index = bans.firstIndex { $0.mask.kind == mask.kind && $0.mask.pattern == mask.pattern }
            if adding {
                if index != nil { return .unchanged }
                if bans.count >= Self.maximumBans { return .full }
                bans.append(Ban(mask: mask, setBy: setter, setAt: time))
                return .added
            }
            guard let index else { return .unchanged }
            bans.remove(at: index)
            return .removed
        }
    }

    /// The status prefix of `session` here ("" when not a member).
    func prefix(of session: SessionHandle, all: Bool) -> String {
        lock.withLock {
            guard let m = members[ObjectIdentifier(session)] else { return "" }
            return Entry(session: m.session, isOperator: m.isOperator, isVoiced: m.isVoiced).prefix(all: all)
        }
    }

    @discardableResult
    func setVoice(_ session: SessionHandle, _ value: Bool) -> Bool { updateMember(session) { $0.isVoiced = value } }

    func member(named nick: String) -> SessionHandle? {
        let folded = IRCName.fold(nick)
        return lock.withLock { members.values.first { $0.session.folded == folded }?.session }
    }

    @discardableResult
    func setOperator(_ session: SessionHandle, _ value: Bool) -> Bool { updateMember(session) { $0.isOperator = value } }

    /// Changes a member's status; false when `session` is not a member.
    private func updateMember(_ session: SessionHandle, _ change: (inout Member) -> Void) -> Bool {
        lock.withLock {
            guard members[ObjectIdentifier(session)] != nil else { return false }
            change(&members[ObjectIdentifier(session)]!)
            return true
        }
    }

    var topic: Topic? {
        get { lock.withLock { _topic } }
    }

    func setTopic(_ topic: Topic?) { lock.withLock { _topic = topic } }

    var modes: Modes { lock.withLock { _modes } }

    func updateModes(_ change: (inout Modes) -> Void) { lock.withLock { change(&_modes) } }

    func invite(_ session: SessionHandle) { lock.withLock { _ = invited.insert(session.folded) } }

    /// `nick` (folded) used their invitation on another node of a cluster.
    func uninvite(_ nick: String) { lock.withLock { _ = invited.remove(nick) } }
}

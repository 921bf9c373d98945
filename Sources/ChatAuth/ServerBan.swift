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

/// A ban from the whole server (IRC's K-line): an account, or an address range, for a time or
/// for good. Kept in the users file next to the accounts, so `chat-admin ban` and an operator's
/// `KLINE` change the same list and it survives restarts.
public struct ServerBan: Sendable, Equatable, Codable {
    /// Who is banned.
    public var target: Target
    /// Told to the banned user, and logged.
    public var reason: String
    /// The operator's account, or `chat-admin` with the system user who ran it.
    public var setBy: String
    /// RFC 3339 UTC.
    public var created: String
    /// RFC 3339 UTC; nil for a ban without end.
    public var expires: String?

    public init(target: Target, reason: String, setBy: String, created: Date, expires: Date?) {
        self.target = target
        self.reason = reason
        self.setBy = setBy
        self.created = Timestamp.string(created)
        self.expires = expires.map(Timestamp.string)
    }

    /// An account (by name, ignoring case) or an IPv4/IPv6 address range.
    public enum Target: Sendable, Equatable, CustomStringConvertible {
        case account(String)
        case addresses(AddressRange)

        /// Parses what an operator types: an account name, an address (`192.0.2.7`, `2001:db8::1`),
        /// a range in CIDR form (`192.0.2.0/24`, `2001:db8::/32`), each optionally after `*@`
        /// (the K-line habit), or `~a:NAME` for an account.
        public init(parsing text: String) throws(ServerBanError) {
            var rest = Substring(text)
            if rest.hasPrefix("~a:") { rest = rest.dropFirst(3) }
            else if rest.hasPrefix("*@") { rest = rest.dropFirst(2) }
            if let range = AddressRange(String(rest)) {
                self = .addresses(range)
            } else if AccountName.isValid(String(rest)) {
                self = .account(String(rest))
            } else {
                throw .invalidTarget(text)
            }
        }

        public var description: String {
            switch self {
            case let .account(name): return name
            case let .addresses(range): return range.description
            }
        }

        /// Same target, ignoring the case of an account name and the spelling of a range.
        public func sameTarget(as other: Target) -> Bool {
            switch (self, other) {
            case let (.account(a), .account(b)): return AccountName.folded(a) == AccountName.folded(b)
            case let (.addresses(a), .addresses(b)): return a == b
            default: return false
            }
        }

        /// Whether a client logged in as `account` (nil: not yet) from `address` is covered.
        public func covers(account: String?, address: String) -> Bool {
            switch self {
            case let .account(name): return account.map { AccountName.folded($0) == AccountName.folded(name) } ?? false
            case let .addresses(range): return range.contains(address)
            }
        }
    }

    /// The expiry as Unix time, or nil for a ban without end.
    public var expiresAt: Int? { expires.flatMap(Timestamp.parse) }

    /// Whether the ban still holds at `now`.
    public func isActive(at now: Date) -> Bool {
        guard let end = expiresAt else { return true }
        return Double(end) > now.timeIntervalSince1970
    }

    /// What the banned user is told.
    public var message: String {
        "You are banned from this server: \(reason)" + (expires.map { " (until \($0))" } ?? "")
    }

    private enum CodingKeys: String, CodingKey { case account, addresses, reason, setBy, created, expires }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let name = try c.decodeIfPresent(String.self, forKey: .account) {
            guard AccountName.isValid(name) else {
                throw DecodingError.dataCorruptedError(forKey: .account, in: c, debugDescription: "'\(name)' is not an account name")
            }
            target = .account(name)
        } else if let text = try c.decodeIfPresent(String.self, forKey: .addresses) {
            guard let range = AddressRange(text) else {
                throw DecodingError.dataCorruptedError(forKey: .addresses, in: c, debugDescription: "'\(text)' is not an address or CIDR range")
            }
            target = .addresses(range)
        } else {
            throw DecodingError.keyNotFound(CodingKeys.account, .init(codingPath: c.codingPath, debugDescription: "a ban needs \"account\" or \"addresses\""))
        }
        reason = try c.decode(String.self, forKey: .reason)
        setBy = try c.decode(String.self, forKey: .setBy)
        created = try c.decode(String.self, forKey: .created)
        expires = try c.decodeIfPresent(String.self, forKey: .expires)
        if let expires, Timestamp.parse(expires) == nil {
            throw DecodingError.dataCorruptedError(forKey: .expires, in: c, debugDescription: "'\(expires)' is not a time like 2026-12-31T23:59:59Z")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch target {
        case let .account(name): try c.encode(name, forKey: .account)
        case let .addresses(range): try c.encode(range.description, forKey: .addresses)
        }
        try c.encode(reason, forKey: .reason)
        try c.encode(setBy, forKey: .setBy)
        try c.encode(created, forKey: .created)
        try c.encodeIfPresent(expires, forKey: .expires)
    }

    /// A duration as operators type it: a number with `s`, `m`, `h`, `d` or `w` (`90m`, `7d`), a
    /// bare number of minutes (the K-line habit), or `0`/`perm` for no end. Nil when it is not a
    /// duration; `.some(nil)` for no end.
    public static func parseDuration(_ text: String) -> TimeInterval?? {
        let lower = text.lowercased()
        if lower == "perm" || lower == "permanent" || lower == "0" { return .some(nil) }
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800]
        var digits = Substring(lower)
        var unit = 60.0
        if let last = lower.last, let seconds = units[last] {
            unit = seconds
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.count <= 7, digits.allSatisfy(\.isASCII), let n = Int(digits), n > 0 else { return nil }
        return .some(Double(n) * unit)
    }
}

/// A problem with a server ban, worded for the operator.
public enum ServerBanError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidTarget(String)
    case invalidDuration(String)
    case notFound(String)

    public var description: String {
        switch self {
        case let .invalidTarget(text):
            return "'\(text)' is neither an account name nor an address or range (192.0.2.7, 192.0.2.0/24, 2001:db8::/32)"
        case let .invalidDuration(text):
            return "'\(text)' is not a duration: use 30m, 12h, 7d, 2w, or perm"
        case let .notFound(text):
            return "no server ban on '\(text)'"
        }
    }
}

/// An IPv4 or IPv6 address range (one address is a range of one). IPv4 is kept as IPv4-mapped
/// IPv6, so `192.0.2.0/24` also covers a client that a dual-stack listener sees as
/// `::ffff:192.0.2.7`.
public struct AddressRange: Sendable, Equatable, CustomStringConvertible {
    /// The network's 16 bytes, host bits cleared.
    private let network: [UInt8]
    /// Prefix length over the 128 bits.
    private let bits: Int
    private let isIPv4: Bool

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let (bytes, v4) = Self.parseAddress(String(parts[0])) else { return nil }
        var length = v4 ? 32 : 128
        if parts.count == 2 {
            guard let n = Int(parts[1]), parts[1].allSatisfy(\.isASCII), (0...length).contains(n) else { return nil }
            length = n
        }
        isIPv4 = v4
        bits = v4 ? 96 + length : length
        network = Self.mask(bytes, bits: bits)
    }

    /// Whether `address` (as the server logs it) is in the range.
    public func contains(_ address: String) -> Bool {
        guard let (bytes, _) = Self.parseAddress(address) else { return false }
        return Self.mask(bytes, bits: bits) == network
    }

    public var description: String {
        if isIPv4 {
            let text = network[12...].map(String.init).joined(separator: ".")
            return bits == 128 ? text : "\(text)/\(bits - 96)"
        }
        var raw = in6_addr()
        withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: network) }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count))
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return bits == 128 ? text : "\(text)/\(bits)"
    }

    /// 16 bytes (IPv4 mapped into IPv6) and whether the text was IPv4.
    private static func parseAddress(_ text: String) -> ([UInt8], Bool)? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            let b = withUnsafeBytes(of: &v4) { Array($0) }
            return ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] + b, true)
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return (withUnsafeBytes(of: &v6) { Array($0) }, false)
        }
        return nil
    }

    private static func mask(_ bytes: [UInt8], bits: Int) -> [UInt8] {
        bytes.enumerated().map { i, byte in
            let keep = max(0, min(8, bits - i * 8))
            return keep == 8 ? byte : byte & UInt8(truncatingIfNeeded: 0xff << (8 - keep))
        }
    }
}

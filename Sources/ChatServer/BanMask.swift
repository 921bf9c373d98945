import IRC

/// A room ban (`+b`): a `nick!user@host` mask with `*` and `?`, or an extended ban.
///
/// Extended bans (ISUPPORT `EXTBAN=~,am`): `~a:account` matches the account whatever the mask
/// (`ACCOUNTEXTBAN=a`); `~m:mask` mutes instead of banning: whoever it matches may join but not
/// speak. Matching is case-insensitive in the server's case mapping. Here the mask of every
/// user is `account!account@user/account`, so a mask names accounts, never machines.
struct BanMask: Sendable, Equatable {
    enum Kind: Sendable, Equatable { case mask, account, mute }

    let kind: Kind
    /// What the ban matches, folded; for `mute`, the mask inside `~m:`.
    let pattern: String
    /// The text as set, shown in the ban list.
    let text: String

    /// Reads a ban as a client sent it; nil when it cannot match anything (empty, or an unknown
    /// extended ban). A bare nick becomes `nick!*@*`, as other servers do.
    init?(_ text: String) {
        guard !text.isEmpty, !text.contains(" ") else { return nil }
        if text.hasPrefix("~") {
            let parts = text.dropFirst().split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[1].isEmpty else { return nil }
            switch parts[0] {
            case "a": kind = .account; pattern = IRCName.fold(parts[1])
            case "m": kind = .mute; pattern = IRCName.fold(Self.normalized(parts[1]))
            default: return nil
            }
            self.text = text
            return
        }
        kind = .mask
        let normal = Self.normalized(text)
        pattern = IRCName.fold(normal)
        self.text = normal
    }

    private static func normalized(_ mask: String) -> String {
        if mask.contains("!") || mask.contains("@") {
            var m = mask
            if !m.contains("!") { m = "*!" + m }
            if !m.contains("@") { m += "@*" }
            return m
        }
        return mask + "!*@*"
    }

    /// Whether this ban keeps `session` out of the room (mutes do not).
    func bans(_ session: SessionHandle) -> Bool {
        switch kind {
        case .mask: return Self.glob(pattern, IRCName.fold(session.mask))
        case .account: return pattern == session.folded
        case .mute: return false
        }
    }

    /// Whether this ban stops `session` from speaking (bans and mutes do).
    func silences(_ session: SessionHandle) -> Bool {
        switch kind {
        case .mask, .account: return bans(session)
        case .mute: return Self.glob(pattern, IRCName.fold(session.mask))
        }
    }

    /// `*` any run of characters, `?` any one character.
    static func glob(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.utf8), t = Array(text.utf8)
        var i = 0, j = 0, star = -1, mark = 0
        while j < t.count {
            if i < p.count && (p[i] == UInt8(ascii: "?") || p[i] == t[j]) {
                i += 1; j += 1
            } else if i < p.count && p[i] == UInt8(ascii: "*") {
                star = i; mark = j; i += 1
            } else if star >= 0 {
                i = star + 1; mark += 1; j = mark
            } else {
                return false
            }
        }
        while i < p.count && p[i] == UInt8(ascii: "*") { i += 1 }
        return i == p.count
    }
}

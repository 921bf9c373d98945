import IRC

/// MONITOR (IRCv3): a list of nicks whose logins and logouts the client is told about (730, 731),
/// whether or not it shares a room with them. With extended-monitor, their away changes too.
enum MonitorCommand {
    /// How many nicks one session may monitor (ISUPPORT MONITOR).
    static let limit = 100

    static func monitor(_ message: IRCMessage, _ c: inout CommandContext) {
        guard c.need(1, message) else { return }
        let p = message.parameters
        let targets = p.count > 1 ? p[1].split(separator: ",").map(String.init).filter { !$0.isEmpty } : []
        switch p[0] {
        case "+":
            guard !targets.isEmpty else { return c.out.numeric(.needMoreParams, "MONITOR", "Not enough parameters") }
            var online: [String] = []
            var offline: [String] = []
            for (index, target) in targets.enumerated() {
                guard IRCName.isValidNick(target) else { continue }
                let known = c.me.monitoring.contains { IRCName.fold($0) == IRCName.fold(target) }
                if !known && c.me.monitorCount >= limit {
                    c.out.numeric(.monListFull, String(limit), targets[index...].joined(separator: ","), "Monitor list is full")
                    break
                }
                c.registry.monitor(target, by: c.me)
                if let mask = onlineMask(target, c) { online.append(mask) } else { offline.append(target) }
            }
            if !online.isEmpty { c.out.numeric(.monOnline, online.joined(separator: ",")) }
            if !offline.isEmpty { c.out.numeric(.monOffline, offline.joined(separator: ",")) }
        case "-":
            guard !targets.isEmpty else { return c.out.numeric(.needMoreParams, "MONITOR", "Not enough parameters") }
            c.registry.unmonitor(targets.map(IRCName.fold), by: c.me)
        case "C", "c":
            c.registry.unmonitor(c.me.monitoring.map(IRCName.fold), by: c.me)
        case "L", "l":
            let list = c.me.monitoring.sorted()
            for chunk in stride(from: 0, to: list.count, by: 20) {
                c.out.numeric(.monList, list[chunk..<min(chunk + 20, list.count)].joined(separator: ","))
            }
            c.out.numeric(.endOfMonList, "End of MONITOR list")
        case "S", "s":
            var online: [String] = []
            var offline: [String] = []
            for target in c.me.monitoring.sorted() {
                if let mask = onlineMask(target, c) { online.append(mask) } else { offline.append(target) }
            }
            if !online.isEmpty { c.out.numeric(.monOnline, online.joined(separator: ",")) }
            if !offline.isEmpty { c.out.numeric(.monOffline, offline.joined(separator: ",")) }
        default:
            c.out.numeric(.unknownCommand, "MONITOR", "Unknown MONITOR subcommand: use +, -, C, L or S")
        }
    }

    /// Tells everyone monitoring `session` that it logged in (730) or out (731), as one relay
    /// per watcher (a numeric names its recipient).
    static func announce(_ session: SessionHandle, online: Bool, registry: Registry, serverName: String, out: inout SessionOutput) {
        for (relay, watcher) in announcements(nick: session.nick, mask: session.mask, online: online, except: session, registry: registry, serverName: serverName) {
            out.deliver(relay, to: Audience([watcher]))
        }
    }

    /// The same for a user of another node of a cluster, delivered at once.
    static func announceRemote(nick: String, mask: String, online: Bool, registry: Registry, serverName: String) {
        for (relay, watcher) in announcements(nick: nick, mask: mask, online: online, except: nil, registry: registry, serverName: serverName) {
            Audience([watcher]).deliver(relay)
        }
    }

    private static func announcements(nick: String, mask: String, online: Bool, except: SessionHandle?, registry: Registry,
                                      serverName: String) -> [(Relay, SessionHandle)] {
        registry.watchers(of: nick).filter { $0 !== except }.map { watcher in
            let parameters = online ? [watcher.nick, mask] : [watcher.nick, nick]
            return (Relay(source: serverName, command: online ? Numeric.monOnline.rawValue : Numeric.monOffline.rawValue,
                          parameters: parameters, time: Relay.timestamp()), watcher)
        }
    }

    /// The mask of `nick` if it is logged in here or, in a cluster, on another node.
    static func onlineMask(_ nick: String, _ c: CommandContext) -> String? {
        c.registry.session(named: nick)?.mask ?? c.core.cluster?.presence.user(named: nick)?.mask
    }
}

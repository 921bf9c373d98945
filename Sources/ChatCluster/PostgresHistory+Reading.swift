import ChatHistory

/// CHATHISTORY and its kin, read from the cluster's database (blocking: off the event loops).
extension PostgresHistory {
    static let roomColumns = "folded, name, topic, topic_by, topic_time, flags, key, room_limit, owner, created, last_used, bans"

    /// A row of `roomColumns`.
    static func room(_ r: [String?]) -> (String, RoomRecord)? {
        guard r.count == 12, let folded = r[0], let name = r[1] else { return nil }
        return (folded, RoomRecord(name: name, topic: r[2], topicBy: r[3] ?? "", topicTime: Int(r[4] ?? "") ?? 0, flags: r[5] ?? "",
                                   key: r[6], limit: r[7].flatMap { Int($0) }, owner: r[8], created: Int(r[9] ?? "") ?? 0,
                                   lastUsed: Int(r[10] ?? "") ?? 0, bans: RoomRecord.Ban.list(from: r[11] ?? "")))
    }

    static let columns = "SELECT msgid, at_ms, target, sender, kind, line"

    /// A row that starts with `columns`.
    static func message(_ r: [String?]) -> StoredMessage {
        StoredMessage(msgid: r[0] ?? "", time: Int64(r[1] ?? "") ?? 0, target: r[2] ?? "", sender: r[3] ?? "", kind: r[4] ?? "", line: r[5] ?? "")
    }

    func rows(_ sql: String, _ parameters: [String?]) throws -> [StoredMessage] {
        try reader.use { try $0.run(sql, parameters) }.rows.map(Self.message)
    }

    static func kinds(_ events: Bool) -> String {
        events ? "" : " AND kind IN ('PRIVMSG', 'NOTICE', 'TAGMSG')"
    }

    public func query(_ query: HistoryQuery, events: Bool) throws -> [StoredMessage] {
        let target = query.target
        return try query.answer(
            position: { reference, lower in
                switch reference {
                case let .time(t):
                    return .time(t, lower: lower)
                case let .msgid(id):
                    let found = try reader.use { try $0.run("SELECT at_ms, id FROM securechat_history WHERE msgid = $1 AND target = $2", [id, target]) }
                    guard let row = found.rows.first, let time = row[0].flatMap({ Int64($0) }), let number = row[1].flatMap({ Int64($0) }) else { return nil }
                    return HistoryPosition(time: time, id: number)
                }
            },
            before: { p, limit, above in
                var sql = Self.columns + " FROM securechat_history WHERE target = $1 AND (at_ms, id) < ($2::bigint, $3::bigint)" + Self.kinds(events)
                var parameters: [String?] = [target, "\(p.time)", "\(p.id)", "\(limit)"]
                if let above {
                    sql += " AND (at_ms, id) > ($5::bigint, $6::bigint)"
                    parameters += ["\(above.time)", "\(above.id)"]
                }
                return try rows(sql + " ORDER BY at_ms DESC, id DESC LIMIT $4", parameters).reversed()
            },
            after: { p, limit, inclusive, below in
                var sql = Self.columns + " FROM securechat_history WHERE target = $1 AND (at_ms, id) \(inclusive ? ">=" : ">") ($2::bigint, $3::bigint)" + Self.kinds(events)
                var parameters: [String?] = [target, "\(p.time)", "\(p.id)", "\(limit)"]
                if let below {
                    sql += " AND (at_ms, id) < ($5::bigint, $6::bigint)"
                    parameters += ["\(below.time)", "\(below.id)"]
                }
                return try rows(sql + " ORDER BY at_ms ASC, id ASC LIMIT $4", parameters)
            })
    }

    public func targets(rooms: [String], account: String, from: Int64, to: Int64, limit: Int) throws -> [(key: String, latest: Int64)] {
        let result = try reader.use {
            try $0.run("""
                SELECT target, max(at_ms) AS latest FROM securechat_history
                WHERE at_ms > $1 AND at_ms < $2\(Self.kinds(false))
                  AND (target = ANY($3::text[]) OR (left(target, 1) <> '#' AND (split_part(target, ',', 1) = $4 OR split_part(target, ',', 2) = $4)))
                GROUP BY target ORDER BY latest DESC LIMIT $5
                """, ["\(min(from, to))", "\(max(from, to))", ClusterBus.arrayLiteral(rooms), account, "\(limit)"])
        }
        return result.rows.compactMap { row in
            guard let key = row[0], let latest = row[1].flatMap({ Int64($0) }) else { return nil }
            return (key: key, latest: latest)
        }
    }

    public func lastSeen(_ account: String) throws -> Int64? {
        try reader.use { try $0.run("SELECT at_ms FROM securechat_last_seen WHERE account = $1", [account]) }.rows.first?[0].flatMap { Int64($0) }
    }
}

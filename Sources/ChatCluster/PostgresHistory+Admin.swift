import ChatHistory

/// What chat-admin does to the cluster's history besides what the nodes do.
extension PostgresHistory {
    public func members(of folded: String) -> [String] { memory.members(of: folded) }

    public func activity(of target: String) throws -> (messages: Int, latest: Int64?) {
        let row = try reader.use { try $0.run("SELECT count(*) AS n, max(at_ms) AS latest FROM securechat_history WHERE target = $1", [target]) }
        return (Int(row.value(0, "n") ?? "0") ?? 0, row.value(0, "latest").flatMap { Int64($0) })
    }

    public func delete(target: String, before: Int64) throws -> Int {
        try reader.use { try $0.run("DELETE FROM securechat_history WHERE target = $1 AND at_ms < $2", [target, "\(before)"]) }.affectedRows
    }

    public func all(target: String, page: (StoredMessage) throws -> Void) throws {
        // A thousand at a time, from where the last page ended, so a long history is never all
        // in memory.
        var time = Int64.min, id = Int64.min
        while true {
            let result = try reader.use {
                try $0.run(Self.columns + ", id FROM securechat_history WHERE target = $1 AND (at_ms, id) > ($2::bigint, $3::bigint) ORDER BY at_ms, id LIMIT 1000",
                           [target, "\(time)", "\(id)"])
            }
            for row in result.rows {
                let message = Self.message(row)
                try page(message)
                time = message.time
                id = row[6].flatMap { Int64($0) } ?? id
            }
            if result.rows.count < 1000 { return }
        }
    }
}

/// The tables the nodes share, created and migrated at start.
///
/// `securechat_schema` holds the version. Each node, at start, takes an advisory lock (so two
/// nodes starting together do not both migrate), applies the steps above the stored version in
/// one transaction, and refuses to run against a database newer than it knows: an older node
/// must not write to tables whose meaning it does not know.
public enum ClusterSchema {
    /// Each step's SQL; step N takes version N-1 to N.
    static let steps: [String] = [
        // 1: accounts (one row each, the same scrypt PHC records as the users file), the bans and
        // a counter that every change of either bumps, so nodes notice changes with one read.
        """
        CREATE TABLE securechat_accounts (
            folded text PRIMARY KEY,
            name text NOT NULL,
            hash text NOT NULL,
            created text NOT NULL,
            updated text NOT NULL,
            locked boolean NOT NULL DEFAULT false,
            operator boolean NOT NULL DEFAULT false,
            certificates text NOT NULL DEFAULT ''
        );
        CREATE TABLE securechat_account_state (
            single boolean PRIMARY KEY DEFAULT true CHECK (single),
            version bigint NOT NULL,
            bans text NOT NULL
        );
        INSERT INTO securechat_account_state (version, bans) VALUES (0, '');
        CREATE TABLE securechat_nodes (
            name text PRIMARY KEY,
            started timestamptz NOT NULL DEFAULT now(),
            seen timestamptz NOT NULL DEFAULT now()
        );
        """,
        // 2: the events between nodes, kept for a while so that a node that lost its connection
        // catches up on what it missed. securechat_publish stores and announces one event; the
        // lock makes events commit in the order of their numbers, so catching up by number
        // (seq > the last one seen) cannot skip one that committed late.
        """
        CREATE TABLE securechat_events (
            seq bigserial PRIMARY KEY,
            created timestamptz NOT NULL DEFAULT now(),
            payload text NOT NULL
        );
        CREATE INDEX securechat_events_created ON securechat_events (created);
        CREATE FUNCTION securechat_publish(body text) RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE
            number bigint;
        BEGIN
            PERFORM pg_advisory_xact_lock(7283003);
            INSERT INTO securechat_events (payload) VALUES (body) RETURNING seq INTO number;
            PERFORM pg_notify('securechat_events', number || ' ' || body);
            RETURN number;
        END
        $$;
        """,
        // 3: many events in one transaction: under load a node sends what queued up while the
        // previous call ran, so one commit (and one wait for the disk) carries many messages.
        """
        CREATE FUNCTION securechat_publish_many(bodies text[]) RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE
            body text;
            number bigint;
        BEGIN
            PERFORM pg_advisory_xact_lock(7283003);
            FOREACH body IN ARRAY bodies LOOP
                INSERT INTO securechat_events (payload) VALUES (body) RETURNING seq INTO number;
                PERFORM pg_notify('securechat_events', number || ' ' || body);
            END LOOP;
            RETURN number;
        END
        $$;
        """,
        // 4: history, read markers, last seen, rooms and who is in them, shared by every node
        // (PostgresHistory); chat-admin's room requests, which every node applies. Room messages
        // and private messages are stored in the transaction that publishes them.
        """
        CREATE TABLE securechat_history (
            id bigserial PRIMARY KEY,
            msgid text NOT NULL,
            at_ms bigint NOT NULL,
            target text NOT NULL,
            sender text NOT NULL,
            kind text NOT NULL,
            line text NOT NULL
        );
        CREATE UNIQUE INDEX securechat_history_target_msgid ON securechat_history (target, msgid);
        CREATE INDEX securechat_history_target_time ON securechat_history (target, at_ms, id);
        CREATE INDEX securechat_history_time ON securechat_history (at_ms);
        CREATE TABLE securechat_last_seen (account text PRIMARY KEY, at_ms bigint NOT NULL);
        CREATE TABLE securechat_read_markers (
            account text NOT NULL,
            target text NOT NULL,
            at_ms bigint NOT NULL,
            PRIMARY KEY (account, target)
        );
        CREATE TABLE securechat_rooms (
            folded text PRIMARY KEY,
            name text NOT NULL,
            topic text,
            topic_by text NOT NULL,
            topic_time bigint NOT NULL,
            flags text NOT NULL,
            key text,
            room_limit integer,
            owner text,
            created bigint NOT NULL,
            last_used bigint NOT NULL,
            bans text NOT NULL
        );
        CREATE TABLE securechat_memberships (
            account text NOT NULL,
            room text NOT NULL,
            folded text NOT NULL,
            joined bigserial,
            PRIMARY KEY (account, folded)
        );
        CREATE TABLE securechat_room_requests (
            id bigserial PRIMARY KEY,
            created timestamptz NOT NULL DEFAULT now(),
            action text NOT NULL,
            room text NOT NULL,
            account text
        );
        CREATE FUNCTION securechat_publish_batch(bodies text[], msgids text[], times bigint[], targets text[], senders text[],
                                                 kinds text[], lines text[]) RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE
            number bigint;
        BEGIN
            PERFORM pg_advisory_xact_lock(7283003);
            FOR i IN 1 .. coalesce(array_length(bodies, 1), 0) LOOP
                INSERT INTO securechat_events (payload) VALUES (bodies[i]) RETURNING seq INTO number;
                PERFORM pg_notify('securechat_events', number || ' ' || bodies[i]);
                IF msgids[i] IS NOT NULL THEN
                    INSERT INTO securechat_history (msgid, at_ms, target, sender, kind, line)
                    VALUES (msgids[i], times[i], targets[i], senders[i], kinds[i], lines[i])
                    ON CONFLICT (target, msgid) DO NOTHING;
                END IF;
            END LOOP;
            RETURN number;
        END
        $$;
        """,
        // 5: one message and its history row without arrays: what a message costs when it is
        // alone in its transaction (paced traffic).
        """
        CREATE FUNCTION securechat_publish_one(body text, msgid text, at_ms bigint, target text, sender text, kind text, line text)
        RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE
            number bigint;
        BEGIN
            PERFORM pg_advisory_xact_lock(7283003);
            INSERT INTO securechat_events (payload) VALUES (body) RETURNING seq INTO number;
            PERFORM pg_notify('securechat_events', number || ' ' || body);
            INSERT INTO securechat_history (msgid, at_ms, target, sender, kind, line)
            VALUES (msgid, at_ms, target, sender, kind, line) ON CONFLICT DO NOTHING;
            RETURN number;
        END
        $$;
        """,
        // 6: who is logged in where, for operators (`SELECT * FROM securechat_sessions`): each
        // node writes its logins and logouts with its heartbeat; a node's rows go when it stops,
        // starts again, or is found dead.
        """
        CREATE TABLE securechat_sessions (
            account text PRIMARY KEY,
            node text NOT NULL,
            since timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX securechat_sessions_node ON securechat_sessions (node);
        """,
        // 7: operators' invitations (room and nick, folded), until used or the room is deleted.
        // Each is stored, and a used one deleted, in the transaction that publishes the INVITE
        // or the JOIN (securechat_publish_invitation; a NULL inviter deletes): a node that
        // starts reads them after it listens, so it has every one, whether stored before or after.
        """
        CREATE TABLE securechat_invitations (
            room text NOT NULL,
            nick text NOT NULL,
            invited_by text NOT NULL,
            at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (room, nick)
        );
        CREATE FUNCTION securechat_publish_invitation(body text, room_name text, invitee text, inviter text) RETURNS bigint
        LANGUAGE plpgsql AS $$
        BEGIN
            IF inviter IS NULL THEN
                DELETE FROM securechat_invitations WHERE room = room_name AND nick = invitee;
            ELSE
                INSERT INTO securechat_invitations (room, nick, invited_by) VALUES (room_name, invitee, inviter)
                ON CONFLICT (room, nick) DO UPDATE SET invited_by = excluded.invited_by, at = now();
            END IF;
            RETURN securechat_publish(body);
        END
        $$;
        """,
        // 8: the retention purge, in the database: one node at a time (the others skip it), and
        // by conversation over the cap, through the (target, at_ms, id) index, instead of
        // numbering every row of the history (which cost each node's start seconds of CPU on a
        // history of millions).
        """
        CREATE FUNCTION securechat_purge_history(days integer, per_target integer, now_ms bigint) RETURNS bigint
        LANGUAGE plpgsql AS $$
        DECLARE
            removed bigint := 0;
            n bigint;
            over record;
        BEGIN
            IF NOT pg_try_advisory_xact_lock(7283004) THEN
                RETURN 0;
            END IF;
            IF days > 0 THEN
                DELETE FROM securechat_history WHERE at_ms < now_ms - days::bigint * 86400000;
                GET DIAGNOSTICS n = ROW_COUNT;
                removed := removed + n;
            END IF;
            IF per_target > 0 THEN
                FOR over IN SELECT target FROM securechat_history GROUP BY target HAVING count(*) > per_target LOOP
                    DELETE FROM securechat_history WHERE target = over.target AND (at_ms, id) <= (
                        SELECT h.at_ms, h.id FROM securechat_history h WHERE h.target = over.target
                        ORDER BY h.at_ms DESC, h.id DESC OFFSET per_target LIMIT 1);
                    GET DIAGNOSTICS n = ROW_COUNT;
                    removed := removed + n;
                END LOOP;
            END IF;
            DELETE FROM securechat_room_requests WHERE created < now() - interval '1 hour';
            RETURN removed;
        END
        $$;
        """,
    ]

    /// The version this program writes.
    public static var currentVersion: Int { steps.count }

    static let lockKey = "7283001"

    public enum Problem: Error, Sendable, CustomStringConvertible {
        case newer(found: Int)
        public var description: String {
            switch self {
            case let .newer(found):
                return "the cluster database has schema version \(found), but this chat-server knows only up to \(ClusterSchema.currentVersion) — upgrade this node to the release the other nodes run"
            }
        }
    }

    /// Brings the database to `currentVersion`; returns the version found before. Blocking.
    @discardableResult
    public static func migrate(_ connection: PostgresConnection) throws -> Int {
        try connection.transaction {
            _ = try connection.run("SELECT pg_advisory_xact_lock(\(lockKey))")
            _ = try connection.run("CREATE TABLE IF NOT EXISTS securechat_schema (version integer NOT NULL)")
            let found = Int(try connection.run("SELECT max(version) AS v FROM securechat_schema").value(0, "v") ?? "0") ?? 0
            guard found <= currentVersion else { throw Problem.newer(found: found) }
            for step in steps.dropFirst(found) {
                _ = try connection.script(step).wait()
            }
            if found < currentVersion {
                _ = try connection.run("DELETE FROM securechat_schema")
                _ = try connection.run("INSERT INTO securechat_schema (version) VALUES ($1)", ["\(currentVersion)"])
            }
            return found
        }
    }
}

extension PostgresConnection {
    /// Runs `body` between BEGIN and COMMIT; a throw rolls back and rethrows. Blocking, and the
    /// connection must not be shared with other callers meanwhile.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        _ = try run("BEGIN")
        do {
            let result = try body()
            _ = try run("COMMIT")
            return result
        } catch {
            _ = try? run("ROLLBACK")
            throw error
        }
    }
}

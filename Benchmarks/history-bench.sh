#!/usr/bin/env bash
# What keeping history costs, side by side in one run, and how fast a big database answers:
#
#   Benchmarks/history-bench.sh [ROUNDS]     the full run (about 12 minutes): writes
#                                            Benchmarks/results/history-DATE.md and the JSON lines
#   Benchmarks/history-bench.sh --smoke      every step in seconds (CI): debug build, small numbers
#
# 1. Fan-out (100 members, 10 senders) saturated and paced at 1000 msg/s, against chat-server with
#    history on and off, alternating, a fresh process per run; chat-bench and irc-load.py (two
#    load generators that share no code). The server's CPU per delivery from /proc/PID/stat.
# 2. Stored bytes per message: the database the history-on runs wrote.
# 3. A database of HISTORY_MESSAGES (1,000,000) messages in 10 rooms over 30 days, written by
#    sqlite3 in the server's own schema and line format: the server's start time on it (to the
#    port accepting), and CHATHISTORY LATEST * 100 / BEFORE timestamp=… 100 latency in one of
#    the rooms, with both load generators.
# Loopback only.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
MODE=full; ROUNDS="${1:-2}"
[ "${1:-}" = "--smoke" ] && { MODE=smoke; ROUNDS=1; }
CONFIGURATION=release; DURATION=5; MEMBERS=100; SENDERS=10; MESSAGES="${HISTORY_MESSAGES:-1000000}"; REQUESTS=2000; STARTS=3
[ $MODE = smoke ] && { CONFIGURATION=debug; DURATION=1; MEMBERS=20; SENDERS=4; MESSAGES=20000; REQUESTS=100; STARTS=1; }
. "$ROOT/Benchmarks/servers.lib.sh"
prepare_bench "$CONFIGURATION" securechat-history
command -v sqlite3 >/dev/null || { echo "needs sqlite3 (apt-get install sqlite3)" >&2; exit 1; }

BENCH_HISTORY=true write_securechat_config on 26811 4 1
BENCH_HISTORY=false write_securechat_config off 26811 4 1
make_bench_users "$WORK/on.json" 200
make_bench_users "$WORK/off.json" 200
RESULTS="$WORK/results.txt"

start() { # config → SERVER_PID; STARTED_MS: milliseconds from launch to the port accepting
    # Each fan-out run on a new database: what storing costs, not an hourly purge of the last
    # run's messages (the stored-bytes figure below is the last run's).
    [ "$1" = on ] && rm -f "$WORK/history.sqlite" "$WORK/history.sqlite-wal" "$WORK/history.sqlite-shm"
    local t0; t0=$(date +%s%N)
    "$BIN/chat-server" --config "$WORK/$1.json" --log-level warning 2>>"$WORK/$1.log" &
    SERVER_PID=$!; PIDS+=("$SERVER_PID")
    python3 - <<'PY'
import socket, time, sys
for _ in range(12000):
    try:
        socket.create_connection(("127.0.0.1", 26811), timeout=1).close(); sys.exit(0)
    except OSError:
        time.sleep(0.005)
sys.exit("port 26811 never opened")
PY
    STARTED_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
}
stop() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; }
bench() { "$BIN/chat-bench" "$@" --port 26811 --ca "$CA" | tee -a "$RESULTS"; }
load() { python3 "$ROOT/Benchmarks/irc-load.py" "$@" --port 26811 --ca "$CA" --server-pid "$SERVER_PID" | tee -a "$RESULTS"; }

echo "== fan-out, history on and off ($ROUNDS rounds)"
for round in $(seq 1 "$ROUNDS"); do
    order="on off"; [ $((round % 2)) = 0 ] && order="off on"
    for which in $order; do
        start "$which"; bench fanout --members $MEMBERS --senders $SENDERS --saturate --duration "$DURATION" --server-pid "$SERVER_PID" --label "history-$which"; stop
        start "$which"; bench fanout --members $MEMBERS --senders $SENDERS --rate 1000 --duration "$DURATION" --server-pid "$SERVER_PID" --label "history-$which"; stop
        start "$which"; load fanout --members $MEMBERS --senders $SENDERS --saturate --duration "$DURATION" --label "history-$which"; stop
        start "$which"; load fanout --members $MEMBERS --senders $SENDERS --rate 1000 --duration "$DURATION" --label "history-$which"; stop
    done
done

echo "== stored bytes per message"
DB="$WORK/history.sqlite"
sqlite3 "$DB" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
python3 - "$DB" <<'PY' | tee -a "$RESULTS"
import json, os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
count = db.execute("SELECT count(*) FROM messages").fetchone()[0]
pages = db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
line = db.execute("SELECT avg(length(line)) FROM messages").fetchone()[0] or 0
print(json.dumps({"scenario": "stored", "server": "fanout-runs", "messages": count, "file_bytes": os.path.getsize(sys.argv[1]),
                  "bytes_per_message": round(pages / max(1, count), 1), "line_bytes": round(line, 1)}))
PY

echo "== a database of $MESSAGES messages"
cat > "$WORK/big.json" <<JSON
{ "serverName": "localhost", "listeners": [ { "host": "127.0.0.1", "port": 26811 } ],
  "tls": { "certificateChain": "$CERT", "privateKey": "$KEY" }, "usersFile": "$WORK/on-users.json",
  "passwordHashing": { "ln": 4, "r": 8, "p": 1 },
  "limits": { "maxClientsPerAddress": 1000, "loginQueuePerNetwork": 20000, "messagesPerSecond": 1000000, "messageBurst": 1000000 },
  "history": { "database": "$WORK/big.sqlite" } }
JSON
start big; stop   # the schema, at the version this server writes
now_ms=$(( $(date +%s%N) / 1000000 ))
# Ten rooms of MESSAGES/10 (the default maxMessagesPerRoom keeps 100,000), spread over 30 days, in
# the line format the server stores (the message as relayed, without server tags).
sqlite3 "$WORK/big.sqlite" <<SQL
PRAGMA journal_mode=WAL;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $MESSAGES)
INSERT INTO messages(msgid, time, target, sender, kind, line)
SELECT printf('fill%08d', i), $now_ms - 2592000000 + i * (2592000000 / $MESSAGES), CASE i % 10 WHEN 0 THEN '#history-bench' ELSE '#room' || (i % 10) END,
       'bench' || (i % 50), 'PRIVMSG',
       printf(':bench%d!bench%d@127.0.0.1 PRIVMSG %s :message %d about the build, the release and who reviews what tomorrow morning',
              i % 50, i % 50, CASE i % 10 WHEN 0 THEN '#history-bench' ELSE '#room' || (i % 10) END, i)
FROM n;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
python3 - "$WORK/big.sqlite" <<'PY' | tee -a "$RESULTS"
import json, os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
count = db.execute("SELECT count(*) FROM messages").fetchone()[0]
pages = db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
print(json.dumps({"scenario": "stored", "server": "filled", "messages": count, "file_bytes": os.path.getsize(sys.argv[1]),
                  "bytes_per_message": round(pages / max(1, count), 1),
                  "line_bytes": round(db.execute("SELECT avg(length(line)) FROM messages").fetchone()[0], 1)}))
PY
for i in $(seq 1 "$STARTS"); do
    start big
    echo "{\"scenario\":\"start\",\"server\":\"securechat\",\"messages\":$MESSAGES,\"start_ms\":$STARTED_MS}" | tee -a "$RESULTS"
    bench history --room '#history-bench' --requests "$REQUESTS" --label "chat-bench"
    load history --room '#history-bench' --requests "$REQUESTS" --label "irc-load.py"
    stop
done

grep '^{' "$RESULTS" > "$WORK/results.jsonl"
if grep -q '"failed":[1-9]\|"lost":[1-9]\|"disconnects":[1-9]\|"failed": [1-9]\|"lost": [1-9]' "$WORK/results.jsonl"; then
    echo "history bench: failures (above)" >&2; exit 1
fi
python3 - "$WORK/results.jsonl" "$MODE" <<'PY' | tee "$WORK/summary.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def mean(xs): return statistics.mean(xs) if xs else float("nan")
def pick(tool, sat, which, field):
    return [float(r[field]) for r in rows
            if r.get("scenario") == "fanout" and r.get("server", "").split("+")[0] == f"history-{which}"
            and (r.get("tool") == "irc-load.py") == (tool == "irc-load.py") and (r.get("mode") == "saturate") == sat and field in r]
print("| scenario | tool | history on | history off | on ÷ off |")
print("|---|---|---|---|---|")
for sat, field, label in [(True, "delivered_per_second", "saturated deliveries/s"), (True, "server_us_per_delivery", "saturated server CPU µs/delivery"),
                          (False, "p99_ms", "paced 1000 msg/s p99 ms"), (False, "server_us_per_delivery", "paced server CPU µs/delivery")]:
    for tool in ["chat-bench", "irc-load.py"]:
        on, off = pick(tool, sat, "on", field), pick(tool, sat, "off", field)
        if not on or not off: continue
        print(f"| {label} | {tool} | {mean(on):.2f} ({', '.join(f'{x:g}' for x in on)}) | {mean(off):.2f} ({', '.join(f'{x:g}' for x in off)}) | {mean(on) / mean(off):.2f} |")
for r in rows:
    if r.get("scenario") == "stored":
        print(f"\nstored ({r['server']}): {r['messages']} messages, {r['bytes_per_message']} bytes per message in the database (lines average {r['line_bytes']} bytes)")
starts = [r for r in rows if r.get("scenario") == "start"]
if starts: print(f"\nstart on the filled database ({starts[0]['messages']} messages): {', '.join(str(r['start_ms']) for r in starts)} ms from launch to the port accepting\n")
for r in rows:
    if r.get("scenario") == "history":
        print(f"history [{r.get('tool', 'chat-bench')}]: {r['requests']} requests, {r['messages_per_answer']} messages each, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms (LATEST {r['latest_p99_ms']}, BEFORE {r['before_p99_ms']}), max {r['max_ms']} ms")
PY
if [ $MODE = full ]; then
    mkdir -p "$ROOT/Benchmarks/results"
    stamp=$(date -u +%Y-%m-%dT%H%MZ)
    cp "$WORK/summary.md" "$ROOT/Benchmarks/results/history-$stamp.md"
    cp "$WORK/results.jsonl" "$ROOT/Benchmarks/results/history-$stamp.jsonl"
    echo "results: Benchmarks/results/history-$stamp.md" >&2
fi

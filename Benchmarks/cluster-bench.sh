#!/usr/bin/env bash
# Two SecureChat nodes on one PostgreSQL against one server alone, side by side in one run.
#
#   Benchmarks/cluster-bench.sh [ROUNDS]   the full run (a few minutes): writes
#                                          Benchmarks/results/cluster-DATE.jsonl
#   Benchmarks/cluster-bench.sh --smoke    every step in seconds (CI): debug build, small numbers
#
# Four set-ups, alternating, a fresh set of processes per run:
#   single  one chat-server, no cluster (history on, as the nodes have it: SQLite here, PostgreSQL
#           for the nodes)
#   same    two nodes; senders and receivers on node a (node b idle in the cluster)
#   cross   two nodes; senders on node a, receivers on node b
#   spread  two nodes; members, senders included, on both in turn (--nodes)
# In each, a room of MEMBERS, SENDERS of them sending, paced at RATE messages per second and then
# saturating, with chat-bench and with irc-load.py (two load generators that share no code).
# Reported: deliveries per second, latency p50/p99, the nodes' CPU per delivery (from /proc), and
# PostgreSQL's CPU per message (its postmaster and backends). Each message is stored in the shared
# history and announced (a NOTIFY) in the transaction that publishes it. Needs PostgreSQL (apt-get install postgresql).
# Loopback only.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
MODE=full; ROUNDS="${1:-2}"
[ "${1:-}" = "--smoke" ] && { MODE=smoke; ROUNDS=1; }
# A part of the run (to look at one thing): SETUPS="cross" MODES=paced Benchmarks/cluster-bench.sh 1
SETUPS="${SETUPS:-single same cross spread}"; MODES="${MODES:-paced saturate}"
CONFIGURATION=release; DURATION=5; MEMBERS=20; SENDERS=10; RATE=2000
[ $MODE = smoke ] && { CONFIGURATION=debug; DURATION=1; MEMBERS=6; SENDERS=2; RATE=100; }
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$PGBIN/initdb" ] || { echo "cluster-bench: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
. "$ROOT/Benchmarks/servers.lib.sh"
prepare_bench "$CONFIGURATION" securechat-cluster
RESULTS="$WORK/results.jsonl"
export BENCH_HISTORY=true

# A throwaway PostgreSQL of this run: initdb as the postgres user (it refuses root), SCRAM logins.
PGPORT=26830; PGDATA="$WORK/pg"
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
mkdir -p "$PGDATA"; echo "pg-bench-$$-$RANDOM" > "$WORK/pg-password"; chmod 600 "$WORK/pg-password"
cp "$WORK/pg-password" "$PGDATA/pw"
# The postgres user may pass through the work folder (not read it) to reach its own.
[ "$(id -u)" = 0 ] && { chmod o+x "$WORK"; chown -R postgres:postgres "$PGDATA"; }
as_postgres "$PGBIN/initdb" -D "$PGDATA/data" -U securechat --pwfile="$PGDATA/pw" --auth=scram-sha-256 -E UTF8 --no-sync >/dev/null
as_postgres "$PGBIN/pg_ctl" -D "$PGDATA/data" -l "$PGDATA/log" -w -t 60 -o "-p $PGPORT -k $PGDATA -c listen_addresses=127.0.0.1" start >/dev/null
trap 'for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; as_postgres "$PGBIN/pg_ctl" -D "$PGDATA/data" -m immediate stop >/dev/null 2>&1 || true' EXIT
POSTMASTER=$(head -1 "$PGDATA/data/postmaster.pid")

# CPU seconds of PostgreSQL (JSON), by purpose: each node's connections name theirs in
# application_name ("securechat a events-publish"), PostgreSQL's own processes by backend_type;
# "exited" is what the postmaster's children that ended meanwhile used (autovacuum workers).
pg_cpu() {
    local names
    names=$(PGPASSWORD="$(cat "$WORK/pg-password")" "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U securechat -d postgres -At -F ' ' \
        -c "SELECT pid, coalesce(nullif(split_part(application_name, ' ', 3), ''), replace(backend_type, ' ', '-')) FROM pg_stat_activity" 2>/dev/null || true)
    python3 - "$POSTMASTER" "$names" <<'PY'
import json, os, sys
root = int(sys.argv[1]); tick = os.sysconf("SC_CLK_TCK")
purpose = dict(line.split(" ", 1) for line in sys.argv[2].splitlines() if " " in line)
totals = {}
for name in os.listdir("/proc"):
    if not name.isdigit():
        continue
    try:
        fields = open(f"/proc/{name}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    if int(name) == root:
        totals["postmaster"] = totals.get("postmaster", 0) + (int(fields[11]) + int(fields[12])) / tick
        totals["exited"] = totals.get("exited", 0) + (int(fields[13]) + int(fields[14])) / tick
    elif int(fields[1]) == root:
        kind = purpose.get(name, "other")
        totals[kind] = totals.get(kind, 0) + (int(fields[11]) + int(fields[12])) / tick
print(json.dumps(totals))
PY
}

write_securechat_config single 26831 4 1
for node in a b; do
    port=26832; [ $node = b ] && port=26833
    write_securechat_config "node-$node" $port 4 1
    python3 - "$WORK/node-$node.json" "$node" "$PGPORT" "$WORK/pg-password" <<'PY'
import json, sys
path, node, port, password = sys.argv[1:]
config = json.load(open(path))
config["history"] = {"database": path.replace(".json", "-history.sqlite")}
config["cluster"] = {"node": node, "database": f"postgresql://securechat@127.0.0.1:{port}/postgres", "tls": "disable", "passwordFile": password}
json.dump(config, open(path, "w"), indent=2)
PY
done
make_bench_users "$WORK/single.json" $((MEMBERS + 5))
make_bench_users "$WORK/node-a.json" $((MEMBERS + 5))   # into PostgreSQL: the config has a cluster block

start_single() {
    "$BIN/chat-server" --config "$WORK/single.json" --log-level warning 2>>"$WORK/single.log" &
    A_PID=$!; B_PID=""; PIDS+=("$A_PID"); wait_port 26831; PLACES=(--port 26831)
}
start_cluster() {
    "$BIN/chat-server" --config "$WORK/node-a.json" --log-level warning 2>>"$WORK/node-a.log" &
    A_PID=$!; PIDS+=("$A_PID"); wait_port 26832
    "$BIN/chat-server" --config "$WORK/node-b.json" --log-level warning 2>>"$WORK/node-b.log" &
    B_PID=$!; PIDS+=("$B_PID"); wait_port 26833
    SEND_PORT=26832; RECEIVE_PORT=26832; [ "$1" = cross ] && RECEIVE_PORT=26833
    PLACES=(--port "$SEND_PORT" --receiver-port "$RECEIVE_PORT"); [ "$1" = spread ] && PLACES=(--nodes 26832,26833)
    return 0
}
stop_all() {
    for p in $A_PID $B_PID; do kill "$p" 2>/dev/null || true; done
    for p in $A_PID $B_PID; do wait "$p" 2>/dev/null || true; done
}
# Runs one load generator, then adds PostgreSQL's CPU per sent message to its JSON line.
measure() {
    local setup=$1 tool=$2; shift 2
    local also=(); [ -n "$B_PID" ] && also=(--also-pid "$B_PID")
    local before; before=$(pg_cpu)
    local line
    if [ "$tool" = chat-bench ]; then
        # Both tools may take four minutes for a saturated run's backlog to arrive (see below).
        line=$("$BIN/chat-bench" fanout "$@" "${PLACES[@]}" --drain-limit 240 --ca "$CA" --server-pid "$A_PID" "${also[@]}" --label "$setup" | grep '^{')
    else
        # Python fills the senders' sockets faster than two nodes drain them: allow the backlog
        # up to four minutes to arrive before counting it lost.
        line=$(python3 "$ROOT/Benchmarks/irc-load.py" fanout "$@" "${PLACES[@]}" --drain-limit 240 --ca "$CA" --server-pid "$A_PID" "${also[@]}" --label "$setup" | grep '^{')
    fi
    local after; after=$(pg_cpu)
    python3 - "$line" "$before" "$after" "$tool" <<'PY' | tee -a "$RESULTS"
import json, sys
line, tool = json.loads(sys.argv[1]), sys.argv[4]
before, after = json.loads(sys.argv[2]), json.loads(sys.argv[3])
used = {k: after[k] - before.get(k, 0) for k in after}
line["tool"] = tool
line["postgres_cpu_s"] = round(sum(used.values()), 3)
line["postgres_us_per_message"] = round(sum(used.values()) * 1e6 / max(1, line["sent"]), 1)
# (A connection made during the run counts whole: its CPU before the run was nothing.)
line["postgres_us_per_message_by_purpose"] = {k: round(v * 1e6 / max(1, line["sent"]), 1) for k, v in sorted(used.items(), key=lambda kv: -kv[1]) if v > 0}
print(json.dumps(line))
PY
}

echo "== single server against two nodes, same-node, cross-node and spread ($ROUNDS rounds, $MEMBERS members, $SENDERS senders)"
for round in $(seq 1 "$ROUNDS"); do
    order="$SETUPS"; [ $((round % 2)) = 0 ] && order=$(echo "$SETUPS" | tr ' ' '\n' | tac | tr '\n' ' ')
    for setup in $order; do
        for tool in chat-bench irc-load.py; do
            for mode in $MODES; do
                if [ $setup = single ]; then start_single; else start_cluster $setup; fi
                if [ $mode = paced ]; then shape=(--rate "$RATE"); else shape=(--saturate); fi
                # (The smoke paces irc-load.py: saturating a debug server from Python only queues minutes of work.)
                [ $MODE = smoke ] && [ $tool = irc-load.py ] && shape=(--rate "$RATE")
                measure $setup $tool --members $MEMBERS --senders $SENDERS "${shape[@]}" --duration "$DURATION"
                stop_all
            done
        done
    done
done
# The results are kept whatever they show (a failed check below still has its numbers).
if [ $MODE = full ]; then
    stamp=$(date -u +%Y-%m-%dT%H%MZ)
    mkdir -p "$ROOT/Benchmarks/results"
    cp "$RESULTS" "$ROOT/Benchmarks/results/cluster-$stamp.jsonl"
    echo "results: Benchmarks/results/cluster-$stamp.jsonl"
fi
python3 - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bad = [r for r in rows if r.get("lost", 0) or r.get("disconnects", 0) or r.get("surplus", 0)]
for r in bad:
    print(f"cluster-bench: {r['server']} {r['tool']} {r['mode']}: lost {r.get('lost')}, surplus {r.get('surplus', 0)}, disconnects {r.get('disconnects')}", file=sys.stderr)
print("setup   tool         mode      deliveries/s  p50 ms  p99 ms  nodes us/delivery  postgres us/message  (most: us/message by purpose)")
for r in rows:
    top = ", ".join(f"{k} {v}" for k, v in list(r.get("postgres_us_per_message_by_purpose", {}).items())[:3])
    print(f"{r['server']:<7} {r['tool']:<12} {r['mode']:<9} {r['delivered_per_second']:>12} {r['p50_ms']:>7} {r['p99_ms']:>7} {r.get('server_us_per_delivery', '-'):>18} {r['postgres_us_per_message']:>20}  {top}")
sys.exit(1 if bad else 0)
PY

#!/usr/bin/env bash
# Two chat-server builds side by side, alternating, on the scenarios a change is meant to move:
#
#   Benchmarks/ab-servers.sh OLD_CHAT_SERVER NEW_CHAT_SERVER [ROUNDS]
#
# For example, to measure a change: build and copy the old binary first,
#   swift build -c release --product chat-server && cp .build/release/chat-server /tmp/chat-server-old
# then make the change and run Benchmarks/ab-servers.sh /tmp/chat-server-old .build/release/chat-server.
# Scenarios: the login storm with cheap hashing (ln=4: TLS handshakes dominate) and with the
# default scrypt; saturated fan-out with the server's CPU per delivery; paced fan-out (100
# members, 10 senders, 1000 msg/s) with the server's CPU per delivery and the p99; idle memory per
# logged-in connection (2,000 clients). Loopback only.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OLD="$(realpath "$1")"; NEW="$(realpath "$2")"; ROUNDS="${3:-2}"
SCENARIOS="${SCENARIOS:-storm4 storm15 fanout}"   # also: paced idle; for example SCENARIOS="fanout paced idle"
cd "$ROOT"
swift build -c release --product chat-bench >/dev/null; swift build -c release --product chat-admin >/dev/null
BIN="$ROOT/.build/release"
WORK="$(mktemp -d /tmp/securechat-ab.XXXXXX)"; echo "work folder: $WORK" >&2
PIDS=(); cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; }; trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" || true
"$BIN/chat-admin" certs init --dir "$WORK/certs" >/dev/null
CA="$WORK/certs/ca.crt"
for ln in 4 15; do
    # The real-scrypt users file is slow to make: only when a scenario needs it.
    [ $ln = 15 ] && [[ " $SCENARIOS " != *" storm15 "* ]] && continue
    p=$([ $ln = 4 ] && echo 1 || echo 3)
    cat > "$WORK/ln$ln.json" <<JSON
{ "listeners": [ { "host": "127.0.0.1", "port": 26801 } ],
  "tls": { "certificateChain": "$WORK/certs/server.crt", "privateKey": "$WORK/certs/server.key" },
  "usersFile": "$WORK/users-ln$ln.json", "passwordHashing": { "ln": $ln, "r": 8, "p": $p },
  "limits": { "maxClients": 15000, "maxClientsPerAddress": 15000, "messagesPerSecond": 1000000, "messageBurst": 1000000,
              "sendQueueBytes": 16777216, "loginQueue": 20000, "registrationTimeoutSeconds": 300, "handshakeTimeoutSeconds": 60 } }
JSON
    accounts=$([ $ln = 4 ] && echo 2100 || echo 600)
    python3 -c "[print(f'bench{i},bench-password') for i in range($accounts)]" > "$WORK/users.csv"
    "$BIN/chat-admin" import "$WORK/users.csv" --config "$WORK/ln$ln.json" >/dev/null 2>&1
done
wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/26801) 2>/dev/null && return 0; sleep 0.1; done; echo "port 26801 never opened" >&2; return 1; }
run() { # label binary config -- chat-bench arguments
    local label=$1 binary=$2 config=$3; shift 3
    "$binary" --config "$WORK/$config.json" --log-level warning 2>>"$WORK/$label.log" & local pid=$!; PIDS+=("$pid")
    wait_port; sleep 0.5
    local extra=(); { [ "$1" = fanout ] || [ "$1" = idle ]; } && extra=(--server-pid "$pid")
    "$BIN/chat-bench" "$@" "${extra[@]}" --port 26801 --ca "$CA" --label "$label" | tee -a "$WORK/results.txt" || true
    kill "$pid"; wait "$pid" 2>/dev/null || true; sleep 1
}
for round in $(seq 1 "$ROUNDS"); do
    order="old new"; [ $((round % 2)) = 0 ] && order="new old"
    for which in $order; do
        binary=$OLD; [ "$which" = new ] && binary=$NEW
        if [[ " $SCENARIOS " == *" storm4 "* ]]; then
            run "$which-ln4" "$binary" ln4 storm --clients 500 --chatters 10 --rate 50 --baseline 3
        fi
        if [[ " $SCENARIOS " == *" storm15 "* ]]; then
            run "$which-ln15" "$binary" ln15 storm --clients 200 --chatters 10 --rate 50 --baseline 3
        fi
        if [[ " $SCENARIOS " == *" fanout "* ]]; then
            run "$which" "$binary" ln4 fanout --members 200 --senders 10 --saturate --duration 5
        fi
        if [[ " $SCENARIOS " == *" paced "* ]]; then
            run "$which-paced" "$binary" ln4 fanout --members 100 --senders 10 --rate 1000 --duration 5
        fi
        if [[ " $SCENARIOS " == *" idle "* ]]; then
            run "$which" "$binary" ln4 idle --clients 2000 --room-size 50 --inflight 200
        fi
    done
done
grep '^{' "$WORK/results.txt" > "$WORK/results.jsonl"
python3 - "$WORK/results.jsonl" <<'PY'
import json, sys, statistics
from collections import defaultdict
rows = [json.loads(l) for l in open(sys.argv[1])]
g = defaultdict(list)
for r in rows: g[(r["scenario"], r["server"])].append(r)
fields = {"storm": ["logins_per_second", "chat_p99_ms_before", "chat_p99_ms_during", "p99_ratio"],
          "fanout": ["delivered_per_second", "p99_ms", "server_us_per_delivery", "server_cpu_s", "bench_cpu_s", "lost"],
          "idle": ["held", "kib_per_connection", "rss_before_kib"]}
for (scenario, server), runs in sorted(g.items()):
    print(f"{scenario:7} {server:10} " + "  ".join(f"{f}={statistics.mean(float(r[f]) for r in runs):.2f} ({', '.join(str(r[f]) for r in runs)})" for f in fields[scenario] if f in runs[0]))
PY
echo "results: $WORK/results.jsonl" >&2

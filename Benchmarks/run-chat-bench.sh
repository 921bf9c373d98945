#!/usr/bin/env bash
# SecureChat against ngIRCd and InspIRCd on this machine, side by side, over TLS on loopback.
#
#   Benchmarks/run-chat-bench.sh            the full comparison (about 15 minutes), writes
#                                           Benchmarks/results/latest.md and the JSON lines
#   Benchmarks/run-chat-bench.sh --smoke    each scenario against SecureChat in seconds (CI)
#
# Installs ngircd and inspircd from Debian if missing (root). Every server gets the same ECDSA
# certificate, loopback only, limits raised so that loopback clients are not throttled.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
MODE="${1:-full}"
CONFIGURATION=release
[ "$MODE" = "--smoke" ] && CONFIGURATION=debug   # CI has just built debug; seconds, not minutes
. "$ROOT/Benchmarks/servers.lib.sh"
prepare_bench "$CONFIGURATION" securechat-bench
make_users() { make_bench_users "$@"; }

write_config() { write_securechat_config "$@"; }


start_securechat() { # config port
    "$BIN/chat-server" --config "$WORK/$1.json" --log-level warning 2>>"$WORK/$1.log" &
    SERVER_PID=$!; PIDS+=("$SERVER_PID"); wait_port "$2"
}

bench() { "$BIN/chat-bench" "$@" --ca "$CA" | tee -a "$WORK/results.txt"; }

if [ "$MODE" = "--smoke" ]; then
    write_config smoke 26697 4 1
    make_users "$WORK/smoke.json" 60
    start_securechat smoke 26697
    bench connect --port 26697 --clients 40 --inflight 10
    bench idle --port 26697 --clients 40 --room-size 10 --server-pid "$SERVER_PID" --settle 0.5
    bench fanout --port 26697 --members 20 --senders 4 --rate 100 --duration 1
    bench fanout --port 26697 --members 20 --senders 4 --saturate --duration 1 --server-pid "$SERVER_PID"
    bench storm --port 26697 --clients 30 --chatters 5 --rate 50 --baseline 1
    grep -c '^{' "$WORK/results.txt" | xargs -I{} echo "chat-bench smoke: {} scenarios reported"
    if grep -q '"failed":[1-9]\|"lost":[1-9]\|"disconnects":[1-9]' "$WORK/results.txt"; then echo "chat-bench smoke: failures" >&2; exit 1; fi
    exit 0
fi

# ---- the full comparison ---------------------------------------------------------------
if [ "$(id -u)" = 0 ] && { ! command -v ngircd >/dev/null || ! command -v inspircd >/dev/null; }; then
    apt-get install -y -q --no-install-recommends ngircd inspircd >/dev/null
fi
CONNECT_N=${CONNECT_N:-2000}; IDLE_N=${IDLE_N:-5000}; HOLD_N=${HOLD_N:-10000}; ROUNDS=${ROUNDS:-2}
MEMBERS=${MEMBERS:-200}; SENDERS=${SENDERS:-10}; PACED_RATE=${PACED_RATE:-200}; DURATION=${DURATION:-5}
STORM_N=${STORM_N:-500}
# With real scrypt every login costs ~0.2 s of CPU: fewer clients keep those runs short.
LOGIN_CONNECT_N=${LOGIN_CONNECT_N:-200}; LOGIN_STORM_N=${LOGIN_STORM_N:-200}

# SecureChat twice: default scrypt (the real login cost) and ln=4 (login step nearly free).
write_config sc-default 26701 15 3
write_config sc-cheap 26702 4 1
make_users "$WORK/sc-default.json" $((LOGIN_CONNECT_N + LOGIN_STORM_N + MEMBERS + 20))
make_users "$WORK/sc-cheap.json" $((HOLD_N + STORM_N + 20))

write_anchor_configs

start_server() { # name -> sets SERVER_PID, PORT, FLAGS, LABEL
    case "$1" in
        sc-default) start_securechat sc-default 26701; PORT=26701; FLAGS=(); LABEL="securechat-scrypt15";;
        sc-cheap)   start_securechat sc-cheap 26702; PORT=26702; FLAGS=(); LABEL="securechat-scrypt4";;
        ngircd)     start_anchor ngircd; FLAGS=(--no-login); LABEL="ngircd";;
        inspircd)   start_anchor inspircd; FLAGS=(--no-login); LABEL="inspircd";;
    esac
    sleep 1
}
stop_server() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; sleep 1; }

run_all() { # name
    local n=$CONNECT_N storm=$STORM_N
    if [ "$1" = sc-default ]; then n=$LOGIN_CONNECT_N; storm=$LOGIN_STORM_N; fi
    start_server "$1"
    bench connect --port $PORT "${FLAGS[@]}" --label $LABEL --clients $n --inflight 200 || true
    if [ "$1" = sc-default ]; then
        # Real scrypt changes only the login cost: the connect rate and the storm show it.
        stop_server; start_server "$1"
        bench storm --port $PORT --label $LABEL --clients $storm --chatters 10 --rate 50 --baseline 3 || true
        stop_server
        return
    fi
    stop_server; start_server "$1"
    bench idle --port $PORT "${FLAGS[@]}" --label $LABEL --clients $IDLE_N --room-size 50 --inflight 200 --server-pid $SERVER_PID || true
    stop_server; start_server "$1"
    bench fanout --port $PORT "${FLAGS[@]}" --label $LABEL --members $MEMBERS --senders $SENDERS --rate $PACED_RATE --duration $DURATION --server-pid $SERVER_PID || true
    stop_server; start_server "$1"
    bench fanout --port $PORT "${FLAGS[@]}" --label $LABEL --members $MEMBERS --senders $SENDERS --saturate --duration $DURATION --server-pid $SERVER_PID || true
    stop_server; start_server "$1"
    bench storm --port $PORT "${FLAGS[@]}" --label $LABEL --clients $storm --chatters 10 --rate 50 --baseline 3 || true
    stop_server
}

for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="sc-cheap ngircd inspircd sc-default"; else order="sc-default inspircd ngircd sc-cheap"; fi
    for server in $order; do echo "== round $round: $server" >&2; run_all "$server"; done
done
# 10,000 logged-in TLS clients held by SecureChat.
start_server sc-cheap
bench idle --port $PORT --label securechat-10k --clients $HOLD_N --room-size 50 --inflight 200 --server-pid $SERVER_PID || true
stop_server

mkdir -p "$ROOT/Benchmarks/results"
STAMP=$(date -u +%Y-%m-%dT%H%MZ)
grep '^{' "$WORK/results.txt" > "$ROOT/Benchmarks/results/$STAMP.jsonl"
python3 "$ROOT/Benchmarks/summarize.py" "$ROOT/Benchmarks/results/$STAMP.jsonl" > "$ROOT/Benchmarks/results/latest.md"
echo "wrote Benchmarks/results/$STAMP.jsonl and Benchmarks/results/latest.md" >&2

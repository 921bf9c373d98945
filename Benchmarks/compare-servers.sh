#!/usr/bin/env bash
# SecureChat, ngIRCd and InspIRCd side by side on this machine, every figure measured by two load
# generators that share no code: chat-bench (Swift, this repository) and irc-load.py (Python
# asyncio, standard library only).
#
#   Benchmarks/compare-servers.sh [ROUNDS]    the full comparison (about 9 minutes a round; default 3)
#   Benchmarks/compare-servers.sh --smoke     irc-load.py against SecureChat in seconds (CI)
#
# Fresh server process per run; servers alternate, their order reversed every other round. TLS 1.3
# with the same ECDSA P-256 certificate everywhere, clients verify it. SecureChat logs every
# client in with SASL PLAIN (cheap scrypt, ln=4); the anchors have no accounts. ngIRCd and
# InspIRCd leave Nagle's algorithm on; the "+nodelay" rows run them with TCP_NODELAY (an
# LD_PRELOAD shim, Benchmarks/nodelay/nodelay.c) as SecureChat has it: see BENCHMARKS.md for why
# that changes whose process the kernel's TCP work is billed to.
#
# Environment: SERVERS, CASES, TOOLS (lists), DURATION (seconds of sending, default 5).
# Writes Benchmarks/results/compare-<time>.jsonl and .md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
MODE="${1:-3}"
CONFIGURATION=release
[ "$MODE" = "--smoke" ] && CONFIGURATION=debug   # CI has just built debug
. "$ROOT/Benchmarks/servers.lib.sh"
prepare_bench "$CONFIGURATION" securechat-compare
LOAD=(python3 "$ROOT/Benchmarks/irc-load.py")

if [ "$MODE" = "--smoke" ]; then
    write_securechat_config smoke 26698 4 1
    make_bench_users "$WORK/smoke.json" 60
    "$BIN/chat-server" --config "$WORK/smoke.json" --log-level warning 2>>"$WORK/smoke.log" & SERVER_PID=$!; PIDS+=("$SERVER_PID")
    wait_port 26698
    common=(--port 26698 --ca "$CA" --server-pid "$SERVER_PID" --label securechat)
    { "${LOAD[@]}" fanout "${common[@]}" --members 20 --senders 4 --rate 200 --duration 1
      "${LOAD[@]}" fanout "${common[@]}" --members 20 --senders 4 --saturate --duration 1
      "${LOAD[@]}" connect "${common[@]}" --clients 20 --first 20 --inflight 10
      "${LOAD[@]}" idle "${common[@]}" --clients 20 --first 40 --room-size 10 --settle 0.2; } | tee "$WORK/results.jsonl"
    lines=$(grep -c '^{' "$WORK/results.jsonl")
    [ "$lines" = 4 ] || { echo "irc-load.py smoke: $lines of 4 scenarios reported" >&2; exit 1; }
    if grep -q '"failed": [1-9]\|"lost": [1-9]\|"disconnects": [1-9]\|"surplus": [1-9]' "$WORK/results.jsonl"; then echo "irc-load.py smoke: failures" >&2; exit 1; fi
    echo "irc-load.py smoke: 4 scenarios reported, nothing lost"
    exit 0
fi

ROUNDS=$MODE
DURATION=${DURATION:-5}
SERVERS=${SERVERS:-"securechat ngircd inspircd ngircd+nodelay inspircd+nodelay"}
CASES=${CASES:-"paced1000 paced2000 saturate connect idle"}
TOOLS=${TOOLS:-"chat-bench irc-load"}
if [ "$(id -u)" = 0 ] && { ! command -v ngircd >/dev/null || ! command -v inspircd >/dev/null; }; then
    apt-get install -y -q --no-install-recommends ngircd inspircd >/dev/null
fi
cc -shared -fPIC -O2 -o "$WORK/nodelay.so" "$ROOT/Benchmarks/nodelay/nodelay.c" -ldl
write_securechat_config securechat 26705 4 1
make_bench_users "$WORK/securechat.json" 2200
write_anchor_configs

start() { # server -> SERVER_PID, PORT, LOGIN
    case "$1" in
        securechat) "$BIN/chat-server" --config "$WORK/securechat.json" --log-level warning 2>>"$WORK/securechat.log" & SERVER_PID=$!
                    PIDS+=("$SERVER_PID"); PORT=26705; wait_port $PORT; LOGIN=();;
        *+nodelay)  start_anchor "${1%+nodelay}" "$WORK/nodelay.so"; LOGIN=(--no-login);;
        *)          start_anchor "$1"; LOGIN=(--no-login);;
    esac
    sleep 1
}
stop() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; sleep 1; }

run() { # case tool server
    local case=$1 tool=$2 server=$3 args=()
    case "$case" in
        paced*)   args=(fanout --members 100 --senders 10 --rate "${case#paced}" --duration "$DURATION");;
        # Saturating senders outrun what the receivers can take: the backlog in the servers' send
        # queues drains for many seconds after, so a shorter sending time.
        saturate) args=(fanout --members 100 --senders 10 --saturate --duration 2)
                  [ "$tool" = irc-load ] && args+=(--timing-every 4);;
        connect)  args=(connect --clients 1000 --inflight 50);;
        idle)     args=(idle --clients 2000 --room-size 50 --inflight 100);;
    esac
    start "$server"
    local common=(--port "$PORT" --ca "$CA" "${LOGIN[@]}" --server-pid "$SERVER_PID" --label "$server")
    local output
    if [ "$tool" = chat-bench ]; then
        output=$("$BIN/chat-bench" "${args[@]}" "${common[@]}" 2>>"$WORK/errors.log" | grep '^{' || true)
    else
        output=$("${LOAD[@]}" "${args[@]}" "${common[@]}" 2>>"$WORK/errors.log" || true)
    fi
    stop
    if [ -z "$output" ]; then echo "no result: $case $tool $server (see $WORK/errors.log)" >&2; return; fi
    # One JSON line, tagged with the case, the tool and the round.
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(case=sys.argv[2], tool=sys.argv[3], round=int(sys.argv[4]), server=sys.argv[5]); print(json.dumps(d))' \
        "$output" "$case" "$tool" "$round" "$server" | tee -a "$WORK/results.jsonl"
}

for round in $(seq 1 "$ROUNDS"); do
    order=$SERVERS; [ $((round % 2)) = 0 ] && order=$(echo "$SERVERS" | tr ' ' '\n' | tac | tr '\n' ' ')
    for case in $CASES; do
        for tool in $TOOLS; do
            for server in $order; do
                # Nagle matters where small writes go out one by one: the paced cases.
                [[ "$server" == *+nodelay && "$case" != paced* ]] && continue
                echo "== round $round: $case, $tool, $server" >&2
                run "$case" "$tool" "$server"
            done
        done
    done
done
mkdir -p "$ROOT/Benchmarks/results"
STAMP=$(date -u +%Y-%m-%dT%H%MZ)
cp "$WORK/results.jsonl" "$ROOT/Benchmarks/results/compare-$STAMP.jsonl"
python3 "$ROOT/Benchmarks/summarize-compare.py" "$ROOT/Benchmarks/results/compare-$STAMP.jsonl" | tee "$ROOT/Benchmarks/results/compare-$STAMP.md"
echo "wrote Benchmarks/results/compare-$STAMP.jsonl and .md" >&2

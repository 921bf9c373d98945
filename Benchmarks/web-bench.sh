#!/usr/bin/env bash
# The web side measured: IRC over WebSocket against IRC over TLS on the same server, side by side
# in one run, and the web app's first load in a real browser.
#
#   Benchmarks/web-bench.sh [ROUNDS]    the full run (about 8 minutes): writes
#                                       Benchmarks/results/web-DATE.md and the JSON lines, and the
#                                       screenshots in docs/ (desktop and phone, light and dark)
#   Benchmarks/web-bench.sh --smoke     every step in seconds (CI): debug build, small numbers
#
# 1. Idle memory per logged-in connection (2,000 clients in rooms of 50) and saturated fan-out
#    (100 members, 10 senders) over TLS and over WebSocket, alternating, a fresh server process per
#    run, with chat-bench and with irc-load.py (two load generators that share no code); the
#    server's CPU per delivery and its resident memory from /proc.
# 2. The browser test (Tests/Browser/web_app_test.py) against the release chat-server: the bytes
#    the app's first load transfers, the time from navigation to the sign-in form and from signing
#    in to the first room shown, measured in Chromium with the Performance API.
# Loopback only.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
MODE=full; ROUNDS="${1:-2}"
[ "${1:-}" = "--smoke" ] && { MODE=smoke; ROUNDS=1; }
CONFIGURATION=release; DURATION=5; MEMBERS=100; SENDERS=10; IDLE=2000
[ $MODE = smoke ] && { CONFIGURATION=debug; DURATION=1; MEMBERS=20; SENDERS=4; IDLE=60; }
. "$ROOT/Benchmarks/servers.lib.sh"
prepare_bench "$CONFIGURATION" securechat-web
write_securechat_config web 26821 4 1
make_bench_users "$WORK/web.json" $((IDLE + 20))
RESULTS="$WORK/results.txt"

start() {
    "$BIN/chat-server" --config "$WORK/web.json" --log-level warning 2>>"$WORK/web.log" &
    SERVER_PID=$!; PIDS+=("$SERVER_PID"); wait_port 26821
}
stop() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; }
bench() { "$BIN/chat-bench" "$@" --port 26821 --ca "$CA" | tee -a "$RESULTS"; }
load() { python3 "$ROOT/Benchmarks/irc-load.py" "$@" --port 26821 --ca "$CA" --server-pid "$SERVER_PID" | tee -a "$RESULTS"; }

echo "== TLS and WebSocket, idle memory and saturated fan-out ($ROUNDS rounds)"
for round in $(seq 1 "$ROUNDS"); do
    order="tls wss"; [ $((round % 2)) = 0 ] && order="wss tls"
    for transport in $order; do
        flag=(); [ "$transport" = wss ] && flag=(--websocket)
        start; bench idle --clients $IDLE --room-size 50 --inflight 100 --server-pid "$SERVER_PID" --settle 2 --label "$transport" "${flag[@]}"; stop
        start; bench fanout --members $MEMBERS --senders $SENDERS --saturate --duration "$DURATION" --server-pid "$SERVER_PID" --label "$transport" "${flag[@]}"; stop
        start; load idle --clients $IDLE --room-size 50 --inflight 100 --label "$transport" "${flag[@]}"; stop
        # (The smoke paces irc-load.py: saturating a debug server from Python only queues minutes of work.)
        if [ $MODE = smoke ]; then pace=(--rate 200); else pace=(--saturate); fi
        start; load fanout --members $MEMBERS --senders $SENDERS "${pace[@]}" --duration "$DURATION" --label "$transport" "${flag[@]}"; stop
    done
done

echo "== the app's first load in Chromium"
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && python3 -c "import selenium" 2>/dev/null; then
    swift build -c "$CONFIGURATION" --product chat-client >/dev/null
    shots=""; [ $MODE = full ] && shots="$ROOT/docs"
    env SECURECHAT_SERVER_BINARY="$BIN/chat-server" SECURECHAT_CLIENT_BINARY="$BIN/chat-client" \
        SECURECHAT_WEB_TIMINGS="$WORK/timings.json" ${shots:+SECURECHAT_SCREENSHOTS="$shots"} \
        swift test --filter WebAppBrowserTests 2>&1 | tail -3
    python3 -c "import json,sys; t=json.load(open(sys.argv[1])); t.update(scenario='browser', server='securechat'); print(json.dumps(t))" "$WORK/timings.json" | tee -a "$RESULTS"
else
    echo "(no chromium, chromium-driver and selenium: the browser timings are skipped)"
fi

grep '^{' "$RESULTS" > "$WORK/results.jsonl"
if grep -q '"failed":[1-9]\|"lost":[1-9]\|"disconnects":[1-9]\|"failed": [1-9]\|"lost": [1-9]\|"disconnects": [1-9]\|"surplus": [1-9]' "$WORK/results.jsonl"; then
    echo "web bench: failures (above)" >&2; exit 1
fi
python3 - "$WORK/results.jsonl" <<'PY' | tee "$WORK/summary.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def mean(xs): return statistics.mean(xs) if xs else float("nan")
def pick(tool, scenario, transport, field):
    return [float(r[field]) for r in rows if r.get("scenario") == scenario and r.get("server", "").split("+")[0] == transport
            and (r.get("tool") == "irc-load.py") == (tool == "irc-load.py") and field in r and (scenario != "fanout" or r.get("mode") == "saturate")]
print("| figure | tool | TLS | WebSocket | WebSocket ÷ TLS |")
print("|---|---|---|---|---|")
for scenario, field, label in [("idle", "kib_per_connection", "idle KiB per connection"), ("fanout", "delivered_per_second", "saturated deliveries/s"),
                               ("fanout", "server_us_per_delivery", "saturated server CPU µs/delivery")]:
    for tool in ["chat-bench", "irc-load.py"]:
        tls, wss = pick(tool, scenario, "tls", field), pick(tool, scenario, "wss", field)
        if not tls or not wss: continue
        print(f"| {label} | {tool} | {mean(tls):.2f} ({', '.join(f'{x:g}' for x in tls)}) | {mean(wss):.2f} ({', '.join(f'{x:g}' for x in wss)}) | {mean(wss) / mean(tls):.2f} |")
for r in rows:
    if r.get("scenario") == "browser":
        print(f"\nbrowser: first load {r['files']} files, {r['transferBytes']} bytes transferred ({r['bodyBytes']} of bodies); "
              f"sign-in form shown {r['formMs']:.0f} ms after navigation starts; first room {r['signinToRoomMs']:.0f} ms after signing in")
PY
if [ $MODE = full ]; then
    mkdir -p "$ROOT/Benchmarks/results"
    stamp=$(date -u +%Y-%m-%dT%H%MZ)
    cp "$WORK/summary.md" "$ROOT/Benchmarks/results/web-$stamp.md"
    cp "$WORK/results.jsonl" "$ROOT/Benchmarks/results/web-$stamp.jsonl"
    echo "results: Benchmarks/results/web-$stamp.md" >&2
fi

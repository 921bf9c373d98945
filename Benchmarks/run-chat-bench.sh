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
BIN="$ROOT/.build/$CONFIGURATION"
WORK="$(mktemp -d /tmp/securechat-bench.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

for product in chat-server chat-admin chat-bench; do swift build -c "$CONFIGURATION" --product "$product" >/dev/null; done
ulimit -n "$(ulimit -Hn)" || true

"$BIN/chat-admin" certs init --dir "$WORK/certs" >/dev/null
CA="$WORK/certs/ca.crt"; CERT="$WORK/certs/server.crt"; KEY="$WORK/certs/server.key"

# accounts: bench0..N-1, one password
make_users() { # config count
    python3 -c "import sys; [print(f'bench{i},bench-password') for i in range(int(sys.argv[1]))]" "$2" > "$WORK/users.csv"
    "$BIN/chat-admin" import "$WORK/users.csv" --config "$1" >/dev/null 2>&1
}

# config file: name port ln
write_config() {
    cat > "$WORK/$1.json" <<JSON
{
  "serverName": "localhost",
  "listeners": [ { "host": "127.0.0.1", "port": $2 } ],
  "tls": { "certificateChain": "$CERT", "privateKey": "$KEY" },
  "usersFile": "$WORK/$1-users.json",
  "passwordHashing": { "ln": $3, "r": 8, "p": $4 },
  "limits": { "maxClients": 15000, "maxClientsPerAddress": 15000, "messagesPerSecond": 1000000, "messageBurst": 1000000,
              "sendQueueBytes": 16777216, "loginQueue": 20000, "registrationTimeoutSeconds": 300, "handshakeTimeoutSeconds": 60 }
}
JSON
}

wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

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
    bench fanout --port 26697 --members 20 --senders 4 --saturate --duration 1
    bench storm --port 26697 --clients 30 --chatters 5 --rate 50 --baseline 1
    grep -c '^{' "$WORK/results.txt" | xargs -I{} echo "chat-bench smoke: {} scenarios reported"
    if grep -q '"failed":[1-9]\|"lost":[1-9]\|"disconnects":[1-9]' "$WORK/results.txt"; then echo "chat-bench smoke: failures" >&2; exit 1; fi
    exit 0
fi

echo "full comparison: see BENCHMARKS.md for how to read it" >&2

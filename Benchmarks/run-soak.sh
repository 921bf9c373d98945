#!/usr/bin/env bash
# Soak: clients join, chat, part and reconnect against a running chat-server; the server's memory
# and file descriptors must return near their baseline and no message among the stayers be lost.
#   Benchmarks/run-soak.sh [SECONDS]     default 600 (ten minutes); CI runs 60
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SECONDS_TOTAL="${1:-600}"
BIN="$(swift build --show-bin-path)"
for product in chat-server chat-admin chat-bench; do swift build --product "$product" >/dev/null; done
WORK="$(mktemp -d /tmp/securechat-soak.XXXXXX)"
trap 'kill $SERVER_PID 2>/dev/null || true' EXIT
"$BIN/chat-admin" certs init --dir "$WORK/certs" >/dev/null
cat > "$WORK/server.json" <<JSON
{ "listeners": [ { "host": "127.0.0.1", "port": 26721 } ],
  "tls": { "certificateChain": "$WORK/certs/server.crt", "privateKey": "$WORK/certs/server.key" },
  "usersFile": "$WORK/users.json", "passwordHashing": { "ln": 4, "r": 8, "p": 1 },
  "limits": { "maxClientsPerAddress": 1000, "messagesPerSecond": 1000, "messageBurst": 1000, "loginQueue": 1000 } }
JSON
python3 -c "[print(f'bench{i},bench-password') for i in range(100)]" > "$WORK/users.csv"
"$BIN/chat-admin" import "$WORK/users.csv" --config "$WORK/server.json" >/dev/null 2>&1
"$BIN/chat-server" --config "$WORK/server.json" --log-level warning 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/26721) 2>/dev/null && break; sleep 0.1; done
"$BIN/chat-bench" soak --port 26721 --ca "$WORK/certs/ca.crt" --server-pid "$SERVER_PID" --duration "$SECONDS_TOTAL" --stayers 10 --churners 50

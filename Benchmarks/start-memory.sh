#!/usr/bin/env bash
# Resident memory of a fresh chat-server, for two or more builds side by side, alternating.
#
#   Benchmarks/start-memory.sh [ROUNDS] BINARY BINARY...
#
# A BINARY may also be `ngircd` or `inspircd`: the anchors, started with the benchmarks' configs
# (TLS listener, the same certificate), for the same columns side by side.
#
# Each binary is started ROUNDS times (default 3) with the same config (the benchmarks' config,
# history off, 2,200 accounts), in turn; once it listens, VmRSS, RssAnon and RssFile are read from
# /proc/PID/status a second later and it is stopped. Prints one JSON line per start and a summary,
# and keeps them in Benchmarks/results/start-memory-DATE.jsonl.
# Loopback only. To compare with the commit before, build it into another folder:
#   git worktree add /tmp/before HEAD~1 && (cd /tmp/before && swift build -c release --product chat-server)
#   Benchmarks/start-memory.sh 3 /tmp/before/.build/release/chat-server .build/release/chat-server
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
ROUNDS=3
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then ROUNDS=$1; shift; fi
[ $# -ge 1 ] || { echo "usage: Benchmarks/start-memory.sh [ROUNDS] BINARY BINARY..." >&2; exit 2; }
. "$ROOT/Benchmarks/servers.lib.sh"
prepare_bench release securechat-start-memory
write_securechat_config start 26850 4 1
make_bench_users "$WORK/start.json" 2200
write_anchor_configs
for round in $(seq 1 "$ROUNDS"); do
    for binary in "$@"; do
        case "$binary" in
            ngircd|inspircd) start_anchor "$binary"; pid=$SERVER_PID;;
            *) "$binary" --config "$WORK/start.json" --log-level warning 2>>"$WORK/server.log" &
               pid=$!; PIDS+=("$pid")
               wait_port 26850;;
        esac
        sleep 1
        python3 - "$pid" "$binary" "$round" <<'PY' | tee -a "$WORK/results.jsonl"
import json, sys
pid, binary, rnd = sys.argv[1:]
fields = {}
for line in open(f"/proc/{pid}/status"):
    key, _, value = line.partition(":")
    if key in ("VmRSS", "RssAnon", "RssFile"):
        fields[key] = int(value.split()[0])
print(json.dumps({"binary": binary, "round": int(rnd), "rss_kib": fields["VmRSS"], "anon_kib": fields["RssAnon"], "file_kib": fields["RssFile"]}))
PY
        kill "$pid"; wait "$pid" 2>/dev/null || true
    done
done
stamp=$(date -u +%Y-%m-%dT%H%MZ)
mkdir -p "$ROOT/Benchmarks/results"
cp "$WORK/results.jsonl" "$ROOT/Benchmarks/results/start-memory-$stamp.jsonl"
echo "results: Benchmarks/results/start-memory-$stamp.jsonl"
python3 - "$WORK/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for binary in dict.fromkeys(r["binary"] for r in rows):
    mine = [r for r in rows if r["binary"] == binary]
    mib = lambda k: f"{min(r[k] for r in mine) / 1024:.1f}–{max(r[k] for r in mine) / 1024:.1f}"
    print(f"{binary}: resident {mib('rss_kib')} MiB (anonymous {mib('anon_kib')}, files {mib('file_kib')})")
PY

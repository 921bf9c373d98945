#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time and prints executions per target.
#   Fuzz/run-fuzzers.sh [SECONDS]      default 60 s each (FUZZ_SECONDS also works)
# Targets are built with -sanitize=fuzzer,address. New inputs go to Fuzz/.corpus-work (ignored by
# git); crashers go to Fuzz/Artifacts and make the run fail.
set -euo pipefail
cd "$(dirname "$0")"
EACH="${1:-${FUZZ_SECONDS:-60}}"
TARGETS=(FuzzIRCParser FuzzSession FuzzSASLPlain FuzzPHC FuzzUsersFile)
# --sanitize fuzzer alone instruments only the fuzz targets' own modules; the explicit coverage
# flags give libFuzzer feedback from every module (the parsers live in dependencies).
FLAGS=(-c release --sanitize fuzzer --sanitize address --scratch-path .build/fuzz
       -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp)
swift build "${FLAGS[@]}" 2>&1 | tail -1
BIN="$(swift build "${FLAGS[@]}" --show-bin-path)"
mkdir -p Artifacts
status=0
for target in "${TARGETS[@]}"; do
    mkdir -p ".corpus-work/$target"
    cp -n Corpus/"$target"/* ".corpus-work/$target/" 2>/dev/null || true
    log="$(mktemp)"
    if "$BIN/$target" ".corpus-work/$target" -max_total_time="$EACH" -max_len=8192 -timeout=10 \
        -artifact_prefix="Artifacts/$target-" -print_final_stats=1 >"$log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
        cov=$(grep -o 'DONE *cov: [0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
        echo "$target: $runs executions in ${EACH} s, coverage $cov edges, no crash"
    else
        echo "$target: CRASH (see Fuzz/Artifacts):"; tail -30 "$log"; status=1
    fi
    rm -f "$log"
done
exit $status

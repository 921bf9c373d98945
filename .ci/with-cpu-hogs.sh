#!/usr/bin/env bash
# Runs a command while two CPU-bound processes keep both cores busy at normal priority, as on a
# shared, busy machine; the hogs stop when the command ends, whatever its status.
#   .ci/with-cpu-hogs.sh COMMAND [ARGS...]
set -uo pipefail
if [ $# = 0 ]; then echo "usage: .ci/with-cpu-hogs.sh COMMAND [ARGS...]" >&2; exit 2; fi
hogs=()
for _ in 1 2; do
    bash -c 'while :; do :; done' &
    hogs+=($!)
done
trap 'kill "${hogs[@]}" 2>/dev/null' EXIT
"$@"

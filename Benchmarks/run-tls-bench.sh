#!/usr/bin/env bash
# SecureChat's TLSHandler (system OpenSSL) vs swift-nio-ssl's NIOSSLHandler (BoringSSL), side by side.
# Usage: Benchmarks/run-tls-bench.sh [--quick] [extra tls-bench options]
# Builds Benchmarks/TLSBench in release mode (the first build compiles BoringSSL: several minutes),
# then runs it twice: with the malloc settings chat-server uses, and with glibc's defaults.
set -euo pipefail
cd "$(dirname "$0")/TLSBench"
args=("$@")
if [ "${1:-}" = "--quick" ]; then
    args=(--handshakes 200 --megabytes 32 --connections 300 --rounds 1 "${@:2}")
fi
swift build -c release
echo "== tuned malloc (as chat-server runs)"
.build/release/tls-bench "${args[@]}"
echo "== glibc default malloc"
.build/release/tls-bench --default-malloc "${args[@]}"

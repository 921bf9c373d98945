#!/usr/bin/env python3
"""Turns chat-bench JSON lines into the Markdown tables of BENCHMARKS.md, with ratios against
the better of ngIRCd and InspIRCd measured in the same run."""
import json, sys, statistics
from collections import defaultdict

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def key(r):
    k = r["scenario"]
    if k == "fanout": k += "-" + r["mode"]
    return k
groups = defaultdict(lambda: defaultdict(list))
for r in rows:
    groups[key(r)][r["server"]].append(r)

metrics = {
    "connect": [("per_second", "connects/s", max), ("p50_ms", "p50 ms to 001", min), ("p99_ms", "p99 ms to 001", min)],
    "idle": [("kib_per_connection", "KiB per connection", min), ("held", "held", max)],
    "fanout-paced": [("delivered_per_second", "deliveries/s", max), ("p50_ms", "p50 ms", min), ("p99_ms", "p99 ms", min), ("max_ms", "max ms", min), ("lost", "lost", min), ("disconnects", "disconnects", min)],
    "fanout-saturate": [("delivered_per_second", "deliveries/s", max), ("p50_ms", "p50 ms", min), ("p99_ms", "p99 ms", min), ("lost", "lost", min), ("disconnects", "disconnects", min), ("server_us_per_delivery", "server CPU µs per delivery", min), ("server_cpu_s", "server CPU s", min), ("bench_cpu_s", "chat-bench CPU s", min)],
    "storm": [("logins_per_second", "logins/s", max), ("chat_p99_ms_before", "chat p99 ms before", min), ("chat_p99_ms_during", "chat p99 ms during", min), ("p99_ratio", "during/before", min)],
}
anchors = ["ngircd", "inspircd"]
for scenario, fields in metrics.items():
    if scenario not in groups: continue
    servers = groups[scenario]
    print(f"### {scenario}\n")
    print("| server | " + " | ".join(label for _, label, _ in fields) + " |")
    print("|---|" + "---|" * len(fields))
    means = {}
    for server, runs in sorted(servers.items()):
        vals = []
        for f, _, _ in fields:
            xs = [float(r[f]) for r in runs if f in r and str(r[f]).replace('.', '', 1).isdigit()]
            m = statistics.mean(xs) if xs else float("nan")
            means[(server, f)] = m
            vals.append(f"{m:.2f}" + (f" ({', '.join(f'{x:.1f}' for x in xs)})" if len(xs) > 1 else ""))
        print(f"| {server} | " + " | ".join(vals) + " |")
    print()
    for server in sorted(servers):
        if server in anchors: continue
        ratios = []
        for f, label, better in fields:
            a = [means.get((x, f)) for x in anchors if (x, f) in means]
            a = [x for x in a if x == x]
            if not a or means.get((server, f)) is None: continue
            best = better(a)
            if best == 0: continue
            ratios.append(f"{label}: {means[(server, f)] / best:.2f}×")
        if ratios: print(f"- {server} vs the better anchor: " + "; ".join(ratios))
    print()

#!/usr/bin/env python3
"""Tables from Benchmarks/compare-servers.sh's JSON lines: per case and load generator, the
median of the rounds for each server (every round in brackets), and SecureChat's ratio to the
better anchor as shipped (Nagle on) and, for the paced cases, to the better anchor with
TCP_NODELAY."""
import json
import statistics
import sys
from collections import defaultdict

METRICS = {
    "paced": [("server_us_per_delivery", "server CPU µs/delivery", "low"),
              ("machine_us_per_delivery", "machine CPU µs/delivery", "low"),
              ("p50_ms", "p50 ms", "low"), ("p99_ms", "p99 ms", "low"), ("lost", "lost", "low")],
    "saturate": [("delivered_per_second", "deliveries/s", "high"),
                 ("server_us_per_delivery", "server CPU µs/delivery", "low"),
                 ("machine_us_per_delivery", "machine CPU µs/delivery", "low"),
                 ("p99_ms", "p99 ms", "low"), ("lost", "lost", "low"), ("disconnects", "disconnects", "low")],
    "connect": [("server_ms_per_connection", "server CPU ms/connection", "low"),
                ("per_second", "connections/s", "high"), ("failed", "failed", "low")],
    "idle": [("kib_per_connection", "KiB per connection", "low"), ("rss_before_kib", "fresh RSS KiB", "low"),
             ("held", "held", "high")],
}


def kind(case):
    return "paced" if case.startswith("paced") else case


def main(path):
    rows = [json.loads(line) for line in open(path) if line.startswith("{")]
    groups = defaultdict(list)
    for r in rows:
        groups[(r["case"], r["tool"], r["server"])].append(r)
    cases = sorted({r["case"] for r in rows}, key=lambda c: ["paced1000", "paced2000", "saturate", "connect", "idle"].index(c)
                   if c in ["paced1000", "paced2000", "saturate", "connect", "idle"] else 99)
    for case in cases:
        for tool in sorted({r["tool"] for r in rows if r["case"] == case}):
            metrics = [m for m in METRICS[kind(case)] if any(m[0] in r for r in rows if r["case"] == case and r["tool"] == tool)]
            print(f"#### {case} — {tool}\n")
            print("| server | " + " | ".join(m[1] for m in metrics) + " |")
            print("|---|" + "---|" * len(metrics))
            medians = {}
            for server in sorted({r["server"] for r in rows if r["case"] == case and r["tool"] == tool}):
                runs = groups[(case, tool, server)]
                cells = []
                for key, _, _ in metrics:
                    values = [float(r[key]) for r in runs if key in r]
                    if not values:
                        cells.append("–")
                        continue
                    medians[(server, key)] = statistics.median(values)
                    each = ", ".join(f"{v:g}" for v in values)
                    cells.append(f"{statistics.median(values):g} ({each})")
                print(f"| {server} | " + " | ".join(cells) + " |")
            print()
            for anchors, label in [(["ngircd", "inspircd"], "the better anchor"),
                                   (["ngircd+nodelay", "inspircd+nodelay"], "the better anchor with TCP_NODELAY")]:
                parts = []
                for key, name, better in metrics:
                    ours = medians.get(("securechat", key))
                    theirs = [medians[(a, key)] for a in anchors if (a, key) in medians]
                    if ours is None or not theirs:
                        continue
                    best = min(theirs) if better == "low" else max(theirs)
                    if best:
                        parts.append(f"{name} {ours / best:.2f}×")
                if parts:
                    print(f"- SecureChat ÷ {label}: " + "; ".join(parts))
            print()


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/env python3
"""Whole-run figures for BENCHMARKS.md: wall time and peak RSS of `tocsin replay` (release build) over
the demo incident and over every sample event, each run several times; prints a Markdown table."""
import os
import resource
import statistics
import subprocess
import sys
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/tocsin"
RUNS = int(os.environ.get("RUNS", "20"))
CASES = [
    ("demo incident (5 events)", ["replay", "--config", "infra/tocsin.yaml", "events/scenario/incident"]),
    ("every valid sample event", ["replay", "--config", "infra/tocsin.yaml", "events/sns", "events/eventbridge",
                                  "events/lambda-action", "events/alertmanager", "events/generic"]),
]


def one(args):
    """Wall seconds and peak RSS (KiB) of one run, measured in a fresh child."""
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.execv(BIN, [BIN] + args)
    start = time.perf_counter()
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{BIN} {' '.join(args)} failed")
    return wall, usage.ru_maxrss


print("| whole run | median wall | max wall | peak RSS |")
print("|---|---|---|---|")
for name, args in CASES:
    results = [one(args) for _ in range(RUNS)]
    walls = [w for w, _ in results]
    rss = max(r for _, r in results)
    print(f"| `tocsin replay`, {name} | {statistics.median(walls) * 1000:.1f} ms | {max(walls) * 1000:.1f} ms "
          f"| {rss / 1024:.1f} MiB |")

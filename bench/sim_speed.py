"""Simulator speed: seeds per second on 1 and on J worker processes, and the cost of one
seed by fault kind (a failing seed runs its full grace period, so it costs more).

    .venv/bin/python bench/sim_speed.py [SEEDS] [JOBS]
"""
from __future__ import annotations

import sys
import time
from collections import defaultdict

from ivyzmq.sim.runner import run_many, summarize


def main(argv: list[str]) -> None:
    seeds = int(argv[0]) if argv else 400
    jobs = int(argv[1]) if len(argv) > 1 else 2
    per_kind: dict[str, list[float]] = defaultdict(list)
    t0 = time.perf_counter()
    last = t0
    for res in run_many(range(seeds), 1):
        now = time.perf_counter()
        per_kind[res.kind].append(now - last)
        last = now
    one = seeds / (time.perf_counter() - t0)
    many = summarize(range(seeds), jobs)
    print(f"{seeds} seeds: {one:.1f} seeds/s on 1 process, "
          f"{seeds / many.seconds:.1f} seeds/s on {jobs}")
    for kind, times in sorted(per_kind.items()):
        print(f"  {kind:<16} {len(times):>5} seeds  {1000 * sum(times) / len(times):6.1f} ms/seed"
              f"  (max {1000 * max(times):.0f} ms)")


if __name__ == "__main__":
    main(sys.argv[1:])

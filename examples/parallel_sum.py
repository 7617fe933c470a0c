#!/usr/bin/env python
"""A parallel job on the shared memory: worker processes, each talking to its own node,
sum the squares of 1..N in slices. Each adds its part to a shared counter (an atomic add),
appends a line to a shared log page under a lock, and waits at a barrier; then the first
worker reads the total and the log.

    .venv/bin/python examples/parallel_sum.py [--workers 4] [--n 1000000]

It starts its own cluster (a generated config on free loopback ports, in a temporary
directory, with page replicas), runs the job and stops the cluster.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

from ivyzmq import config as C
from ivyzmq.client import connect
from ivyzmq.deploy import Deployment
from ivyzmq.harness import configs
from ivyzmq.sync import Barrier, Counter, Lock

TOTAL, LOG, SYNC = 0, 1, 2          # pages: the counter, the log, the lock and barrier
LOCK_AT, BARRIER_AT = 0, 64         # offsets on the SYNC page


def worker(config: str, i: int, workers: int, n: int, out) -> None:
    cluster = C.load(config)
    node = i % len(cluster.nodes)
    with connect(cluster, node) as mem:
        lo, hi = i * n // workers + 1, (i + 1) * n // workers
        Counter(mem, TOTAL).add(sum(k * k for k in range(lo, hi + 1)))
        with Lock(mem, SYNC, LOCK_AT, node=node):               # append to the log page
            log = mem.read(LOG).rstrip(b"\0")
            mem.write(LOG, log + f"worker {i} on node {node}: {lo}..{hi}\n".encode())
        Barrier(mem, SYNC, parties=workers, offset=BARRIER_AT).wait(timeout=60)
        if i == 0:
            out.put((Counter(mem, TOTAL).value(), mem.read(LOG).rstrip(b"\0").decode()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--n", type=int, default=1_000_000)
    args = ap.parse_args()
    if not 1 <= args.n <= 2_000_000 or not 1 <= args.workers <= 32:
        ap.error("--n from 1 to 2000000 (the sum must fit the 63-bit counter), "
                 "--workers from 1 to 32")
    with tempfile.TemporaryDirectory(prefix="ivy-example-") as tmp:
        path = configs.write(Path(tmp) / "job.yaml", configs.cluster_dict(
            nodes=max(2, min(args.workers, 8)), pages=3, replicas=1))
        dep = Deployment(str(path), C.load(path), Path(tmp) / "run")
        dep.up()
        try:
            t0 = time.monotonic()
            out = mp.get_context("spawn").Queue()
            procs = [mp.get_context("spawn").Process(
                target=worker, args=(str(path), i, args.workers, args.n, out))
                for i in range(args.workers)]
            for p in procs:
                p.start()
            total, log = out.get(timeout=120)
            for p in procs:
                p.join(60)
            took = time.monotonic() - t0
        finally:
            dep.down()
    expected = args.n * (args.n + 1) * (2 * args.n + 1) // 6
    print(log)
    print(f"sum of squares 1..{args.n} = {total} ({'correct' if total == expected else 'WRONG'})"
          f" by {args.workers} workers in {took:.2f} s")
    return 0 if total == expected else 1


if __name__ == "__main__":
    raise SystemExit(main())

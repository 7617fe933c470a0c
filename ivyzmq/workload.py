"""Workloads against a live cluster: concurrent clients doing random reads and writes, each
operation recorded in a history and the history checked for linearizability. Every written
value is unique (client and counter), so a read names the write it saw."""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ivyzmq import checker
from ivyzmq.client import IvyError, IvyTimeout, connect
from ivyzmq.config import Cluster
from ivyzmq.history import History, Op
from ivyzmq.readout import page_text

VALUE_BYTES = 32


def add_arguments(p) -> None:
    p.add_argument("--clients", type=int, default=10, help="concurrent clients (default 10)")
    p.add_argument("--ops", type=int, default=1000, help="operations in all (default 1000)")
    p.add_argument("--read-share", type=float, default=0.5,
                   help="fraction of reads (default 0.5)")
    p.add_argument("--pages", type=int, default=3,
                   help="use pages 0..K-1 only, so pages contend (default 3)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--history", help="history file (default <run dir>/history.jsonl)")


def add_homework_arguments(p) -> None:
    p.add_argument("mode", choices=["r", "w"], help="r: random reads, w: random writes")
    p.add_argument("--ops", type=int, default=100)
    p.add_argument("--kill-prob", type=float, default=0.1,
                   help="chance to kill the primary after each operation (default 0.1)")
    p.add_argument("--restart-prob", type=float, default=0.1,
                   help="chance to restart a dead primary after each operation (default 0.1)")
    p.add_argument("--seed", type=int, default=None)


def add_experiment_arguments(p) -> None:
    p.add_argument("which", choices=["a", "b", "c", "d"], help=EXPERIMENTS_HELP)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--ops", type=int, default=1000, help="operations in all per run")
    p.add_argument("--pages", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--cycles", type=int, default=3,
                   help="fail/restart cycles in (c) and (d) (default 3)")


EXPERIMENTS_HELP = ("a: no faults, without and with a backup; b: primary fails once, and "
                    "fails then restarts; c: primary fails and restarts several times; "
                    "d: primary and backup both fail and restart several times")


@dataclass
class Result:
    history: History
    elapsed: float
    counts: dict[str, int] = field(default_factory=dict)
    verdict: checker.CheckResult | None = None


def value_bytes(value: str, page_size: int) -> bytes:
    return value.encode().ljust(min(VALUE_BYTES, page_size), b"\0")


def timed_op(mem, page_size: int, *, client: int, node: int, page: int, kind: str,
             value: str) -> Op:
    """Read, or write `value`, and return the history record: ok with the value read or
    written, unknown after a time-out (a write may still take effect), failed otherwise."""
    start = time.monotonic()
    outcome = "ok"
    try:
        if kind == "read":
            value = page_text(mem.read(page))
        else:
            mem.write(page, value_bytes(value, page_size))
    except IvyTimeout:
        outcome = "unknown"
    except IvyError:
        outcome = "failed"
    if kind == "read" and outcome != "ok":
        value = ""
    end = time.monotonic()
    return Op(client=client, node=node, page=page, kind=kind, value=value, start=start,
              end=end if outcome == "ok" else None, outcome=outcome)


def seed_pages(cluster: Cluster, pages: int, history: History) -> str:
    """Pages keep what earlier runs wrote: give pages 0..pages-1 a value of this run first
    (recorded), so every value a read returns names a write of this history. Returns the
    run's tag, which every value of the run carries."""
    tag = f"{random.Random().getrandbits(24):06x}"
    with connect(cluster, 0) as mem:
        for page in range(pages):
            value = f"{tag}-init{page}"
            start = time.monotonic()
            mem.write(page, value_bytes(value, cluster.page_size))
            history.append(Op(client=-1, node=0, page=page, kind="write", value=value,
                              start=start, end=time.monotonic(), outcome="ok"))
    return tag


def run_clients(cluster: Cluster, *, clients: int, ops: int, read_share: float, pages: int,
                seed: int, after_op=None, node_of=None) -> Result:
    """Run `ops` operations split over `clients` threads, each on its own node connection.
    `after_op(client, op)` is called after every operation (the nemesis hook)."""
    history = History()
    pages = max(1, min(pages, cluster.pages))
    per = [ops // clients + (1 if i < ops % clients else 0) for i in range(clients)]
    node_of = node_of or (lambda i, rng: i % len(cluster.nodes))

    tag = seed_pages(cluster, pages, history)

    def client(i: int) -> None:
        rng = random.Random(seed * 100_003 + i)
        node = node_of(i, rng)
        with connect(cluster, node) as mem:
            for k in range(per[i]):
                page = rng.randrange(pages)
                kind = "read" if rng.random() < read_share else "write"
                op = timed_op(mem, cluster.page_size, client=i, node=node, page=page,
                              kind=kind, value=f"{tag}-c{i}-{k}")
                history.append(op)
                if after_op is not None:
                    after_op(i, op)

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    counts = {o: sum(op.outcome == o for op in history.ops()) for o in ("ok", "failed",
                                                                       "unknown")}
    return Result(history, elapsed, counts, checker.check(history.ops()))


def verdict_text(v: checker.CheckResult) -> str:
    if v.ok:
        return f"linearizable ({v.ops_checked} ops on {v.pages_checked} pages)"
    if v.ok is None:
        return f"UNKNOWN: {v.explanation}"
    return f"NOT linearizable: {v.explanation}"


def run_workload(args, cluster: Cluster, run) -> int:
    res = run_clients(cluster, clients=args.clients, ops=args.ops, read_share=args.read_share,
                      pages=args.pages, seed=args.seed)
    path = Path(args.history) if args.history else run.path / "history.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    res.history.save(path)
    c = res.counts
    print(f"{len(res.history)} operations by {args.clients} clients on {args.pages} pages in "
          f"{res.elapsed * 1000:.0f} ms ({len(res.history) / res.elapsed:.0f} ops/s): "
          f"{c['ok']} ok, {c['failed']} failed, {c['unknown']} unknown")
    print(f"history: {path}")
    print(f"checker: {verdict_text(res.verdict)}")
    return 0 if res.verdict.ok else 1


def run_homework(args, cluster: Cluster, run) -> int:
    from ivyzmq.scenarios import homework
    return homework(args, cluster, run)


def run_experiment(args, cluster: Cluster, run) -> int:
    from ivyzmq.experiments import experiment
    return experiment(args, cluster, run)

"""Scale: resident memory, start-up, read fault and failover at 100, 100k and 1M pages,
and at 10 and 40 nodes.

Per size it generates a config (10 or 40 nodes, a primary and a backup, `replicas: 1`,
`security: none`, the `default` timing preset as shipped, free loopback ports), then times
`Deployment.up()` - what `ivy up` does: start every daemon, wait until each answers and a
manager serves, probing lightly (see `_up`) - and waits until the backup follows. It reads VmRSS of
the primary and of every node from /proc, times read faults (node 1 reads a page node 0
owns; node 0 writes it in between, untimed) and, at the sizes asked for, one failover: kill
-9 of the primary, then node 0 writes a page node 1 owns (a fault, which needs a manager);
the time is from the kill to the write's reply. Every process is stopped by its os_pid.

    .venv/bin/python bench/scale.py                  # 100, 100k, 1M pages; 40 nodes
    .venv/bin/python bench/scale.py --sizes 100,100000 --failover 100 --json out.json
    .venv/bin/python bench/scale.py --nodes 10,40 --sizes 100 --failover 100

Bytes a page: (RSS at the size - RSS at the smallest size of as many nodes) / (the
difference in pages).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PAGE_SIZE, log, now_ns  # noqa: E402
from ours import TIMING_OVERRIDES, OurCluster  # noqa: E402

from ivyzmq import protocol as P  # noqa: E402
from ivyzmq.supervisor import resident_bytes  # noqa: E402

NODES = (10, 40)           # the default node counts (40: at the smallest size only)
READS = 200               # read faults timed per size
DEFAULT_TIMING: dict = {}  # the preset as shipped (failover: heartbeats 0.5 s, dead 1.5 s)
UP_TIMEOUT = 120.0


def _read_faults(c: OurCluster, pages: int) -> float:
    """Median us of READS read faults at node 1 on the last pages node 0 owns."""
    nodes = len(c.cluster.nodes)
    targets = [p for p in range(pages - 1, -1, -1) if p % nodes == 0][:4]
    out = []
    with c.client(0) as owner, c.client(1) as reader:
        for i in range(READS):
            page = targets[i % len(targets)]
            owner.write(page, b"w%07d" % i)
            t0 = now_ns()
            data = reader.read(page)
            out.append((now_ns() - t0) / 1000)
            if len(data) != PAGE_SIZE:
                raise RuntimeError(f"read fault returned {len(data)} bytes")
    return statistics.median(out)


def _failover(c: OurCluster, pages: int) -> float:
    """s from kill -9 of the primary to node 0's next write (of a page node 1 owns)."""
    page = max(p for p in range(pages) if p % len(c.cluster.nodes) == 1)
    with c.client(0) as mem, c.client(1) as other:
        other.write(page, b"before")       # node 1 owns it: node 0's write is a fault
        _backup_follows(c, page)
        t0 = time.monotonic()
        if not c.dep.procs.kill("primary"):
            raise RuntimeError("the primary was not running")
        mem.write(page, b"after")
        took = time.monotonic() - t0
        if mem.read(page)[:5] != b"after":
            raise RuntimeError("the write after the failover does not read back")
    return took


def _wait(probe, what: str, timeout: float = UP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} within {timeout:g} s")
        time.sleep(0.02)   # poll


def _up(c: OurCluster) -> float:
    """Start every daemon; s until each answers and a manager serves. Light probes (a
    WaitQuery to each node, a PageQuery to each manager), not StatusQuery, whose reply
    lists every page: at 1M pages building and decoding it takes longer than the time-out
    `Deployment.up()` gives it."""
    admin, names = c.dep.admin, c.cluster.daemon_names()
    t0 = time.monotonic()
    c.start(names)
    for n in range(len(c.cluster.nodes)):
        _wait(lambda: admin.query(f"node{n}", P.WaitQuery(page=0), 0.5), f"node{n} answers")
    _wait(lambda: any(getattr(admin.query(m, P.PageQuery(page=0), 0.5), "serving", False)
                      for m in ("primary", "backup")), "a manager serves")
    return time.monotonic() - t0


def _backup_follows(c: OurCluster, page: int) -> None:
    """Wait until the backup is passive and holds the primary's record of `page`."""
    def same():
        prim, back = (c.dep.admin.query(m, P.PageQuery(page=page), 0.5)
                      for m in ("primary", "backup"))
        return prim and back and prim.serving and back.role == "passive" and \
            prim.record == back.record
    _wait(same, "the backup follows the primary", 30.0)


def measure(workdir: Path, nodes: int, pages: int, failover: bool,
            timing: dict | None = None) -> dict:
    c = OurCluster(workdir, nodes, pages, PAGE_SIZE, name=f"scale{nodes}x{pages}", replicas=1,
                   overrides=DEFAULT_TIMING if timing is None else timing)
    try:
        up = _up(c)
        _backup_follows(c, 0)
        pids = c.os_pids()
        row = {"nodes": nodes, "pages": pages, "up_s": up, "manager_rss": resident_bytes(pids["primary"]),
               "node_rss": statistics.median(resident_bytes(pids[f"node{n}"])
                                             for n in range(nodes))}
        row["read_fault_us"] = _read_faults(c, pages)
        row["failover_s"] = _failover(c, pages) if failover else None
        log(f"{pages} pages: {row}")
        return row
    finally:
        c.down()


def table(rows: list[dict]) -> str:
    lines = ["| nodes | pages | up to serving (s) | manager RSS (MiB) | B/page | node RSS (MiB) "
             "| B/page | read fault (us) | failover (s) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        base = next(b for b in rows if b["nodes"] == r["nodes"])
        extra = r["pages"] - base["pages"]

        def per(key):
            return f"{(r[key] - base[key]) / extra:.0f}" if extra else "-"
        fo = "-" if r["failover_s"] is None else f"{r['failover_s']:.2f}"
        lines.append(f"| {r['nodes']} | {r['pages']:,} | {r['up_s']:.2f} | "
                     f"{r['manager_rss'] / 2**20:.1f} | {per('manager_rss')} | "
                     f"{r['node_rss'] / 2**20:.1f} | {per('node_rss')} | "
                     f"{r['read_fault_us']:.0f} | {fo} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,100000,1000000", help="page counts, comma-separated")
    ap.add_argument("--failover", default="100,1000000",
                    help="the sizes at which to time a failover")
    ap.add_argument("--nodes", default=",".join(map(str, NODES)),
                    help="node counts, comma-separated: all sizes at the first, the smallest "
                    "size at the others (default 10,40)")
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument("--lazy", action="store_true",
                    help="the bench's lazier failure detector (bench/ours.py TIMING_OVERRIDES)")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    fail = {int(s) for s in args.failover.split(",") if s}
    first, *more = [int(n) for n in args.nodes.split(",")]
    runs = [(first, n) for n in sizes] + [(nodes, min(sizes)) for nodes in more]
    with tempfile.TemporaryDirectory(prefix="ivy-scale-") as tmp:
        timing = TIMING_OVERRIDES if args.lazy else None
        rows = [measure(Path(tmp), nodes, n, n in fail, timing) for nodes, n in runs]
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

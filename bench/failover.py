"""The row "failover, a node dead / all alive": how long after a kill -9 of the serving
primary the next write completes through the backup, when a node died just before (and the
serving manager has declared it dead), beside the same with every node alive.

Each repetition starts two fresh clusters of the same shape (5 node daemons, a primary and a
backup, `replicas: 1`, the `default` timing preset as shipped: heartbeats every 0.5 s, a
peer dead after 1.5 s) and waits until the backup holds the primary's records. On one, the
primary is killed and node 0 writes page 1 (owned by node 1: a write fault, which needs a
manager); the time is from the kill to the write's reply. On the other, node 3 is killed
first, and once the serving manager lists it dead (StatusQuery `.dead`, as `ivy status`
shows) the same follows. Both clusters are then stopped. Every process is killed or stopped
by the os_pid its Supervisor recorded. There is no raw twin (the raw backup never takes
over): in the row, "ours" is with a node dead and "raw" is with every node alive.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

from ivyzmq import protocol as P

from common import PAGE_SIZE, log, summary
from ours import OurCluster

NAME = "failover, a node dead / all alive [replicas 1]"
NODES, PAGES = 5, 10
DEAD = 3                   # the node killed first in the "dead" cluster
WRITER, PAGE = 0, 1        # the timed write: node 0 writes page 1 (node 1's)
DEFAULT_TIMING: dict = {}  # no overrides of the preset (ours.TIMING_OVERRIDES are lazier)
WAIT = 15.0                # s for a node to be declared dead, for the write after the kill


def _dead(c: OurCluster, node: int) -> bool:
    name = c.dep.admin.serving()
    reply = name and c.dep.admin.query(name, P.StatusQuery(), timeout=0.5)
    return bool(reply) and node in reply.dead


def _wait_dead(c: OurCluster, node: int) -> float:
    """Poll the serving manager until it lists `node` dead; the time that took (s)."""
    t0 = time.monotonic()
    while not _dead(c, node):
        if time.monotonic() - t0 > WAIT:
            raise RuntimeError(f"node {node} was not declared dead within {WAIT:g} s")
        time.sleep(0.02)   # poll
    return time.monotonic() - t0


def _kill_primary_and_write(c: OurCluster, i: int) -> float:
    """kill -9 the primary, then node WRITER writes PAGE; ms from the kill to the reply."""
    with c.client(WRITER) as mem:
        t0 = time.monotonic()
        if not c.dep.procs.kill("primary"):
            raise RuntimeError("the primary was not running")
        mem.write(PAGE, b"f%07d" % i)
        took = time.monotonic() - t0
        if mem.read(PAGE)[:8] != b"f%07d" % i:
            raise RuntimeError("the write after the failover does not read back")
    serving = c.dep.admin.serving()
    if serving != "backup":
        raise RuntimeError(f"after the primary's death {serving!r} serves, not the backup")
    return took * 1000


def _repetition(workdir: Path, i: int) -> tuple[float, float, float]:
    """One repetition: (failover ms with a node dead, all alive, s until declared dead)."""
    names = ["primary", "backup"] + [f"node{n}" for n in range(NODES)]
    alive, dead = (OurCluster(workdir, NODES, PAGES, PAGE_SIZE, name=f"failover-{what}{i}",
                              replicas=1, overrides=DEFAULT_TIMING)
                   for what in ("alive", "dead"))
    try:
        for c in (alive, dead):
            c.start(names)
        for c in (alive, dead):
            c.wait(names)
            c.wait_backup()
        ms_alive = _kill_primary_and_write(alive, i)
        if not dead.dep.procs.kill(f"node{DEAD}"):
            raise RuntimeError(f"node{DEAD} was not running")
        detect = _wait_dead(dead, DEAD)
        return _kill_primary_and_write(dead, i), ms_alive, detect
    finally:
        try:
            alive.down()
        finally:
            dead.down()


def failover_row(workdir: Path, reps: int) -> dict:
    """The row (milliseconds shown as the table shows latencies: in its us columns)."""
    with_dead, all_alive, detect = [], [], []
    for i in range(reps):
        d, a, s = _repetition(workdir, i)
        with_dead.append(d * 1000)
        all_alive.append(a * 1000)
        detect.append(s)
        log(f"failover {i + 1}/{reps}: {d:.0f} ms with node {DEAD} dead "
            f"(declared dead after {s:.2f} s), {a:.0f} ms all alive")
    so, sr = summary(with_dead), summary(all_alive)
    return {"name": NAME, "unit": "us", "ours": so, "raw": sr,
            "ratio": so["median_us"] / sr["median_us"],
            "timed": f"kill -9 of the primary -> node {WRITER}'s next write (a fault) done "
                     f"through the backup; ours: node {DEAD} killed and declared dead first "
                     f"(after a median {statistics.median(detect):.2f} s), raw: all alive",
            "samples_ms": {"node_dead": [v / 1000 for v in with_dead],
                           "all_alive": [v / 1000 for v in all_alive]}}

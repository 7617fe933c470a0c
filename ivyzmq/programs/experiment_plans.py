"""The runs of the experiments (a)-(e) of docs/PROTOCOL.md section 8, and their fault
schedules as data (ivyzmq/harness/faults.py), drawn up front from the run's seed.

Times are fractions of a run's expected duration (`_unit` sets the scale: one failover plus
one restart), so that the faults land while operations are flowing. A cycle of (c) and (d)
starts at an absolute time; its later steps follow one another (at None, Delay, Await), so
they finish even when the workload ends in the middle of a cycle. Each (d) cycle ends with a
settle step - the primary serving and the backup answering - so the next cycle knows who
serves: its double failure kills the primary first.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from ivyzmq import config as C
from ivyzmq.harness.faults import Await, Delay, Fault

FAULT_CYCLES = 3           # (c) and (d): how many fail/restart cycles
D_PATTERNS = ("primary", "backup", "both_primary_first", "both_backup_first")


@dataclass(frozen=True)
class Run:
    label: str
    names: list[str]         # the daemons to start
    schedule: list           # faults.py steps
    think: float             # per-op think time of each client (s)


def _names(cluster: C.Cluster, without: str | None = None) -> list[str]:
    return [n for n in cluster.daemon_names() if n != without]


def _unit(cluster: C.Cluster) -> float:
    """Rough length of one failover plus one restart: the time scale of the schedules."""
    t = cluster.timing
    return max(t.dead_after, t.retry_timeout * t.retries) + 1.0


def _think(clients: int, ops: int, duration: float) -> float:
    """Per-op think time so that `ops` operations by `clients` last about `duration`."""
    return clients * duration / max(1, ops)


def _kill_and_back(rng: random.Random, at: float, p: int, span: float, lo: float,
                   hi: float) -> list:
    """Kill p at `at`, wait for another manager to serve, restart p after a random part of
    `span`."""
    return [Fault(at, "kill", p), Await("another_serves", p),
            Delay(rng.uniform(lo, hi) * span), Fault(None, "restart", p)]


def schedule_b1(rng: random.Random, duration: float, p: int) -> list:
    return [Fault(rng.uniform(0.2, 0.5) * duration, "kill", p)]


def schedule_b2(rng: random.Random, duration: float, p: int) -> list:
    at = rng.uniform(0.15, 0.35) * duration
    return _kill_and_back(rng, at, p, duration, 0.05, 0.15) + [Await("serves", p)]  # handback


def schedule_c(rng: random.Random, duration: float, p: int, cycles: int) -> list:
    window = duration / cycles
    out: list = []
    for i in range(cycles):
        at = (i + rng.uniform(0.05, 0.3)) * window
        out += _kill_and_back(rng, at, p, window, 0.02, 0.15)
        out.append(Await("serves", p))          # handback before the next cycle
    return out


def d_patterns(rng: random.Random, cycles: int) -> list[str]:
    """Every cycle list has both double failures (one restart order each) when it can."""
    must = ["both_primary_first", "both_backup_first"]
    rest = [rng.choice(D_PATTERNS) for _ in range(max(0, cycles - len(must)))]
    pats = (must + rest)[:cycles]
    rng.shuffle(pats)
    return pats


def _d_cycle(rng: random.Random, at: float, pattern: str, p: int, b: int, window: float,
             dead_after: float) -> list:
    if pattern == "primary":
        return _kill_and_back(rng, at, p, window, 0.02, 0.15)
    if pattern == "backup":
        return [Fault(at, "kill", b), Delay(rng.uniform(0.3, 1.0) * dead_after),
                Fault(None, "restart", b)]
    # Both down: the primary (serving after the last settle step) first, then the backup
    # before it can take over; restarted in the pattern's order.
    first, second = (p, b) if pattern == "both_primary_first" else (b, p)
    return [Fault(at, "kill", p), Delay(rng.uniform(0.2, 0.6) * dead_after),
            Fault(None, "kill", b), Delay(rng.uniform(0.3, 1.0) * dead_after),
            Fault(None, "restart", first), Await("serves", first),
            Delay(rng.uniform(0.1, 0.5) * dead_after), Fault(None, "restart", second)]


def schedule_d(rng: random.Random, duration: float, p: int, b: int, dead_after: float,
               patterns: list[str]) -> list:
    window = duration / len(patterns)
    out: list = []
    for i, pattern in enumerate(patterns):
        at = (i + rng.uniform(0.05, 0.25)) * window
        out += _d_cycle(rng, at, pattern, p, b, window, dead_after)
        out += [Await("serves", p), Await("answers", b)]    # back to the starting shape
    return out


def schedule_e1(rng: random.Random, duration: float, cluster: C.Cluster, cycles: int) -> list:
    """Random nodes die, one at a time, and come back (empty, as new incarnations) once
    they are surely declared dead."""
    window, dead_after = duration / cycles, cluster.timing.node_dead_after
    out: list = []
    for i in range(cycles):
        n = rng.randrange(len(cluster.nodes))
        out += [Fault((i + rng.uniform(0.05, 0.3)) * window, "kill", n),
                Delay(rng.uniform(1.5, 2.5) * dead_after), Fault(None, "restart", n)]
    return out


def schedule_e2(rng: random.Random, duration: float, cluster: C.Cluster, p: int) -> list:
    """A node dies, then, once it is declared dead, the primary: the backup's term must not
    wait for the dead node. Both come back; control returns to the primary. (A node and
    the primary dying together leave the backup waiting for the node: a manager that hears
    no other manager declares no node dead, see docs/PROTOCOL.md section 6.1.)"""
    n, dead_after = rng.randrange(len(cluster.nodes)), cluster.timing.node_dead_after
    return [Fault(rng.uniform(0.2, 0.4) * duration, "kill", n),
            Delay(rng.uniform(1.5, 2.5) * dead_after), Fault(None, "kill", p),
            Await("another_serves", p), Delay(rng.uniform(0.5, 1.0) * dead_after),
            Fault(None, "restart", n), Fault(None, "restart", p), Await("serves", p)]


def plan(which: str, cluster: C.Cluster, seed: int, cycles: int, clients: int,
         ops: int) -> list[Run]:
    """The runs of one experiment. Run k's schedule is drawn from Random(seed + k), the
    seed its workload gets too."""
    names = [m.name for m in cluster.managers]
    primary = names[0]
    backup = names[1] if len(names) > 1 else None
    if which == "a":
        return [Run("a1 primary only", _names(cluster, backup), [], 0.0),
                Run("a2 primary+backup", _names(cluster), [], 0.0)]
    if backup is None:
        raise C.ConfigError("experiments (b)-(d) need a backup manager in the config")
    p, b = cluster.pid_of(primary), cluster.pid_of(backup)
    u = _unit(cluster)
    if which == "b":
        d = 4 * u
        return [Run("b1 kill", _names(cluster), schedule_b1(random.Random(seed), d, p),
                    _think(clients, ops, d)),
                Run("b2 kill+restart", _names(cluster),
                    schedule_b2(random.Random(seed + 1), d, p), _think(clients, ops, d))]
    if which == "e":
        d = cycles * 2.5 * u
        return [Run(f"e1 {cycles}x node kill", _names(cluster),
                    schedule_e1(random.Random(seed), d, cluster, cycles),
                    _think(clients, ops, d)),
                Run("e2 node, then primary", _names(cluster),
                    schedule_e2(random.Random(seed + 1), 2 * u, cluster, p),
                    _think(clients, ops, 2 * u))]
    if which == "c":
        d = cycles * 2.5 * u
        return [Run(f"c {cycles}x kill+restart", _names(cluster),
                    schedule_c(random.Random(seed), d, p, cycles), _think(clients, ops, d))]
    d = cycles * 3.0 * u
    pats = d_patterns(random.Random(seed), cycles)
    return [Run(f"d {cycles}x both", _names(cluster),
                schedule_d(random.Random(seed), d, p, b, cluster.timing.dead_after, pats),
                _think(clients, ops, d))]

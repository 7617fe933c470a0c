"""From one integer seed, a run's configuration and fault schedule.

Each seed picks a fault kind (or a mix of kinds) and draws everything else - cluster size,
pages, read share, message delays, fault times - from `random.Random(seed)`. The schedule is
explicit data (a list of `Fault`, in the vocabulary of ivyzmq/harness/faults.py), printed
with a failing seed so it can be read and edited. The generators' names (crash, double_crash,
...) name kinds of plans; the faults they draw are kill, restart, cut, ... Every fault is
undone before the end (killed managers restart, pauses resume, cuts heal),
so a correct protocol must finish every run; one that does not has a liveness bug.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ivyzmq.harness.faults import Fault
from ivyzmq.sim.world import SimConfig

Gen = Callable[[random.Random, SimConfig, float], list[Fault]]


@dataclass
class Plan:
    seed: int
    kind: str
    cfg: SimConfig
    faults: list[Fault] = field(default_factory=list)

    def describe(self) -> str:
        c = self.cfg
        lines = [f"seed {self.seed}  kind {self.kind}",
                 f"config: nodes {c.nodes} (ids 0-{c.nodes - 1}), managers {c.managers} "
                 f"(ids {c.nodes}-{c.nodes + c.managers - 1}, primary {c.nodes}), "
                 f"pages {c.pages}, replicas {c.replicas}"
                 f"{', cas and add' if c.atomics else ''}, {c.ops} ops per client, read share {c.read_share:.2f}, "
                 f"delay {c.delay[0] * 1000:.2f}-{c.delay[1] * 1000:.2f} ms",
                 "schedule:" if self.faults else "schedule: no faults"]
        lines += [f"  {f}" for f in self.faults]
        return "\n".join(lines)


def _managers(cfg: SimConfig) -> list[int]:
    return list(range(cfg.nodes, cfg.nodes + cfg.managers))


def _target(rng: random.Random, cfg: SimConfig) -> int:
    """Mostly the primary: it is usually the one serving, where faults hurt most."""
    ms = _managers(cfg)
    return ms[0] if rng.random() < 0.6 else rng.choice(ms)


def _pair(rng: random.Random, cfg: SimConfig) -> tuple[int, int]:
    """A connection: mostly node-manager, sometimes manager-manager or node-node."""
    ms, ns = _managers(cfg), list(range(cfg.nodes))
    r = rng.random()
    if r < 0.6 or len(ms) < 2:
        return rng.choice(ns), rng.choice(ms)
    if r < 0.8:
        a, b = rng.sample(ms, 2)
        return a, b
    a, b = rng.sample(ns, 2)
    return a, b


def crash(rng: random.Random, cfg: SimConfig, span: float) -> list[Fault]:
    """One to three kill/restart cycles, down for less or more than the failover time."""
    out, t = [], rng.uniform(0.1, span / 2)
    for _ in range(rng.randint(1, 3)):
        m, down = _target(rng, cfg), rng.uniform(0.1, 4.0)
        out += [Fault(t, "kill", m, loss=rng.choice([0.0, 0.5, 1.0])),
                Fault(t + down, "restart", m)]
        t += down + rng.uniform(0.2, 1.5)
    return out


def double_crash(rng: random.Random, cfg: SimConfig, span: float) -> list[Fault]:
    """Two (or all three) managers down at once, restarted in a random order."""
    ms = _managers(cfg)
    down = rng.sample(ms, len(ms) if len(ms) == 3 and rng.random() < 0.3 else 2)
    out, t = [], rng.uniform(0.1, span / 2)
    for m in down:
        out.append(Fault(t, "kill", m, loss=rng.choice([0.0, 0.5, 1.0])))
        t += rng.uniform(0.0, 1.5)
    rng.shuffle(down)
    for m in down:
        t += rng.uniform(0.05, 2.0)
        out.append(Fault(t, "restart", m))
    return out


def pause(rng: random.Random, cfg: SimConfig, span: float) -> list[Fault]:
    """A manager stops, mostly for longer than the failover time (a GC pause, SIGSTOP)."""
    out, t = [], rng.uniform(0.1, span / 2)
    for _ in range(rng.randint(1, 2)):
        m = _target(rng, cfg)
        d = cfg.dead_after
        dur = rng.uniform(d + 0.1, d + 3.0) if rng.random() < 0.8 else rng.uniform(0.1, d)
        out += [Fault(t, "pause", m), Fault(t + dur, "resume", m)]
        t += dur + rng.uniform(0.2, 1.5)
    return out


def partition(rng: random.Random, cfg: SimConfig, span: float) -> list[Fault]:
    """Managers cut from each other; sometimes also a node cut from one manager, so that
    it votes for a backup while the primary is alive."""
    ms = _managers(cfg)
    a, b = rng.sample(ms, 2)
    t = rng.uniform(0.1, span)
    out = [Fault(t, "cut", a, b), Fault(t + rng.uniform(0.3, 4.0), "heal", a, b)]
    if rng.random() < 0.5:
        n, m = rng.randrange(cfg.nodes), _target(rng, cfg)
        t = rng.uniform(0.1, span)
        out += [Fault(t, "cut", n, m), Fault(t + rng.uniform(0.3, 4.0), "heal", n, m)]
    return out


def island(rng: random.Random, cfg: SimConfig, span: float) -> list[Fault]:
    """One manager and one node cut off together from everything else: the node follows
    that manager, which cannot hear of the other side's terms; the other side must not
    let writes skip the node while the island's manager may still grant it leases (with
    two managers neither side hears a peer, so neither declares anyone dead)."""
    ms = _managers(cfg)
    m, n = rng.choice(ms), rng.randrange(cfg.nodes)
    t, d = rng.uniform(0.1, span), rng.uniform(2.0, 5.0)
    links = [(m, q) for q in ms if q != m] + [(n, q) for q in ms if q != m] + \
        [(m, q) for q in range(cfg.nodes) if q != n]
    return [Fault(t, "cut", a, b) for a, b in links] + \
        [Fault(t + d, "heal", a, b) for a, b in links]


def reset(rng: random.Random, cfg: SimConfig, span: float) -> list[Fault]:
    """Connection resets: all in flight on one to three connections lost at one instant."""
    out = []
    for _ in range(rng.randint(1, 4)):
        t = rng.uniform(0.05, span)
        for _ in range(rng.randint(1, 3)):
            a, b = _pair(rng, cfg)
            out.append(Fault(t, "reset", a, b))
    return out


def delay(rng: random.Random, cfg: SimConfig, span: float) -> list[Fault]:
    """Slow links: old messages arrive late (still in order on their connection)."""
    out = []
    for _ in range(rng.randint(1, 3)):
        a, b = _pair(rng, cfg)
        t, dur = rng.uniform(0.05, span), rng.uniform(0.3, 3.0)
        out += [Fault(t, "slow", a, b, x=rng.uniform(0.05, 2.5)), Fault(t + dur, "fast", a, b)]
    return out


def replicate_crash(rng: random.Random, cfg: SimConfig, span: float) -> list[Fault]:
    """Kill the serving manager between replicating a step and acting on it."""
    return [Fault(rng.uniform(0.05, span), "kill_on_replicate", x=rng.uniform(0.1, 3.5),
                  loss=rng.choice([0.0, 0.5, 1.0]))
            for _ in range(rng.randint(1, 2))]


def quick_restart(rng: random.Random, cfg: SimConfig, span: float) -> list[Fault]:
    """A manager restarts at once while its links to some nodes lag, so messages of the
    dead incarnation arrive during or after the new one's recovery (they were in a
    socket buffer; a new process talks over new connections, not ordered behind them)."""
    m, t = _target(rng, cfg), rng.uniform(0.2, span)
    lag = rng.uniform(0.02, 0.5)
    out = []
    for n in rng.sample(range(cfg.nodes), rng.randint(1, min(3, cfg.nodes))):
        out += [Fault(t - rng.uniform(0.01, 0.3), "slow", m, n, x=lag),
                Fault(t + rng.uniform(0.5, 2.0), "fast", m, n)]
    down = rng.uniform(0.01, 0.3)
    return out + [Fault(t, "kill", m), Fault(t + down, "restart", m)]


def node_crash(rng: random.Random, cfg: SimConfig, span: float) -> list[Fault]:
    """One or two nodes die with their memory and come back as new incarnations, down for
    less or more than the node liveness time (a quick restart is noticed by the new
    incarnation's beat, a slow one by the silence)."""
    out, t = [], rng.uniform(0.05, span / 2)
    for _ in range(rng.randint(1, 2)):
        n, down = rng.randrange(cfg.nodes), rng.uniform(0.05, 4.0)
        out += [Fault(t, "kill", n, loss=rng.choice([0.0, 0.5, 1.0])),
                Fault(t + down, "restart", n)]
        t += rng.uniform(0.0, down + 1.0)      # the next one may die while this one is down
    return out


def node_pause(rng: random.Random, cfg: SimConfig, span: float) -> list[Fault]:
    """A node stops, mostly for longer than the node liveness time: declared dead while it
    lives, it must not serve its old pages when it wakes."""
    out, t = [], rng.uniform(0.1, span / 2)
    for _ in range(rng.randint(1, 2)):
        n, d = rng.randrange(cfg.nodes), cfg.node_dead_after
        dur = rng.uniform(d + 0.1, d + 3.0) if rng.random() < 0.7 else rng.uniform(0.05, d)
        out += [Fault(t, "pause", n), Fault(t + dur, "resume", n)]
        t += dur + rng.uniform(0.2, 1.5)
    return out


def node_then_manager(rng: random.Random, cfg: SimConfig, span: float) -> list[Fault]:
    """A node dies, then the serving manager: the one that takes over must not wait for
    the dead node."""
    n, m = rng.randrange(cfg.nodes), _target(rng, cfg)
    t = rng.uniform(0.1, span / 2)
    gap, down = rng.uniform(0.0, 2.0), rng.uniform(0.5, 4.0)
    return [Fault(t, "kill", n), Fault(t + gap, "kill", m),
            Fault(t + gap + down, "restart", m), Fault(t + gap + down + rng.uniform(0, 2), "restart", n)]


SENDS = ("ReadPage", "WritePage", "ReadConfirmation", "WriteConfirmation",
         "InvalidateConfirmation", "Update", "UpdateAck", "ReadRequest", "WriteRequest")


def owner_crash(rng: random.Random, cfg: SimConfig, span: float) -> list[Fault]:
    """A node dies at a step of a transfer - as it sends a page (after the forward, with
    the page on its way or lost), confirms it, drops a copy, or passes an update to a
    replica holder or acknowledges one - and comes back after a while."""
    return [Fault(rng.uniform(0.1, span), "kill_on_send", msg=rng.choice(SENDS),
                  x=rng.uniform(0.05, 4.0), loss=rng.choice((0.0, 0.5, 1.0)))
            for _ in range(rng.randint(1, 2))]


GENERATORS: dict[str, Gen] = {
    "crash": crash, "double_crash": double_crash, "pause": pause, "partition": partition,
    "reset": reset, "delay": delay, "replicate_crash": replicate_crash,
    "quick_restart": quick_restart, "node_crash": node_crash, "node_pause": node_pause,
    "node_then_manager": node_then_manager, "owner_crash": owner_crash, "island": island,
}
NEEDS_BACKUP = {"double_crash", "partition", "replicate_crash", "node_then_manager", "island"}
WEIGHTS = {"none": 1, "crash": 3, "double_crash": 2, "pause": 2, "partition": 2, "reset": 2,
           "delay": 2, "replicate_crash": 2, "quick_restart": 2, "node_crash": 3,
           "node_pause": 2, "node_then_manager": 2, "owner_crash": 3, "island": 1, "mix": 4}
KINDS = list(WEIGHTS)


def make_plan(seed: int, kind: str | None = None) -> Plan:
    """The configuration and fault schedule of `seed` (of fault kind `kind` if given)."""
    rng = random.Random(seed)
    drawn = rng.choices(KINDS, weights=list(WEIGHTS.values()))[0]
    kind = kind or drawn
    parts = rng.sample(list(GENERATORS), rng.randint(2, 3)) if kind == "mix" else \
        [kind] if kind != "none" else []
    managers = rng.randint(1, 3)
    if NEEDS_BACKUP & set(parts) or kind == "mix":
        managers = max(managers, 2)
    if "island" in parts:
        managers = 2        # with three, see docs/PROTOCOL.md section 9
    lo = rng.uniform(0.0001, 0.001)
    cfg = SimConfig(nodes=rng.randint(3, 8), managers=managers, pages=rng.randint(1, 4),
                    read_share=rng.uniform(0.2, 0.8), ops=rng.randint(6, 12),
                    delay=(lo, lo + rng.uniform(0.0005, 0.01)))
    span = rng.uniform(1.5, 3.5)        # the workload runs about this long without faults
    cfg.think = span / cfg.ops
    faults: list[Fault] = []
    for part in parts:
        faults += GENERATORS[part](rng, cfg, span)
    faults.sort(key=lambda f: f.at)
    cfg.replicas = min(rng.choice((0, 1, 1, 2)), cfg.nodes - 1)   # drawn last: see above
    cfg.atomics = rng.random() < 0.5
    return Plan(seed, kind, cfg, faults)

"""THE fault vocabulary: every kind of fault, declared once, shared by the simulator's
schedules (ivyzmq/sim/schedule.py, applied by ivyzmq/sim/world.py), the chaos runner and the
experiments (applied to real processes by ivyzmq/harness/nemesis.py).

A schedule is plain data, a list of steps, so it can be printed, compared, stored and edited:

    Fault(at, kind, a, b, x, loss)   one fault; `a`, `b` are Ivy process ids
    Delay(seconds)                   wait this long after the previous step
    Await(until, a)                  wait for a state of the cluster (see AWAITS)

`at` is the time from the start of the run (the clients' start), or None: right after the
previous step. The simulator takes absolute times only; the real nemesis applies the steps
in order, and once the workload is over it starts no new timed fault (at not None) but
finishes the steps of the one under way (its restart, its handback).

To add a fault kind: declare it in KINDS, implement it in World (ivyzmq/sim/world.py) and in
Nemesis (ivyzmq/harness/nemesis.py), or list it in SIM_ONLY with the reason;
tests/test_faults.py checks that. This module imports only the standard library, because
the simulator must not pull in the transport.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str
    args: str        # the fields of `Fault` it uses
    meaning: str


KINDS: dict[str, Kind] = {k.name: k for k in [
    Kind("kill", "a (loss)", "process a (a manager or a node) dies (SIGKILL) with its memory; "
         "in the simulator, what it sent that is still in flight is lost on each of its "
         "connections with probability `loss`"),
    Kind("restart", "a", "a dead process a starts again with an empty state (a node as a new "
         "incarnation that rejoins)"),
    Kind("pause", "a", "process a stops (SIGSTOP): it neither ticks nor reads, what arrives "
         "waits for it"),
    Kind("resume", "a", "a paused process a goes on (SIGCONT)"),
    Kind("cut", "a b", "the link a <-> b drops everything, both ways: a partition"),
    Kind("heal", "a b", "a cut link a <-> b works again"),
    Kind("reset", "a b", "everything in flight between a and b is lost (a TCP reset), at the "
         "first moment from `at` on when something is in flight"),
    Kind("slow", "a b (x)", "messages a <-> b get up to x seconds of extra delay"),
    Kind("fast", "a b", "a slow link a <-> b is normal again"),
    Kind("kill_on_replicate", "(x, loss)", "the next manager that emits a Replicate dies "
         "right then, before its held messages go out, and restarts x s later"),
    Kind("kill_on_send", "msg (x, loss)", "the next node that sends a `msg` (WritePage, "
         "Update, ...) dies right after it left (lost with probability `loss`: before) "
         "and restarts x s later, as a new incarnation"),
]}

# Kinds the real nemesis cannot stage, and why (the simulator implements every kind).
SIM_ONLY: dict[str, str] = {
    "reset": "dropping exactly what is in flight on one live TCP connection needs a proxy "
             "or `ss -K` on per-daemon addresses",
    "slow": "per-link delay needs tc netem on per-daemon addresses",
    "fast": "undoes slow, which real processes do not have",
    "kill_on_replicate": "needs a hook inside the manager daemon at the moment it emits a "
                         "Replicate",
    "kill_on_send": "needs a hook inside the node daemon at the moment it sends a message",
}

UNDO = {"kill": "restart", "pause": "resume", "cut": "heal", "slow": "fast"}

AWAITS: dict[str, str] = {
    "another_serves": "until a manager other than a serves",
    "serves": "until manager a serves",
    "answers": "until process a answers",
}


@dataclass(frozen=True)
class Fault:
    at: float | None     # seconds from the start; None: right after the previous step
    kind: str
    a: int = -1          # Ivy process ids
    b: int = -1
    x: float = 0.0       # slow: extra delay; kill_on_*: time down (s)
    loss: float = 0.0    # kill, kill_on_*: chance to lose what it sent (simulator)
    msg: str = ""        # kill_on_send: the message type whose sending kills the node

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (known: {', '.join(KINDS)})")

    def __str__(self) -> str:
        link = f"{self.a} <-> {self.b}"
        args = {
            "kill": f"process {self.a} (loss {self.loss:g})",
            "cut": link, "heal": link, "reset": link, "fast": link,
            "slow": f"{link} (+{self.x * 1000:.0f} ms)",
            "kill_on_replicate": f"any manager, down {self.x:.2f} s (loss {self.loss:g})",
            "kill_on_send": f"the next node sending {self.msg}, down {self.x:.2f} s "
                            f"(loss {self.loss:g})",
        }.get(self.kind, f"process {self.a}")
        when = "    next" if self.at is None else f"{self.at:8.3f}"
        return f"{when}  {self.kind} {args}"


@dataclass(frozen=True)
class Delay:
    seconds: float


@dataclass(frozen=True)
class Await:
    until: str           # a key of AWAITS; the state must be seen after the last fault
    a: int

    def __post_init__(self) -> None:
        if self.until not in AWAITS:
            raise ValueError(f"unknown wait {self.until!r} (known: {', '.join(AWAITS)})")


Step = Fault | Delay | Await

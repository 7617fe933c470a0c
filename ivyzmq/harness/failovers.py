"""Failovers measured from what a nemesis did and what the monitor saw: for each kill or
pause of a serving manager, when another one served, and when the next operation completed."""
from __future__ import annotations

from dataclasses import dataclass

from ivyzmq.harness.monitor import Monitor, Sample
from ivyzmq.harness.nemesis import Event
from ivyzmq.history import Op


@dataclass
class Failover:
    victim: str
    killed: float
    serving: Sample | None      # first answer of another manager saying it serves
    first_op: float | None      # first operation completed after that
    clean: bool                 # no other fault between the kill and the takeover
    action: str = "kill"        # or pause (SIGSTOP)

    def text(self) -> str:
        if self.serving is None:
            return f"{self.action} {self.victim}: no manager served afterwards"
        who = "failover" if self.clean else "recovery"
        op = "-" if self.first_op is None else f"{(self.first_op - self.killed) * 1000:.0f}"
        return (f"{who}: {self.action} {self.victim} -> {self.serving.name} serving epoch "
                f"{self.serving.epoch} after {(self.serving.got - self.killed) * 1000:.0f} ms, "
                f"first op done after {op} ms")


def failovers(events: list[Event], monitor: Monitor, ops: list[Op]) -> list[Failover]:
    """For each kill or pause of a manager that was serving: when did one serve again, and
    when did the next operation complete."""
    out = []
    ends = sorted(op.end for op in ops if op.outcome == "ok" and op.end is not None)
    for i, ev in enumerate(events):
        if ev.action not in ("kill", "pause") or not ev.serving:
            continue
        s = monitor.first_serving(ev.t, exclude=ev.target)
        if s is None:        # perhaps only the victim itself, once restarted
            s = monitor.first_serving(ev.t)
        first_op = None
        if s is not None:
            first_op = next((e for e in ends if e >= s.got), None)
        clean = s is not None and s.name != ev.target and not any(
            other.action in ("kill", "pause") and ev.t < other.t < s.got
            for other in events[i + 1:])
        out.append(Failover(ev.target, ev.t, s, first_op, clean, ev.action))
    return out

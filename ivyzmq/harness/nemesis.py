"""The nemesis of real processes: applies a schedule (a list of faults.py data) to the
daemons of a Deployment, on a thread of its own, and records every fault it applied as an
`Event` with the moment it struck and whether the target was serving then - which is what
failovers are measured from (ivyzmq/harness/failovers.py).

Processes are hit by their recorded os_pid only (through the Deployment's Supervisor);
cuts and heals go through a netns.Firewall. Whatever the schedule leaves applied (the run
ended, or was interrupted) `repair()` undoes. An exception on the nemesis thread is kept in
`error` and reported with the run, never lost.
"""
from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass

from ivyzmq.harness.faults import SIM_ONLY, Await, Delay, Fault
from ivyzmq.harness.monitor import SETTLE_TIMEOUT, Monitor, Sample


@dataclass
class Event:
    t: float             # monotonic time it was applied
    action: str          # a fault kind of faults.py
    target: str          # a daemon name, or "a<->b" for a link
    serving: bool = False   # was the target serving when it was hit


class Nemesis:
    """`dep` is a deploy.Deployment; `firewall` (a netns.Firewall) is needed for cut/heal.
    `done` means the workload is over: no new timed fault starts, the one under way finishes
    its steps. `stop` means give up at once (repair() then undoes what is applied)."""

    def __init__(self, dep, monitor: Monitor, schedule: list, firewall=None):
        self.dep, self.cluster, self.monitor = dep, dep.cluster, monitor
        self.firewall = firewall
        self.schedule = list(schedule)
        for step in self.schedule:
            self._check(step)
        self.events: list[Event] = []
        self.stop = threading.Event()
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.killed: set[str] = set()
        self.paused: set[str] = set()
        self.cut: set[tuple[str, str]] = set()
        self.t0 = self._last = time.monotonic()
        self._thread: threading.Thread | None = None

    def _check(self, step) -> None:
        """Refuse at once, in the caller's thread, what this nemesis cannot apply."""
        if not isinstance(step, (Fault, Delay, Await)):
            raise TypeError(f"not a schedule step: {step!r}")
        if isinstance(step, Delay):
            return
        link = isinstance(step, Fault) and step.kind in ("cut", "heal")
        pids = (step.a, step.b) if link else (step.a,)
        allowed = self.cluster.manager_ids if link else range(len(self.cluster.daemon_names()))
        if any(p not in allowed for p in pids):
            raise ValueError(f"{step}: no such {'manager' if link else 'process'} here")
        if isinstance(step, Fault) and step.kind in SIM_ONLY:
            raise ValueError(f"{step.kind} is simulator-only: {SIM_ONLY[step.kind]}")
        if link and self.firewall is None:
            raise ValueError(f"{step.kind} needs a firewall (see ivyzmq/harness/netns.py)")

    # -- running -----------------------------------------------------------------------------

    def start(self, t0: float | None = None) -> "Nemesis":
        """Run the schedule on a thread; its times count from t0 (default now)."""
        self.t0 = self._last = time.monotonic() if t0 is None else t0
        self._thread = threading.Thread(target=self._body, name="nemesis", daemon=True)
        self._thread.start()
        return self

    def _body(self) -> None:
        try:
            for step in self.schedule:
                if self.stop.is_set() or not self._step(step):
                    return
        except BaseException as exc:     # reported with the run, never lost
            self.error = exc

    def _step(self, step) -> bool:
        if isinstance(step, Delay):
            self.stop.wait(max(0.0, step.seconds))
        elif isinstance(step, Await):
            self._await(step)
        else:
            if step.at is not None and not self._until(step.at):
                return False
            self.apply(step)
        return True

    def _until(self, offset: float) -> bool:
        """Wait until t0 + offset; False when the workload ended first (no new fault)."""
        deadline = self.t0 + offset
        while not self.stop.is_set() and not self.done.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            self.done.wait(min(left, 0.05))
        return False

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def finish(self, timeout: float = 2 * SETTLE_TIMEOUT) -> None:
        """The workload is over: let the fault under way finish its steps."""
        self.done.set()
        self.join(timeout)

    def halt(self, timeout: float = SETTLE_TIMEOUT + 5) -> None:
        self.done.set()
        self.stop.set()
        self.join(timeout)

    def repair(self) -> None:
        """Stop the schedule and undo whatever fault is still applied."""
        self.halt()
        for name in sorted(self.paused):
            self._resume(name)
        for a, b in sorted(self.cut):
            self._heal(a, b)
        for name in sorted(self.killed):
            self._restart(name)

    # -- faults ------------------------------------------------------------------------------

    def apply(self, f: Fault) -> Event:
        names = [self.cluster.name(p) for p in (f.a, f.b) if p >= 0]
        return self.ACTIONS[f.kind](self, *names)

    def _note(self, action: str, target: str) -> Event:
        ev = Event(time.monotonic(), action, target, target in self.monitor.serving_now())
        self.events.append(ev)
        self._last = ev.t
        return ev

    def _kill(self, name: str) -> Event:
        ev = self._note("kill", name)
        self.monitor.mark_down(name, ev.t)
        self.dep.procs.kill(name)
        self.killed.add(name)
        return ev

    def _restart(self, name: str) -> Event:
        ev = self._note("restart", name)
        self.dep.restart(name)
        self.killed.discard(name)
        return ev

    def _pause(self, name: str) -> Event:
        ev = self._note("pause", name)
        self.monitor.mark_down(name, ev.t)
        self.dep.procs.signal(name, signal.SIGSTOP)
        self.paused.add(name)
        return ev

    def _resume(self, name: str) -> Event:
        ev = self._note("resume", name)
        self.dep.procs.signal(name, signal.SIGCONT)
        self.paused.discard(name)
        return ev

    def _cut(self, a: str, b: str) -> Event:
        ev = self._note("cut", f"{a}<->{b}")
        self.firewall.cut(a, b)
        self.cut.add((a, b))
        return ev

    def _heal(self, a: str, b: str) -> Event:
        ev = self._note("heal", f"{a}<->{b}")
        self.firewall.heal(a, b)
        self.cut.discard((a, b))
        return ev

    # The kinds of faults.py this nemesis applies: all but SIM_ONLY (tests/test_faults.py).
    ACTIONS = {"kill": _kill, "restart": _restart, "pause": _pause, "resume": _resume,
               "cut": _cut, "heal": _heal}

    # -- waits -------------------------------------------------------------------------------

    def _await(self, w: Await) -> Sample | bool | None:
        """Wait (at most SETTLE_TIMEOUT) for the state `w` names, seen after the last fault;
        on a time-out the schedule goes on, as a script would."""
        name = self.cluster.name(w.a)
        if w.until == "another_serves":
            return self.monitor.wait_serving(self._last, exclude=name, stop=self.stop)
        if w.until == "serves":
            return self.monitor.wait_serving(self._last, only=name, stop=self.stop)
        return self._wait_answering(name, self._last)

    def _wait_answering(self, name: str, after: float) -> bool:
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while time.monotonic() < deadline and not self.stop.is_set():
            s = self.monitor.latest(name)
            if s is not None and s.up and s.sent >= after:
                return True
            time.sleep(self.monitor.interval)   # poll
        return False

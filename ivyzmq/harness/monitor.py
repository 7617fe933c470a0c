"""The monitor: a thread per manager asks its status every POLL_INTERVAL through a client
`Channel`, so that programs can tell when a manager served, failed over or handed back, and
how long the cluster was without a serving manager."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ivyzmq import config as C
from ivyzmq import protocol as P
from ivyzmq.client import Channel, IvyError

POLL_INTERVAL = 0.025      # each manager's status is asked for this often (s)
POLL_TIMEOUT = 0.3         # a manager silent this long counts as not serving
MONITOR_LIMIT = 3600.0     # a monitor never runs longer than this (s)
SETTLE_TIMEOUT = 20.0      # longest wait for the cluster to reach a state between faults (s)


@dataclass(frozen=True)
class Sample:
    """One look at one manager. `sent` is when the question left; the answer describes the
    manager at some moment in [sent, got]. up=False: no answer (dead, paused or cut off)."""

    sent: float
    got: float
    name: str
    up: bool
    serving: bool = False
    epoch: int = 0
    role: str = ""
    dead: tuple[int, ...] = ()      # the nodes this manager holds dead


@dataclass(frozen=True)
class Term:
    """A stretch during which one manager was seen serving one epoch."""

    name: str
    epoch: int
    first: float        # first answer that said so (its `got` time)
    first_sent: float


class Monitor:
    """A thread per manager asks StatusQuery every POLL_INTERVAL on a channel of its own
    (rebuilt after a silence, so a late answer from a paused manager is never taken for a
    new one)."""

    def __init__(self, cluster: C.Cluster, interval: float = POLL_INTERVAL,
                 timeout: float = POLL_TIMEOUT, ctx=None, also: tuple[str, ...] = ()):
        self.cluster = cluster
        self.names = [m.name for m in cluster.managers]
        self.also = list(also)      # more daemons to sample (nodes, say), not counted as managers
        self.interval, self.timeout = interval, timeout
        self.ctx = ctx
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- running --

    def start(self) -> "Monitor":
        for name in self.names + self.also:
            t = threading.Thread(target=self._poll, args=(name,), name=f"monitor-{name}",
                                 daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout + 2)

    def _poll(self, name: str) -> None:
        chan = Channel(self.cluster.endpoint(self.cluster.pid_of(name)), self.ctx,
                       cluster=self.cluster)
        limit = time.monotonic() + MONITOR_LIMIT
        try:
            while not self._stop.is_set() and time.monotonic() < limit:
                sent = time.monotonic()
                try:
                    reply = chan.request(P.StatusQuery(rows=False), timeout=self.timeout)[0]
                except IvyError:      # the channel is rebuilt after a time-out
                    reply = None
                got = time.monotonic()
                if not isinstance(reply, P.StatusReply):
                    self._add(Sample(sent, got, name, False))
                else:
                    self._add(Sample(sent, got, name, True, reply.serving, reply.epoch,
                                     reply.role, tuple(reply.dead)))
                self._stop.wait(self.interval)
        finally:
            chan.close()

    def _add(self, s: Sample) -> None:
        with self._lock:
            self.samples.append(s)

    def mark_down(self, name: str, t: float) -> None:
        """The nemesis killed or paused `name` at t: from then on it serves nobody."""
        self._add(Sample(t, t, name, False))

    def wait_seen(self, timeout: float = 5.0) -> bool:
        """Wait until every manager has been asked at least once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                seen = {s.name for s in self.samples}
            if seen >= set(self.names):
                return True
            time.sleep(0.01)   # poll
        return False

    # -- reading --

    def save(self, path: Path, t0: float) -> None:
        """Every sample as JSON lines, times in seconds from t0 (for diagnosis)."""
        with open(path, "w") as f:
            for s in self.snapshot():
                f.write(json.dumps({"sent": round(s.sent - t0, 4), "got": round(s.got - t0, 4),
                                    "name": s.name, "up": s.up, "serving": s.serving,
                                    "epoch": s.epoch, "role": s.role}) + "\n")

    def snapshot(self) -> list[Sample]:
        with self._lock:
            return sorted(self.samples, key=lambda s: s.sent)

    def latest(self, name: str) -> Sample | None:
        with self._lock:
            mine = [s for s in self.samples if s.name == name]
        return max(mine, key=lambda s: s.sent) if mine else None

    def serving_now(self) -> list[str]:
        return [n for n in self.names if (s := self.latest(n)) is not None and s.serving]

    def first_serving(self, after: float, exclude: str | None = None,
                      only: str | None = None) -> Sample | None:
        """The first answer, to a question sent at or after `after`, saying "serving"."""
        for s in self.snapshot():
            if s.sent >= after and s.serving and s.name != exclude and \
                    (only is None or s.name == only):
                return s
        return None

    def wait_serving(self, after: float, exclude: str | None = None, only: str | None = None,
                     timeout: float = SETTLE_TIMEOUT, stop: threading.Event | None = None
                     ) -> Sample | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            s = self.first_serving(after, exclude, only)
            if s is not None:
                return s
            time.sleep(self.interval)   # poll
        return None

    def outage(self, t0: float, t1: float) -> tuple[float, float]:
        """Seconds in [t0, t1] during which no manager served (see `no_manager_spans`), and
        seconds during which a manager of an older epoch still said it served after a
        newer term had been seen (see `stale`)."""
        none = sum(b - a for a, b in self.no_manager_spans(t0, t1))
        return none, self.stale(t0, t1)

    def no_manager_spans(self, t0: float, t1: float) -> list[tuple[float, float]]:
        """The stretches of [t0, t1] during which no manager served, each manager's state
        held from one answer to the next (the shaded spans of a failover plot)."""
        state = {n: False for n in self.names}
        spans: list[tuple[float, float]] = []
        prev = t0
        for s in self.snapshot() + [Sample(t1, t1, "", False)]:
            t = min(max(s.sent, t0), t1)
            if t > prev:
                if not any(state.values()):
                    if spans and spans[-1][1] == prev:
                        spans[-1] = (spans[-1][0], t)
                    else:
                        spans.append((prev, t))
                prev = t
            if s.name:
                state[s.name] = s.serving
        return spans

    def stale(self, t0: float, t1: float) -> float:
        """Two managers serving at once, counted only where proven: from the first answer
        of a newer term to the last answer of an older term still saying "serving" to a
        question sent after it. (A handback between two polls is not counted: the two
        answers bracket no common moment.) Nodes refuse the older term by its epoch."""
        samples = self.snapshot()
        total = 0.0
        for term in self.terms(t0, t1):
            late = [s.got for s in samples if s.serving and s.name != term.name
                    and s.epoch < term.epoch and term.first <= s.sent <= t1]
            if late:
                total += max(late) - term.first
        return total

    def terms(self, t0: float, t1: float) -> list[Term]:
        """The (manager, epoch) pairs seen serving, in order, each with its first sighting."""
        out: list[Term] = []
        for s in self.snapshot():
            if t0 <= s.sent <= t1 and s.serving and \
                    not any(t.name == s.name and t.epoch == s.epoch for t in out[-2:]):
                out.append(Term(s.name, s.epoch, s.got, s.sent))
        return out

    def handbacks(self, t0: float, t1: float) -> int:
        """Term changes from a backup to the primary while that backup still answered: the
        backup gave control back (rather than dying and the primary taking over)."""
        primary = self.names[0]
        count = 0
        terms = self.terms(t0, t1)
        for before, after in zip(terms, terms[1:]):
            if before.name != primary and after.name == primary:
                last = [s for s in self.snapshot()
                        if s.name == before.name and s.sent < after.first_sent]
                if last and last[-1].up:
                    count += 1
        return count

    def declared_dead(self, node: int, after: float) -> float | None:
        """When a serving manager was first seen holding `node` dead, after `after`."""
        return next((s.got for s in self.snapshot()
                     if s.sent >= after and s.serving and node in s.dead), None)

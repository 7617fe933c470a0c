"""`ivy top`: a live terminal view of a cluster, like circus-top: each manager's role, epoch
and whether it serves; each node's state, ops/s, faults/s and pages; the last failover and
how long the cluster was without a serving manager.

It asks every daemon's status (in parallel, a short time-out each: a dead daemon must not
freeze the view) a few times a second, and when the config gives metrics addresses it
scrapes them too: rates (ops/s, faults/s) are the difference of two scrapes. Built on rich,
so it works over ssh in any terminal; `q` (or Ctrl-C) quits. When stdout is not a terminal
it prints one snapshot and exits, for scripts and logs.
"""
from __future__ import annotations

import select
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ivyzmq import protocol as P
from ivyzmq import scrape
from ivyzmq.client import Admin
from ivyzmq.config import Cluster
from ivyzmq.metrics import address_of

QUERY_TIMEOUT = 0.25       # s a daemon may take to answer one look


@dataclass
class Look:
    """One round of questions to every daemon."""

    t: float
    status: dict[str, P.StatusReply | None]
    metrics: dict[str, scrape.Samples | None]


@dataclass
class Failover:
    t: float                   # wall clock it was seen
    before: str                # "primary@2" or "-"
    after: str
    without: float             # seconds seen without a serving manager before it


@dataclass
class Watcher:
    """Looks at the cluster and remembers what a view needs across looks: the previous
    look (for rates), the serving term, the last failover."""

    cluster: Cluster
    last: Look | None = None
    previous: Look | None = None
    serving: str | None = None
    lost_at: float | None = None       # when serving was last seen to stop
    failover: Failover | None = None
    _pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(16))

    def look(self) -> Look:
        admin, names = Admin(self.cluster), self.cluster.daemon_names()
        status = self._pool.map(lambda n: admin.query(n, P.StatusQuery(), QUERY_TIMEOUT),
                                names)
        where = [address_of(self.cluster, self.cluster.pid_of(n)) for n in names]
        found = self._pool.map(lambda w: scrape.fetch(w, QUERY_TIMEOUT) if w else None, where)
        look = Look(time.time(), dict(zip(names, status)), dict(zip(names, found)))
        self.previous, self.last = self.last, look
        self._follow(look)
        return look

    def _follow(self, look: Look) -> None:
        terms = [(r.epoch, n) for n, r in look.status.items()
                 if r is not None and r.kind == "manager" and r.serving]
        now = f"{max(terms)[1]}@{max(terms)[0]}" if terms else None
        if now is None and self.serving is not None and self.lost_at is None:
            self.lost_at = look.t
        if now is not None and now != self.serving:
            if self.serving is not None or self.lost_at is not None:
                gap = 0.0 if self.lost_at is None else look.t - self.lost_at
                self.failover = Failover(look.t, self.serving or "-", now, gap)
            self.lost_at = None
        if now is not None:
            self.serving = now

    def rate(self, name: str, metric: str, **labels) -> float | None:
        """Per second over the last two looks, or None without metrics."""
        a = self.previous and self.previous.metrics.get(name)
        b = self.last and self.last.metrics.get(name)
        if not a or not b or self.last.t <= self.previous.t:
            return None
        return (scrape.total(b, metric, **labels) - scrape.total(a, metric, **labels)) \
            / (self.last.t - self.previous.t)


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}" if v >= 10 else f"{v:.1f}"


def _managers(w: Watcher):
    from rich.table import Table
    t = Table(title="managers", title_justify="left", expand=True)
    for col in ("manager", "role", "epoch", "serving", "replication lag"):
        t.add_column(col)
    for m in w.cluster.managers:
        r, s = w.last.status[m.name], w.last.metrics.get(m.name)
        if r is None:
            t.add_row(m.name, "[red]not answering", "-", "-", "-")
            continue
        lag = "-" if not s else _num(scrape.total(s, "ivy_replication_lag_steps"))
        t.add_row(m.name, r.role, str(r.epoch),
                  "[bold green]serving" if r.serving else "no", lag)
    return t


def _nodes(w: Watcher):
    from rich.table import Table
    t = Table(title="nodes", title_justify="left", expand=True)
    for col in ("node", "state", "manager", "epoch", "ops/s", "faults/s", "owned", "copies"):
        t.add_column(col, justify="left" if col in ("node", "state") else "right")
    for nd in w.cluster.nodes:
        r = w.last.status[nd.name]
        if r is None:
            t.add_row(nd.name, "[red]not answering", *["-"] * 6)
            continue
        ops = None if w.rate(nd.name, "ivy_messages_received_total") is None else \
            (w.rate(nd.name, "ivy_messages_received_total", type="ClientRead") or 0) + \
            (w.rate(nd.name, "ivy_messages_received_total", type="ClientWrite") or 0)
        state = f"{r.pending} faults pending" if r.pending else "idle"
        t.add_row(nd.name, state, r.role.removeprefix("manager "), str(r.epoch), _num(ops),
                  _num(w.rate(nd.name, "ivy_page_faults_total")),
                  str(sum(p.is_owner for p in r.pages)),
                  str(sum(p.access == "Read" and not p.is_owner for p in r.pages)))
    return t


def headline(w: Watcher, live: bool = True) -> str:
    serving = w.serving if w.lost_at is None and w.serving else "[red]none"
    line = f"[bold]ivy top[/]  {time.strftime('%H:%M:%S')}  serving: {serving}"
    f = w.failover
    if f is not None:
        line += (f"  last failover: {f.before} -> {f.after} at "
                 f"{time.strftime('%H:%M:%S', time.localtime(f.t))}, "
                 f"{f.without:.1f} s without a serving manager")
    else:
        line += "  last failover: none seen"
    return line + ("  (q quits)" if live else "")


def view(w: Watcher, live: bool = True):
    from rich.console import Group
    return Group(headline(w, live), _managers(w), _nodes(w))


def _key(timeout: float) -> str | None:
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    return sys.stdin.read(1) if ready else None


def run(cluster: Cluster, interval: float = 0.3, once: bool = False) -> int:
    from rich.console import Console
    from rich.live import Live
    console = Console()
    w = Watcher(cluster)
    w.look()
    if once or not console.is_terminal:
        console.print(view(w, live=False))
        return 0
    import termios
    import tty
    interactive = sys.stdin.isatty()
    saved = termios.tcgetattr(sys.stdin) if interactive else None
    try:
        if interactive:
            tty.setcbreak(sys.stdin)
        with Live(view(w), console=console, screen=True, auto_refresh=False) as live:
            while True:
                key = _key(interval) if interactive else time.sleep(interval)
                if key in ("q", "Q"):
                    return 0
                w.look()
                live.update(view(w), refresh=True)
    except KeyboardInterrupt:
        return 0
    finally:
        if saved is not None:
            termios.tcsetattr(sys.stdin, termios.TCSADRAIN, saved)

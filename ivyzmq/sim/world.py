"""A deterministic world for the real protocol cores: simulated clock, network and faults.

Everything random comes from one `random.Random(seed)`, so a run is replayed exactly from its
seed. The network keeps each connection's order (as ZeroMQ does) but not the order across
connections, and loses what is sent to a dead process. Heartbeats go to every other manager.
"""
from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass, field

from ivyzmq import protocol as P
from ivyzmq.history import Op
from ivyzmq.manager.core import PUB, Manager
from ivyzmq.node.core import NIL, RW, Node


class InvariantError(AssertionError):
    pass


@dataclass
class SimConfig:
    nodes: int = 5
    managers: int = 2
    pages: int = 3
    page_size: int = 32
    heartbeat_interval: float = 0.5
    liveness: int = 3
    retry_timeout: float = 0.5
    retries: int = 3
    redrive_timeout: float = 2.0
    failback: bool = True
    tick: float = 0.05
    delay: tuple[float, float] = (0.0002, 0.003)   # one-way message delay, uniform
    op_timeout: float = 8.0
    ops: int = 60                 # operations per client
    read_share: float = 0.5
    think: tuple[float, float] = (0.0, 0.02)


@dataclass
class Client:
    node: int
    done: int = 0
    counter: int = 0
    current: tuple | None = None   # (opid, kind, page, value, start)


@dataclass(order=True)
class Event:
    time: float
    order: int
    kind: str = field(compare=False)
    args: tuple = field(compare=False, default=())


class World:
    def __init__(self, seed: int, cfg: SimConfig | None = None, faults=None):
        self.seed = seed
        self.cfg = cfg = cfg or SimConfig()
        self.rng = random.Random(seed)
        self.now = 0.0
        self.events: list[Event] = []
        self._order = itertools.count()
        self.node_ids = list(range(cfg.nodes))
        self.manager_ids = list(range(cfg.nodes, cfg.nodes + cfg.managers))
        self.nodes = {n: self._new_node(n) for n in self.node_ids}
        self.managers: dict[int, Manager | None] = {}
        self.paused: set[int] = set()
        self.cut: set[frozenset] = set()        # partitioned pairs of processes
        self.fifo: dict[tuple[int, int], float] = {}
        self.trace: list[tuple] = []
        self.history: list[Op] = []
        self.clients = {n: Client(n) for n in self.node_ids}
        self.opids = itertools.count(1)
        self.pending_ops: dict[int, Client] = {}
        self.faults = list(faults or [])
        self.log: list[str] = []
        self.node_epoch = {n: 0 for n in self.node_ids}
        self.boots = itertools.count(1)
        for m in self.manager_ids:
            self.managers[m] = self._new_manager(m)
        for pid in self.node_ids + self.manager_ids:
            self._at(self.rng.uniform(0, cfg.tick), "tick", pid)
        for n in self.node_ids:
            self._at(self.rng.uniform(0.0, 0.1), "client", n)
        for when, what, target, *rest in self.faults:
            self._at(when, "fault", what, target, *rest)

    # -- processes -------------------------------------------------------------------------

    def _new_node(self, n: int) -> Node:
        c = self.cfg
        return Node(n, n_nodes=c.nodes, managers=list(range(c.nodes, c.nodes + c.managers)),
                    pages=c.pages, page_size=c.page_size, retry_timeout=c.retry_timeout,
                    retries=c.retries)

    def _new_manager(self, m: int) -> Manager:
        c = self.cfg
        return Manager(m, nodes=self.node_ids, managers=self.manager_ids, pages=c.pages,
                       now=self.now, boot=next(self.boots),
                       heartbeat_interval=c.heartbeat_interval, liveness=c.liveness,
                       redrive_timeout=c.redrive_timeout, failback=c.failback)

    def _at(self, when: float, kind: str, *args) -> None:
        heapq.heappush(self.events, Event(when, next(self._order), kind, args))

    def alive(self, pid: int) -> bool:
        return pid in self.nodes or self.managers.get(pid) is not None

    # -- network ---------------------------------------------------------------------------

    def _deliver_later(self, src: int, dest: int, msg: P.Msg, payload) -> None:
        if frozenset((src, dest)) in self.cut:
            return
        lo, hi = self.cfg.delay
        when = max(self.now + self.rng.uniform(lo, hi), self.fifo.get((src, dest), 0.0))
        self.fifo[(src, dest)] = when
        self._at(when, "deliver", src, dest, msg, payload)

    def _flush(self, pid: int, out) -> None:
        for dest, msg, payload in out:
            msg.lc = 0
            if isinstance(msg, P.IvyMsg):
                self.trace.append((round(self.now, 6), type(msg).__name__, pid, dest, msg.page,
                                   msg.requester, msg.rid, msg.epoch))
            if dest == PUB:
                for q in self.manager_ids:
                    if q != pid:
                        self._deliver_later(pid, q, msg, payload)
            else:
                self._deliver_later(pid, dest, msg, payload)

    def _run_node(self, n: int) -> None:
        out, done = self.nodes[n].drain()
        self._flush(n, out)
        for opid, data, error in done:
            self._op_done(opid, data, error)

    def _run_manager(self, m: int) -> None:
        self._flush(m, self.managers[m].drain())

    # -- workload --------------------------------------------------------------------------

    def _client_next(self, n: int) -> None:
        cl = self.clients[n]
        c = self.cfg
        if cl.current is not None or cl.done >= c.ops:
            return
        page = self.rng.randrange(c.pages)
        opid = next(self.opids)
        if self.rng.random() < c.read_share:
            cl.current = (opid, "read", page, None, self.now)
            self.pending_ops[opid] = cl
            self.nodes[n].start(self.now, opid, "read", page)
        else:
            cl.counter += 1
            value = f"w{n}-{cl.counter}"
            cl.current = (opid, "write", page, value, self.now)
            self.pending_ops[opid] = cl
            data = value.encode().ljust(16, b"\0")
            self.nodes[n].start(self.now, opid, "write", page, data)
        self._at(self.now + c.op_timeout, "timeout", opid)
        self._run_node(n)

    def _op_done(self, opid: int, data, error) -> None:
        cl = self.pending_ops.pop(opid, None)
        if cl is None or cl.current is None or cl.current[0] != opid:
            return                      # the client gave up on it already
        _, kind, page, value, start = cl.current
        if kind == "read":
            value = data.rstrip(b"\0").decode()
        self.history.append(Op(client=cl.node, node=cl.node, page=page, kind=kind,
                               value=value, start=start, end=self.now, outcome="ok"))
        self._finish_op(cl)

    def _finish_op(self, cl: Client) -> None:
        cl.current = None
        cl.done += 1
        self._at(self.now + self.rng.uniform(*self.cfg.think), "client", cl.node)

    def _timeout(self, opid: int) -> None:
        cl = self.pending_ops.pop(opid, None)
        if cl is None:
            return
        _, kind, page, value, start = cl.current
        if kind == "write":
            self.history.append(Op(client=cl.node, node=cl.node, page=page, kind=kind,
                                   value=value, start=start, end=None, outcome="unknown"))
        self.log.append(f"{self.now:.3f} client {cl.node} op {opid} timed out")
        self._finish_op(cl)

    # -- faults ----------------------------------------------------------------------------

    def _fault(self, what: str, target: int, *rest) -> None:
        self.log.append(f"{self.now:.3f} fault {what} {target} {rest if rest else ''}")
        if what == "crash":
            self.managers[target] = None
            self.paused.discard(target)
        elif what == "restart":
            if self.managers.get(target) is None:
                self.managers[target] = self._new_manager(target)
        elif what == "pause":
            self.paused.add(target)
        elif what == "resume":
            self.paused.discard(target)
        elif what == "cut":
            self.cut.add(frozenset((target, rest[0])))
        elif what == "heal":
            self.cut.discard(frozenset((target, rest[0])))

    # -- main loop -------------------------------------------------------------------------

    def finished(self) -> bool:
        return all(cl.done >= self.cfg.ops for cl in self.clients.values())

    def run(self, max_time: float = 600.0, check_every_step: bool = True) -> None:
        while self.events and not self.finished():
            ev = heapq.heappop(self.events)
            if ev.time > max_time:
                raise InvariantError(f"run did not finish by t={max_time}")
            self.now = ev.time
            self._step(ev)
            if check_every_step:
                self.check_invariants()

    def _step(self, ev: Event) -> None:
        kind, args = ev.kind, ev.args
        if kind == "fault":
            self._fault(*args)
            return
        if kind == "client":
            self._client_next(args[0])
            return
        if kind == "timeout":
            self._timeout(args[0])
            return
        pid = args[0] if kind == "tick" else args[1]
        if pid in self.paused:
            # A stopped process neither ticks nor reads; what arrives waits for it.
            self._at(self.now + self.cfg.tick, kind, *args)
            return
        if kind == "tick":
            self._at(self.now + self.cfg.tick, "tick", pid)
            if not self.alive(pid):
                return
            if pid in self.nodes:
                self.nodes[pid].tick(self.now)
                self._run_node(pid)
            else:
                self.managers[pid].tick(self.now)
                self._run_manager(pid)
            return
        src, dest, msg, payload = args
        if not self.alive(dest):
            return
        if dest in self.nodes:
            self.nodes[dest].receive(self.now, msg, payload)
            self._run_node(dest)
        else:
            self.managers[dest].receive(self.now, msg)
            self._run_manager(dest)

    # -- invariants (PROTOCOL.md section 4) -------------------------------------------------

    def check_invariants(self) -> None:
        for p in range(self.cfg.pages):
            owners = [n for n, nd in self.nodes.items() if nd.pages[p].is_owner]
            if len(owners) > 1:
                raise InvariantError(f"page {p} has several owners {owners}")
            writers = [n for n, nd in self.nodes.items() if nd.pages[p].access == RW]
            if writers:
                w = writers[0]
                if len(writers) > 1 or not self.nodes[w].pages[p].is_owner:
                    raise InvariantError(f"page {p}: ReadWrite at {writers}, owners {owners}")
                others = [n for n, nd in self.nodes.items()
                          if n != w and nd.pages[p].access != NIL]
                if others:
                    raise InvariantError(f"page {p}: {w} writes while {others} hold copies")
        for n, nd in self.nodes.items():
            if nd.epoch < self.node_epoch[n]:
                raise InvariantError(f"node {n} epoch went back {self.node_epoch[n]}->{nd.epoch}")
            self.node_epoch[n] = nd.epoch
        serving = [(m.epoch, m.pid) for m in self.managers.values()
                   if m is not None and m.role == "active"]
        epochs = [e for e, _ in serving]
        if len(set(epochs)) != len(epochs):
            raise InvariantError(f"two managers serve the same epoch: {serving}")

    def check_quiescent(self) -> None:
        """Once nothing is in flight, the serving manager agrees with the nodes."""
        live = [m for m in self.managers.values() if m is not None and m.role == "active"]
        if not live:
            return
        m = max(live, key=lambda m: m.epoch)
        if any(rec.op or rec.queue for rec in m.table):
            return
        for rec in m.table:
            p = rec.page
            owners = [n for n, nd in self.nodes.items() if nd.pages[p].is_owner]
            holders = sorted(n for n, nd in self.nodes.items()
                             if nd.pages[p].access != NIL and n != rec.owner)
            if owners != [rec.owner] or holders != sorted(rec.copy_set):
                raise InvariantError(f"page {p}: manager says owner {rec.owner} copies "
                                     f"{rec.copy_set}; nodes say owner {owners} copies {holders}")

"""A deterministic world for the real protocol cores: simulated clock, network and faults.

Everything random comes from one `random.Random`, seeded, so a run is replayed exactly from
its seed. The network keeps each connection's order (as ZeroMQ over TCP does) but not the
order across connections. Every message is encoded and decoded with the real wire format on
the way, so sender and receiver never share an object (a core that re-sends a message it
keeps must not change what is already in flight) and the codec is exercised too.

Faults act on managers and connections only; nodes are the ground truth the managers recover
from, so they never die here. A fault schedule is a list of `Fault`s, in the vocabulary of
ivyzmq/harness/faults.py (this module applies every kind there). A killed manager loses what was sent to it; what it sent may still arrive, and after a restart it talks over
new connections (not ordered behind the old ones). A paused manager neither ticks nor reads;
what arrives waits for it, and on resume it sees its inbox or its timers first (either).

Each client runs `ops` random operations, then, once the last fault is over, reads every
page: the probes that show the system serves again. The run ends when it has settled (see
`settled`); if it has not `grace` seconds after the last fault, that is a liveness failure.
"""
from __future__ import annotations

import heapq
import itertools
import random

from ivyzmq import protocol as P
from ivyzmq.harness.faults import Fault
from ivyzmq.history import Op
from ivyzmq.manager.core import Manager
from ivyzmq.node.core import Node
from ivyzmq.sim import checks
from ivyzmq.sim.checks import Violation
from ivyzmq.sim.clients import Client, atomic, padded
from ivyzmq.sim.faults import FaultInjection
from ivyzmq.sim.simconfig import SimConfig  # noqa: F401 (the simulator's config lives here)


Row = list   # trace row: [time, type, from, to, page, requester, rid, epoch, opseq, note]


class World(FaultInjection):
    def __init__(self, seed: int, cfg: SimConfig | None = None, faults=(),
                 bugs: frozenset[str] = frozenset()):
        """`bugs`: broken variants of ivyzmq/bugs.py, passed to every core built here."""
        self.seed = seed
        self.bugs = frozenset(bugs)
        self.cfg = cfg = cfg or SimConfig()
        # The plan is drawn from `seed` elsewhere; the world's own draws use another stream
        # so that the same seed with a hand-edited schedule still replays.
        self.rng = random.Random(seed * 7919 + 17)
        self.now = 0.0
        self.events: list[tuple] = []
        self._order = itertools.count()
        self.node_ids = list(range(cfg.nodes))
        self.manager_ids = list(range(cfg.nodes, cfg.nodes + cfg.managers))
        self.incs = itertools.count(1)       # node incarnations, growing across restarts
        self.nodes = {n: self._new_node(n) for n in self.node_ids}   # the running ones
        self.boots = itertools.count(1)
        self.managers: dict[int, Manager | None] = {m: self._new_manager(m)
                                                    for m in self.manager_ids}
        self.paused: dict[int, list[tuple]] = {}   # paused process -> deliveries held for it
        self.cut: set[frozenset] = set()
        self.slow: dict[frozenset, float] = {}
        self.gen: dict[tuple[int, int], int] = {}  # bumped to lose a connection's in-flight
        self.fifo: dict[tuple[int, int], float] = {}
        self.armed: list[Fault] = []
        self.armed_nodes: list[Fault] = []
        self.resets: set[frozenset] = set()        # connections to reset on their next send
        self.trace: list[Row] = []
        self.history: list[Op] = []
        self.clients = {n: Client(n, cfg.ops + cfg.pages) for n in self.node_ids}
        self.clients_busy = len(self.clients)
        self.opids = itertools.count(1)
        self.pending_ops: dict[int, Client] = {}
        self.issued = 0
        self.faults = sorted(faults, key=lambda f: f.at)
        self.faults_left = len(self.faults)
        self.last_fault = max((f.at for f in self.faults), default=0.0)
        self.node_epoch = {n: 0 for n in self.node_ids}
        self.roles = {m: ("passive", 0) for m in self.manager_ids}
        self.activations = 0
        self.steps = 0
        for pid in self.node_ids + self.manager_ids:
            self._at(self.rng.uniform(0, cfg.tick), "tick", pid)
        for n in self.node_ids:
            self._at(self.rng.uniform(0.0, 0.1), "client", n)
        for f in self.faults:
            self._at(f.at, "fault", f)

    # -- processes -------------------------------------------------------------------------

    def _new_node(self, n: int) -> Node:
        c = self.cfg
        return Node(n, n_nodes=c.nodes, managers=list(range(c.nodes, c.nodes + c.managers)),
                    pages=c.pages, page_size=c.page_size, retry_timeout=c.retry_timeout,
                    retries=c.retries, bugs=self.bugs, rid_base=1000 * next(self.incs),
                    inc=next(self.incs), lease=c.lease,
                    beat_interval=c.heartbeat_interval, replicas=c.replicas)

    def _new_manager(self, m: int) -> Manager:
        c = self.cfg
        return Manager(m, nodes=self.node_ids, managers=self.manager_ids, pages=c.pages,
                       now=self.now, boot=next(self.boots),
                       heartbeat_interval=c.heartbeat_interval, liveness=c.liveness,
                       redrive_timeout=c.redrive_timeout, failback=c.failback,
                       bugs=self.bugs, node_liveness=c.node_dead_after,
                       pause_gap=5 * c.tick, replicas=c.replicas)

    def _tick_process(self, pid: int) -> None:
        if pid in self.nodes:
            self.nodes[pid].tick(self.now)   # a node tick beats and re-sends: no check
            self._run_node(pid)
        else:
            self.managers[pid].tick(self.now)
            self._run_manager(pid)

    def _at(self, when: float, kind: str, *args) -> None:
        heapq.heappush(self.events, (when, next(self._order), kind, args))

    def alive(self, pid: int) -> bool:
        return pid in self.nodes or self.managers.get(pid) is not None

    def note(self, text: str) -> None:
        """A marker row in the trace (faults, role changes), so a trace reads as a story."""
        self.trace.append([self.now, "#", -1, -1, -1, -1, -1, -1, -1, text])

    # -- network ---------------------------------------------------------------------------

    def _send(self, src: int, dest: int, frames: list[bytes], row: Row | None) -> None:
        pair = frozenset((src, dest))
        if pair in self.cut:
            if row is not None:
                row[9] = "lost: cut"
            return
        lo, hi = self.cfg.delay
        delay = self.rng.uniform(lo, hi)
        if pair in self.slow:
            delay += self.rng.uniform(0, self.slow[pair])
        when = max(self.now + delay, self.fifo.get((src, dest), 0.0))
        self.fifo[(src, dest)] = when
        self._at(when, "deliver", src, dest, self.gen.get((src, dest), 0), frames, row)
        if pair in self.resets:     # reset while this message is on the wire
            self.resets.discard(pair)
            self._at((self.now + when) / 2, "reset", src, dest)

    def _flush(self, pid: int, out) -> None:
        for dest, msg, payload in out:
            msg.lc = 0
            row = None
            if isinstance(msg, P.IvyMsg):
                row = [self.now, type(msg).__name__, pid, dest, msg.page, msg.requester,
                       msg.rid, msg.epoch, msg.opseq, ""]
                self.trace.append(row)
            frames = P.encode(msg, payload)
            if dest == P.HEARTBEAT:
                for q in self.manager_ids:
                    if q != pid:
                        self._send(pid, q, frames, row)
            else:
                self._send(pid, dest, frames, row)

    def lose_in_flight(self, src: int, dest: int, why: str) -> None:
        """Everything sent src -> dest and not yet delivered is lost."""
        self.gen[(src, dest)] = self.gen.get((src, dest), 0) + 1
        for _, _, kind, args in self.events:
            if kind == "deliver" and args[0] == src and args[1] == dest and args[4]:
                args[4][9] = args[4][9] or f"lost: {why}"

    def _deliver(self, src: int, dest: int, gen: int, frames: list[bytes], row) -> None:
        if gen != self.gen.get((src, dest), 0):
            return
        if not self.alive(dest):
            if row is not None:
                row[9] = row[9] or "lost: receiver down"
            return
        if dest in self.paused:
            self.paused[dest].append(("deliver", src, dest, gen, frames, row))
            return
        msg, payload = P.decode(frames)
        if dest in self.nodes:
            self.nodes[dest].receive(self.now, msg, payload)
            self._run_node(dest)
            # A node's step changes at most the page its message names (and its epoch).
            checks.invariants(self, (msg.page,) if isinstance(msg, P.IvyMsg) else ())
        else:
            self.managers[dest].receive(self.now, msg)
            self._run_manager(dest)

    def _run_node(self, n: int) -> None:
        out, done = self.nodes[n].drain()
        self._flush(n, out)
        for opid, data, error in done:
            self._op_done(opid, data, error)
        if self.armed_nodes and out:
            self._node_sent(n, out)

    def _run_manager(self, m: int) -> None:
        mgr = self.managers[m]
        out = mgr.drain()
        self._flush(m, out)
        role = (mgr.role, mgr.epoch)
        if role != self.roles[m]:
            self.note(f"manager {m}: {self.roles[m][0]} -> {mgr.role} (epoch {mgr.epoch})")
            if mgr.role == "active":
                self.activations += 1
            self.roles[m] = role
            checks.managers(self)     # only a role or epoch change can break it
        if self.armed and any(isinstance(msg, P.Replicate) for _, msg, _ in out):
            f = self.armed.pop(0)
            self.note(f"kill_on_replicate fires: manager {m} emitted Replicate seq {mgr.seq}")
            self._kill_manager(m, f.loss)
            self.faults_left += 1
            self._at(self.now + f.x, "fault", Fault(self.now + f.x, "restart", m))

    # -- workload --------------------------------------------------------------------------

    def _client_next(self, n: int) -> None:
        """A client's next operation: `ops` random ones, then, once every fault is over, a
        read of each page (the probes: the system must serve again after the faults)."""
        cl = self.clients[n]
        c = self.cfg
        if cl.current is not None or cl.left == 0:
            return
        probe = cl.left <= c.pages
        if probe and self.now < self.last_fault:
            self._at(self.last_fault + self.rng.uniform(0.01, 0.2), "client", n)
            return
        cl.left -= 1
        self.issued += 1
        page = cl.left if probe else self.rng.randrange(c.pages)
        opid = next(self.opids)
        self.pending_ops[opid] = cl
        kind, data, value, expected = "read", b"", None, ""
        if not (probe or self.rng.random() < c.read_share):
            cl.counter += 1
            value = f"w{n}-{cl.counter}"
            kind, data = "write", padded(value)
            if self.counter_page(page):
                kind, data, value = "add", (1).to_bytes(8, "little"), ""
            elif c.atomics and self.rng.random() < 0.4:
                expected = cl.seen.get(page, "")
                kind, data = "cas", padded(expected) + padded(value)
        cl.current = (opid, kind, page, value, self.now, expected)
        start = ("start", n, opid, kind, page, data)
        self._at(self.now + c.op_timeout, "timeout", opid)
        if n in self.paused:
            self.paused[n].append(start)   # the request waits for the paused node
        elif n in self.nodes:
            self._start(*start[1:])

    def _start(self, n: int, opid: int, kind: str, page: int, data: bytes) -> None:
        """The client's request reaches its node (a dead node never answers it)."""
        if n in self.nodes and opid in self.pending_ops:
            self.nodes[n].start(self.now, opid, kind, page, data)
            self._run_node(n)
            checks.invariants(self, (page,))

    def counter_page(self, page: int) -> bool:
        """With atomics on, the odd pages are counters (read and add), the others strings
        (read, write, cas), as history.Op says a page with adds is."""
        return self.cfg.atomics and page % 2 == 1

    def _op_done(self, opid: int, data, error) -> None:
        cl = self.pending_ops.pop(opid, None)
        if cl is None:
            return                      # the client gave up on it already
        _, kind, page, value, start, expected = cl.current
        extra = atomic(kind, expected, data if error is None else None)
        if kind == "read" and error is None:
            # A counter's 0 is the initial "" (a counter page may see no add at all).
            number = int.from_bytes(data[:8], "little", signed=True)
            value = (str(number) if number else "") if self.counter_page(page) \
                else data.rstrip(b"\0").decode()
        if error is None and kind != "add":
            found = data[1:].rstrip(b"\0").decode() if kind == "cas" else ""
            cl.seen[page] = value if kind != "cas" or extra["swapped"] else found
        maybe = error is not None and error.maybe      # may have taken effect
        self.history.append(Op(client=cl.node, node=cl.node, page=page, kind=kind,
                               value=value or "", start=start,
                               end=None if maybe else self.now,
                               outcome="ok" if error is None else
                               "unknown" if maybe else "failed", **extra))
        self._finish_op(cl)

    def _finish_op(self, cl: Client) -> None:
        cl.current = None
        if cl.left == 0:
            self.clients_busy -= 1
            return
        think = 0.0 if self.rng.random() < 0.5 else self.rng.uniform(0, 4 * self.cfg.think)
        self._at(self.now + think, "client", cl.node)

    def _timeout(self, opid: int) -> None:
        cl = self.pending_ops.pop(opid, None)
        if cl is None:
            return
        _, kind, page, value, start, expected = cl.current
        self.history.append(Op(client=cl.node, node=cl.node, page=page, kind=kind,
                               value=value or "", start=start, end=None, outcome="unknown",
                               **atomic(kind, expected, None)))
        self.note(f"client {cl.node}: {kind} of page {page} timed out")
        self._finish_op(cl)

    # -- main loop -------------------------------------------------------------------------

    def settled(self) -> bool:
        """Workload and faults are over, nothing is in flight at the nodes, and exactly one
        manager serves with no operation open: the point where agreement is checked."""
        if self.clients_busy or self.faults_left:
            return False
        if len(self.nodes) < len(self.node_ids):
            return False
        for nd in self.nodes.values():
            if nd.outstanding or nd.syncing or not nd.member or \
                    any(st.pending or st.local for st in nd.pages):
                return False
        active = [m for m in self.managers.values() if m is not None and m.role == "active"]
        return len(active) == 1 and not active[0].held and not active[0].round_wanted \
            and not active[0].assigning and \
            not any(rec.op or rec.queue for rec in active[0].table)

    def run(self) -> None:
        """Run until settled; raise Violation on the first broken invariant, or if the run
        has not settled `grace` seconds after the workload and the last fault."""
        limit = self.last_fault + self.cfg.grace
        while not self.settled():
            if not self.events:
                raise Violation("liveness", "no events left: " + self.stuck())
            when, _, kind, args = heapq.heappop(self.events)
            if when > limit:
                raise Violation("liveness", f"run did not finish by t={limit:.1f}: "
                                + self.stuck())
            self.now = when
            self.steps += 1
            self._step(kind, args)

    def _step(self, kind: str, args: tuple) -> None:
        if kind == "deliver":
            self._deliver(*args)
        elif kind == "tick":
            pid = args[0]
            self._at(self.now + self.cfg.tick, "tick", pid)
            if not self.alive(pid) or pid in self.paused:
                return
            self._tick_process(pid)
        elif kind == "client":
            self._client_next(args[0])
        elif kind == "start":
            self._start(*args)
        elif kind == "timeout":
            self._timeout(args[0])
        elif kind == "fault":
            self._fault(args[0])
        elif kind == "reset":
            a, b = args
            self.note(f"connection {a} <-> {b} reset")
            self.lose_in_flight(a, b, "reset")
            self.lose_in_flight(b, a, "reset")

    # -- checks (ivyzmq/sim/checks.py) -------------------------------------------------------

    def check_invariants(self) -> None:
        checks.invariants(self)

    def check_managers(self) -> None:
        checks.managers(self)

    def check_quiescent(self) -> None:
        checks.quiescent(self)

    def check_end(self) -> None:
        checks.end(self)

    def stuck(self) -> str:
        return checks.stuck(self)

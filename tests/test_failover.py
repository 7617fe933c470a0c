"""Issue 3 acceptance: the replicated central manager survives the primary's death at every
step of a read and a write, hands control back when the primary returns, recovers from the
nodes when both managers die, survives a paused primary without split brain, and fails over
in bounded time.

Real daemons on loopback (the `clusters` fixture), 3 nodes, a primary and a backup. Nothing
is mocked: faults are SIGKILL / SIGSTOP / SIGCONT sent to the recorded pids. Every operation
is recorded as a workload-style `Op` and each test checks its history for linearizability.

How a kill is landed at one step of an operation: the config's `step_delay` (D) makes a
manager linger D seconds after each step that changed its table - it has sent that step's
Replicate to the backup and the step's own messages (a page step's go out at once,
docs/PROTOCOL.md section 4.1), and reads nothing from its inbox (acknowledgements and status
queries included) until D is over. So:
- "busy" (a status query unanswered within 0.1 s) right after a request was sent means the
  manager took the step, replicated it and acted on it: a kill less than D after the
  request's start lands before the backup's acknowledgement is read, and any request that
  reaches the manager meanwhile waits unprocessed in its inbox.
- To kill after a message went out but before its receiver acted on it, the receiver is paused
  (SIGSTOP) first; the message is seen in the sender's trace, the primary is killed, and the
  receiver is resumed only once the backup is recovering, so the stale message and the backup's
  Recover race in the receiver's inbox.
Each scenario's docstring says what is known and what is not.
"""
from __future__ import annotations

import itertools
import signal
import threading
import time
from collections.abc import Callable

import pytest

from ivyzmq import checker
from ivyzmq import protocol as P
from ivyzmq.checker import verdict_text
from ivyzmq.client import connect
from ivyzmq.deploy import Deployment as RunDir
from ivyzmq.harness import agreement
from ivyzmq.harness.monitor import Monitor
from ivyzmq.harness.ops import Clients, attempt, run_tag
from ivyzmq.history import History, Op
from ivyzmq.readout import status_text

from conftest import wait_until

PRIMARY, BACKUP = "primary", "backup"
NODES = ("node0", "node1", "node2")
OP_TIMEOUT = 60.0     # a client's patience for one operation (failover included)
D = 0.4               # step_delay of the kill-at-a-step scenarios
BUSY = 0.1            # a manager that does not answer a status query this fast lingers


# -- polling helpers ----------------------------------------------------------------------------

def status(run: RunDir, name: str, timeout: float = 1.0) -> P.StatusReply | None:
    return run.admin.query(name, P.StatusQuery(), timeout)


def sent(run: RunDir, name: str, timeout: float = D + 2.0) -> list[P.TraceRow]:
    """The protocol messages daemon `name` has sent (its trace); [] if it does not answer."""
    reply = run.admin.query(name, P.TraceQuery(), timeout)
    return [] if reply is None else reply.rows


def has_sent(run: RunDir, name: str, kind: str, page: int, *, to: int | None = None,
             requester: int | None = None) -> bool:
    return any(r.type == kind and r.page == page and (to is None or r.to == to)
               and (requester is None or r.requester == requester)
               for r in sent(run, name))


def busy(run: RunDir, name: str) -> bool:
    return status(run, name, timeout=BUSY) is None


def readout(run: RunDir, names=None) -> str:
    names = names or run.cluster.daemon_names()
    replies = [(n, status(run, n, timeout=0.5) if n in run.procs.running() else None) for n in names]
    return f"{status_text(run.cluster, replies)}\n(logs: {run.path})"


def disagreement(run: RunDir) -> str | None:
    """None when the cluster is quiescent and every readout agrees: exactly one manager
    serves, nothing is pending, its owner / copy_set per page is what the nodes report, and
    every other running manager holds the same table. Otherwise what is wrong."""
    managers = [m.name for m in run.cluster.managers if m.name in run.procs.running()]
    replies = {n: status(run, n, timeout=1.0) for n in managers + list(NODES)}
    found = agreement.from_replies(replies, managers, NODES, epochs=False, others=True)
    return found if isinstance(found, str) else "; ".join(found) or None


def assert_agreement(run: RunDir, timeout: float = 20.0) -> None:
    last: list[str | None] = [None]

    def agreed() -> bool:
        last[0] = disagreement(run)
        return last[0] is None
    wait_until(agreed, timeout, lambda: f"agreeing readouts: {last[0]}\n{readout(run)}",
               interval=0.1)


def quiesce(run: RunDir) -> None:
    """Wait until nothing is pending, the tables agree and no manager is mid-step."""
    assert_agreement(run)
    for m in (PRIMARY, BACKUP):
        if m in run.procs.running():
            wait_until(lambda m=m: not busy(run, m), 10, f"{m} to be idle")


def serving(run: RunDir) -> tuple[str, int] | None:
    for m in run.cluster.managers:
        if m.name in run.procs.running():
            s = status(run, m.name, timeout=0.5)
            if s is not None and s.serving:
                return m.name, s.epoch
    return None


# -- recorded operations -------------------------------------------------------------------------

class Recorder:
    """Reads and writes through node daemons, each recorded as an `Op` in one history."""

    def __init__(self, run: RunDir, timeout: float = OP_TIMEOUT):
        self.run = run
        self.cluster = run.cluster
        self.history = History()
        self.timeout = timeout
        self.tag = run_tag()
        self._clients = itertools.count(1000)

    def write(self, node: int, page: int, label: str) -> str:
        return self._do(node, page, "write", f"{self.tag}-{label}")

    def read(self, node: int, page: int) -> str:
        return self._do(node, page, "read", "")

    def _do(self, node: int, page: int, kind: str, value: str) -> str:
        with connect(self.cluster, node, timeout=self.timeout) as mem:
            op, error = attempt(mem, self.cluster.page_size, client=next(self._clients),
                                node=node, page=page, kind=kind, value=value)
        self.history.append(op)
        if error is not None:
            raise error
        return op.value

    def background(self, node: int, page: int, kind: str, label: str = "") -> "Background":
        if kind == "read":
            return Background(lambda: self.read(node, page))
        return Background(lambda: self.write(node, page, label))

    def assert_linearizable(self, extra: list[Op] = ()) -> checker.CheckResult:
        ops = self.history.ops() + list(extra)
        verdict = checker.check(ops)
        assert verdict.ok, f"history not linearizable: {verdict.explanation}"
        return verdict


class Background:
    """One operation on a thread; `result()` waits for it (bounded) and re-raises."""

    def __init__(self, fn: Callable):
        self.value, self.error, self.ended = None, None, None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn) -> None:
        try:
            self.value = fn()
        except BaseException as exc:    # reported by result()
            self.error = exc
        self.ended = time.monotonic()

    def result(self, timeout: float = OP_TIMEOUT + 10):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"operation still running after {timeout:g} s"
        if self.error is not None:
            raise self.error
        return self.value


def workload(run: RunDir, clients: int = 3, pages: int = 3) -> Clients:
    """Client threads doing random reads and writes (unique values) until finished; a
    client that fails or times out stops (it would only pile up more unknowns)."""
    return Clients(run.cluster, clients=clients, pages=pages, stop_on_error=True,
                   timeout=OP_TIMEOUT, seed_values=False)


def finish(work: Clients) -> list[Op]:
    return work.finish(OP_TIMEOUT + 10).history.ops()


def watch(run: RunDir, *nodes: str) -> Monitor:
    """Every manager's (and the named nodes') status, sampled until stopped."""
    mon = Monitor(run.cluster, interval=0.05, also=nodes).start()
    mon.wait_seen()
    return mon


def assert_epochs_not_shared(mon: Monitor) -> None:
    serving_epochs: dict[int, set[str]] = {}
    for s in mon.snapshot():
        if s.serving:
            serving_epochs.setdefault(s.epoch, set()).add(s.name)
    shared = {e: names for e, names in serving_epochs.items() if len(names) > 1}
    assert not shared, f"epochs served by two managers: {shared}"


def both_serving(mon: Monitor) -> list[tuple]:
    """Pairs of answers from the primary and the backup that both said "serving" about
    overlapping moments: (primary's sample, backup's sample)."""
    samples = mon.snapshot()
    mine = {n: [s for s in samples if s.name == n and s.serving] for n in (PRIMARY, BACKUP)}
    return [(a, b) for a in mine[PRIMARY] for b in mine[BACKUP]
            if a.sent <= b.got and b.sent <= a.got]


def assert_all_ok(ops: list[Op]) -> None:
    bad = [op for op in ops if op.outcome != "ok"]
    assert not bad, f"{len(bad)} of {len(ops)} operations did not succeed: {bad[:3]}"


def pause(run: RunDir, name: str) -> None:
    assert run.procs.signal(name, signal.SIGSTOP), f"{name} is not running"


def resume(run: RunDir, name: str) -> None:
    assert run.procs.signal(name, signal.SIGCONT), f"{name} is not running"


# == 1. the primary dies at each step of a read and of a write ==================================

class Step:
    """A cluster with the scenario's step_delay and failback off; page 0 owned by node 1
    (and, for a write, read copies at nodes 0 and 2); a recorder; the traces cleared."""

    def __init__(self, clusters, name: str, write: bool, delay: float):
        self.delay = delay
        self.run = clusters.make(name, step_delay=delay, failback=False)
        self.rec = Recorder(self.run)
        self.value = self.rec.write(1, 0, "setup")
        if write:
            assert self.rec.read(0, 0) == self.rec.read(2, 0) == self.value
        quiesce(self.run)
        head = status(self.run, PRIMARY)
        assert head.serving and (head.records[0].owner, head.records[0].copy_set) == \
            (1, [0, 2] if write else []), \
            readout(self.run)
        self.epoch = head.epoch
        for n in self.run.cluster.daemon_names():          # from here on, only the op's rows
            self.run.admin.query(n, P.TraceQuery(clear=True), timeout=D + 2)
        self.ops: list[tuple[Background, str | None]] = []
        self.notes: list[str] = []

    def start(self, node: int, page: int, kind: str, expect: str | None = None) -> Background:
        op = self.rec.background(node, page, kind, label=f"w{node}-{page}")
        self.ops.append((op, expect))
        return op

    def written(self, node: int, page: int) -> str:
        return f"{self.rec.tag}-w{node}-{page}"

    def sent(self, name: str, kind: str, page: int = 0, **kw) -> bool:
        return has_sent(self.run, name, kind, page, **kw)

    def kill(self) -> float:
        t = time.monotonic()
        assert self.run.procs.kill(PRIMARY)
        return t

    def landed(self, since: float, at: float, what: str, event: str = "killed") -> None:
        lag = at - since
        self.notes.append(f"{event} {lag:.3f} s after {what}")
        assert lag < self.delay, (
            f"{event} {lag:.3f} s after {what}, not within the step's {self.delay} s delay: "
            "cannot tell where it landed (machine too slow?)")

    def pause_requester(self, node: int, kind: str, since: float) -> None:
        """Pause `node` once its request is out, before the manager can have let the page
        go: the forward leaves only after the request step's delay, which began after
        `since`."""
        wait_until(lambda: self.sent(f"node{node}", kind), 5, f"node {node}'s {kind}")
        t = time.monotonic()
        pause(self.run, f"node{node}")
        self.landed(since, t, "the op started", event=f"node {node} paused")

    def backup_recovering(self) -> None:
        wait_until(lambda: (s := status(self.run, BACKUP)) is not None
                   and s.role == "recovering", 30, "the backup to start recovering")

    def kill_once_sent(self, held: str, kind: str, msg_type: str, timeout: float = 10,
                       expect: str | None = None) -> None:
        """Pause node `held`, start node 2's operation on page 0, kill the primary once its
        `msg_type` to `held` is in its trace, and resume `held` only while the backup is
        recovering (the dead primary's message and the Recover then race in its inbox)."""
        pause(self.run, held)
        try:
            self.start(2, 0, kind, expect=expect)
            to = int(held.removeprefix("node"))
            wait_until(lambda: self.sent(PRIMARY, msg_type, to=to, requester=2), timeout,
                       f"the primary's {msg_type}")
            self.kill()
            self.backup_recovering()
        finally:
            resume(self.run, held)

    def results(self) -> None:
        for op, expect in self.ops:
            got = op.result()
            if expect is not None:
                assert got == expect

    def finish(self, final: dict[int, str]) -> None:
        """Every op completes with the expected value and the backup serves a newer term;
        page 0 reads `final[0]` at every node (other pages: at node 1). Then the primary is
        restarted (it must follow: failback is off), the readouts agree (the restarted
        primary's table included) and the history is linearizable.

        One operation at a time from here: with step_delay every queued step costs a
        manager its delay (and on de0a009 its heartbeats too, see
        test_step_delay_does_not_cost_the_primary_its_term)."""
        self.results()
        head = wait_until(lambda: serving(self.run), 20, "a serving manager")
        assert head[0] == BACKUP and head[1] > self.epoch, head
        for page, value in sorted(final.items()):
            for node in (0, 1, 2) if page == 0 else (1,):
                assert self.rec.read(node, page) == value, f"page {page}\n{readout(self.run)}"
        quiesce(self.run)
        self.run.restart(PRIMARY)
        assert_agreement(self.run)
        assert not status(self.run, PRIMARY).serving, "failback is off: the primary follows"
        self.rec.assert_linearizable()
        print(f"\n{'; '.join(self.notes)}")


def read_inbox(s: Step) -> dict[int, str]:
    """Two reads at once. Node 0's read of page 2 has been taken by the primary (page
    locked, op replicated to the backup, ReadForward sent with it): the primary dies before
    it reads the backup's acknowledgement. Node 2's ReadRequest for page 0 arrived while the
    primary lingers in that step: it dies with the request unprocessed in its inbox.
    Landed: the primary stopped answering after node 0's read started, and the kill comes
    less than D after that start, so the primary was still inside that step's delay. Not
    observable: whether node 2's request was in the kernel or already in the zmq queue
    (loopback delivery takes microseconds), and whether the backup had applied the
    Replicate or only received it. Evidence afterwards: the backup sent node 2's
    ReadForward."""
    t0 = time.monotonic()
    s.start(0, 2, "read", expect="")
    wait_until(lambda: busy(s.run, PRIMARY), 5, "the primary to linger after node 0's read")
    s.start(2, 0, "read", expect=s.value)
    wait_until(lambda: s.sent("node2", "ReadRequest"), 5, "node 2's ReadRequest")
    s.landed(t0, s.kill(), "node 0's read started")
    s.results()
    assert s.sent(BACKUP, "ReadForward", to=1, requester=2)
    return {0: s.value, 2: ""}


def read_forwarded(s: Step) -> dict[int, str]:
    """The primary has sent the ReadForward to the owner (node 1) and dies before anything
    else happens. Landed exactly: node 1 is paused before the read starts, the ReadForward
    is in the primary's trace before the kill, and node 1 resumes only while the backup is
    recovering, so the dead primary's forward and the backup's Recover race in node 1's
    inbox (which one node 1 takes first is not controlled)."""
    s.kill_once_sent("node1", "read", "ReadForward", expect=s.value)
    return {0: s.value}


def read_in_transit(s: Step) -> dict[int, str]:
    """The owner has sent the copy (ReadPage) and the reader's confirmation has not reached
    the primary when it dies. Landed exactly: node 2 is paused once its ReadRequest is out
    and less than a step delay after the read started (so before the ReadForward can leave
    the primary), node 1's ReadPage is in its trace before the kill, and node 2 resumes only
    while the backup is recovering (node 0's read of page 1 is what makes the backup take
    over), so the recovery round waits for node 2 and the ReadPage and Recover race in its
    inbox."""
    t0 = time.monotonic()
    s.start(2, 0, "read", expect=s.value)
    try:
        s.pause_requester(2, "ReadRequest", t0)
        wait_until(lambda: s.sent("node1", "ReadPage", to=2), 10, "node 1's ReadPage")
        s.kill()
        s.start(0, 1, "read", expect="")
        s.backup_recovering()
    finally:
        resume(s.run, "node2")
    return {0: s.value}


def write_inbox(s: Step) -> dict[int, str]:
    """Two writes at once. Node 0's write of page 2 has been taken by the primary (page
    locked, op replicated, WriteForward sent with it): it dies before it reads the backup's
    acknowledgement. Node 2's WriteRequest for page 0 (copies at nodes 0 and 2) arrived
    while the primary lingers in that step: it dies with the request unprocessed. Landed as
    in read_inbox. Evidence afterwards: the backup sent node 2's Invalidate."""
    t0 = time.monotonic()
    s.start(0, 2, "write")
    wait_until(lambda: busy(s.run, PRIMARY), 5, "the primary to linger after node 0's write")
    s.start(2, 0, "write")
    wait_until(lambda: s.sent("node2", "WriteRequest"), 5, "node 2's WriteRequest")
    s.landed(t0, s.kill(), "node 0's write started")
    s.results()
    assert s.sent(BACKUP, "Invalidate", to=0, requester=2)
    return {0: s.written(2, 0), 2: s.written(0, 2)}


def write_invalidating(s: Step) -> dict[int, str]:
    """The primary has sent the Invalidate to node 0 and dies before the WriteForward.
    Landed exactly: node 0 is paused before the write starts, the Invalidate is in the
    primary's trace before the kill, and node 0 resumes only while the backup is recovering
    (the stale Invalidate and the Recover race in its inbox)."""
    s.kill_once_sent("node0", "write", "Invalidate")
    return {0: s.written(2, 0)}


def write_replicated(s: Step) -> dict[int, str]:
    """The primary has taken node 0's InvalidateConfirmation (the last one: the page may
    move), replicated that step and sent its WriteForward with it, and dies lingering in
    that step, the backup's acknowledgement unread. Landed: the primary stopped answering
    less than D after a trace poll that did not yet show node 0's confirmation. Whether the
    owner's WritePage reached node 2 before the backup's Recover is not controlled; either
    way the write lands once."""
    s.start(2, 0, "write")
    last_absent = [time.monotonic()]

    def confirmed() -> bool:
        t = time.monotonic()
        if s.sent("node0", "InvalidateConfirmation", requester=2):
            return True
        last_absent[0] = t
        return False
    wait_until(confirmed, 10, "node 0's InvalidateConfirmation")
    wait_until(lambda: busy(s.run, PRIMARY), 5, "the primary to linger after the step")
    s.landed(last_absent[0], s.kill(), "the last poll without the confirmation")
    s.results()
    return {0: s.written(2, 0)}


def write_forwarded(s: Step) -> dict[int, str]:
    """Copies invalidated, the primary has sent the WriteForward to the owner (node 1) and
    dies. Landed exactly: node 1 is paused before the write starts, the WriteForward is in
    the primary's trace before the kill, node 1 resumes only while the backup is
    recovering."""
    s.kill_once_sent("node1", "write", "WriteForward", timeout=15)
    return {0: s.written(2, 0)}


def write_in_transit(s: Step) -> dict[int, str]:
    """The old owner has handed the page over (WritePage sent; it owns nothing) and the
    writer has not confirmed when the primary dies: the page is in transit. Landed exactly:
    node 2 is paused once its WriteRequest is out and less than a step delay after the
    write started, node 1's WritePage is in its trace before the kill, and node 2 resumes
    only while the backup is recovering (node 0's read of page 1 makes the backup take
    over), so the recovery round must see the page in flight."""
    t0 = time.monotonic()
    s.start(2, 0, "write")
    try:
        s.pause_requester(2, "WriteRequest", t0)
        wait_until(lambda: s.sent("node1", "WritePage", to=2), 15, "node 1's WritePage")
        s.kill()
        s.start(0, 1, "read", expect="")
        s.backup_recovering()
    finally:
        resume(s.run, "node2")
    return {0: s.written(2, 0)}


# The step_delay each scenario needs: D where the kill must land inside a step's delay, a
# shorter one where a node must be paused between two messages of the operation, none where
# the receiver is paused before the operation starts (the message then waits for it).
STEPS = [(read_inbox, D), (read_forwarded, 0.0), (read_in_transit, 0.25),
         (write_inbox, D), (write_invalidating, 0.0), (write_replicated, D),
         (write_forwarded, 0.0), (write_in_transit, 0.25)]


@pytest.mark.parametrize("scenario,delay", STEPS, ids=[f.__name__ for f, _ in STEPS])
def test_primary_dies_mid_operation(clusters, scenario, delay):
    """SIGKILL the primary at one step of a read or a write (the scenario's docstring says
    which and how precisely); the operation(s) complete through the backup with the right
    values, every node then reads the right value, the readouts of both managers (the
    primary restarted as a follower) and all nodes agree, and the history is linearizable."""
    s = Step(clusters, scenario.__name__, scenario.__name__.startswith("write"), delay)
    s.finish(scenario(s))


# == 2. handback ===============================================================================

def wait_ops(work: Clients, since: float, n: int, what: str, timeout: float = 60) -> None:
    """n operations started after `since` succeeded (some may be hits that need no manager)."""
    wait_until(lambda: len(work.ok_after(since)) >= n, timeout,
               lambda: f"{n} operations {what} (have {len(work.ok_after(since))})", interval=0.05)


def wait_served(run: RunDir, manager: str, n: int, what: str, timeout: float = 60) -> int:
    """Wait until `manager` has sent n protocol messages in all (forwards, invalidations,
    acks...: it serves operations, not just hits); returns its count."""
    return wait_until(lambda: (k := len(sent(run, manager, timeout=1.0))) >= n and k, timeout,
                      lambda: f"{manager} to serve operations {what}", interval=0.05)


def test_handback_to_restarted_primary(clusters):
    """Primary killed under a running workload; operations continue through the backup; the
    primary is restarted while the workload runs and control returns to it: it serves with
    a higher epoch than the backup's term and the backup is passive. Afterwards more
    operations succeed, the tables of both managers and the nodes' readouts agree, and the
    whole history (before, during and after both changes of hands) is linearizable."""
    run = clusters.make("handback")
    mon = watch(run)
    work = workload(run, clients=3)
    wait_ops(work, 0, 20, "before the kill")
    t_kill = time.monotonic()
    assert run.procs.kill(PRIMARY)
    wait_served(run, BACKUP, 20, "after the kill")
    wait_ops(work, t_kill, 20, "after the kill")
    term = status(run, BACKUP)
    assert term.serving, readout(run)
    t_restart = time.monotonic()
    run.restart(PRIMARY)

    def handed_back() -> bool:
        p, b = status(run, PRIMARY), status(run, BACKUP)
        return p is not None and b is not None and p.serving and b.role == "passive" \
            and p.epoch > term.epoch
    wait_until(handed_back, 30, lambda: f"the primary to take control back\n{readout(run)}")
    t_back = time.monotonic()
    wait_served(run, PRIMARY, 20, "after the handback")    # its trace starts at the restart
    wait_ops(work, t_back, 20, "after the handback")
    ops = finish(work)
    mon.stop()
    assert_all_ok(ops)
    assert_agreement(run)
    assert_epochs_not_shared(mon)
    verdict = checker.check(ops)
    assert verdict.ok, verdict.explanation
    print(f"\nhandback {t_back - t_restart:.2f} s after the restart; {len(ops)} ops, "
          f"{verdict_text(verdict)}")


def test_no_failback_backup_stays_in_charge(clusters):
    """failback: false. Primary killed, operations continue through the backup, primary
    restarted: it catches up (its table equals the backup's, at the backup's epoch) and then
    stays passive while the backup keeps serving for twice the failure-detection time;
    operations keep succeeding and the history is linearizable."""
    run = clusters.make("nofailback", failback=False)
    work = workload(run, clients=3)
    wait_ops(work, 0, 20, "before the kill")
    assert run.procs.kill(PRIMARY)
    wait_served(run, BACKUP, 20, "after the kill")
    term = status(run, BACKUP)
    assert term.serving, readout(run)
    run.restart(PRIMARY)
    wait_until(lambda: (p := status(run, PRIMARY)) is not None and p.epoch == term.epoch, 20,
               lambda: f"the primary to follow the backup's term\n{readout(run)}")
    watch_until = time.monotonic() + 2 * run.cluster.timing.dead_after
    while time.monotonic() < watch_until:
        p, b = status(run, PRIMARY), status(run, BACKUP)
        assert b is not None and b.serving and b.epoch == term.epoch, readout(run)
        assert p is not None and not p.serving, readout(run)
        time.sleep(0.1)  # poll
    t_after = time.monotonic()
    wait_served(run, BACKUP, len(sent(run, BACKUP)) + 20, "after the primary came back")
    wait_ops(work, t_after, 10, "after the primary came back")
    ops = finish(work)
    assert_all_ok(ops)
    assert_agreement(run)
    assert status(run, BACKUP).serving and not status(run, PRIMARY).serving
    verdict = checker.check(ops)
    assert verdict.ok, verdict.explanation


def test_handback_with_an_operation_half_done(clusters):
    """The handback rule of docs/PROTOCOL.md section 5.3: control returns to the primary with no operation
    lost even when one is half done on the backup. The backup serves (primary killed); node
    1, owner of page 0, is paused; node 2's read of page 0 gets its ReadForward from the
    backup (seen in the backup's trace) and it waits in node 1's inbox; the primary is
    restarted and takes control back (the backup hands back, the primary starts its recovery
    round, which waits for node 1); node 1 resumes, with the backup's old-epoch forward and
    the primary's Recover in its inbox. The read completes with the right value, the
    primary serves a newer term, the readouts agree and the history is linearizable."""
    # Node 1 stays paused through the primary's restart: on a loaded machine that can take
    # longer than the default 1.5 s after which a silent node is dead (section 6.1).
    run = clusters.make("handback-mid", node_liveness=10.0)
    rec = Recorder(run)
    value = rec.write(1, 0, "one")                 # node 1 owns page 0
    assert run.procs.kill(PRIMARY)
    assert rec.read(2, 3) == ""                    # needs a manager: the backup takes over
    term = wait_until(lambda: serving(run), 20, "the backup to serve")
    assert term[0] == BACKUP
    pause(run, "node1")
    try:
        read = rec.background(2, 0, "read")
        wait_until(lambda: has_sent(run, BACKUP, "ReadForward", 0, to=1, requester=2), 20,
                   "the backup's ReadForward")
        run.restart(PRIMARY)
        wait_until(lambda: (s := status(run, PRIMARY)) is not None and s.role == "recovering"
                   and s.epoch > term[1], 20,
                   lambda: f"the handback to the primary\n{readout(run)}")
        assert status(run, BACKUP).role == "passive"
    finally:
        resume(run, "node1")
    assert read.result() == value
    head = wait_until(lambda: serving(run), 20, "a serving manager")
    assert head[0] == PRIMARY and head[1] > term[1], head
    for node in (0, 1, 2):
        assert rec.read(node, 0) == value
    assert_agreement(run)
    rec.assert_linearizable()


# == 3. both managers die =========================================================================

@pytest.mark.parametrize("order", [(PRIMARY, BACKUP), (BACKUP, PRIMARY)],
                         ids=["primary_first", "backup_first"])
def test_both_managers_die_and_restart(clusters, order):
    """Distinct values are written to every page by different nodes (ownership moves) and
    read copies spread. Then the managers die one after the other in `order`, with more
    writes acknowledged by the survivor in between (primary first: the backup takes over at a
    new epoch; backup first: the primary goes on alone). They come back in the same order:
    the first one back must take over alone (cold start, the nodes are the only state left;
    reads start as soon as it is up, since a backup takes over only when asked), then the
    other joins. Afterwards every page's owner is the one from before the kills and its
    copies are still there, every node reads every page's last acknowledged value, the
    readouts agree and the history is linearizable."""
    run = clusters.make("both-" + order[0])
    rec = Recorder(run)
    pages = run.cluster.pages
    values = {}
    for page in range(pages):
        values[page] = rec.write((page + 1) % 3, page, f"p{page}")
        assert rec.read((page + 2) % 3, page) == values[page]
    first, second = order
    assert run.procs.kill(first)
    for page in (0, 1):                     # acknowledged by the survivor alone
        values[page] = rec.write((page + 2) % 3, page, f"p{page}-again")
    assert_agreement(run)
    before = status(run, second).records
    assert run.procs.kill(second)
    run.restart(first)
    # Reads from nodes without a copy need a manager: the one that is back is asked.
    reads = [rec.background(node, page, "read") for page in range(pages) for node in range(3)
             if node not in [before[page].owner] + before[page].copy_set]
    assert reads
    head = wait_until(lambda: serving(run), 30, lambda: f"{first} to serve\n{readout(run)}")
    assert head[0] == first
    for op in reads:
        op.result()
    run.restart(second)
    wait_until(lambda: (s := status(run, second)) is not None and s.epoch >= head[1], 20,
               lambda: f"{second} to join\n{readout(run)}")
    for page in range(pages):
        for node in range(3):
            assert rec.read(node, page) == values[page], f"page {page} at node {node}"
    assert_agreement(run)
    after = status(run, serving(run)[0]).records
    for b, a in zip(before, after):
        assert a.owner == b.owner and set(b.copy_set) <= set(a.copy_set), (b.page, before, after)
    rec.assert_linearizable()


# == 4. a paused primary ==========================================================================

@pytest.mark.parametrize("long_pause", [False, True], ids=["resume_at_takeover", "long"])
def test_paused_primary_steps_down(clusters, long_pause):
    """failback: false. The primary is paused (SIGSTOP) under a running workload, past the
    failure-detection time; the backup takes over and operations continue; the primary is
    resumed (SIGCONT) either as soon as the backup has served a few operations (it wakes up
    still active, before the backup's first heartbeat as the serving manager: it acts on
    its backlog in its old epoch until it hears of the new one) or after twice the
    failure-detection time (the backup's heartbeats as the serving manager wait for it).
    Statuses are polled throughout: no two managers ever report serving in the same epoch
    (in one polling round, or anywhere in the run), node epochs never go backwards, the
    resumed primary steps down and stays down, and the history is linearizable."""
    run = clusters.make("pause", failback=False)
    mon = watch(run, *NODES)
    work = workload(run, clients=3)
    try:
        wait_ops(work, 0, 20, "before the pause")
        t_pause = time.monotonic()
        pause(run, PRIMARY)
        try:
            wait_until(lambda: (s := status(run, BACKUP)) is not None and s.serving, 30,
                       lambda: f"the backup to take over\n{readout(run)}")
            wait_served(run, BACKUP, 10, "while the primary is paused")
            # Stay paused for twice the failure-detection time: the backup's heartbeats as
            # the serving manager queue up at the paused primary.
            if long_pause:
                resume_at = t_pause + 2 * run.cluster.timing.dead_after
                wait_until(lambda: time.monotonic() >= resume_at, 10, "the pause to last")
        finally:
            resume(run, PRIMARY)
        t_resume = time.monotonic()
        wait_until(lambda: (s := status(run, PRIMARY)) is not None and not s.serving, 20,
                   lambda: f"the resumed primary to step down\n{readout(run)}")
        t_down = time.monotonic()
        wait_served(run, BACKUP, len(sent(run, BACKUP)) + 20, "after the primary resumed")
        wait_ops(work, t_down, 20, "after the primary resumed")
        wait_until(lambda: sum(1 for x in mon.snapshot() if x.name == PRIMARY and x.up
                               and x.sent > t_down)
                   >= 10, 20, "status samples of the resumed primary")
    finally:
        ops = finish(work)
        mon.stop()
    assert_all_ok(ops)
    assert_agreement(run)
    same = [(a, b) for a, b in both_serving(mon) if a.epoch == b.epoch]
    assert not same, f"two managers serving the same epoch: {same[:3]}"
    assert_epochs_not_shared(mon)
    for node in NODES:
        epochs = [x.epoch for x in mon.snapshot() if x.name == node and x.up]
        assert epochs == sorted(epochs), f"{node}'s epoch went backwards: {epochs}"
    late = [(x.got - t_resume, x.serving) for x in mon.snapshot()
            if x.name == PRIMARY and x.up and x.sent > t_down]
    assert late and not any(s for _, s in late), "the primary served again after stepping down"
    both = len(both_serving(mon))
    verdict = checker.check(ops)
    assert verdict.ok, verdict.explanation
    print(f"\nresumed primary stepped down {t_down - t_resume:.2f} s after SIGCONT; overlapping "
          f"answers with both managers serving (different epochs): {both}; "
          f"{verdict_text(verdict)}")


# == 5. failover time =============================================================================

@pytest.mark.parametrize("timing", [{}, {"heartbeat_interval": 0.1, "retry_timeout": 0.1}],
                         ids=["default", "fast"])
def test_failover_time(clusters, timing):
    """The serving primary is killed under a running workload (6 clients, pages 0-2). At the
    kill a probe write starts at node 2 on page 4, which node 1 owns, so it needs a manager:
    kill -> probe completed is the failover time as a client sees it (printed, not
    asserted). Also printed: kill -> the backup reports serving, and the slowest workload
    operation. Every operation succeeds and the history is linearizable."""
    run = clusters.make("time-" + ("fast" if timing else "default"), **timing)
    rec = Recorder(run)
    work = workload(run, clients=6)
    try:
        wait_ops(work, 0, 30, "before the kill")
        assert serving(run)[0] == PRIMARY
        t_kill = time.monotonic()
        assert run.procs.kill(PRIMARY)
        probe = rec.background(2, 4, "write", label="probe")
        wait_until(lambda: (s := status(run, BACKUP, timeout=0.3)) is not None and s.serving,
                   30, "the backup to serve", interval=0.01)
        t_serving = time.monotonic()
        probe.result()
        wait_ops(work, t_kill, 10, "after the kill")
    finally:
        ops = finish(work)
    assert_all_ok(ops + rec.history.ops())
    verdict = checker.check(ops + rec.history.ops())
    assert verdict.ok, verdict.explanation
    slowest = max(op.end - op.start for op in ops)
    t = run.cluster.timing
    print(f"\nfailover (heartbeat {t.heartbeat_interval} s, retry {t.retry_timeout} s): kill -> "
          f"backup serving {t_serving - t_kill:.3f} s, kill -> first write through the "
          f"backup {probe.ended - t_kill:.3f} s; slowest of {len(ops)} ops "
          f"{slowest:.3f} s")


# == regressions: two bugs these tests found on de0a009 ===========================================

def test_step_delay_does_not_cost_the_primary_its_term(clusters):
    """step_delay is a demo knob to land kills mid-request; it must not fake a failure. Six
    concurrent reads that each need the manager, at step_delay 0.5 s (the seed's knob is
    1 s) and the default 0.5 s heartbeats: the primary must still serve in its first term
    afterwards. On de0a009 it did not: the daemon slept inside its loop, so a manager working
    through queued steps (6 requests, 6 confirmations, 0.5 s each) sent no heartbeats; the
    nodes left the primary after their silence limit and the backup, hearing nothing either,
    took their requests as votes (logs: "manager 4: passive -> recovering on vote", "manager
    3: backup 4 is silent; replicating without it", "manager 3: active -> passive on
    newer_epoch")."""
    run = clusters.make("stepdelay", step_delay=0.5, failback=False)
    rec = Recorder(run)
    first = wait_until(lambda: serving(run), 10, "a serving manager")
    reads = [rec.background(n, p, "read") for n in range(3) for p in range(3) if p != n]
    for op in reads:
        assert op.result() == ""
    rec.assert_linearizable()
    assert_agreement(run)
    assert serving(run) == first, readout(run)


def quiet(run: RunDir, names, span: float) -> bool:
    """No daemon of `names` sends any protocol message for `span` seconds (False as soon as
    one does)."""
    counts = [len(sent(run, n, timeout=1.0)) for n in names]
    end = time.monotonic() + span
    while time.monotonic() < end:
        if [len(sent(run, n, timeout=1.0)) for n in names] != counts:
            return False
        time.sleep(0.05)  # poll
    return True


def test_cold_start_behind_the_nodes_epoch_serves(clusters):
    """The backup takes over (the nodes move to its epoch 5), the cluster goes quiet, both
    managers die, the primary alone is restarted and no client does anything: it must
    recover from the nodes and serve on its own, as `ivy up` expects (wait_serving). On
    de0a009 it did not: its max_epoch restarted at 0, it picked epoch 2 or 4, every node
    dropped its Recover silently ("drops Recover of old epoch 4 < 5") and it sat in
    'recovering' until a client request happened to carry the newer epoch to it."""
    run = clusters.make("coldstart", heartbeat_interval=0.2, retry_timeout=0.2)
    rec = Recorder(run)
    value = rec.write(1, 0, "one")
    assert run.procs.kill(PRIMARY)
    assert rec.read(2, 0) == value
    head = wait_until(lambda: serving(run), 10, "the backup to serve")
    assert head[0] == BACKUP
    assert_agreement(run)
    wait_until(lambda: quiet(run, NODES, 4 * run.cluster.timing.retry_timeout), 20,
               "the nodes to stop re-sending")
    assert run.procs.kill(BACKUP)
    run.restart(PRIMARY)
    grace = 6 * run.cluster.timing.dead_after
    deadline = time.monotonic() + grace
    while serving(run) is None and time.monotonic() < deadline:
        time.sleep(0.1)  # poll
    got = serving(run)
    assert got is not None, f"nobody serves {grace:g} s after the cold start\n{readout(run)}"
    assert got[0] == PRIMARY and got[1] > head[1], (got, head)
    assert rec.read(0, 0) == value
    assert_agreement(run)

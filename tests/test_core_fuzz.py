"""The node and manager cores take adversarial but well-formed messages - wrong senders,
pages and process ids out of range, old and future epochs and opseqs, repeated and
reordered replica updates, acknowledgements and assignments - without raising, and the
node keeps its own invariants: an owner holds no replica of its own page, a page with
ReadWrite is owned, a synced page's holders are not waited for. The manager keeps those of
docs/PROTOCOL.md sections 1 and 4.3 after every step, and what either core keeps per
request id, per peer or per client operation stays within the bounds of section 9.1 after
thousands of made-up messages (the metrics' counting too). Fixed seed, bounded examples."""
from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivyzmq import protocol as P
from ivyzmq.manager.core import PROBLEMS_KEPT, Manager
from ivyzmq.metrics import EPOCH_LIMIT, Counting
from ivyzmq.manager.replication import HELD_LIMIT
from ivyzmq.node.core import NIL, RW, Node

SIZE, NODES, PAGES, MANAGERS = 16, 3, 4, [3, 4]
SETTINGS = dict(derandomize=True, deadline=None, database=None, max_examples=600,
                suppress_health_check=[HealthCheck.too_slow])

ints = st.integers(-1, 5)      # small: ids, rids and opseqs that match the node's often
pids = st.integers(-1, 6)
version = st.tuples(st.integers(-1, 9), st.integers(-1, 9))
holders = st.lists(pids, max_size=3)
head = dict(sender=pids, epoch=st.integers(0, 9))

MESSAGES = st.one_of(
    st.builds(P.Update, page=ints, version=version, **head),
    st.builds(P.UpdateAck, page=ints, version=version, **head),
    st.builds(P.Assign, pages=st.lists(st.tuples(ints, ints, holders, st.booleans(), holders),
                                       max_size=3), **head),
    st.builds(P.AssignAck, **head),
    st.builds(P.WritePage, page=ints, requester=pids, rid=ints, opseq=ints, version=version,
              holders=holders, **head),
    st.builds(P.ReadPage, page=ints, requester=pids, rid=ints, opseq=ints, **head),
    st.builds(P.WriteForward, page=ints, requester=pids, rid=ints, opseq=ints,
              holders=holders, **head),
    st.builds(P.ReadForward, page=ints, requester=pids, rid=ints, opseq=ints, **head),
    st.builds(P.WriteGrant, page=ints, requester=pids, rid=ints, opseq=ints,
              holders=holders, **head),
    st.builds(P.Invalidate, page=ints, requester=pids, rid=ints, opseq=ints, **head),
    st.builds(P.Recover, boot=ints, **head),
    st.builds(P.Fenced, inc=ints, **head),
    st.builds(P.Admit, inc=ints, fresh=st.booleans(), **head),
)
LOCAL = st.tuples(st.sampled_from(["read", "write", "cas", "add"]), st.integers(0, PAGES - 1))
# Answers to what the node waits for, so that the deep paths are reached, not only refused.
ANSWER = st.tuples(st.just("answer"), version, holders, st.integers(0, 2))
ACK = st.tuples(st.just("ack"), st.integers(0, PAGES - 1))
STEPS = st.lists(st.one_of(MESSAGES, LOCAL, ANSWER, ACK), max_size=25)


def _answer(node: Node, now: float, ver, hold, sender: int) -> None:
    """The page (or grant) for one fault the node waits on."""
    for p, st_ in enumerate(node.pages):
        if st_.pending is not None:
            cls = P.ReadPage if st_.pending.kind == "read" else P.WritePage
            extra = {} if cls is P.ReadPage else dict(version=ver, holders=hold)
            node.receive(now, cls(page=p, requester=node.pid, rid=st_.pending.rid,
                                  opseq=st_.opseq + 1, sender=sender, epoch=node.epoch,
                                  **extra), bytes(SIZE))
            return


def _ack(node: Node, now: float, page: int) -> None:
    st_ = node.pages[page]
    for h in list(st_.unacked)[:1]:
        node.receive(now, P.UpdateAck(page=page, version=st_.version, sender=h,
                                      epoch=node.epoch))


def _local(node: Node, now: float, opid: int, kind: str, page: int) -> None:
    data = {"read": b"", "write": b"w", "cas": b"\0x", "add": (1).to_bytes(8, "little")}
    node.start(now, opid, kind, page, data[kind])


@settings(**SETTINGS)
@given(STEPS, st.integers(0, 2))
def test_a_node_survives_any_sequence(steps, replicas):
    node = Node(1, n_nodes=NODES, managers=MANAGERS, pages=PAGES, page_size=SIZE,
                replicas=replicas)
    for i, step in enumerate(steps):
        now = i * 0.1
        if isinstance(step, tuple) and step[0] == "answer":
            _answer(node, now, *step[1:])
        elif isinstance(step, tuple) and step[0] == "ack":
            _ack(node, now, step[1])
        elif isinstance(step, tuple):
            _local(node, now, i + 1, *step)
        else:
            payload = bytes(SIZE) if step.carries_payload else None
            node.receive(now, step, payload)
        node.tick(now)
        node.drain()
        for p, st_ in enumerate(node.pages):
            assert not (st_.is_owner and p in node.rep), (p, node.rep)
            assert st_.access != RW or st_.is_owner, p
            assert st_.access == NIL or node.data[p] is not None or st_.unacked or \
                p not in node.pages, p          # untouched: reads are zeros (read_hit)


MANAGER_MESSAGES = st.one_of(
    st.builds(P.ReadRequest, page=ints, requester=pids, rid=ints, **head),
    st.builds(P.WriteRequest, page=ints, requester=pids, rid=ints, **head),
    st.builds(P.WriteConfirmation, page=ints, requester=pids, rid=ints, opseq=ints, **head),
    st.builds(P.InvalidateConfirmation, page=ints, requester=pids, rid=ints, opseq=ints,
              **head),
    st.builds(P.AssignAck, **head),
    st.builds(P.NodeBeat, inc=ints, member=st.booleans(), t=st.floats(0, 9), **head),
    st.builds(P.TableReport, pages=st.lists(st.builds(
        P.PageReport, page=ints, is_owner=st.booleans(),
        access=st.sampled_from(["Nil", "Read", "ReadWrite"]), opseq=ints, last_rid=ints,
        replica=st.none() | version), max_size=PAGES), inc=ints, member=st.booleans(),
        was=ints, served=ints, **head),
)


@settings(**SETTINGS)
@given(st.lists(MANAGER_MESSAGES, max_size=30), st.integers(0, 2))
def test_a_manager_survives_any_sequence(msgs, replicas):
    mgr = Manager(3, nodes=list(range(NODES)), managers=MANAGERS, pages=PAGES, now=0.0,
                  node_liveness=1.5, pause_gap=10.0, replicas=replicas)
    for i, msg in enumerate(msgs):
        now = 0.2 * i
        if 0 <= msg.sender < NODES + len(MANAGERS):
            mgr.receive(now, msg)
        mgr.tick(now)
        mgr.drain()


# -- the manager's invariants after every step (docs/PROTOCOL.md sections 1 and 4.3) -------

nodes_ = st.integers(0, NODES - 1)
RECORDS = st.builds(
    lambda page, owner, cs, hold: P.PageRec(page=page, owner=owner,
                                            copy_set=sorted(set(cs) - {owner}),
                                            holders=[h for h in dict.fromkeys(hold)
                                                     if h != owner]),
    st.integers(-2, PAGES + 1), nodes_, st.lists(nodes_, max_size=3),
    st.lists(nodes_, max_size=2))
WHOLE = st.lists(RECORDS, min_size=PAGES, max_size=PAGES).map(
    lambda recs: [P.PageRec(page=i, owner=r.owner, copy_set=r.copy_set, holders=r.holders)
                  for i, r in enumerate(recs)])
peer = dict(sender=st.just(4), epoch=st.integers(0, 9))
PEER_MESSAGES = st.one_of(
    st.builds(P.Heartbeat, role=st.sampled_from(["passive", "recovering", "active"]),
              seq=ints, boot=ints, **peer),
    st.builds(P.ReplicateAck, seq=ints, **peer),
    st.builds(P.SnapshotRequest, **peer),
    st.builds(P.Handback, **peer),
    st.builds(P.Replicate, seq=ints, changes=st.lists(RECORDS, max_size=3),
              members=st.none() | st.lists(st.builds(P.Member, pids, ints), max_size=2), **peer),
    st.builds(P.Snapshot, seq=ints, pages=WHOLE | st.lists(RECORDS, max_size=PAGES + 1),
              members=st.lists(st.builds(P.Member, pids, ints, st.booleans()), max_size=2),
              **peer),
)
REPORT = st.just("report")      # every node reports at the manager's epoch: it can serve
# Well-formed node traffic at the manager's epoch, so that locks, queues and
# invalidations are reached: a request, or the answer its operation in flight waits for.
DRIVE = st.tuples(st.sampled_from(["read", "write", "answer", "answer"]), nodes_,
                  st.integers(0, PAGES - 1), st.integers(1, 6))


def drive(mgr: Manager, now: float, what: str, n: int, page: int, rid: int) -> None:
    op = mgr.table[page].op
    if what != "answer":
        cls = P.ReadRequest if what == "read" else P.WriteRequest
        msg = cls(page=page, requester=n, rid=rid, sender=n)
    elif op is None:
        return
    elif op.phase == "invalidating":
        msg = P.InvalidateConfirmation(page=page, requester=op.requester, rid=op.rid,
                                       sender=op.waiting[0] if op.waiting else n)
    else:
        cls = P.ReadConfirmation if op.kind == "read" else P.WriteConfirmation
        msg = cls(page=page, requester=op.requester, rid=op.rid, sender=op.requester)
    msg.epoch = mgr.epoch
    mgr.receive(now, msg)


def reports(mgr: Manager, now: float) -> None:
    for n in range(NODES):
        rows = [P.PageReport(p, p % NODES == n, "ReadWrite" if p % NODES == n else "Nil", 0, 0)
                for p in range(PAGES)]
        mgr.receive(now, P.TableReport(pages=rows, inc=1, sender=n, epoch=mgr.epoch))


def check_manager(mgr: Manager, epoch: int) -> None:
    """Section 1: one owner per record, a node; copy_set sorted, without the owner; holders
    distinct, without the owner; records for exactly the pages 0..pages-1. Section 4.3:
    the epoch never goes back. And what it keeps per node is keyed by nodes only."""
    nodes = set(mgr.nodes)
    assert [r.page for r in mgr.table] == list(range(PAGES))
    for r in mgr.table:
        assert r.owner in nodes and r.owner not in r.copy_set, r
        assert r.copy_set == sorted(set(r.copy_set)) and set(r.copy_set) <= nodes, r
        assert r.owner not in r.holders and len(set(r.holders)) == len(r.holders), r
        assert set(r.last_rid) <= nodes, r
        assert r.op is None or r.op.requester in nodes and set(r.op.waiting) <= nodes, r
    assert mgr.epoch >= epoch and mgr.max_epoch >= mgr.epoch
    assert set(mgr.replicas) <= set(mgr.peers) and set(mgr.reports) <= nodes


def serving(replicas: int, backup: bool) -> Manager:
    """The primary, serving after its round (with a live backup as its replica, or not)."""
    mgr = Manager(3, nodes=list(range(NODES)), managers=MANAGERS, pages=PAGES, now=0.0,
                  node_liveness=1.5, pause_gap=10.0, replicas=replicas)
    mgr.tick(0.0)
    if backup:
        mgr.receive(0.1, P.Heartbeat(role="passive", seq=0, boot=1, sender=4))
    mgr.tick(1.6 - backup)
    reports(mgr, 1.7 - backup)
    assert mgr.role == "active", mgr.role
    return mgr


@settings(**SETTINGS)
@given(st.lists(st.tuples(st.integers(0, 3), st.one_of(MANAGER_MESSAGES, PEER_MESSAGES, REPORT),
                          DRIVE), max_size=30),
       st.integers(0, 2), st.sampled_from(["passive", "alone", "backup"]))
def test_manager_invariants_hold_after_every_step(steps, replicas, start):
    """From a passive start or from serving (alone or with a replica). A step is a hostile
    message (0: of any epoch, 1: of the manager's) or well-formed traffic (2, 3)."""
    mgr = Manager(3, nodes=list(range(NODES)), managers=MANAGERS, pages=PAGES, now=0.0,
                  node_liveness=1.5, pause_gap=10.0, replicas=replicas) \
        if start == "passive" else serving(replicas, start == "backup")
    epoch, t0 = mgr.epoch, mgr._now
    for i, (pick, msg, traffic) in enumerate(steps):
        now = t0 + 0.2 * i
        if pick >= 2:
            drive(mgr, now, *traffic)
        elif msg == "report":
            reports(mgr, now)
        elif 0 <= msg.sender < NODES + len(MANAGERS):
            msg.epoch = mgr.epoch if pick else msg.epoch
            mgr.receive(now, msg)
        check_manager(mgr, epoch)
        mgr.tick(now)
        mgr.drain()
        check_manager(mgr, epoch)
        epoch = mgr.epoch


# -- state a core keeps per request id, per peer or per client stays bounded -------------
# (docs/PROTOCOL.md section 9, "Bounded state"): thousands of hostile messages with made-up
# rids, pages, senders and holders, answers that complete faults the manager never
# confirms, bursts of confirmations between two ticks.

LONG = dict(derandomize=True, deadline=None, database=None, max_examples=6,
            suppress_health_check=[HealthCheck.too_slow])
STEPS_LONG = 3000
RID = [0, 1, 2, 2 ** 63, 2 ** 64 - 1, 10 ** 30, -5]


def _made_up(rnd, node_view: bool, fresh: int = 0) -> P.Msg:
    """A well-formed message with made-up numbers, to a node or (node_view False) a manager
    (half of them from a node about one of its pages, with the rid `fresh`)."""
    page = rnd.choice([-3, 0, 1, PAGES - 1, PAGES, 10 ** 9])
    rid = rnd.choice(RID + [rnd.randrange(99)])
    who = rnd.choice([-2, 0, 1, 2, 3, 4, 7, 2 ** 40])
    ivy = dict(page=page, requester=rnd.choice([0, 1, 2, who]), rid=rid,
               opseq=rnd.choice([0, 1, 9, 2 ** 62]), sender=who, epoch=rnd.choice([0, 2, 9]))
    holders = [rnd.choice([-1, 0, 1, 2, 5, 2 ** 40]) for _ in range(rnd.choice([0, 2, 50]))]
    if node_view:
        return rnd.choice([
            P.ReadForward(**ivy), P.WriteForward(holders=holders, **ivy), P.Invalidate(**ivy),
            P.WriteGrant(holders=holders, **ivy), P.Ack(page=page, rid=rid, done=True,
                                                         sender=3),
            P.Confirmed(acks=[(page, rid)], sender=3), P.Lost(owner=who, **ivy),
            P.Update(page=page, version=(rid, 1), sender=who),
            P.UpdateAck(page=page, version=(0, 1), sender=who),
            P.Assign(pages=[(page, 0, holders, False, holders)], sender=3),
            P.Recover(boot=rid, sender=rnd.choice([3, 4]), epoch=rnd.randrange(20)),
            P.NotActive(hint=who, sender=3)])
    cls = rnd.choice([P.ReadRequest, P.WriteRequest, P.ReadConfirmation,
                      P.WriteConfirmation, P.InvalidateConfirmation])
    if rnd.random() < 0.5:      # from a real node about a real page, with a fresh rid
        ivy.update(page=rnd.randrange(PAGES), sender=ivy["requester"] % NODES, rid=fresh)
        ivy["requester"] = ivy["sender"] if rnd.random() < 0.8 else ivy["requester"]
    return cls(**ivy)


def _take(node: Node, now: float, page: int) -> None:
    """The manager takes the page away (another node writes), so that faults go on."""
    st_ = node.pages[page]
    cls = P.WriteForward if st_.is_owner else P.Invalidate
    node.receive(now, cls(page=page, requester=0, rid=1, opseq=st_.opseq + 1, sender=3,
                          epoch=node.epoch))


def check_node_bounds(node: Node) -> None:
    requests = [m for m in node.outstanding.values()
                if isinstance(m.msg, (P.ReadRequest, P.WriteRequest))]
    assert len(requests) <= sum(s.pending is not None for s in node.pages)
    assert len(node.outstanding) - len(requests) <= PAGES         # a confirmation a page
    assert node.in_progress == sum(len(s.local) for s in node.pages)
    assert set(node.rep) <= set(range(PAGES)) and set(node.syncing) <= set(range(PAGES))
    assert set(node.pages.keys()) <= set(range(PAGES))     # touched pages of the memory
    for s in node.pages:
        assert len(s.deferred) <= 2 and len(s.unacked) <= NODES - 1
        assert len(set(s.holders)) == len(s.holders) and set(s.holders) <= {0, 2}


@settings(**LONG)
@given(st.integers(0, 2 ** 32), st.integers(0, 2))
def test_node_state_stays_bounded(seed, replicas):
    rnd = random.Random(seed)
    node = Node(1, n_nodes=NODES, managers=MANAGERS, pages=PAGES, page_size=SIZE,
                replicas=replicas)
    for i in range(STEPS_LONG):
        now, r = i * 0.05, rnd.random()
        if r < 0.3:
            _local(node, now, i + 1, rnd.choice(["read", "write", "cas", "add"]),
                   rnd.randrange(PAGES))
        elif r < 0.5:
            _answer(node, now, (rnd.randrange(5), 0), [rnd.choice([-1, 0, 1, 2, 9])] * 3, 2)
        elif r < 0.6:
            _ack(node, now, rnd.randrange(PAGES))
        elif r < 0.7:
            _take(node, now, rnd.randrange(PAGES))
        else:
            msg = _made_up(rnd, True)
            node.receive(now, msg, bytes(SIZE) if msg.carries_payload else None)
        node.tick(now)
        node.drain()
        check_node_bounds(node)


def check_manager_bounds(mgr: Manager) -> None:
    nodes = set(mgr.nodes)
    for r in mgr.table:
        assert len(r.queue) <= NODES and set(r.last_rid) <= nodes, r
    assert set(mgr.confirmed) <= nodes
    assert all(len(acks) <= 2 * PAGES for acks in mgr.confirmed.values())
    assert set(mgr.sent_at) <= set(range(PAGES)) and set(mgr.assigning) <= nodes
    assert set(mgr.table.keys()) <= set(range(PAGES))      # records held apart
    assert set(mgr.members) == nodes and set(mgr.node_seen) == nodes
    assert len(mgr.problems) <= PROBLEMS_KEPT and len(mgr.held) <= HELD_LIMIT


@settings(**LONG)
@given(st.integers(0, 2 ** 32), st.integers(0, 2), st.booleans())
def test_manager_state_stays_bounded(seed, replicas, backup):
    rnd = random.Random(seed)
    mgr = serving(replicas, backup)
    now = mgr._now
    for i in range(STEPS_LONG):
        now += 0.001
        if i % 50 == 0:         # a burst of 50 messages between two ticks
            mgr.tick(now)
            mgr.drain()
        msg = _made_up(rnd, False, fresh=i)
        msg.epoch = min(msg.epoch, mgr.epoch)    # newer epochs: in the invariants' test
        mgr.receive(now, msg)
        check_manager(mgr, 0)
        check_manager_bounds(mgr)


def test_metrics_counting_per_peer_and_per_epoch_is_bounded():
    """The transport counts what it decoded before the daemon checks the sender."""
    c = Counting(0, NODES, 0.5, NODES + len(MANAGERS))
    for i in range(3 * EPOCH_LIMIT):
        c.received_msg(P.Heartbeat(role="active", seq=0, boot=0, sender=i - 9), [b""])
        c.received_msg(P.Recover(sender=3, epoch=i), [b""])
    assert set(c.last_beat) == set(c.beats) == {3, 4} and set(c.missed) <= {3, 4}
    assert len(c._recover_epochs) == EPOCH_LIMIT and c.failovers == 0

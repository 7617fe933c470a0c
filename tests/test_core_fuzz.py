"""The node and manager cores take adversarial but well-formed messages - wrong senders,
pages and process ids out of range, old and future epochs and opseqs, repeated and
reordered replica updates, acknowledgements and assignments - without raising, and the
node keeps its own invariants: an owner holds no replica of its own page, a page with
ReadWrite is owned, a synced page's holders are not waited for. Fixed seed, bounded
examples."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivyzmq import protocol as P
from ivyzmq.manager.core import Manager
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
            assert st_.access == NIL or node.data[p] is not None or st_.unacked, p


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

"""A read or write that times out names what it waited for (issue 13, part 3): the node
says what the page waits for (Node.wait_of, answered to WaitQuery), the manager what the
page's operation waits for (PageQuery), and ivyzmq/waits.py puts it in one line, with the
daemon waited on in `IvyTimeout.peer` and for how long in `since`. Here: the node core's
answer, the wording from given answers, and real processes with a paused owner, a paused
manager and a paused node."""
from __future__ import annotations

import signal

import pytest

from conftest import wait_until
from ivyzmq import config as C
from ivyzmq import protocol as P
from ivyzmq import waits
from ivyzmq.client import IvyTimeout, connect
from ivyzmq.harness.configs import cluster_dict
from ivyzmq.node.core import Node

# -- the node core's answer ------------------------------------------------------------------


def node(lease: float | None = 2.0) -> Node:
    """Node 0 of 3 nodes, 5 pages, managers 3 and 4, with a lease of 2 s."""
    return Node(0, n_nodes=3, managers=[3, 4], pages=5, page_size=16, retry_timeout=0.5,
                retries=3, rid_base=1000, lease=lease, beat_interval=0.5)


def admitted(now: float = 0.0) -> Node:
    n = node()
    n.receive(now, P.Admit(inc=1, fresh=True, sender=3))
    n.drain()
    return n


def test_a_fault_reports_its_manager_and_its_times():
    n = admitted()
    n.start(1.0, 1, "read", 4)                         # page 4 is node 1's: a fault
    [(dest, req, _)] = n.drain()[0]
    n.receive(1.5, P.Ack(page=4, rid=req.rid, sender=3))
    w = n.wait_of(3.0, 4)
    assert (w.waits, w.kind, w.rid, w.manager, w.queued) == ("fault", "read", req.rid, 3, 1)
    assert (w.began, w.asked, w.heard) == (2.0, 2.0, 1.5)
    n.tick(3.0)                                         # 1.5 s of silence: turn to 4
    w = n.wait_of(3.5, 4)
    assert (w.manager, w.began, w.asked) == (4, 2.5, 0.5)
    assert n.wait_of(3.5, 0).waits == "nothing"        # another page waits for nothing


def test_a_local_hit_reports_its_lease_and_a_new_node_its_admission():
    n = admitted()
    n.start(5.0, 1, "read", 0)                         # its own page, but the lease ran out
    w = n.wait_of(5.5, 0)
    assert (w.waits, w.queued, w.lease, w.kind) == ("lease", 1, 5.5, None)
    fresh = node()
    fresh.start(1.0, 1, "write", 0, b"x")
    assert fresh.wait_of(2.0, 0).waits == "admission"


# -- the wording, from given answers ---------------------------------------------------------

CLUSTER = C.parse(cluster_dict(3, 5, ("primary", "backup")))
EP = {CLUSTER.name(p): CLUSTER.endpoint(p) for p in range(5)}


def fault_reply(**kw) -> P.WaitReply:
    base = dict(page=4, waits="fault", manager=3, kind="read", rid=7, began=2.0, asked=2.0,
                heard=0.1, queued=1, sender=0)
    return P.WaitReply(**(base | kw))


def page_reply(op: P.InFlight | None, queue=(), serving: bool = True) -> P.PageReply:
    return P.PageReply(page=4, role="active" if serving else "passive", serving=serving,
                       record=P.RecordRow(4, 1, []), op=op, sent=0.4, queue=list(queue),
                       sender=3)


def explain(answers: dict[str, P.Msg | None], cluster=CLUSTER) -> waits.Why:
    asked = []

    def ask(endpoint: str, msg: P.Msg):
        asked.append(type(msg))
        return answers.get(endpoint)
    why = waits.explain(ask, cluster, EP["node0"], 4, 2.0)
    assert asked[0] is P.WaitQuery
    return why


FORWARDED = P.InFlight("read", 0, 7, "forwarded")


def test_a_silent_owner_is_named():
    why = explain({EP["node0"]: fault_reply(), EP["primary"]: page_reply(FORWARDED)})
    assert why.text == ("page 4: node 0 asked manager primary (pid 3) for a read 2.0 s ago "
                        "and waits for the page from its owner, node 1 (primary forwarded "
                        "the request 0.4 s ago); node 1 does not answer (paused or dead)")
    assert (why.peer, why.since) == ("node1", 2.0)


def test_a_silent_manager_is_named():
    why = explain({EP["node0"]: fault_reply(heard=2.5)})
    assert why.text == ("page 4: node 0 asked manager primary (pid 3) for a read 2.0 s ago "
                        "and has heard nothing from it for 2.5 s; primary does not answer "
                        "(paused or dead)")
    assert (why.peer, why.since) == ("primary", 2.5)


def test_a_queued_fault_names_what_the_operation_ahead_waits_for():
    ahead = P.InFlight("write", 2, 9, "invalidating", [1])
    why = explain({EP["node0"]: fault_reply(asked=0.5, manager=4, began=3.0),
                   EP["backup"]: page_reply(ahead, [P.Req("read", 0, 7)]),
                   EP["node1"]: P.StatusReply(name="node1", kind="node")})
    assert why.text == ("page 4: node 0 asked manager backup (pid 4) for a read 0.5 s ago "
                        "(it has waited 3.0 s in all); it is number 1 in the queue behind "
                        "node 2's write, which waits for node 1 to drop its copy (backup "
                        "asked for it 0.4 s ago); node 1 answers but has not done its part yet")
    assert (why.peer, why.since) == ("node1", 3.0)


def test_a_manager_that_does_not_serve_and_a_lease_are_named():
    why = explain({EP["node0"]: fault_reply(), EP["primary"]: page_reply(None, serving=False)})
    assert why.text.endswith("; primary does not serve (it is passive)")
    assert why.peer == "primary"
    lease = P.WaitReply(page=4, waits="lease", manager=3, lease=12.0, heard=3.0, sender=0)
    why = explain({EP["node0"]: lease})
    assert why.text == ("page 4: node 0 holds the page but waits for its lease from "
                        "manager primary (pid 3), last renewed 12.0 s ago; primary does not "
                        "answer (paused or dead)")
    assert (why.peer, why.since) == ("primary", 3.0)


def test_without_a_config_only_the_node_is_asked():
    why = explain({EP["node0"]: fault_reply()}, cluster=None)
    assert why.text == "page 4: node 0 asked manager pid 3 for a read 2.0 s ago"
    assert why.peer == "pid 3"


# -- real processes --------------------------------------------------------------------------

def timeout_of(run, node: int, page: int, timeout: float = 2.0) -> IvyTimeout:
    with connect(run.cluster, node, timeout=timeout) as mem:
        with pytest.raises(IvyTimeout) as info:
            mem.read(page)
    return info.value


def warm(run, pages: dict[int, int]) -> None:
    """Write each page through the given node, so every node is admitted and owns it."""
    for pg, nd in pages.items():
        with connect(run.cluster, nd) as mem:
            mem.write(pg, f"p{pg}".encode())


def test_a_paused_owner_and_a_paused_node_are_named(clusters):
    # Node liveness beyond the test, so the manager does not declare node 1 dead (which
    # would end the read with PageLostError instead).
    run = clusters.make("owner", node_liveness=60)
    warm(run, {0: 0, 4: 1})
    assert run.procs.signal("node1", signal.SIGSTOP)
    try:
        exc = timeout_of(run, 0, 4)
    finally:
        assert run.procs.signal("node1", signal.SIGCONT)
    text = str(exc)
    assert text.startswith("page 4: node 0 asked manager primary (pid 3) for a read "), text
    assert "waits for the page from its owner, node 1" in text, text
    assert text.endswith("; node 1 does not answer (paused or dead)"), text
    assert (exc.page, exc.peer, exc.waited) == (4, "node1", 2.0)
    assert exc.endpoint == run.cluster.endpoint(0) and 1.5 <= exc.since < 10
    with connect(run.cluster, 0) as mem:           # node 1 is back: the read goes through
        wait_until(lambda: mem.read(4).startswith(b"p4"), 20, what="the read of page 4")
    assert run.procs.signal("node0", signal.SIGSTOP)
    try:
        exc = timeout_of(run, 0, 4, timeout=1.0)
    finally:
        assert run.procs.signal("node0", signal.SIGCONT)
    assert str(exc) == (f"page 4: no answer from node 0 ({run.cluster.endpoint(0)}) within "
                        "1 s, and it does not answer a question either: it is paused or dead")
    assert (exc.page, exc.peer, exc.since) == (4, "node0", 1.0)


def test_a_paused_manager_is_named(clusters):
    run = clusters.make("manager", managers=("primary",))   # no backup to turn to
    warm(run, {0: 0, 4: 1})
    assert run.procs.signal("primary", signal.SIGSTOP)
    try:
        exc = timeout_of(run, 0, 4)
    finally:
        assert run.procs.signal("primary", signal.SIGCONT)
    text = str(exc)
    assert text.startswith("page 4: node 0 asked manager primary (pid 3) for a read "), text
    assert "and has heard nothing from it for " in text, text
    assert text.endswith("; primary does not answer (paused or dead)"), text
    assert (exc.page, exc.peer) == (4, "primary") and 1.5 <= exc.since < 10

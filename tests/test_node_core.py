"""The process node's pure state machine (ivyzmq/node/core.py), driven message by message
with explicit times: no sockets, no clock, no threads."""
from __future__ import annotations

import pytest

from ivyzmq import protocol as P
from ivyzmq.node.core import (IN_PROGRESS_LIMIT, NIL, READ, RW, Node, PageError,
                               PageRangeError, PageSizeError)

SIZE = 16
MANAGERS = [3, 4]


def make(pid: int = 2, *, managers=None, retry_timeout: float = 0.5, retries: int = 3,
         pages: int = 5) -> Node:
    """A node of the homework's cluster: 3 nodes, 5 pages (page p first owned by p mod 3)."""
    return Node(pid, n_nodes=3, managers=list(managers or MANAGERS), pages=pages,
                page_size=SIZE, retry_timeout=retry_timeout, retries=retries, rid_base=1000)


def page(text: bytes) -> bytes:
    return text.ljust(SIZE, b"\0")


def drain(node: Node):
    sends, done = node.drain()
    return [(dest, msg, payload) for dest, msg, payload in sends], done


def sends(node: Node):
    out, done = drain(node)
    assert done == []
    return out


def summary(sent):
    """(dest, type, page, requester, rid, opseq) of each IvyMsg sent."""
    return [(d, P.type_name(m), m.page, m.requester, m.rid, m.opseq) for d, m, _ in sent]


def fault(node: Node, kind: str, pg: int, now: float = 0.0, opid: int = 1,
          data: bytes = b"") -> int:
    """Start an operation that must fault; return the request id it carries."""
    node.start(now, opid, kind, pg, data)
    out, done = drain(node)
    assert done == []
    [(dest, msg, payload)] = out
    cls = P.ReadRequest if kind == "read" else P.WriteRequest
    assert dest == node.manager and type(msg) is cls and payload is None
    assert (msg.page, msg.requester, msg.sender, msg.opseq) == (pg, node.pid, node.pid, 0)
    return msg.rid


def fwd(cls, pg: int, requester: int, rid: int, opseq: int, sender: int = 3, epoch: int = 0):
    return cls(page=pg, requester=requester, rid=rid, opseq=opseq, sender=sender, epoch=epoch)


# -- local hits ------------------------------------------------------------------------------

def test_initial_pages():
    n = make(2)
    assert [(st.is_owner, st.access) for st in n.pages] == \
        [(False, NIL), (False, NIL), (True, RW), (False, NIL), (False, NIL)]
    assert n.read_hit(2) == bytes(SIZE) and n.read_hit(1) is None


def test_read_hit_on_owned_page_sends_nothing():
    n = make(2)
    n.start(0.0, 7, "read", 2)
    assert drain(n) == ([], [(7, bytes(SIZE), None)])


def test_write_hit_updates_bytes_in_place():
    n = make(2)
    n.start(0.0, 1, "write", 2, b"hi", 3)
    assert drain(n) == ([], [(1, None, None)])
    assert n.read_hit(2) == b"\0\0\0hi" + bytes(SIZE - 5)
    n.start(0.0, 2, "write", 2, b"abc")
    n.start(0.0, 3, "read", 2)
    assert drain(n) == ([], [(2, None, None), (3, b"abchi" + bytes(SIZE - 5), None)])


# -- faults ----------------------------------------------------------------------------------

def test_read_fault_then_read_page_completes_and_confirms():
    n = make(2)
    rid = fault(n, "read", 1, opid=5)
    assert rid > 1000                      # request ids start above rid_base
    assert n.pages[1].pending == P.Pending("read", rid)
    n.receive(0.1, fwd(P.ReadPage, 1, 2, rid, 1, sender=1), page(b"one"))
    out, done = drain(n)
    assert done == [(5, page(b"one"), None)]
    assert summary(out) == [(3, "ReadConfirmation", 1, 2, rid, 1)]
    st = n.pages[1]
    assert (st.is_owner, st.access, st.pending, st.opseq) == (False, READ, None, 1)
    n.start(0.2, 6, "read", 1)             # now a hit
    assert drain(n) == ([], [(6, page(b"one"), None)])


def test_write_fault_then_write_page_makes_owner():
    n = make(2)
    rid = fault(n, "write", 0, opid=9, data=b"xyz")
    n.receive(0.1, fwd(P.WritePage, 0, 2, rid, 4, sender=0), page(b"old"))
    out, done = drain(n)
    assert done == [(9, None, None)]
    assert summary(out) == [(3, "WriteConfirmation", 0, 2, rid, 4)]
    st = n.pages[0]
    assert (st.is_owner, st.access) == (True, RW)
    assert n.read_hit(0) == page(b"xyz")   # the write applied over the received page


def test_write_upgrade_from_read_copy():
    n = make(2)
    r1 = fault(n, "read", 1)
    n.receive(0.1, fwd(P.ReadPage, 1, 2, r1, 1, sender=1), page(b"v1"))
    drain(n)
    r2 = fault(n, "write", 1, opid=2, data=b"v2")
    assert r2 > r1
    n.receive(0.2, fwd(P.WritePage, 1, 2, r2, 2, sender=1), page(b"v1"))
    out, done = drain(n)
    assert done == [(2, None, None)]
    assert summary(out) == [(3, "WriteConfirmation", 1, 2, r2, 2)]
    assert n.read_hit(1) == page(b"v2") and n.pages[1].is_owner


def test_owner_with_read_access_upgrades_on_write_grant():
    n = make(1)                                        # node 1 owns page 1
    n.receive(0.0, fwd(P.ReadForward, 1, 0, 77, 1))
    assert summary(sends(n)) == [(0, "ReadPage", 1, 0, 77, 1)]
    assert (n.pages[1].is_owner, n.pages[1].access) == (True, READ)
    rid = fault(n, "write", 1, opid=3, data=b"up")
    n.receive(0.1, fwd(P.WriteGrant, 1, 1, rid, 2))
    out, done = drain(n)
    assert done == [(3, None, None)]
    assert summary(out) == [(3, "WriteConfirmation", 1, 1, rid, 2)]
    assert (n.pages[1].is_owner, n.pages[1].access) == (True, RW)
    assert n.read_hit(1) == page(b"up")


def test_write_grant_for_another_rid_is_ignored():
    n = make(1)
    n.receive(0.0, fwd(P.ReadForward, 1, 0, 77, 1))
    drain(n)
    rid = fault(n, "write", 1)
    n.receive(0.1, fwd(P.WriteGrant, 1, 1, rid + 1, 2))
    assert drain(n) == ([], [])
    assert n.pages[1].access == READ and n.pages[1].pending is not None


def test_queued_local_operations_share_one_fault():
    n = make(2)
    rid = fault(n, "read", 1, opid=1)
    n.start(0.0, 2, "read", 1)
    n.start(0.0, 3, "write", 1, b"w")
    assert drain(n) == ([], [])            # one fault at a time per page
    n.receive(0.1, fwd(P.ReadPage, 1, 2, rid, 1, sender=1), page(b"r"))
    out, done = drain(n)
    assert done == [(1, page(b"r"), None), (2, page(b"r"), None)]
    assert [P.type_name(m) for _, m, _ in out] == ["ReadConfirmation", "WriteRequest"]
    assert out[1][1].rid > rid


def test_rids_grow_across_pages():
    n = make(2)
    rids = [fault(n, "read", p, opid=p) for p in (0, 1, 3, 4)]
    assert rids == sorted(rids) and len(set(rids)) == 4


# -- stale and duplicate messages --------------------------------------------------------------

def test_duplicate_read_page_is_ignored():
    n = make(2)
    rid = fault(n, "read", 1)
    n.receive(0.1, fwd(P.ReadPage, 1, 2, rid, 1, sender=1), page(b"first"))
    drain(n)
    n.receive(0.2, fwd(P.ReadPage, 1, 2, rid, 1, sender=1), page(b"second"))
    assert drain(n) == ([], [])
    assert n.read_hit(1) == page(b"first")


def test_page_for_another_rid_or_kind_is_ignored():
    n = make(2)
    rid = fault(n, "read", 1)
    n.receive(0.1, fwd(P.ReadPage, 1, 2, rid - 1, 1, sender=1), page(b"old"))
    n.receive(0.1, fwd(P.WritePage, 1, 2, rid, 1, sender=1), page(b"kind"))
    assert drain(n) == ([], [])
    assert n.read_hit(1) is None and n.pages[1].pending is not None


def test_page_of_wrong_size_is_ignored():
    n = make(2)
    rid = fault(n, "read", 1)
    n.receive(0.1, fwd(P.ReadPage, 1, 2, rid, 1, sender=1), b"short")
    assert drain(n) == ([], [])
    assert n.read_hit(1) is None and n.pages[1].pending == P.Pending("read", rid)


def test_stale_forward_by_opseq_is_ignored():
    n = make(1)
    n.receive(0.0, fwd(P.ReadForward, 1, 0, 10, 5))
    assert len(sends(n)) == 1
    n.receive(0.1, fwd(P.ReadForward, 1, 2, 11, 4))     # an older operation's forward
    n.receive(0.1, fwd(P.WriteForward, 1, 2, 12, 4))
    assert sends(n) == []
    assert n.pages[1].is_owner and n.pages[1].opseq == 5


def test_stale_invalidate_is_ignored():
    n = make(2)
    rid = fault(n, "read", 1)
    n.receive(0.1, fwd(P.ReadPage, 1, 2, rid, 6, sender=1), page(b"keep"))
    drain(n)
    n.receive(0.2, fwd(P.Invalidate, 1, 0, 5, 5))
    assert sends(n) == []
    assert n.read_hit(1) == page(b"keep")


def test_read_forward_to_non_owner_is_ignored():
    n = make(2)                                        # node 2 does not own page 1
    n.receive(0.0, fwd(P.ReadForward, 1, 0, 10, 1))
    assert sends(n) == []
    assert n.pages[1].access == NIL


def test_write_forward_to_non_owner_is_ignored():
    n = make(2)
    n.receive(0.0, fwd(P.WriteForward, 1, 0, 10, 1))
    assert sends(n) == []


def test_read_forward_answers_with_a_copy_and_keeps_ownership():
    n = make(1)
    n.start(0.0, 1, "write", 1, b"data")
    drain(n)
    n.receive(0.1, fwd(P.ReadForward, 1, 2, 10, 1))
    [(dest, msg, payload)] = sends(n)
    assert (dest, P.type_name(msg), msg.requester, msg.rid, msg.opseq, msg.sender) == \
        (2, "ReadPage", 2, 10, 1, 1)
    assert payload == page(b"data")
    assert (n.pages[1].is_owner, n.pages[1].access) == (True, READ)
    assert n.pages[1].handoff == P.Handoff("read", 2, 10, 1)


def test_write_forward_hands_over_and_a_redriven_one_is_answered_again():
    n = make(1)
    n.start(0.0, 1, "write", 1, b"data")
    drain(n)
    n.receive(0.1, fwd(P.WriteForward, 1, 2, 10, 1))
    [(dest, msg, payload)] = sends(n)
    assert (dest, P.type_name(msg), msg.rid, payload) == (2, "WritePage", 10, page(b"data"))
    st = n.pages[1]
    assert (st.is_owner, st.access, n.read_hit(1)) == (False, NIL, None)
    # the manager re-sends the forward (the page was lost on the way): the same page again
    n.receive(0.2, fwd(P.WriteForward, 1, 2, 10, 1))
    [(dest, msg, payload)] = sends(n)
    assert (dest, P.type_name(msg), msg.rid, payload) == (2, "WritePage", 10, page(b"data"))
    # but not for another requester or rid
    n.receive(0.3, fwd(P.WriteForward, 1, 0, 11, 1))
    assert sends(n) == []


def test_invalidate_drops_the_copy_and_confirms():
    n = make(2)
    rid = fault(n, "read", 1)
    n.receive(0.1, fwd(P.ReadPage, 1, 2, rid, 1, sender=1), page(b"c"))
    drain(n)
    n.receive(0.2, fwd(P.Invalidate, 1, 0, 55, 2))
    assert summary(sends(n)) == [(3, "InvalidateConfirmation", 1, 0, 55, 2)]
    assert (n.pages[1].access, n.read_hit(1)) == (NIL, None)
    fault(n, "read", 1, now=0.3, opid=2)          # the next read faults again


def test_invalidate_to_owner_is_ignored():
    n = make(1)
    n.receive(0.0, fwd(P.Invalidate, 1, 0, 55, 1))
    assert sends(n) == []
    assert n.pages[1].access == RW


def test_protocol_message_for_page_out_of_range_is_ignored():
    n = make(1)
    for pg in (5, -1, 10**9):
        n.receive(0.0, fwd(P.ReadForward, pg, 0, 55, 1))
        n.receive(0.0, fwd(P.ReadPage, pg, 1, 55, 1, sender=0), page(b"x"))
    assert drain(n) == ([], [])


# -- epochs ------------------------------------------------------------------------------------

def test_old_epoch_manager_messages_are_dropped():
    n = make(1)
    n.receive(0.0, P.Recover(sender=4, epoch=5))
    [(dest, msg, _)] = sends(n)
    assert dest == 4 and isinstance(msg, P.TableReport) and msg.epoch == 5
    assert n.epoch == 5 and n.manager == 4
    n.receive(0.1, fwd(P.ReadForward, 1, 0, 10, 1, sender=3, epoch=2))
    n.receive(0.1, fwd(P.Invalidate, 2, 0, 10, 1, sender=3, epoch=2))
    assert sends(n) == []
    assert n.pages[1].access == RW and n.epoch == 5
    n.receive(0.2, fwd(P.ReadForward, 1, 0, 10, 1, sender=4, epoch=5))
    [(dest, msg, _)] = sends(n)
    assert (dest, P.type_name(msg), msg.epoch) == (0, "ReadPage", 5)


def test_node_messages_carry_the_highest_epoch_seen():
    n = make(2)
    n.receive(0.0, P.Recover(sender=3, epoch=7))
    drain(n)
    n.start(0.1, 1, "read", 0)
    [(_, msg, _)] = sends(n)
    assert msg.epoch == 7


def test_table_report_shows_pending_faults_and_handoffs():
    n = make(1)
    n.receive(0.0, fwd(P.WriteForward, 4, 2, 31, 3))        # gave page 4 away
    drain(n)
    rid = fault(n, "read", 0)
    n.receive(0.1, P.Recover(sender=3, epoch=2))
    [(dest, msg, _)] = sends(n)
    assert dest == 3
    rows = {r.page: r for r in msg.pages}
    assert sorted(rows) == [0, 4] and not msg.empty    # the others are as laid out:
    assert P.base_report(1, 1, 1, [], False) == P.PageReport(1, True, RW, 0, 0)
    assert rows[0].pending == P.Pending("read", rid) and rows[0].last_rid == rid
    assert rows[4] == P.PageReport(4, False, NIL, 3, 0, None, P.Handoff("write", 2, 31, 3))


# -- retries and failover on tick ----------------------------------------------------------------

def test_retry_same_rid_then_fail_over_to_next_manager():
    n = make(2, retry_timeout=0.5, retries=3)          # silent for 1.5 s: next manager
    rid = fault(n, "read", 1, now=10.0)
    n.tick(10.4)
    assert sends(n) == []
    n.tick(10.5)
    assert summary(sends(n)) == [(3, "ReadRequest", 1, 2, rid, 0)]
    n.tick(10.9)
    assert sends(n) == []
    n.tick(11.0)
    assert summary(sends(n)) == [(3, "ReadRequest", 1, 2, rid, 0)]
    n.tick(11.5)
    assert summary(sends(n)) == [(4, "ReadRequest", 1, 2, rid, 0)]   # same rid, manager 4
    assert n.manager == 4
    n.tick(12.0)
    assert summary(sends(n)) == [(4, "ReadRequest", 1, 2, rid, 0)]


def test_an_answer_from_the_manager_postpones_failover():
    n = make(2)
    rid = fault(n, "read", 1, now=0.0)
    n.receive(1.4, P.Ack(page=1, rid=rid, sender=3))     # known, being worked on
    n.tick(1.5)
    assert summary(sends(n)) == [(3, "ReadRequest", 1, 2, rid, 0)]
    n.tick(2.8)
    assert [d for d, _, _ in sends(n)] == [3]
    n.tick(3.0)                                          # 1.5 s after the last answer
    assert [d for d, _, _ in sends(n)] == [4]


def test_confirmation_is_resent_until_acknowledged():
    n = make(2)
    rid = fault(n, "read", 1, now=0.0)
    n.receive(0.1, fwd(P.ReadPage, 1, 2, rid, 1, sender=1), page(b"x"))
    drain(n)
    n.tick(0.6)
    assert summary(sends(n)) == [(3, "ReadConfirmation", 1, 2, rid, 1)]
    n.receive(0.7, P.Ack(page=1, rid=rid, done=False, sender=3))    # not done: keep going
    n.tick(1.1)
    assert summary(sends(n)) == [(3, "ReadConfirmation", 1, 2, rid, 1)]
    n.receive(1.2, P.Ack(page=1, rid=rid, done=True, sender=3))
    for t in (1.7, 2.2, 5.0):
        n.tick(t)
    assert sends(n) == []
    assert n.outstanding == {}


def test_batched_confirmed_stops_the_resends():
    n = make(2)
    rid = fault(n, "read", 1, now=0.0)
    n.receive(0.1, fwd(P.ReadPage, 1, 2, rid, 1, sender=1), page(b"x"))
    drain(n)
    n.receive(0.2, P.Confirmed(acks=[(4, rid + 100)], sender=3))    # someone else's
    n.tick(0.6)
    assert summary(sends(n)) == [(3, "ReadConfirmation", 1, 2, rid, 1)]
    n.receive(0.7, P.Confirmed(acks=[(0, rid + 100), (1, rid)], sender=3))
    for t in (1.2, 1.7, 5.0):
        n.tick(t)
    assert sends(n) == []
    assert n.outstanding == {}


def test_not_active_moves_to_the_hinted_manager_after_a_pause():
    n = make(2)
    rid = fault(n, "read", 1, now=0.0)
    n.receive(0.1, P.NotActive(hint=4, sender=3))
    assert sends(n) == [] and n.manager == 4
    n.tick(0.1 + 0.5 / 4)
    assert summary(sends(n)) == [(4, "ReadRequest", 1, 2, rid, 0)]


def test_not_active_pointing_back_at_a_silent_manager_is_ignored():
    n = make(2)
    rid = fault(n, "read", 1, now=0.0)
    n.tick(1.5)                                          # 3 silent, off to 4
    assert [d for d, _, _ in sends(n)] == [4]
    n.receive(1.6, P.NotActive(hint=3, sender=4))
    assert sends(n) == [] and n.manager == 4
    n.tick(2.0)
    assert summary(sends(n)) == [(4, "ReadRequest", 1, 2, rid, 0)]


def test_suspicion_of_a_silent_manager_expires():
    n = make(2)
    rid = fault(n, "read", 1, now=0.0)
    n.tick(1.5)                                          # 3 silent: off to 4, 3 suspected
    drain(n)
    n.receive(3.1, P.NotActive(hint=3, sender=4))        # 1.5 s later: 3 is worth a try
    assert n.manager == 3
    n.tick(3.1 + 0.5 / 4)
    assert summary(sends(n)) == [(3, "ReadRequest", 1, 2, rid, 0)]


def test_node_follows_the_manager_that_serves():
    n = make(2)
    rid = fault(n, "read", 1, now=0.0)
    n.receive(0.1, P.Ack(page=1, rid=rid, sender=4, epoch=3))   # 4 took over meanwhile
    assert n.manager == 4 and n.epoch == 3
    n.tick(0.6)
    assert summary(sends(n)) == [(4, "ReadRequest", 1, 2, rid, 0)]


def test_not_active_from_another_manager_is_ignored():
    n = make(2)
    fault(n, "read", 1, now=0.0)
    n.receive(0.1, P.NotActive(hint=4, sender=4))
    assert n.manager == 3 and sends(n) == []


def test_single_manager_never_fails_over():
    n = make(2, managers=[3])
    rid = fault(n, "read", 1, now=0.0)
    for k in range(1, 10):
        n.tick(k * 0.5)
        assert summary(sends(n)) == [(3, "ReadRequest", 1, 2, rid, 0)]


def test_nothing_outstanding_nothing_sent():
    n = make(2)
    for t in (0.0, 5.0, 100.0):
        n.tick(t)
    assert drain(n) == ([], [])


# -- local errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("pg", [5, -1, 100, "1", None, 1.0])
def test_page_out_of_range(pg):
    n = make(2)
    with pytest.raises(PageError, match=r"out of range 0\.\.4"):
        n.start(0.0, 1, "read", pg)
    assert drain(n) == ([], [])


@pytest.mark.parametrize("data,offset", [(b"x" * (SIZE + 1), 0), (b"x" * 7, 10), (b"x", SIZE),
                                         (b"x", -1)])
def test_oversize_write(data, offset):
    n = make(2)
    with pytest.raises(PageError, match="do not fit"):
        n.start(0.0, 1, "write", 2, data, offset)
    assert drain(n) == ([], []) and n.read_hit(2) == bytes(SIZE)


def test_local_errors_carry_their_code():
    """The daemon answers with exc.code: the kind must not be guessed from the text."""
    n = make(2)
    with pytest.raises(PageRangeError) as info:
        n.start(0.0, 1, "read", 5)
    assert info.value.code is P.ErrorCode.RANGE
    with pytest.raises(PageSizeError) as info:
        n.start(0.0, 1, "write", 2, b"x" * (SIZE + 1))
    assert info.value.code is P.ErrorCode.SIZE


def test_write_that_exactly_fits():
    n = make(2)
    n.start(0.0, 1, "write", 2, b"y" * 6, SIZE - 6)
    assert drain(n) == ([], [(1, None, None)])
    assert n.read_hit(2) == bytes(SIZE - 6) + b"y" * 6


# -- bugs ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("requester", [99, -1])
def test_forward_naming_a_requester_outside_the_cluster_is_ignored(requester):
    n = make(1)
    n.receive(0.0, fwd(P.ReadForward, 1, requester, 10, 1))
    n.receive(0.0, fwd(P.WriteForward, 4, requester, 11, 1))
    assert sends(n) == []
    assert n.pages[1].access == RW and n.pages[4].is_owner


def test_recover_from_a_non_manager_is_ignored():
    n = make(1)
    n.receive(0.0, P.Recover(sender=0, epoch=0))
    assert n.manager in MANAGERS
    fault(n, "read", 0, now=0.1)
    n.tick(5.0)                                  # silent long enough to fail over
    assert n.manager in MANAGERS


# -- bounded state (docs/PROTOCOL.md section 9) ----------------------------------------------

def test_a_page_keeps_one_outstanding_confirmation():
    """A page's next fault is answered only after the manager released the page, so the
    page's earlier confirmation is needed no more: it is dropped, not re-sent for ever."""
    n = make(2)
    for i in range(3):
        rid = fault(n, "read", 1, now=i, opid=i + 1)
        n.receive(i + 0.1, fwd(P.ReadPage, 1, 2, rid, i + 1, sender=1), page(b"x"))
        n.receive(i + 0.2, fwd(P.Invalidate, 1, 0, 99, i + 1))      # the copy goes again
        drain(n)
    assert [(type(o.msg), o.msg.rid) for o in n.outstanding.values()] == \
        [(P.ReadConfirmation, rid)]


def test_operations_in_progress_are_bounded():
    n = make(2)
    rid = fault(n, "read", 0)
    for opid in range(2, IN_PROGRESS_LIMIT + 1):
        n.start(0.0, opid, "read", 0)
    with pytest.raises(PageError, match="in progress") as info:
        n.start(0.0, 0, "read", 0)
    assert info.value.code is P.ErrorCode.REQUEST and n.in_progress == IN_PROGRESS_LIMIT
    n.receive(0.1, fwd(P.ReadPage, 0, 2, rid, 1, sender=0), page(b"r"))
    assert len(drain(n)[1]) == IN_PROGRESS_LIMIT and n.in_progress == 0
    n.start(0.2, 1, "read", 0)
    assert drain(n)[1] == [(1, page(b"r"), None)]


def test_holders_a_message_names_are_kept_as_distinct_other_nodes():
    n = Node(2, n_nodes=3, managers=MANAGERS, pages=5, page_size=SIZE, replicas=1)
    rid = fault(n, "write", 1, data=b"w")
    n.receive(0.1, P.WritePage(page=1, requester=2, rid=rid, opseq=1, sender=1,
                               holders=[0, 0, 2, 7, -1, 1] * 100), page(b"old"))
    assert n.pages[1].holders == [0, 1]

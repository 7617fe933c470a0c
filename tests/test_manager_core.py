"""The central manager's pure state machine: the page logic of ivyzmq/manager/pages.py and
the Manager class of ivyzmq/manager/core.py, driven message by message with explicit times.

A Manager starts passive. The primary serves only after the grace period (no other manager
heard from), then asks every node for its page table (Recover) and becomes active when all
have reported. The helpers below do exactly that, then check the Ivy messages it sends."""
from __future__ import annotations

from ivyzmq import protocol as P
from ivyzmq.manager import core as manager_core
from ivyzmq.manager import pages, replication
from ivyzmq.manager.core import Manager
from ivyzmq.manager.roles import EVENTS, ROLES, TABLE

HB = 0.5                      # heartbeat interval; liveness 3: silent peers dead after 1.5 s


def initial_reports(n_nodes: int, n_pages: int, node: int) -> list[P.PageReport]:
    return [P.PageReport(p, p % n_nodes == node, "ReadWrite" if p % n_nodes == node else "Nil",
                         0, 0) for p in range(n_pages)]


def passive(n_nodes: int = 3, n_pages: int = 5, index: int = 0, now: float = 0.0) -> Manager:
    """Manager `index` of a primary and a backup (ids n_nodes and n_nodes + 1)."""
    ids = [n_nodes, n_nodes + 1]
    return Manager(ids[index], nodes=list(range(n_nodes)), managers=ids, pages=n_pages,
                   now=now, heartbeat_interval=HB, liveness=3, redrive_timeout=2.0)


def active(n_nodes: int = 3, n_pages: int = 5) -> Manager:
    """The primary of a two-manager cluster whose backup is dead: past the grace period it
    recovers, and with every node's table it serves (no replica, so nothing is held)."""
    m = passive(n_nodes, n_pages)
    m.tick(0.0)
    m.tick(1.6)
    assert m.role == "recovering"
    for n in range(n_nodes):
        m.receive(1.7, P.TableReport(pages=initial_reports(n_nodes, n_pages, n), sender=n,
                                     epoch=m.epoch))
    assert m.role == "active" and m.serving
    m.drain()
    return m


def sent(m: Manager) -> list[tuple]:
    """What the manager sent, heartbeats left out, in a comparable form. The recorded
    confirmations, batched into one Confirmed per node at the next tick, are listed first
    as ("Ack", node, page, rid, True) rows."""
    out, acks = [], []
    for dest, msg, _ in m.drain():
        if dest == P.HEARTBEAT:
            continue
        assert msg.sender == m.pid and msg.epoch == m.epoch
        if isinstance(msg, P.IvyMsg):
            out.append((P.type_name(msg), dest, msg.page, msg.requester, msg.rid))
        elif isinstance(msg, P.Ack):
            out.append(("Ack", dest, msg.page, msg.rid, msg.done))
        elif isinstance(msg, P.Confirmed):
            acks += [("Ack", dest, page, rid, True) for page, rid in msg.acks]
        else:
            out.append((P.type_name(msg), dest))
    return acks + out


def feed(m: Manager, msg: P.Msg) -> list[tuple]:
    """Deliver a message from a node (in the manager's epoch unless it names one) a moment
    after the last input, and return what the manager sent."""
    if msg.sender in m.nodes and msg.epoch == 0:
        msg.epoch = m.epoch
    m.receive(m._now + 0.001, msg)
    m.tick(m._now)
    return sent(m)


def req(kind: str, node: int, pg: int, rid: int) -> P.IvyMsg:
    cls = P.ReadRequest if kind == "read" else P.WriteRequest
    return cls(page=pg, requester=node, rid=rid, sender=node)


def conf(cls, node: int, pg: int, rid: int, requester: int | None = None) -> P.IvyMsg:
    return cls(page=pg, requester=node if requester is None else requester, rid=rid,
               sender=node)


def do_read(m: Manager, node: int, pg: int, rid: int) -> None:
    owner = m.table[pg].owner
    assert feed(m, req("read", node, pg, rid)) == [("ReadForward", owner, pg, node, rid)]
    assert feed(m, conf(P.ReadConfirmation, node, pg, rid)) == [("Ack", node, pg, rid, True)]


# -- roles ------------------------------------------------------------------------------------

def test_role_table_lists_every_pair():
    assert set(TABLE) == {(r, e) for r in ROLES for e in EVENTS}
    assert all(new in ROLES for new, _ in TABLE.values())


def test_primary_starts_passive_and_waits_out_the_grace_period():
    m = passive()
    assert m.role == "passive" and not m.serving
    m.tick(0.0)
    beats = m.drain()
    assert [(d, P.type_name(x), x.role) for d, x, _ in beats] == \
        [(P.HEARTBEAT, "Heartbeat", "passive")]
    m.tick(1.0)                      # the backup may be serving: not heard from yet
    assert m.role == "passive" and sent(m) == []
    m.tick(1.6)                      # silent for liveness * interval: nobody serves
    assert m.role == "recovering" and m.epoch == 2          # epoch mod 2 is its index, 0
    assert sorted(sent(m)) == [("Recover", 0), ("Recover", 1), ("Recover", 2)]


def test_recovering_manager_acks_but_does_not_serve_until_every_node_reported():
    m = passive()
    m.tick(0.0)
    m.tick(1.6)
    m.drain()
    assert feed(m, req("read", 2, 1, 5)) == [("Ack", 2, 1, 5, False)]
    m.receive(1.7, P.TableReport(pages=initial_reports(3, 5, 0), sender=0, epoch=m.epoch))
    m.receive(1.7, P.TableReport(pages=initial_reports(3, 5, 1), sender=1, epoch=m.epoch - 1))
    m.receive(1.7, P.TableReport(pages=initial_reports(3, 5, 2)[::-1], sender=2,
                                 epoch=m.epoch))
    assert m.role == "recovering"    # a stale-epoch report and pages out of order do not count
    m.tick(2.1)                      # Recover again to the nodes not yet heard
    assert sorted(x for x in sent(m) if x[0] == "Recover") == [("Recover", 1), ("Recover", 2)]
    for n in (1, 2):
        m.receive(2.2, P.TableReport(pages=initial_reports(3, 5, n), sender=n, epoch=m.epoch))
    assert m.role == "active" and m.serving
    assert m.status_rows() == [P.RecordRow(0, 0, []), P.RecordRow(1, 1, []),
                               P.RecordRow(2, 2, []), P.RecordRow(3, 0, []),
                               P.RecordRow(4, 1, [])]


def test_recovery_rebuilds_the_table_from_the_nodes():
    m = passive()
    m.tick(0.0)
    m.tick(1.6)
    reports = {n: initial_reports(3, 5, n) for n in range(3)}
    # page 1: node 2 owns it now, node 0 holds a read copy
    reports[1][1] = P.PageReport(1, False, "Nil", 4, 0)
    reports[2][1] = P.PageReport(1, True, "Read", 4, 9)
    reports[0][1] = P.PageReport(1, False, "Read", 4, 0)
    for n in range(3):
        m.receive(1.7, P.TableReport(pages=reports[n], sender=n, epoch=m.epoch))
    assert m.role == "active"
    assert m.status_rows()[1] == P.RecordRow(1, 2, [0])
    assert m.table[1].opseq == 4 and m.problems == []


def test_backup_stays_passive_and_points_at_the_live_primary():
    m = passive(index=1)
    for t in (0.0, 1.0, 2.0, 5.0):
        m.tick(t)
    assert m.role == "passive"       # a backup never takes over alone
    m.drain()
    m.receive(5.0, P.Heartbeat(role="active", seq=3, boot=1, sender=3, epoch=2))
    assert feed(m, req("read", 2, 1, 5)) == [("NotActive", 2)]
    assert m.role == "passive"


def test_backup_takes_over_on_a_node_vote_when_the_primary_is_silent():
    m = passive(index=1)
    m.tick(0.0)
    m.tick(2.0)
    m.drain()
    out = feed(m, req("read", 2, 1, 5))
    assert m.role == "recovering" and m.epoch == 3          # epoch mod 2 is its index, 1
    assert ("Ack", 2, 1, 5, False) in out
    assert sorted(x for x in out if x[0] == "Recover") == [("Recover", n) for n in range(3)]


def test_active_manager_steps_down_on_a_newer_epoch():
    m = active()
    assert m.epoch == 2
    out = feed(m, P.ReadRequest(page=1, requester=2, rid=5, sender=2, epoch=4))
    assert ("ReadForward", 1, 1, 2, 5) not in out and not m.serving
    # it stepped down; the request is also a vote, so with no one else alive it starts a
    # new term above the epoch it saw, and recovers before serving again
    assert m.role == "recovering" and m.epoch == 6 and m.max_epoch == 6


# -- the Ivy steps ------------------------------------------------------------------------------

def test_read_fault_exact_sequence():
    m = active()
    assert feed(m, req("read", 2, 1, 10)) == [("ReadForward", 1, 1, 2, 10)]
    assert m.table[1].op == P.InFlight("read", 2, 10, "forwarded")
    assert feed(m, conf(P.ReadConfirmation, 2, 1, 10)) == [("Ack", 2, 1, 10, True)]
    rec = m.table[1]
    assert (rec.owner, rec.copy_set, rec.op, rec.opseq) == (1, [2], None, 1)
    assert m.status_rows()[1] == P.RecordRow(1, 1, [2])


def test_forwards_carry_the_operation_number():
    m = active()
    m.receive(2.0, req("read", 2, 1, 10))
    [(_, fwd, _)] = [x for x in m.drain() if x[0] != P.HEARTBEAT]
    assert fwd.opseq == 1
    feed(m, conf(P.ReadConfirmation, 2, 1, 10))
    m.receive(2.1, req("read", 0, 1, 11))
    [(_, fwd, _)] = [x for x in m.drain() if x[0] != P.HEARTBEAT]
    assert fwd.opseq == 2


def test_write_fault_without_copies():
    m = active()
    assert feed(m, req("write", 2, 1, 10)) == [("WriteForward", 1, 1, 2, 10)]
    assert feed(m, conf(P.WriteConfirmation, 2, 1, 10)) == [("Ack", 2, 1, 10, True)]
    assert m.status_rows()[1] == P.RecordRow(1, 2, [])
    assert m.table[1].op is None


def test_write_fault_with_one_copy():
    m = active()
    do_read(m, 0, 1, 20)
    assert feed(m, req("write", 2, 1, 30)) == [("Invalidate", 0, 1, 2, 30)]
    assert feed(m, conf(P.InvalidateConfirmation, 0, 1, 30, requester=2)) == \
        [("WriteForward", 1, 1, 2, 30)]
    assert feed(m, conf(P.WriteConfirmation, 2, 1, 30)) == [("Ack", 2, 1, 30, True)]
    assert m.status_rows()[1] == P.RecordRow(1, 2, [])


def test_write_fault_with_several_copies_forwards_once_after_the_last_confirmation():
    m = active(n_nodes=5, n_pages=5)
    for node, rid in ((0, 20), (3, 21), (4, 22)):
        do_read(m, node, 1, rid)
    assert m.table[1].copy_set == [0, 3, 4]
    out = feed(m, req("write", 2, 1, 30))
    assert sorted(out) == [("Invalidate", n, 1, 2, 30) for n in (0, 3, 4)]
    assert feed(m, conf(P.InvalidateConfirmation, 3, 1, 30, requester=2)) == []
    assert feed(m, conf(P.InvalidateConfirmation, 0, 1, 30, requester=2)) == []
    assert feed(m, conf(P.InvalidateConfirmation, 3, 1, 30, requester=2)) == []   # again
    assert feed(m, conf(P.InvalidateConfirmation, 4, 1, 30, requester=2)) == \
        [("WriteForward", 1, 1, 2, 30)]
    assert feed(m, conf(P.InvalidateConfirmation, 4, 1, 30, requester=2)) == []   # late dup
    assert feed(m, conf(P.WriteConfirmation, 2, 1, 30)) == [("Ack", 2, 1, 30, True)]
    assert m.status_rows()[1] == P.RecordRow(1, 2, [])


def test_invalidate_confirmation_for_another_write_is_ignored():
    m = active()
    do_read(m, 0, 1, 20)
    feed(m, req("write", 2, 1, 30))
    assert feed(m, conf(P.InvalidateConfirmation, 0, 1, 29, requester=2)) == []
    assert feed(m, conf(P.InvalidateConfirmation, 1, 1, 30, requester=2)) == []  # not asked
    assert m.table[1].op.phase == "invalidating" and m.table[1].op.waiting == [0]


def test_owner_upgrade_invalidates_others_and_grants_in_place():
    m = active()
    do_read(m, 0, 1, 20)
    do_read(m, 2, 1, 21)
    out = feed(m, req("write", 1, 1, 30))
    assert sorted(out) == [("Invalidate", 0, 1, 1, 30), ("Invalidate", 2, 1, 1, 30)]
    assert feed(m, conf(P.InvalidateConfirmation, 0, 1, 30, requester=1)) == []
    out = feed(m, conf(P.InvalidateConfirmation, 2, 1, 30, requester=1))
    assert out == [("WriteGrant", 1, 1, 1, 30)]          # no WriteForward to itself
    assert feed(m, conf(P.WriteConfirmation, 1, 1, 30)) == [("Ack", 1, 1, 30, True)]
    assert m.status_rows()[1] == P.RecordRow(1, 1, [])


def test_owner_upgrade_without_copies_is_granted_at_once():
    m = active()
    assert feed(m, req("write", 1, 1, 30)) == [("WriteGrant", 1, 1, 1, 30)]
    assert m.table[1].op.phase == "granted"


def test_requester_in_copy_set_is_not_invalidated():
    m = active()
    do_read(m, 0, 1, 20)
    do_read(m, 2, 1, 21)
    assert m.table[1].copy_set == [0, 2]
    assert feed(m, req("write", 2, 1, 30)) == [("Invalidate", 0, 1, 2, 30)]
    assert m.table[1].op.waiting == [0]
    assert feed(m, conf(P.InvalidateConfirmation, 0, 1, 30, requester=2)) == \
        [("WriteForward", 1, 1, 2, 30)]
    assert feed(m, conf(P.WriteConfirmation, 2, 1, 30)) == [("Ack", 2, 1, 30, True)]
    assert m.status_rows()[1] == P.RecordRow(1, 2, [])


def test_only_copy_holder_is_the_requester():
    m = active()
    do_read(m, 2, 1, 21)
    assert feed(m, req("write", 2, 1, 30)) == [("WriteForward", 1, 1, 2, 30)]


# -- lock and queue -------------------------------------------------------------------------------

def test_locked_page_queues_in_fifo_order_and_other_pages_go_on():
    m = active()
    assert feed(m, req("read", 2, 1, 10)) == [("ReadForward", 1, 1, 2, 10)]
    assert feed(m, req("write", 0, 1, 11)) == []                 # waits for page 1's lock
    assert feed(m, req("read", 1, 0, 12)) == [("ReadForward", 0, 0, 1, 12)]   # page 0: free
    assert feed(m, req("read", 2, 1, 13)) == []                 # queued behind the write
    assert [(q.kind, q.requester, q.rid) for q in m.table[1].queue] == \
        [("write", 0, 11), ("read", 2, 13)]
    assert feed(m, conf(P.ReadConfirmation, 1, 0, 12)) == [("Ack", 1, 0, 12, True)]
    # the read of page 1 completes: the lock passes to the queued write (node 2 has a copy)
    assert feed(m, conf(P.ReadConfirmation, 2, 1, 10)) == \
        [("Ack", 2, 1, 10, True), ("Invalidate", 2, 1, 0, 11)]
    assert feed(m, conf(P.InvalidateConfirmation, 2, 1, 11, requester=0)) == \
        [("WriteForward", 1, 1, 0, 11)]
    # then the queued read, forwarded to the new owner
    assert feed(m, conf(P.WriteConfirmation, 0, 1, 11)) == \
        [("Ack", 0, 1, 11, True), ("ReadForward", 0, 1, 2, 13)]
    assert feed(m, conf(P.ReadConfirmation, 2, 1, 13)) == [("Ack", 2, 1, 13, True)]
    assert m.status_rows()[:2] == [P.RecordRow(0, 0, [1]), P.RecordRow(1, 0, [2])]
    assert all(rec.op is None and rec.queue == [] for rec in m.table)


def test_every_page_has_its_own_lock():
    m = active()
    out = []
    for pg in range(5):
        out += feed(m, req("write", (pg + 1) % 3, pg, 100 + pg))
    assert sorted(out) == sorted(("WriteForward", pg % 3, pg, (pg + 1) % 3, 100 + pg)
                                 for pg in range(5))
    assert all(rec.op is not None for rec in m.table)


# -- retries --------------------------------------------------------------------------------------

def test_retried_request_runs_once():
    m = active()
    assert feed(m, req("read", 2, 1, 10)) == [("ReadForward", 1, 1, 2, 10)]
    assert feed(m, req("read", 2, 1, 10)) == [("Ack", 2, 1, 10, False)]    # known
    assert m.table[1].opseq == 1
    assert feed(m, conf(P.ReadConfirmation, 2, 1, 10)) == [("Ack", 2, 1, 10, True)]
    assert feed(m, req("read", 2, 1, 10)) == [("Ack", 2, 1, 10, False)]    # late retry
    assert m.table[1].op is None and m.table[1].opseq == 1


def test_retried_queued_request_is_not_queued_twice():
    m = active()
    feed(m, req("read", 2, 1, 10))
    assert feed(m, req("write", 0, 1, 11)) == []
    assert feed(m, req("write", 0, 1, 11)) == [("Ack", 0, 1, 11, False)]
    assert len(m.table[1].queue) == 1


def test_retried_confirmation_is_acknowledged_again():
    m = active()
    do_read(m, 2, 1, 10)
    assert feed(m, conf(P.ReadConfirmation, 2, 1, 10)) == [("Ack", 2, 1, 10, True)]
    assert m.status_rows()[1] == P.RecordRow(1, 1, [2]) and m.table[1].op is None
    feed(m, req("write", 0, 1, 11))
    feed(m, conf(P.InvalidateConfirmation, 2, 1, 11, requester=0))
    assert feed(m, conf(P.WriteConfirmation, 0, 1, 11)) == [("Ack", 0, 1, 11, True)]
    # a retried (old) write confirmation while another operation holds the page
    feed(m, req("read", 1, 1, 12))
    op = m.table[1].op
    assert feed(m, conf(P.WriteConfirmation, 0, 1, 11)) == [("Ack", 0, 1, 11, True)]
    assert m.table[1].op == op and m.table[1].owner == 0


def test_confirmation_of_an_unknown_operation_changes_nothing():
    m = active()
    feed(m, req("read", 2, 1, 10))
    assert feed(m, conf(P.ReadConfirmation, 2, 1, 9)) == [("Ack", 2, 1, 9, True)]
    assert feed(m, conf(P.WriteConfirmation, 2, 1, 10)) == [("Ack", 2, 1, 10, True)]
    assert m.table[1].op == P.InFlight("read", 2, 10, "forwarded") and m.table[1].copy_set == []


def test_request_naming_another_requester_is_ignored():
    m = active()
    assert feed(m, P.ReadRequest(page=1, requester=0, rid=10, sender=2)) == []
    assert m.table[1].op is None


def test_page_out_of_range_is_ignored():
    m = active()
    for pg in (5, -1, 1000):
        assert feed(m, req("read", 2, pg, 10 + pg)) == []


def test_stuck_operation_is_redriven():
    m = active()
    m.receive(3.0, req("write", 2, 1, 10))
    assert sent(m) == [("WriteForward", 1, 1, 2, 10)]
    m.tick(4.0)
    assert sent(m) == []
    m.tick(5.0)                                        # redrive_timeout 2 s of silence
    assert sent(m) == [("WriteForward", 1, 1, 2, 10)]


# -- what waits for the backup (docs/PROTOCOL.md section 4.1) -------------------------------

def watching_with_backup() -> Manager:
    """The primary, serving nodes 0-2 (incarnation 1) with its backup (pid 4) as a replica,
    node liveness on. The step that admitted the nodes waited for the backup."""
    m = Manager(3, nodes=[0, 1, 2], managers=[3, 4], pages=5, now=0.0, heartbeat_interval=HB,
                liveness=3, redrive_timeout=2.0, node_liveness=1.5)
    m.tick(0.0)
    m.receive(0.1, P.Heartbeat(role="passive", seq=0, boot=7, sender=4, epoch=0))
    m.tick(0.2)
    for n in range(3):
        m.receive(0.3, P.TableReport(pages=initial_reports(3, 5, n), inc=1, sender=n,
                                     epoch=m.epoch))
    assert m.role == "active"
    out = [(d, P.type_name(x)) for d, x, _ in m.drain() if d == 4 or P.type_name(x) == "Admit"]
    assert out == [(4, "Snapshot"), (4, "Replicate")]         # the Admits wait
    m.receive(0.4, P.ReplicateAck(seq=m.seq, sender=4, epoch=m.epoch))
    assert [(d, P.type_name(x)) for d, x, _ in m.drain()] == [(n, "Admit") for n in range(3)]
    return m


def test_an_ivy_step_goes_out_with_its_replicate():
    m = watching_with_backup()
    m.receive(0.5, P.ReadRequest(page=1, requester=2, rid=10, sender=2, epoch=m.epoch))
    out = [(d, x) for d, x, _ in m.drain() if d != P.HEARTBEAT]
    assert [(d, P.type_name(x)) for d, x in out] == [(1, "ReadForward"), (4, "Replicate")]
    rep = out[1][1]
    assert [r.page for r in rep.changes] == [1] and rep.changes[0].op.requester == 2


def test_a_membership_step_and_the_steps_after_it_wait_for_the_backup():
    m = watching_with_backup()
    # node 0 restarted: its old incarnation is declared dead, the new one admitted
    m.receive(0.5, P.NodeBeat(inc=2, member=False, t=0.5, sender=0, epoch=m.epoch))
    first = m.seq
    assert [(d, P.type_name(x)) for d, x, _ in m.drain()] == [(4, "Replicate")]
    m.receive(0.6, P.ReadRequest(page=1, requester=2, rid=10, sender=2, epoch=m.epoch))
    assert [(d, P.type_name(x)) for d, x, _ in m.drain()] == [(4, "Replicate")]   # behind it
    m.receive(0.7, P.ReplicateAck(seq=first, sender=4, epoch=m.epoch))
    assert [(d, P.type_name(x)) for d, x, _ in m.drain()] == [(0, "Fenced"), (0, "Admit")]
    m.receive(0.8, P.ReplicateAck(seq=m.seq, sender=4, epoch=m.epoch))
    assert [(d, P.type_name(x)) for d, x, _ in m.drain()] == [(1, "ReadForward")]
    assert not m.held and m.holding == 0


def test_a_death_reaches_the_backup_before_the_term_it_starts():
    """The step that declares a node dead also starts a new term, which clears the
    replicas: its Replicate must leave first, or a backup taking over right after (with no
    peer left, so unable to declare the node dead itself) waits for it for ever."""
    m = watching_with_backup()
    epoch = m.epoch
    for t in (0.6, 1.2, 1.8):                       # nodes 1 and 2 beat, node 0 is silent
        for n in (1, 2):
            m.receive(t, P.NodeBeat(inc=1, member=True, t=t, sender=n, epoch=m.epoch))
        m.receive(t, P.Heartbeat(role="passive", seq=m.seq, boot=7, sender=4, epoch=m.epoch))
        m.tick(t)
    out = [(d, x) for d, x, _ in m.drain() if d == 4 and isinstance(x, P.Replicate)]
    assert m.role != "active" or m.epoch > epoch
    [rep] = [x for _, x in out if x.members and x.members[0].dead]
    assert rep.epoch == epoch


# -- pages.py on its own ------------------------------------------------------------------

def test_pages_request_start_and_confirm_directly():
    rec = P.PageRec(page=3, owner=0, copy_set=[1, 2])
    new, out = pages.request(rec, P.Req("write", 1, 50))
    assert new and [(d, P.type_name(x)) for d, x in out] == [(2, "Invalidate")]
    new, out = pages.request(rec, P.Req("write", 1, 50))
    assert (new, out) == (False, [])
    new, out = pages.invalidated(rec, P.InvalidateConfirmation(page=3, requester=1, rid=50,
                                                               sender=2))
    assert new and [(d, P.type_name(x), x.requester) for d, x in out] == \
        [(0, "WriteForward", 1)]
    assert pages.pending_messages(rec)[0][0] == 0
    new, out = pages.confirmed(rec, P.WriteConfirmation(page=3, requester=1, rid=50, sender=1))
    assert new and out == [] and (rec.owner, rec.copy_set, rec.op) == (1, [], None)
    assert pages.pending_messages(rec) == []


# -- bounded state (docs/PROTOCOL.md section 9) ----------------------------------------------

def with_backup() -> Manager:
    """The primary, serving with its backup (pid 4) as a replica that is up to date."""
    m = passive()
    m.tick(0.0)
    m.receive(0.1, P.Heartbeat(role="passive", seq=0, boot=7, sender=4, epoch=0))
    m.tick(0.2)
    for n in range(3):
        m.receive(0.3, P.TableReport(pages=initial_reports(3, 5, n), sender=n, epoch=m.epoch))
    m.receive(0.4, P.ReplicateAck(seq=m.seq, sender=4, epoch=m.epoch))
    m.drain()
    assert m.role == "active" and m.replicas == {4: m.seq} and not m.held
    return m


def test_a_newer_request_takes_the_place_of_the_queued_one_of_its_node():
    m = active()
    feed(m, req("read", 2, 1, 10))
    assert feed(m, req("write", 0, 1, 11)) == []
    assert feed(m, req("read", 1, 1, 12)) == []
    assert feed(m, req("read", 0, 1, 13)) == []          # node 0 gave rid 11 up
    assert m.table[1].queue == [P.Req("read", 0, 13), P.Req("read", 1, 12)]


def test_confirmations_recorded_between_two_ticks_are_bounded():
    m = active()
    for rid in range(100):
        m.receive(m._now, conf(P.ReadConfirmation, 2, 1, rid))
    assert len(m.confirmed[2]) == 2 * len(m.table)       # the node re-sends the others
    m.tick(m._now)
    assert m.confirmed == {}


def test_records_of_pages_not_in_the_table_are_ignored():
    m = passive(index=1)
    good = [P.PageRec(page=p, owner=p % 3) for p in range(5)]
    for bad in (good[::-1], good + good[:1], good[:4] + [P.PageRec(page=9, owner=0)]):
        m.receive(0.1, P.Snapshot(seq=1, pages=bad, sender=3, epoch=2))
        assert m.seq == 0 and [r.page for r in m.table] == list(range(5))
    m.receive(0.2, P.Snapshot(seq=1, pages=good, sender=3, epoch=2))
    m.receive(0.3, P.Replicate(seq=2, changes=[P.PageRec(page=-1, owner=1)], sender=3,
                               epoch=2))
    assert m.seq == 1 and [r.page for r in m.table] == list(range(5))
    assert [type(x) for d, x, _ in m.drain() if d != P.HEARTBEAT] == [P.ReplicateAck]


def test_a_rid_beyond_64_bits_is_replicated():
    """Bug found by tests/test_core_fuzz.py: records were cloned through msgpack, which
    refuses such integers, so one request made every later step of the manager raise."""
    m = with_backup()
    m.receive(0.5, P.ReadRequest(page=1, requester=2, rid=10 ** 30, sender=2, epoch=m.epoch))
    [rep] = [x for d, x, _ in m.drain() if d == 4]
    assert rep.changes[0].last_rid[2] == 10 ** 30


def test_a_backup_that_never_acknowledges_is_dropped_past_the_held_limit(monkeypatch):
    monkeypatch.setattr(replication, "HELD_LIMIT", 3)
    m = with_backup()
    for pg in range(4):
        m.receive(0.5, req("read", 2, pg, 10 + pg))
    assert m.replicas == {} and not m.held
    assert [P.type_name(x) for d, x, _ in m.drain() if d == 0] == ["ReadForward"] * 2


def test_reconcile_problems_kept_are_bounded(monkeypatch):
    monkeypatch.setattr(manager_core, "PROBLEMS_KEPT", 3)
    m = passive()
    m.tick(0.0)
    m.tick(1.6)
    for n in range(3):          # every node claims every page
        rows = [P.PageReport(p, True, "ReadWrite", 0, 0) for p in range(5)]
        m.receive(1.7, P.TableReport(pages=rows, sender=n, epoch=m.epoch))
    assert m.role == "active" and len(m.problems) == 3 and "page 4" in m.problems[-1]


def test_fetched_records_of_pages_not_in_the_table_are_ignored():
    m = passive()
    m.tick(0.0)
    m.receive(0.1, P.Heartbeat(role="passive", seq=5, boot=7, sender=4, epoch=1))
    m.tick(0.2)
    assert m.role == "recovering" and m.fetching == 4
    m.receive(0.3, P.Snapshot(seq=5, pages=[P.PageRec(page=9, owner=0)], sender=4, epoch=1))
    assert m.fetching == 4 and len(m.table) == 5
    m.receive(0.4, P.Snapshot(seq=5, pages=[P.PageRec(page=p, owner=1) for p in range(5)],
                              sender=4, epoch=1))
    assert m.fetching is None and m.seq == 5 and m.table[0].owner == 1

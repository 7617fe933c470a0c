"""Page replicas in the node and manager cores (docs/PROTOCOL.md section 6.2), message by
message: the cases the simulator reaches only rarely, each shown to matter."""
from __future__ import annotations

from ivyzmq import protocol as P
from ivyzmq.manager import pages
from ivyzmq.manager.holders import Holders
from ivyzmq.node.core import NIL, READ, RW, Node
from ivyzmq.node.membership import Failure

SIZE = 16
MANAGERS = [3, 4]


def make(pid: int, replicas: int = 1) -> Node:
    """A node of 3 nodes and 5 pages (page p owned by p mod 3, held by p+1 mod 3)."""
    return Node(pid, n_nodes=3, managers=MANAGERS, pages=5, page_size=SIZE,
                rid_base=1000 * (pid + 1), replicas=replicas)


def page(text: bytes) -> bytes:
    return text.ljust(SIZE, b"\0")


def sent(node: Node, cls):
    out, _ = node.drain()
    return [(d, m, p) for d, m, p in out if isinstance(m, cls)]


def test_a_write_shows_and_returns_only_when_its_holder_has_it():
    owner = make(0)                             # page 0: owner 0, holder 1
    owner.start(0.0, 1, "write", 0, b"new")
    out, done = owner.drain()
    assert done == [] and owner.data[0] == bytes(SIZE)     # staged, not visible
    [(dest, upd, data)] = [(d, m, p) for d, m, p in out if isinstance(m, P.Update)]
    assert dest == 1 and data == page(b"new")
    holder = make(1)
    holder.receive(0.1, upd, data)
    [(back, ack, _)] = sent(holder, P.UpdateAck)
    assert back == 0 and holder.rep[0] == (tuple(upd.version), page(b"new"))
    owner.receive(0.2, ack)
    _, done = owner.drain()
    assert done == [(1, None, None)] and owner.data[0] == page(b"new")


def test_a_holder_keeps_the_newest_version_and_acknowledges_only_what_it_keeps():
    holder = make(1)
    new = P.Update(page=0, version=(5, 2), sender=2)
    old = P.Update(page=0, version=(4, 9), sender=0)     # a late duplicate of an older owner
    holder.receive(0.0, new, page(b"new"))
    assert len(sent(holder, P.UpdateAck)) == 1
    holder.receive(0.1, old, page(b"old"))
    assert sent(holder, P.UpdateAck) == []
    assert holder.rep[0] == ((5, 2), page(b"new"))


def test_a_forward_during_a_sync_is_served_as_soon_as_the_holder_has_the_write():
    owner = make(0)
    owner.start(0.0, 1, "write", 0, b"w")
    [(_, upd, _)] = sent(owner, P.Update)
    fwd = P.ReadForward(page=0, requester=2, rid=7, opseq=1, sender=3)
    owner.receive(0.1, fwd)
    assert sent(owner, P.ReadPage) == []                  # held back: not synced yet
    owner.receive(0.2, P.UpdateAck(page=0, version=upd.version, sender=1))
    [(dest, _, data)] = sent(owner, P.ReadPage)
    assert dest == 2 and data == page(b"w")               # the acknowledged contents
    assert owner.pages[0].access == READ


def test_a_promoted_holder_serves_only_after_its_holders_have_the_contents():
    node = make(1)                                # holds page 0's replica (zeros)
    node.receive(0.0, P.Update(page=0, version=(1, 1), sender=0), page(b"last"))
    node.drain()
    node.receive(0.1, P.Assign(pages=[(0, 3, [2], False, [2])], sender=3))
    out, _ = node.drain()
    [(dest, upd, data)] = [(d, m, p) for d, m, p in out if isinstance(m, P.Update)]
    assert any(isinstance(m, P.AssignAck) for _, m, _ in out)
    assert (dest, data, tuple(upd.version)) == (2, page(b"last"), (3, 1))
    st = node.pages[0]
    assert st.is_owner and st.access == NIL and node.data[0] is None
    node.receive(0.2, P.UpdateAck(page=0, version=(3, 1), sender=2))
    assert st.access == RW and node.data[0] == page(b"last") and 0 not in node.rep
    # A repeat of the same Assign after the page moved on (a later opseq) changes nothing.
    node.receive(0.3, P.WriteForward(page=0, requester=2, rid=9, opseq=4, holders=[1],
                                     sender=3))
    node.drain()
    node.receive(0.4, P.Assign(pages=[(0, 3, [2], False, [2])], sender=3))
    assert not st.is_owner and node.rep[0][1] == page(b"last")


def test_node_messages_of_an_older_epoch_change_nothing():
    holder = make(1)
    holder.receive(0.0, P.Recover(boot=1, sender=3, epoch=6))
    holder.drain()
    holder.receive(0.1, P.Update(page=0, version=(9, 9), sender=0, epoch=3), page(b"late"))
    assert sent(holder, P.UpdateAck) == [] and holder.replica_version(0) == (0, 0)
    assert 0 not in holder.pages          # untouched: zeros at (0, 0), as laid out


def test_a_sync_waits_while_a_new_term_has_not_served():
    """Found by `ivy sim` seed 5866 (kind mix): a node paused through its own death took a
    late page after waking, staged a write, accepted the new term's Recover and re-sent its
    Update at the new epoch before its Fenced arrived; a holder took it and the write
    returned, lost. Between a Recover and the term's first serving message, no Update."""
    owner = make(0)
    owner.start(0.0, 1, "write", 0, b"w")
    assert len(sent(owner, P.Update)) == 1               # epoch 0: served as far as it knows
    owner.receive(0.1, P.Recover(boot=1, sender=3, epoch=6))
    owner.drain()
    owner.tick(1.0)                                       # past retry_timeout
    assert sent(owner, P.Update) == []
    owner.receive(1.1, P.Confirmed(acks=[], sender=3, epoch=6))   # the term serves
    owner.tick(1.7)
    [(dest, upd, _)] = sent(owner, P.Update)
    assert dest == 1 and upd.epoch == 6


def test_a_fenced_node_reports_a_syncing_write_as_possibly_applied():
    owner = make(0)
    owner.lease = None                            # (unit test: fenced by its manager)
    owner.start(0.0, 1, "write", 0, b"maybe")
    owner.start(0.0, 2, "read", 0)
    owner.drain()
    owner.receive(0.1, P.Fenced(inc=owner.inc, sender=3))
    _, done = owner.drain()
    [(op1, _, first), (op2, _, second)] = done
    assert (op1, op2) == (1, 2) and isinstance(first, Failure) and first.maybe and "may have taken effect" in first.text
    assert not second.maybe


def test_no_assign_for_a_page_whose_write_is_in_transit():
    """The transit's sender may hold a replica (the requester was a holder): an Assign
    would make it a second owner beside the requester the page is on its way to."""
    rec = P.PageRec(page=0, owner=0, holders=[1])
    reports = {
        0: P.PageReport(0, False, "Nil", 4, 0, None, P.Handoff("write", 1, 77, 4), (2, 3)),
        1: P.PageReport(0, False, "Nil", 3, 77, P.Pending("write", 77), None, None),
        2: P.PageReport(0, False, "Nil", 3, 0),
    }
    pages.reconcile(rec, reports, 1, [0, 1, 2])
    assert rec.op is not None and rec.op.requester == 1 and rec.owner == 0
    [(dest, fwd)] = pages.pending_messages(rec)
    assert dest == 0 and fwd.holders == [0]       # the new owner's holder: the old owner

    mgr = Holders()
    mgr.k, mgr.assigning = 1, {}
    mgr._assign(rec, reports)
    assert mgr.assigning == {}
    rec.op = None                                 # settled: the owner gets its entry
    mgr._assign(rec, reports)
    assert list(mgr.assigning) == [0]


def test_reconcile_promotes_the_newest_replica_and_refills_the_holders():
    rec = P.PageRec(page=0, owner=0, holders=[1, 2])
    reports = {1: P.PageReport(0, False, "Nil", 3, 0, replica=(3, 4)),
               2: P.PageReport(0, False, "Read", 3, 0, replica=(3, 5)),
               3: P.PageReport(0, False, "Nil", 3, 0)}
    pages.reconcile(rec, reports, 2, [1, 2, 3])
    assert (rec.owner, rec.lost, rec.opseq) == (2, False, 4)
    assert rec.holders == [1, 3] and rec.copy_set == []


def test_a_promotion_numbers_above_every_replica_version():
    """Replica versions may carry opseqs of a term whose records died with both managers:
    the promoted owner's version must still beat them, or a holder would refuse its
    updates for ever."""
    rec = P.PageRec(page=0, owner=3)
    reports = {1: P.PageReport(0, False, "Nil", 7, 0, replica=(12, 10)),
               5: P.PageReport(0, False, "Nil", 5, 0, replica=(12, 10))}
    pages.reconcile(rec, reports, 1, [1, 5])
    assert rec.owner == 5 and rec.opseq > 12 and rec.holders == [1]


def reports_was(node: Node) -> list[int]:
    return [m.was for _, m, _ in sent(node, P.TableReport)]


def test_a_node_that_slept_through_a_round_reports_the_epoch_it_slept_at():
    """Found by `ivy sim` seeds 1710 and 19395 (kind mix): a node paused through a whole
    round woke to that round's Recover, took its epoch, and so told the next round, after
    every manager that held it dead had restarted, that it had been at the newest served
    epoch: its stale copies were taken as real (docs/PROTOCOL.md 6.1)."""
    def node() -> Node:
        nd = Node(0, n_nodes=3, managers=MANAGERS, pages=5, page_size=SIZE, rid_base=1000,
                  replicas=1, lease=1.0)
        nd.receive(0.0, P.Recover(boot=1, sender=3, epoch=3))
        nd.receive(0.1, P.Confirmed(acks=[], sender=3, epoch=3))      # epoch 3 serves
        nd.drain()
        return nd
    slept, awake = node(), node()
    for i in range(1, 50):        # awake: a step every 0.1 s
        awake.tick(0.1 * i)
        awake.drain()
    for nd in (slept, awake):     # slept: no step from 0.1 to 5.0, longer than its lease
        nd.receive(5.0, P.Recover(boot=2, sender=4, epoch=6))
        nd.receive(5.1, P.Recover(boot=3, sender=3, epoch=9))
    assert reports_was(slept) == [3, 3] and reports_was(awake) == [3, 6]
    slept.receive(5.2, P.Confirmed(acks=[], sender=3, epoch=9))        # epoch 9 serves
    slept.receive(5.3, P.Recover(boot=4, sender=4, epoch=10))
    assert reports_was(slept) == [9]


def test_was_is_the_epoch_before_the_term_whichever_of_its_messages_came_first():
    """Found by `ivy sim --kind mix` seed 30290: a connection reset lost a round's first
    Recover; the recovering manager's Ack to a re-sent request came first and moved the
    node's epoch, so the re-sent Recover was a repeat and the report said `was` 0: the
    round declared two live owners dead and their pages were lost."""
    nd = make(0)
    nd.receive(0.0, P.Recover(boot=7, sender=3, epoch=2))
    nd.receive(0.1, P.Confirmed(acks=[], sender=3, epoch=2))
    nd.drain()
    nd.receive(1.0, P.Ack(page=0, rid=5, sender=3, epoch=4))        # overtakes its Recover
    nd.receive(1.1, P.Recover(boot=7, sender=3, epoch=4))
    assert reports_was(nd) == [2]

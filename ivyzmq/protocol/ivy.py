"""The Ivy protocol proper: faults, forwards, invalidations, page transfers and their
confirmations between nodes and the manager (docs/PROTOCOL.md sections 2 and 3)."""
from __future__ import annotations

from ivyzmq.protocol.base import IvyMsg, PeerMsg


# -- node -> manager ------------------------------------------------------------------------

class ReadRequest(IvyMsg):
    """Node -> manager: read fault on `page`. Re-sent with the same rid until the page arrives."""

    sent_by = "node"


class WriteRequest(IvyMsg):
    """Node -> manager: write fault on `page`. Re-sent with the same rid until write access."""

    sent_by = "node"


class ReadConfirmation(IvyMsg):
    """Requester -> manager: the read copy arrived; add me to copy_set, release the page."""

    sent_by = "node"


class WriteConfirmation(IvyMsg):
    """Requester -> manager: I own the page now; set owner, clear copy_set, release the page."""

    sent_by = "node"


class InvalidateConfirmation(IvyMsg):
    """Copy holder -> manager: my copy of `page` is dropped (for the write `rid`)."""

    sent_by = "node"


# -- manager -> node ------------------------------------------------------------------------

class ReadForward(IvyMsg):
    """Manager -> owner: send a read copy of `page` to `requester`."""

    sent_by = "manager"


class WriteForward(IvyMsg):
    """Manager -> owner: hand `page` and its ownership to `requester`, whose replica
    holders will be `holders` (replicas >= 1, section 6.2)."""

    sent_by = "manager"
    holders: list[int] = []


class Invalidate(IvyMsg):
    """Manager -> copy holder: drop your copy of `page`, `requester` is about to write."""

    sent_by = "manager"


class WriteGrant(IvyMsg):
    """Manager -> owner that asked to write: copies are gone, upgrade to ReadWrite in place
    (its replica holders are `holders`)."""

    sent_by = "manager"
    holders: list[int] = []


class Lost(IvyMsg):
    """Manager -> requester: `page` is lost - its owner, node `owner`, died holding the
    only copy (replicas: 0). The fault fails at once."""

    sent_by = "manager"
    owner: int


class Ack(PeerMsg, kw_only=True):
    """Manager -> node: `rid` is known (done=False) or its confirmation is recorded (done=True)."""

    sent_by = "manager"
    page: int
    rid: int
    done: bool = False


class Confirmed(PeerMsg, kw_only=True):
    """Manager -> node, once per timer tick: these confirmations (page, rid) are recorded;
    stop re-sending them. Batched because no one waits on it: the page is free already."""

    sent_by = "manager"
    acks: list[tuple[int, int]]


class NotActive(PeerMsg, kw_only=True):
    """Passive manager -> node: I do not serve; try manager `hint` (None: the next one)."""

    sent_by = "manager"
    hint: int | None = None


# -- node -> node -----------------------------------------------------------------------------

class ReadPage(IvyMsg):
    """Owner -> requester: a read copy of `page`; the bytes are the second frame."""

    sent_by = "node"
    carries_payload = True


class WritePage(IvyMsg):
    """Old owner -> requester: `page` and its ownership; the bytes are the second frame.
    `version` is theirs; `holders` are the new owner's replica holders (from the forward)."""

    sent_by = "node"
    carries_payload = True
    version: tuple[int, int] = (0, 0)
    holders: list[int] = []


# -- page replicas (replicas >= 1, docs/PROTOCOL.md section 6.2) ------------------------------

class Update(PeerMsg, kw_only=True):
    """Owner -> replica holder: `page`'s contents (second frame) as of `version`
    (opseq, count): hold them. Re-sent until acknowledged."""

    sent_by = "node"
    carries_payload = True
    page: int
    version: tuple[int, int]


class UpdateAck(PeerMsg, kw_only=True):
    """Replica holder -> owner: I hold `page` at exactly `version`."""

    sent_by = "node"
    page: int
    version: tuple[int, int]


class Assign(PeerMsg, kw_only=True):
    """Serving manager -> node, after a recovery round with replicas: for each entry
    (page, opseq, holders, readers, empty), you own `page` (promoted from your replica, or
    kept) as of operation `opseq`, its replica holders are `holders`, of which `empty`
    reported no replica (send them the bytes); `readers`: read copies exist, so take Read
    access, not ReadWrite. Re-sent until AssignAck."""

    sent_by = "manager"
    pages: list[tuple[int, int, list[int], bool, list[int]]]


class AssignAck(PeerMsg, kw_only=True):
    """Node -> manager: the Assign of this epoch is applied."""

    sent_by = "node"

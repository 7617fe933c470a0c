"""The Ivy protocol proper: faults, forwards, invalidations, page transfers and their
confirmations between nodes and the manager (docs/PROTOCOL.md sections 2 and 3)."""
from __future__ import annotations

from ivyzmq.protocol.base import IvyMsg, PeerMsg


# -- node -> manager ------------------------------------------------------------------------

class ReadRequest(IvyMsg):
    """Node -> manager: read fault on `page`. Re-sent with the same rid until the page arrives."""


class WriteRequest(IvyMsg):
    """Node -> manager: write fault on `page`. Re-sent with the same rid until write access."""


class ReadConfirmation(IvyMsg):
    """Requester -> manager: the read copy arrived; add me to copy_set, release the page."""


class WriteConfirmation(IvyMsg):
    """Requester -> manager: I own the page now; set owner, clear copy_set, release the page."""


class InvalidateConfirmation(IvyMsg):
    """Copy holder -> manager: my copy of `page` is dropped (for the write `rid`)."""


# -- manager -> node ------------------------------------------------------------------------

class ReadForward(IvyMsg):
    """Manager -> owner: send a read copy of `page` to `requester`."""


class WriteForward(IvyMsg):
    """Manager -> owner: hand `page` and its ownership to `requester`."""


class Invalidate(IvyMsg):
    """Manager -> copy holder: drop your copy of `page`, `requester` is about to write."""


class WriteGrant(IvyMsg):
    """Manager -> owner that asked to write: copies are gone, upgrade to ReadWrite in place."""


class Lost(IvyMsg):
    """Manager -> requester: `page` is lost - its owner, node `owner`, died holding the
    only copy (replicas: 0). The fault fails at once."""

    owner: int


class Ack(PeerMsg, kw_only=True):
    """Manager -> node: `rid` is known (done=False) or its confirmation is recorded (done=True)."""

    page: int
    rid: int
    done: bool = False


class Confirmed(PeerMsg, kw_only=True):
    """Manager -> node, once per timer tick: these confirmations (page, rid) are recorded;
    stop re-sending them. Batched because no one waits on it: the page is free already."""

    acks: list[tuple[int, int]]


class NotActive(PeerMsg, kw_only=True):
    """Passive manager -> node: I do not serve; try manager `hint` (None: the next one)."""

    hint: int | None = None


# -- node -> node -----------------------------------------------------------------------------

class ReadPage(IvyMsg):
    """Owner -> requester: a read copy of `page`; the bytes are the second frame."""

    carries_payload = True


class WritePage(IvyMsg):
    """Old owner -> requester: `page` and its ownership; the bytes are the second frame."""

    carries_payload = True

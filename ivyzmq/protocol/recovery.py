"""A new term's recovery round: Recover and the nodes' page reports (section 5)."""
from __future__ import annotations

import msgspec

from ivyzmq.protocol.base import AccessName, Kind, PeerMsg


# -- recovery -------------------------------------------------------------------------------

class Recover(PeerMsg, kw_only=True):
    """New active manager -> every node: I serve from `epoch` on; report your page table.
    `boot` tells a re-sent Recover from one sent by a restarted manager at the same epoch."""

    sent_by = "manager"
    boot: int = 0


class Handoff(msgspec.Struct, array_like=True):
    """The last page a node gave away: kind, to whom, for which rid and opseq."""

    kind: Kind
    to: int
    rid: int
    opseq: int


class Pending(msgspec.Struct, array_like=True):
    """A fault a node is waiting on."""

    kind: Kind
    rid: int


class PageReport(msgspec.Struct, array_like=True):
    page: int
    is_owner: bool
    access: AccessName
    opseq: int
    last_rid: int
    pending: Pending | None = None
    handoff: Handoff | None = None
    replica: tuple[int, int] | None = None    # the version of the replica held, if any


class TableReport(PeerMsg, kw_only=True):
    """Node -> recovering manager: my page table, faults in progress, pages in transit, as
    incarnation `inc` (`member`: a manager admitted it). A node that did not reach the
    newest term anyone `served` in was declared dead by that term's round. refused=True (no pages): your
    Recover's epoch is not newer than mine, which is in the header - pick a newer one."""

    sent_by = "node"
    pages: list[PageReport]
    refused: bool = False
    inc: int = 0
    member: bool = False
    was: int = 0        # the epoch this node was at before this Recover
    served: int = 0     # the newest epoch whose serving manager it has heard

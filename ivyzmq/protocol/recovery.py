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


def base_report(page: int, node: int, owner: int, holders: list[int],
                empty: bool) -> PageReport:
    """What `node` reports of a page a TableReport does not list: the page as laid out at
    start (`owner` with ReadWrite, a replica at (0, 0) on its initial `holders`), or, once
    the node's memory was `empty`ied, nothing."""
    if empty or node != owner:
        held = (0, 0) if not empty and node in holders else None
        return PageReport(page, False, "Nil", 0, 0, None, None, held)
    return PageReport(page, True, "ReadWrite", 0, 0)


class TableReport(PeerMsg, kw_only=True):
    """Node -> recovering manager: my page table, faults in progress, pages in transit, as
    incarnation `inc` (`member`: a manager admitted it) - the pages whose report differs
    from `base_report` (of the layout, or `empty`), in page order. A node that did not
    reach the newest term anyone `served` in was declared dead by that term's round.
    refused=True (no pages): your Recover's epoch is not newer than mine, which is in the
    header - pick a newer one."""

    sent_by = "node"
    pages: list[PageReport]
    empty: bool = False     # the pages not listed are empty, not as laid out at start
    refused: bool = False
    inc: int = 0
    member: bool = False
    was: int = 0        # the epoch this node was at before this Recover
    served: int = 0     # the newest epoch whose serving manager it has heard

"""Between managers: heartbeats, the replicated page and node records (section 4)."""
from __future__ import annotations

from typing import Literal

import msgspec

from ivyzmq.protocol.base import Kind, PeerMsg
from ivyzmq.protocol.members import Member


# -- manager <-> manager ----------------------------------------------------------------------

Role = Literal["passive", "recovering", "active"]


class Heartbeat(PeerMsg, kw_only=True):
    """Manager -> peers (PUB/SUB, may drop): I am alive, in this role, at this log position."""

    sent_by = "manager"
    role: Role
    seq: int
    boot: int


class InFlight(msgspec.Struct, array_like=True):
    """The operation holding a page's lock; phase says which answer the manager waits for."""

    kind: Kind
    requester: int
    rid: int
    phase: Literal["invalidating", "forwarded", "granted"]
    waiting: list[int] = []


class Req(msgspec.Struct, array_like=True):
    """A queued fault waiting for the page's lock."""

    kind: Kind
    requester: int
    rid: int


class PageRec(msgspec.Struct):
    """The manager's record of one page. A state change is the new record of one page."""

    page: int
    owner: int
    copy_set: list[int] = []
    opseq: int = 0
    op: InFlight | None = None
    queue: list[Req] = []
    last_rid: dict[int, int] = {}
    lost: bool = False           # the owner died with the only copy: faults fail
    holders: list[int] = []      # replica holders (replicas >= 1), the owner not among them


def initial_holders(owner: int, nodes: int, k: int) -> list[int]:
    """A page's replica holders at a cold start: the k nodes after its owner, in ring
    order (at most nodes - 1). The nodes and the managers both assume this layout."""
    return [(owner + i) % nodes for i in range(1, min(k, nodes - 1) + 1)]


class Replicate(PeerMsg, kw_only=True):
    """Active -> backups: the page records changed by step `seq` (and the node records,
    when a node was admitted or declared dead). Acknowledged."""

    sent_by = "manager"
    seq: int
    changes: list[PageRec]
    members: list[Member] | None = None


class ReplicateAck(PeerMsg, kw_only=True):
    """Backup -> active: every step up to `seq` is applied."""

    sent_by = "manager"
    seq: int


class Snapshot(PeerMsg, kw_only=True):
    """Active -> a backup that is new or behind: the whole table as of `seq`."""

    sent_by = "manager"
    seq: int
    pages: list[PageRec]
    members: list[Member] = []


class SnapshotRequest(PeerMsg, kw_only=True):
    """Backup -> active: I missed changes, send me a snapshot."""

    sent_by = "manager"


class Handback(PeerMsg, kw_only=True):
    """Serving backup -> primary: you are caught up; take over (with a new epoch)."""

    sent_by = "manager"

"""Node membership and liveness: beats, leases, admission, fencing (section 6.1)."""
from __future__ import annotations

import msgspec

from ivyzmq.protocol.base import PeerMsg


# -- node membership and liveness (docs/PROTOCOL.md section 6) ------------------------------

class NodeBeat(PeerMsg, kw_only=True):
    """Node -> every manager, each heartbeat interval: I am alive as incarnation `inc`
    (`member`: admitted). `t` is the node's clock when sent: the serving manager echoes it
    in NodeBeatAck, and the node's lease for local hits runs from it."""

    sent_by = "node"
    inc: int
    member: bool = False
    t: float = 0.0


class NodeBeatAck(PeerMsg, kw_only=True):
    """Serving manager -> member node: your beat sent at `t` arrived; serve local hits
    until t + lease."""

    sent_by = "manager"
    t: float


class Admit(PeerMsg, kw_only=True):
    """Serving manager -> node: incarnation `inc` is a member now. fresh=False: an earlier
    incarnation of this node was a member and is dead; start with an empty memory."""

    sent_by = "manager"
    inc: int
    fresh: bool = True


class Fenced(PeerMsg, kw_only=True):
    """Serving manager -> node: incarnation `inc` was declared dead. Drop every page and
    every operation, and join again as a new incarnation."""

    sent_by = "manager"
    inc: int


class Member(msgspec.Struct, array_like=True):
    """The manager's record of one node: its admitted incarnation (0: none yet), whether
    that incarnation was declared dead, and whether it was admitted keeping its initial
    pages (`fresh`, the first incarnation at a cold start) or with an empty memory."""

    node: int
    inc: int = 0
    dead: bool = False
    fresh: bool = True

"""The header every message has, the base classes of the catalogue, and the names the
other protocol modules share."""
from __future__ import annotations

from typing import ClassVar, Literal

import msgspec


Kind = Literal["read", "write"]
AccessName = Literal["Nil", "Read", "ReadWrite"]


class ProtocolError(ValueError):
    """A frame that is not a valid message; the text says what is wrong with it."""


HEARTBEAT = -1     # the destination of heartbeats: the manager's PUB socket, not a process


class Msg(msgspec.Struct, tag=True, kw_only=True, forbid_unknown_fields=True):
    """The header fields every message has; a base, never a message by itself."""

    carries_payload: ClassVar[bool] = False     # True: a raw bytes frame follows the header

    sender: int = -1
    epoch: int = 0
    lc: int = 0


class PeerMsg(Msg, kw_only=True):
    """A message between the processes of the cluster: its sender must be one of them,
    of the kind `sent_by` names ("manager" or "node"); under CURVE, the process whose key
    the connection authenticated (docs/PROTOCOL.md section 10)."""

    sent_by: ClassVar[str] = ""


class ToolMsg(Msg, kw_only=True):
    """A message between a tool or client program and a daemon (answered through the inbox)."""


class IvyMsg(PeerMsg, kw_only=True):
    """A message of the Ivy protocol proper: these are the rows of the trace.

    rid is the requester's unique request id; opseq numbers the manager's operations on
    the page (0 in messages a node sends before the manager has assigned one).
    """

    page: int
    requester: int
    rid: int
    opseq: int = 0

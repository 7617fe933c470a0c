"""A node's per-page state and the records its core keeps (node/core.py), and the errors of
a local operation that can never succeed."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from ivyzmq import protocol as P

NIL, READ, RW = "Nil", "Read", "ReadWrite"


class PageError(ValueError):
    """A local operation that can never succeed. `code` tells a client which kind, so the
    daemon need not guess it from the text."""

    code: ClassVar[P.ErrorCode] = P.ErrorCode.REQUEST


class PageRangeError(PageError):
    """No such page."""

    code = P.ErrorCode.RANGE


class PageSizeError(PageError):
    """The data does not fit the page at that offset."""

    code = P.ErrorCode.SIZE


@dataclass(slots=True)
class LocalOp:
    opid: int
    kind: str
    data: bytes = b""
    offset: int = 0


@dataclass(slots=True)
class PageState:
    is_owner: bool = False
    access: str = NIL
    opseq: int = 0
    last_rid: int = 0
    pending: P.Pending | None = None
    handoff: P.Handoff | None = None
    handoff_data: bytes | None = None
    local: deque = field(default_factory=deque)
    # replicas (node/replicas.py), for a page this node owns:
    version: tuple[int, int] = (0, 0)
    holders: list = field(default_factory=list)
    unacked: list = field(default_factory=list)   # holders yet to acknowledge `staged`
    staged: bytes | None = None       # contents written but not yet held by every holder
    writing: bool = False             # the first local op is the write being synced
    grant: str | None = None          # access to take once synced (after a promotion)
    deferred: list = field(default_factory=list)  # forwards waiting for the sync


@dataclass(slots=True)
class Outstanding:
    """A message to the manager that is re-sent (same rid) until answered."""

    msg: P.IvyMsg
    sent_at: float
    first: float      # first sent to the current manager: silence is measured from here
    began: float = 0.0    # first sent at all (to any manager): how long the fault has waited


Send = tuple[int, P.Msg, bytes | None]
Done = tuple[int, bytes | None, "Failure | None"]   # opid, data read, why it failed

"""A node's per-page state and the records its core keeps (node/core.py), and the errors of
a local operation that can never succeed."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ivyzmq import protocol as P

NIL, READ, RW = "Nil", "Read", "ReadWrite"
IN_PROGRESS_LIMIT = 10_000    # local operations a node holds at once; more are refused


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
    confirming: int | None = None     # rid of the last confirmation sent (maybe outstanding)
    handoff: P.Handoff | None = None
    handoff_data: bytes | None = None
    local: list = field(default_factory=list)     # LocalOps in arrival order (few)
    # replicas (node/replicas.py), for a page this node owns:
    version: tuple[int, int] = (0, 0)
    holders: list = field(default_factory=list)
    unacked: list = field(default_factory=list)   # holders yet to acknowledge `staged`
    staged: bytes | None = None       # contents written but not yet held by every holder
    writing: bool = False             # the first local op is the write being synced
    result: bytes | None = None       # what that op returns once synced (cas, add)
    grant: str | None = None          # access to take once synced (after a promotion)
    deferred: list = field(default_factory=list)  # forwards waiting for the sync


class Pages(dict):
    """page -> PageState of the pages a node has touched since its memory was laid out:
    every other page is in its base state - the initial layout, or nothing at all once
    the node's memory was emptied (`empty`) - made by `make(p)` and kept when first asked
    for (`pages[p]`; the caller checks the range). len() and iteration cover every page,
    as a list would; iteration keeps nothing and shows an untouched page as one of two
    shared states, never to be changed (`owned`, `unowned`: the initial holders of a
    node's pages are the same for every page it owns)."""

    def __init__(self, n: int, owns, make, owned: PageState):
        super().__init__()
        self.n, self.owns, self.make, self.empty = n, owns, make, False
        self.owned, self.unowned = owned, PageState()

    def __missing__(self, page: int) -> PageState:
        st = self[page] = self.make(page)
        return st

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return (self.peek(p) for p in range(self.n))

    def peek(self, page: int) -> PageState:
        """The page's state, to read only (an untouched page's is shared)."""
        st = self.get(page)
        if st is not None:
            return st
        return self.owned if not self.empty and self.owns(page) else self.unowned


@dataclass(slots=True)
class Outstanding:
    """A message to the manager that is re-sent (same rid) until answered."""

    msg: P.IvyMsg
    sent_at: float
    first: float      # first sent to the current manager: silence is measured from here
    began: float = 0.0    # first sent at all (to any manager): how long the fault has waited


Send = tuple[int, P.Msg, bytes | None]
Done = tuple[int, bytes | None, "Failure | None"]   # opid, data read, why it failed


# -- the operations that change a page, applied in one step at its owner (with ReadWrite) ----

WORD = P.WORD       # add works on an 8-byte little-endian signed integer


def width(kind: str, data: bytes) -> int:
    """How many bytes of the page an operation touches."""
    return len(data) // 2 if kind == "cas" else WORD if kind == "add" else len(data)


def apply(kind: str, old: bytes, data: bytes, offset: int) -> tuple[bytes | None, bytes | None]:
    """(the page's new bytes, or None if unchanged; the result for the caller) of a write,
    a compare-and-swap (`data` = expected + new) or an add (`data` = the delta, 8 bytes)."""
    end = offset + width(kind, data)
    if kind == "write":
        return old[:offset] + data + old[end:], None
    if kind == "cas":
        half = len(data) // 2
        current = old[offset:end]
        if current != data[:half]:
            return None, b"\0" + current
        return old[:offset] + data[half:] + old[end:], b"\1" + current
    value = int.from_bytes(old[offset:end], "little", signed=True) + \
        int.from_bytes(data, "little", signed=True)
    word = (value & (2 ** 64 - 1)).to_bytes(WORD, "little")
    return old[:offset] + word + old[end:], word

"""Between client programs or tools and a daemon: reads, writes, status and trace."""
from __future__ import annotations

from enum import Enum
from typing import Literal

import msgspec

from ivyzmq.protocol.base import AccessName, Kind, ToolMsg
from ivyzmq.protocol.managers import InFlight, Req


# -- clients and tools <-> daemons --------------------------------------------------------------

class ClientRead(ToolMsg, kw_only=True):
    """Program -> node daemon: read `page`; answered by ClientReply with the bytes."""

    page: int
    cid: int


class ClientWrite(ToolMsg, kw_only=True):
    """Program -> node daemon: write the second frame at `offset` of `page`."""

    carries_payload = True

    page: int
    offset: int = 0
    cid: int


class ClientCas(ToolMsg, kw_only=True):
    """Program -> node daemon: compare and swap at `offset` of `page`. The second frame is
    the expected bytes followed by the new ones (the same length each). The reply's frame:
    one byte (1 swapped, 0 not) and the bytes found there before."""

    carries_payload = True

    page: int
    offset: int = 0
    cid: int


WORD = 8      # the bytes of the integer an add works on


class ClientAdd(ToolMsg, kw_only=True):
    """Program -> node daemon: add `delta` to the 8-byte little-endian signed integer at
    `offset` of `page` (wrapping at 64 bits). The reply's frame: the value after the add,
    8 bytes little-endian."""

    page: int
    offset: int = 0
    delta: int
    cid: int


class ErrorCode(str, Enum):
    """Why a node daemon refused a client request; client.py maps each to an exception."""

    RANGE = "range"          # no such page
    SIZE = "size"            # the data does not fit the page at that offset
    REQUEST = "request"      # the request itself is malformed
    LOST = "lost"            # the page's only holder died (replicas: 0)
    FENCED = "fenced"        # this node was declared dead while the operation ran


class ClientReply(ToolMsg, kw_only=True):
    """Node daemon -> program: result of request `cid`; error is None on success, else code
    says what kind (None: success, or an error of no particular kind)."""

    cid: int
    error: str | None = None
    code: ErrorCode | None = None
    peer: int | None = None      # the process the error is about (a lost page's owner)


class StatusQuery(ToolMsg, kw_only=True):
    """Tool -> any daemon: your page table and role. rows=False: the role, epoch and dead
    nodes only, without a row per page (a probe that stays cheap at a million pages)."""

    rows: bool = True


class RecordRow(msgspec.Struct, array_like=True):
    """A manager's record of one page, as a status reply shows it."""

    page: int
    owner: int
    copy_set: list[int]
    lost: bool = False
    holders: list[int] = []      # replica holders (replicas >= 1)


class PageRow(msgspec.Struct, array_like=True):
    """A node's view of one page, as a status reply shows it."""

    page: int
    is_owner: bool
    access: AccessName
    replica: bool = False        # this node holds a replica of the page


class StatusReply(ToolMsg, kw_only=True):
    """Daemon -> tool. Managers fill `records`, nodes `pages`. `pending` counts the faults a
    node waits on or a manager's locked pages."""

    name: str
    kind: Literal["node", "manager"]
    role: str = ""
    serving: bool = False
    pending: int = 0
    records: list[RecordRow] = []
    pages: list[PageRow] = []
    dead: list[int] = []         # managers: nodes declared dead (and not back)
    security: Literal["curve", "none"] = "none"    # what the daemon's sockets use


# -- after a time-out: what does the page wait for? (never asked on the hot path) ------------

class WaitQuery(ToolMsg, kw_only=True):
    """Client -> node daemon, after a read or write of `page` timed out: what do the page's
    local operations wait for? Answered by WaitReply."""

    page: int


class WaitReply(ToolMsg, kw_only=True):
    """Node daemon -> client: what `page` waits for. `waits`: `fault` (a request to
    `manager`: `kind`, `rid`), `lease` (a local hit waits for a beat to be answered),
    `admission` (not a member yet) or `nothing` (no local operation is stuck). The times
    are seconds before the answer, None where they do not apply or never happened:
    `began` the fault started, `asked` it was first sent to `manager` (since the node
    turned to it), `heard` the node last heard from `manager`, `lease` a beat was last
    answered."""

    page: int
    waits: Literal["fault", "lease", "admission", "nothing"]
    manager: int
    queued: int = 0              # local operations queued on the page
    kind: Kind | None = None
    rid: int = 0
    began: float | None = None
    asked: float | None = None
    heard: float | None = None
    lease: float | None = None


class PageQuery(ToolMsg, kw_only=True):
    """Client -> manager daemon, after a time-out: your record of `page` and the operation
    holding its lock. Answered by PageReply."""

    page: int


class PageReply(ToolMsg, kw_only=True):
    """Manager daemon -> client: its role, its record of `page`, the operation holding the
    page's lock (None: free), how many seconds ago that operation last sent anything
    (`sent`, None if unknown), and the faults queued behind it."""

    page: int
    role: str
    serving: bool
    record: RecordRow
    op: InFlight | None = None
    sent: float | None = None
    queue: list[Req] = []


class TraceQuery(ToolMsg, kw_only=True):
    """Tool -> any daemon: the protocol messages you sent (and forget them if clear)."""

    clear: bool = False


class TraceRow(msgspec.Struct, array_like=True):
    lc: int
    type: str
    sender: int
    to: int
    page: int
    requester: int
    rid: int = 0          # with requester, names the operation (ivyzmq/tracing.py)
    at: float = 0.0       # wall clock at the send (s): orders what Lamport clocks cannot


class TraceReply(ToolMsg, kw_only=True):
    rows: list[TraceRow]


class ErrorReply(ToolMsg, kw_only=True):
    """Daemon -> sender of a bad frame that expected an answer."""

    error: str

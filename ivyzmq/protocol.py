"""The wire format: every message ivyzmq sends, declared once, and its encoding.

A message travels as one or two ZeroMQ frames: a JSON header (a tagged msgspec struct, the
`type` field names the class) and, for page contents, a raw bytes frame beside it so that
4 KiB pages are never base64-encoded. Decoding is strict: an unknown type, a missing field or
a field of the wrong type raises `ProtocolError` with msgspec's message naming the field.

Process ids: nodes are 0..N-1 and managers N..N+M-1 in config order, so a trace reads like
the homework's (with 3 nodes the primary manager is 3).

Common header fields (keyword-only, filled by the cores and the transport):
  sender  id of the process that sent the message
  epoch   the manager term the sender acts in (managers) or the highest it has seen (nodes)
  lc      the sender's Lamport clock, so traces from several machines merge in causal order

The catalogue decides by itself: every leaf subclass of `Msg` is a message the decoder knows
(`MESSAGE_TYPES`, `AnyMsg`); the classes with subclasses (`Msg`, `PeerMsg`, `ToolMsg`,
`IvyMsg`) only share fields and are never decoded. A message class that carries a page frame
says so with `carries_payload`. Adding a message is writing its class, nothing else.
"""
from __future__ import annotations

from enum import Enum
from typing import ClassVar, Literal, Union

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
    """A message between the processes of the cluster: its sender must be one of them."""


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


# -- recovery -------------------------------------------------------------------------------

class Recover(PeerMsg, kw_only=True):
    """New active manager -> every node: I serve from `epoch` on; report your page table.
    `boot` tells a re-sent Recover from one sent by a restarted manager at the same epoch."""

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


class TableReport(PeerMsg, kw_only=True):
    """Node -> recovering manager: my page table, faults in progress, pages in transit.
    refused=True (no pages): your Recover's epoch is not newer than mine, which is in the
    header - pick a newer one."""

    pages: list[PageReport]
    refused: bool = False


# -- manager <-> manager ----------------------------------------------------------------------

Role = Literal["passive", "recovering", "active"]


class Heartbeat(PeerMsg, kw_only=True):
    """Manager -> peers (PUB/SUB, may drop): I am alive, in this role, at this log position."""

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


class Replicate(PeerMsg, kw_only=True):
    """Active -> backups: the page records changed by step `seq`. Acknowledged."""

    seq: int
    changes: list[PageRec]


class ReplicateAck(PeerMsg, kw_only=True):
    seq: int


class Snapshot(PeerMsg, kw_only=True):
    """Active -> a backup that is new or behind: the whole table as of `seq`."""

    seq: int
    pages: list[PageRec]


class SnapshotRequest(PeerMsg, kw_only=True):
    """Backup -> active: I missed changes, send me a snapshot."""


class Handback(PeerMsg, kw_only=True):
    """Serving backup -> primary: you are caught up; take over (with a new epoch)."""


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


class ErrorCode(str, Enum):
    """Why a node daemon refused a client request; client.py maps each to an exception."""

    RANGE = "range"          # no such page
    SIZE = "size"            # the data does not fit the page at that offset
    REQUEST = "request"      # the request itself is malformed


class ClientReply(ToolMsg, kw_only=True):
    """Node daemon -> program: result of request `cid`; error is None on success, else code
    says what kind (None: success, or an error of no particular kind)."""

    cid: int
    error: str | None = None
    code: ErrorCode | None = None


class StatusQuery(ToolMsg, kw_only=True):
    """Tool -> any daemon: your page table and role."""


class RecordRow(msgspec.Struct, array_like=True):
    """A manager's record of one page, as a status reply shows it."""

    page: int
    owner: int
    copy_set: list[int]


class PageRow(msgspec.Struct, array_like=True):
    """A node's view of one page, as a status reply shows it."""

    page: int
    is_owner: bool
    access: AccessName


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


def _leaves(cls: type[Msg]) -> list[type[Msg]]:
    subs = cls.__subclasses__()
    return [leaf for sub in subs for leaf in _leaves(sub)] if subs else [cls]


MESSAGE_TYPES: tuple[type[Msg], ...] = tuple(_leaves(Msg))
AnyMsg = Union[MESSAGE_TYPES]     # type: ignore[valid-type]
WITH_PAYLOAD: tuple[type[Msg], ...] = tuple(c for c in MESSAGE_TYPES if c.carries_payload)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyMsg)


def encode(msg: Msg, payload: bytes | None = None) -> list[bytes]:
    """Frames for `msg`: the JSON header, then the payload frame if there is one."""
    header = _encoder.encode(msg)
    return [header] if payload is None else [header, payload]


def decode(frames: list[bytes]) -> tuple[Msg, bytes | None]:
    """Parse frames into (message, payload). Raises ProtocolError for anything malformed."""
    if not frames or len(frames) > 2:
        raise ProtocolError(f"expected 1 or 2 frames, got {len(frames)}")
    try:
        msg = _decoder.decode(frames[0])
    except msgspec.DecodeError as exc:  # ValidationError is a subclass
        raise ProtocolError(str(exc)) from None
    payload = frames[1] if len(frames) == 2 else None
    if msg.carries_payload and payload is None:
        raise ProtocolError(f"{type(msg).__name__} needs a payload frame")
    return msg, payload


def type_name(msg: Msg) -> str:
    return type(msg).__name__

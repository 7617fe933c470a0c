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

from typing import Union

import msgspec

from ivyzmq.protocol.base import *        # noqa: F401,F403 - the catalogue is one namespace
from ivyzmq.protocol.base import Msg, ProtocolError
from ivyzmq.protocol.ivy import *         # noqa: F401,F403
from ivyzmq.protocol.managers import *    # noqa: F401,F403
from ivyzmq.protocol.members import *     # noqa: F401,F403
from ivyzmq.protocol.recovery import *    # noqa: F401,F403
from ivyzmq.protocol.tools import *       # noqa: F401,F403


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

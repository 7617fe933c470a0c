"""The simulated clients' side (ivyzmq/sim/world.py drives them): each client's state, and
how a cas's or an add's reply becomes its history record."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Client:
    node: int
    left: int                      # operations still to issue (the last `pages` are probes)
    counter: int = 0
    current: tuple | None = None   # (opid, kind, page, value, start, expected)
    seen: dict = field(default_factory=dict)   # page -> the last value this client saw


VALUE_SIZE = 16   # bytes a client writes at offset 0: its unique value, zero-padded


def padded(value: str) -> bytes:
    return value.encode().ljust(VALUE_SIZE, b"\0")


def atomic(kind: str, expected: str, data: bytes | None) -> dict:
    """The history fields of a cas or an add; `data` is its reply if it ended ok."""
    if kind == "cas":
        return {"expected": expected, "swapped": None if data is None else data[:1] == b"\1"}
    if kind == "add":
        return {"delta": 1, "result": None if data is None else
                int.from_bytes(data, "little", signed=True)}
    return {}

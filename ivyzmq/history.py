"""Record of the operations clients performed on the shared memory.

The shared memory is a set of numbered pages and each page behaves as a
register: read, write and the atomic cas and add.  Workloads record every
operation they issue, with the interval of monotonic time during which it was
outstanding and how it ended, so that `ivyzmq.checker` can later decide
whether the run was linearizable.

Histories are stored as JSON Lines (one `Op` per line) so that a run that
crashes part way still leaves every completed line readable, and so that the
files can be inspected with ordinary text tools.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable
from typing import Literal

import msgspec

__all__ = ["OUTCOMES", "History", "HistoryError", "Op", "counts", "load", "save_ops"]

Kind = Literal["read", "write", "cas", "add"]
Outcome = Literal["ok", "failed", "unknown"]
OUTCOMES = ("ok", "failed", "unknown")


class HistoryError(Exception):
    """A history file could not be read or contains a malformed line."""


class Op(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One operation on one page, as observed by the client that issued it.

    `value` is the value written (for a write) or the value returned (for an
    ok read); `""` is the initial value of every page.  `start` and `end` are
    `time.monotonic()` seconds: `start` is taken before the request is sent,
    `end` after the reply is received, so the op's real effect lies somewhere
    inside `[start, end]`.  `end` is None when the op never returned.

    `outcome` is "ok" (it returned successfully), "failed" (it definitely had
    no effect) or "unknown" (e.g. a timeout: it may or may not have taken
    effect, possibly even after the client gave up).

    The atomic operations use the fields after `outcome`, which default so
    that read and write records (and files written before they existed) stay
    as they were; a field left at its default is not written to the file.

    * kind "cas" (compare and swap): `expected` is the value compared with
      the page's, `value` the new value; `swapped` says whether it swapped,
      and is None unless the outcome is "ok".
    * kind "add": `delta` is added to the page's integer (8 bytes, signed,
      wrapping around), and `result` is the value after the add, None
      unless the outcome is "ok" (an ok add may leave it None when the
      result was not seen).  `value` is unused ("").  A page that has adds
      is an integer register whose counter starts at 0: the reads, writes
      and cas of such a page record integers as decimal strings ("-12"),
      and the initial "" counts as 0.
    """

    client: int
    node: int
    page: int
    kind: Kind
    value: str
    start: float
    end: float | None
    outcome: Outcome
    expected: str = ""
    swapped: bool | None = None
    delta: int = 0
    result: int | None = None

    def __post_init__(self) -> None:
        # Checked here so that both hand-built ops and decoded lines are
        # rejected early, with a message that names the offending field.
        if not math.isfinite(self.start):
            raise ValueError(f"field `start` must be finite, got {self.start!r}")
        if self.end is not None:
            if not math.isfinite(self.end):
                raise ValueError(f"field `end` must be finite, got {self.end!r}")
            if self.end < self.start:
                raise ValueError(
                    f"field `end` ({self.end!r}) is before `start` ({self.start!r})"
                )
        elif self.outcome == "ok":
            raise ValueError("field `end` is null but `outcome` is 'ok'")
        self._check_atomic_fields()

    def _check_atomic_fields(self) -> None:
        """Each of the fields of cas and add belongs to its kind only."""
        for name, kind, unset in (("expected", "cas", ""), ("swapped", "cas", None),
                                  ("delta", "add", 0), ("result", "add", None)):
            if getattr(self, name) != unset and self.kind != kind:
                raise ValueError(f"field `{name}` is only for kind {kind!r}")
        for name in ("swapped", "result"):
            if getattr(self, name) is not None and self.outcome != "ok":
                raise ValueError(f"field `{name}` must be null unless `outcome` is 'ok'")


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Op)


class History:
    """Thread-safe, append-only list of ops.

    Workloads record from many client threads at once, so appends take a
    lock; `ops()` returns a snapshot so the caller never sees a list that is
    still growing.
    """

    def __init__(self, ops: Iterable[Op] = ()) -> None:
        self._lock = threading.Lock()
        self._ops: list[Op] = list(ops)

    def append(self, op: Op) -> None:
        """Record one finished (or abandoned) op."""
        with self._lock:
            self._ops.append(op)

    def ops(self) -> list[Op]:
        """A snapshot copy of the ops recorded so far, in recording order."""
        with self._lock:
            return list(self._ops)

    def __len__(self) -> int:
        with self._lock:
            return len(self._ops)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the ops recorded so far to `path` as JSON Lines."""
        save_ops(path, self.ops())


def counts(ops: Iterable[Op]) -> dict[str, int]:
    """How many ops ended ok, failed and unknown."""
    out = dict.fromkeys(OUTCOMES, 0)
    for op in ops:
        out[op.outcome] += 1
    return out


def save_ops(path: str | os.PathLike[str], ops: Iterable[Op]) -> None:
    """Write `ops` to `path` as JSON Lines, one op per line."""
    with open(path, "wb") as f:
        for op in ops:
            f.write(_encoder.encode(op))
            f.write(b"\n")


def load(path: str | os.PathLike[str]) -> list[Op]:
    """Read a JSON Lines history written by `save_ops` / `History.save`.

    Blank lines are ignored.  Any other problem raises `HistoryError` with a
    message of the form "PATH:LINE: what is wrong", naming the field where
    msgspec can tell, so a broken recorder is easy to find.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise HistoryError(f"{os.fspath(path)}: cannot read: {e.strerror or e}") from e
    ops: list[Op] = []
    for lineno, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            ops.append(_decoder.decode(line))
        except msgspec.ValidationError as e:
            raise HistoryError(f"{os.fspath(path)}:{lineno}: invalid op: {e}") from e
        except msgspec.DecodeError as e:
            raise HistoryError(f"{os.fspath(path)}:{lineno}: not valid JSON: {e}") from e
    return ops

"""The register a page is, as the linearizability checker sees it.

A page starts as "" and supports read, write and compare-and-swap of string
values; a page that has adds is instead an integer register starting at 0
(see `ivyzmq.history.Op`).  Each recorded op becomes a *step*: a code and
two arguments, and `apply` says what the step does to a register value, or
that the step cannot happen in that state.  This module also holds what the
checker's parts share: the per-page result and how an op is described in a
verdict.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import msgspec

from ivyzmq.history import Op

__all__ = ["ADD", "CAS", "CAS_ANY", "CAS_NOT", "INITIAL", "READ", "WRITE", "NotAnInteger",
           "PageResult", "apply", "describe", "observes", "steps"]

INITIAL = ""
"""The value of a page nobody wrote (0 on an integer page)."""

READ, WRITE, CAS, CAS_NOT, CAS_ANY, ADD = range(6)
"""Step codes: CAS swapped, CAS_NOT compared and did not swap, CAS_ANY did
whatever the value said (its answer is unknown)."""

_INTEGER = re.compile(r"-?[0-9]+")
_WORD = 1 << 64


class PageResult(msgspec.Struct):
    """The verdict on one page: ok True, False or None (no verdict)."""

    ok: bool | None
    explanation: str = ""
    op: Op | None = None
    states: int = 0


class NotAnInteger(Exception):
    """A value on an integer page that is not a decimal integer."""

    def __init__(self, op: Op, text: str) -> None:
        super().__init__(text)
        self.op = op
        self.text = text


def _time(t: float | None) -> str:
    if t is None:
        return "?"
    return f"{t:.6f}".rstrip("0").rstrip(".")


def describe(op: Op) -> str:
    """One op in words, for a verdict: what, by whom, with which values, when."""
    if op.kind == "cas":
        swapped = {True: " (swapped)", False: " (not swapped)", None: ""}[op.swapped]
        what = f"cas by client {op.client} of {op.expected!r} -> {op.value!r}{swapped}"
    elif op.kind == "add":
        result = "" if op.result is None else f" (-> {op.result})"
        what = f"add by client {op.client} of {op.delta:+d}{result}"
    else:
        what = f"{op.kind} by client {op.client} of {op.value!r}"
    return f"{what} at [{_time(op.start)}, {_time(op.end)}]"


def _number(op: Op, text: str) -> int:
    if text == INITIAL:
        return 0
    if not _INTEGER.fullmatch(text):
        raise NotAnInteger(op, text)
    return int(text)


def _step(op: Op, integer: bool) -> tuple[int, object, object]:
    val = (lambda text: _number(op, text)) if integer else (lambda text: text)
    if op.kind == "read":
        return READ, val(op.value), None
    if op.kind == "write":
        return WRITE, val(op.value), None
    if op.kind == "cas":
        code = CAS_ANY if op.swapped is None else CAS if op.swapped else CAS_NOT
        return code, val(op.expected), val(op.value)
    return ADD, op.delta, op.result


def steps(ops: Sequence[Op], integer: bool) -> list[tuple[int, object, object]]:
    """The step of each op; on an integer page the values become ints (or raise
    `NotAnInteger`)."""
    return [_step(op, integer) for op in ops]


def apply(code: int, a: object, b: object, state: object) -> object:
    """The register's value after the step, or None if the step cannot happen when
    the register holds `state`."""
    if code == READ:
        return state if state == a else None
    if code == WRITE:
        return a
    if code == CAS:
        return b if state == a else None
    if code == CAS_NOT:
        return state if state != a else None
    if code == CAS_ANY:
        return b if state == a else state
    total = (state + a + (1 << 63)) % _WORD - (1 << 63)  # type: ignore[operator]
    return total if b is None or total == b else None


def observes(code: int, a: object, b: object) -> bool:
    """Whether the step, wherever it can happen, leaves the register as it was (a
    read, a cas that did not swap or swaps a value for itself, an add of 0)."""
    return code in (READ, CAS_NOT) or (code == CAS and a == b) or \
        (code == ADD and a % _WORD == 0)  # type: ignore[operator]

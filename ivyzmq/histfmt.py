"""History files in other formats than ours: Jepsen's, for `ivy check --format`.

* `jsonl`: ours (`ivyzmq.history.load`).
* `edn`: a Jepsen history, one map per line or one vector (or list) of maps, e.g.
  `{:type :invoke, :f :cas, :value [1 2], :process 3, :time 123, :index 5}`.
* `jepsen-log`: the op lines of an older Jepsen log,
  `INFO  jepsen.util - 3<TAB>:invoke<TAB>:cas<TAB>[1 2]` (process, type, function, value;
  fields after the value are ignored, and so are lines without `jepsen.util - `).

Each process's invoke is paired with its next completion: `:ok`, `:fail` (the op had no
effect) or `:info` (unknown: it may or may not take effect).  An invoke never completed is
unknown too, and so is one followed by another invoke of the same process.  Functions:
`:read` (the value is the completion's), `:write`, `:cas` (`[expected new]`; ok means it
swapped) and `:add` (a delta; the page becomes a counter).  Events whose process is not an
integer (`:nemesis`) are skipped.  Values: nil is the initial value "", integers are
written in decimal, strings stay, true/false and keywords become their text.  Jepsen
writes the events in real-time order, so an op's start and end are the line numbers of its
invoke and completion (so that a verdict points into the file), or, when some line holds
more than one event, their positions among the events.

Everything is on page 0, unless every value is a `[key value]` pair (Jepsen's
independent keys, e.g. `:value [3 [1 2]]` for a cas): then the key, a natural number, is
the page.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import NamedTuple

from ivyzmq import edn
from ivyzmq.edn import EdnError, Keyword
from ivyzmq.history import HistoryError, Op, load

__all__ = ["FORMATS", "load_history"]

FORMATS = ("jsonl", "edn", "jepsen-log")
_TYPES = ("invoke", "ok", "fail", "info")
_FUNCTIONS = ("read", "write", "cas", "add")
_LOG_LINE = re.compile(r"jepsen\.util\s+-\s+(.*)$")
_PROCESS = re.compile(r"-?[0-9]+|:[\w.\-]+")


class _Event(NamedTuple):
    line: int
    process: int
    type: str
    f: str
    value: object


class _Bad(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def load_history(path: str | os.PathLike[str], fmt: str = "jsonl") -> list[Op]:
    """The ops of the history file at `path` in format `fmt` (one of FORMATS); any
    problem raises HistoryError, as "PATH:LINE: what is wrong" when a line is to blame."""
    if fmt == "jsonl":
        return load(path)
    if fmt not in FORMATS:
        raise HistoryError(f"unknown history format {fmt!r} (have: {', '.join(FORMATS)})")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else e
        raise HistoryError(f"{os.fspath(path)}: cannot read: {why}") from e
    try:
        events = _edn_events(text) if fmt == "edn" else _log_events(text)
        return _pair(events)
    except (_Bad, EdnError) as e:
        raise HistoryError(f"{os.fspath(path)}:{e.line}: {e.message}") from None


def _name(value: object, line: int, what: str) -> str:
    if not isinstance(value, Keyword):
        raise _Bad(line, f"{what} must be a keyword, got {value!r}")
    return value.name


def _event(line: int, process: object, type_: object, f: object, value: object) -> _Event | None:
    """The event, or None for one that is not a client's (the nemesis)."""
    if isinstance(process, bool) or not isinstance(process, int):
        return None
    kind, fn = _name(type_, line, ":type"), _name(f, line, ":f")
    if kind not in _TYPES:
        raise _Bad(line, f"unknown :type :{kind} (have: :invoke, :ok, :fail, :info)")
    if fn not in _FUNCTIONS:
        raise _Bad(line, f"unsupported :f :{fn} (this checker knows :read, :write, :cas, "
                   ":add)")
    return _Event(line, process, kind, fn, value)


def _edn_events(text: str) -> list[_Event]:
    out = []
    for line, form in edn.read_items(text):
        if not isinstance(form, dict):
            raise _Bad(line, f"expected a map (one op), got {form!r}"[:200])
        missing = [k for k in ("type", "f", "process") if Keyword(k) not in form]
        if missing:
            raise _Bad(line, "the op has no " + ", ".join(f":{k}" for k in missing))
        ev = _event(line, form[Keyword("process")], form[Keyword("type")],
                    form[Keyword("f")], form.get(Keyword("value")))
        if ev is not None:
            out.append(ev)
    return out


def _log_events(text: str) -> list[_Event]:
    out, seen = [], False
    for lineno, line in enumerate(text.splitlines(), start=1):
        m = _LOG_LINE.search(line)
        if m is None:
            seen = seen or bool(line.strip())
            continue
        rest = m.group(1)
        fields = rest.split("\t") if "\t" in rest else rest.split(None, 3)
        if not _PROCESS.fullmatch(fields[0].strip()):
            seen = True             # some other message of jepsen.util: not an op
            continue
        head = edn.read_one(fields[0], lineno)
        if len(fields) < 3:
            raise _Bad(lineno, "an op line needs process, type and function")
        value = edn.read_one(fields[3], lineno) if len(fields) > 3 and fields[3].strip() \
            else None
        ev = _event(lineno, head, edn.read_one(fields[1], lineno),
                    edn.read_one(fields[2], lineno), value)
        if ev is not None:
            out.append(ev)
    if not out and seen:
        raise _Bad(1, "no op lines (INFO jepsen.util - PROCESS<TAB>TYPE<TAB>F<TAB>VALUE)")
    return out


def _keyed(events: Iterable[_Event]) -> bool:
    """Whether every value is a [key value] pair (and there is one)."""
    found = False
    for ev in events:
        if ev.value is None:
            continue
        v = ev.value
        if not (isinstance(v, list) and len(v) == 2 and isinstance(v[0], int)
                and not isinstance(v[0], bool)):
            return False
        if (ev.f == "cas") != isinstance(v[1], list):    # a cas's value is a pair in itself
            return False
        found = True
    return found


def _pair(events: list[_Event]) -> list[Op]:
    """Each invoke with its completion (see the module's docstring)."""
    keyed = _keyed(events)
    by_line = all(a.line < b.line for a, b in zip(events, events[1:]))
    pending: dict[int, tuple[int, _Event]] = {}
    ops = []
    for pos, ev in enumerate(events):
        pos = ev.line if by_line else pos
        if ev.type == "invoke":
            if ev.process in pending:   # never completed: it may or may not have happened
                ops.append(_op(*pending.pop(ev.process), None, keyed))
            pending[ev.process] = (pos, ev)
            continue
        if ev.process not in pending:
            raise _Bad(ev.line, f":{ev.type} of process {ev.process}, which invoked nothing")
        start, invoke = pending.pop(ev.process)
        if invoke.f != ev.f:
            raise _Bad(ev.line, f":{ev.type} :{ev.f} completes the :invoke :{invoke.f} of "
                       f"line {invoke.line}")
        ops.append(_op(start, invoke, (pos, ev), keyed))
    ops.extend(_op(start, invoke, None, keyed) for start, invoke in pending.values())
    return ops


def _text(value: object, line: int) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, Keyword):
        return f":{value.name}"
    raise _Bad(line, f"unsupported value {value!r}")


def _split(value: object, keyed: bool, line: int) -> tuple[int, object]:
    """(page, value) of an op's value."""
    if not keyed or value is None:
        return 0, value
    key, inner = value      # type: ignore[misc]
    if key < 0:
        raise _Bad(line, f"key {key} is negative (keys are pages)")
    return key, inner


def _op(start: int, invoke: _Event, done: tuple[int, _Event] | None, keyed: bool) -> Op:
    end, outcome = (None, "unknown") if done is None or done[1].type == "info" else \
        (done[0], "ok" if done[1].type == "ok" else "failed")
    page, arg = _split(invoke.value, keyed, invoke.line)
    kw: dict = {}
    if invoke.f == "read":
        if done is not None and outcome == "ok":
            key, arg = _split(done[1].value, keyed, done[1].line)
            page = key if done[1].value is not None else page
            kw["value"] = _text(arg, done[1].line)
    elif invoke.f == "write":
        kw["value"] = _text(arg, invoke.line)
    elif invoke.f == "cas":
        if not (isinstance(arg, list) and len(arg) == 2):
            raise _Bad(invoke.line, f"a cas needs [expected new], got {arg!r}")
        kw.update(expected=_text(arg[0], invoke.line), value=_text(arg[1], invoke.line),
                  swapped=True if outcome == "ok" else None)
    else:
        if isinstance(arg, bool) or not isinstance(arg, int):
            raise _Bad(invoke.line, f"an add needs an integer, got {arg!r}")
        kw["delta"] = arg
    kw.setdefault("value", "")
    return Op(client=invoke.process, node=0, page=page, kind=invoke.f,  # type: ignore[arg-type]
              start=float(start), end=None if end is None else float(end),
              outcome=outcome, **kw)  # type: ignore[arg-type]

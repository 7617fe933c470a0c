"""`ivy check HISTORY_FILE`: is a recorded history linearizable? Each page is checked as a
read/write register (initial value ""); failed ops are ignored; unknown writes may or may
not have taken effect.

Exit status: 0 linearizable, 1 not linearizable, 2 unreadable or malformed history (or bad
arguments), 3 search budget exceeded.
"""
from __future__ import annotations

from dataclasses import dataclass

from ivyzmq import args as A
from ivyzmq.programs import Fail, Result

NAME = "check"
HELP = "check a history file for linearizability"
NEEDS_CLUSTER = False


def add_arguments(p) -> None:
    from ivyzmq.checker import DEFAULT_MAX_STATES
    p.add_argument("history", metavar="HISTORY_FILE",
                   help="history in JSON Lines, one op per line")
    p.add_argument("--max-states", type=A.count, default=DEFAULT_MAX_STATES, metavar="N",
                   help=f"give up on a page after N search states (default "
                        f"{DEFAULT_MAX_STATES})")
    p.epilog = ("exit status: 0 linearizable, 1 not linearizable, 2 unreadable or malformed "
                "history, 3 search budget exceeded")


@dataclass
class CheckOutcome(Result):
    result: object

    def __post_init__(self) -> None:
        ok = self.result.ok
        self.status = 0 if ok else 1 if ok is False else 3

    def text(self) -> str:
        from ivyzmq.checker import verdict_text
        return verdict_text(self.result)

    def json(self) -> dict:
        import msgspec
        return msgspec.to_builtins(self.result)


def run(args) -> CheckOutcome:
    from ivyzmq.checker import check
    from ivyzmq.history import HistoryError, load
    try:
        ops = load(args.history)
    except HistoryError as exc:
        raise Fail(f"error: {exc}", 2) from None
    return CheckOutcome(check(ops, max_states=args.max_states))

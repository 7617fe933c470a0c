"""`ivy check HISTORY_FILE [--format jsonl|edn|jepsen-log]`: is a recorded history
linearizable? Each page is checked as a register (read, write, cas; initial value "", or a
counter from 0 on a page with adds); failed ops are ignored; unknown ops may or may not
have taken effect. Besides our JSON Lines, Jepsen's EDN histories and its older log lines
are read (`ivyzmq.histfmt`).

Exit status: 0 linearizable, 1 not linearizable, 2 no verdict (the search budget ran out),
or an unreadable or malformed history (the message names the line), or bad arguments.
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
    from ivyzmq.histfmt import FORMATS
    p.add_argument("history", metavar="HISTORY_FILE",
                   help="the history: ours in JSON Lines (one op per line), or Jepsen's")
    p.add_argument("--format", choices=FORMATS, default="jsonl",
                   help="jsonl (ours, the default), edn (a Jepsen history: maps, one per "
                        "line or in a vector) or jepsen-log (lines 'INFO jepsen.util - "
                        "PROCESS TYPE F VALUE', tab separated)")
    p.add_argument("--max-states", type=A.count, default=DEFAULT_MAX_STATES, metavar="N",
                   help=f"give up on a page after N search states (default "
                        f"{DEFAULT_MAX_STATES})")
    p.epilog = ("exit status: 0 linearizable, 1 not linearizable, 2 no verdict (search "
                "budget exceeded) or an unreadable or malformed history")


@dataclass
class CheckOutcome(Result):
    result: object

    def __post_init__(self) -> None:
        ok = self.result.ok
        self.status = 0 if ok else 1 if ok is False else 2

    def text(self) -> str:
        from ivyzmq.checker import verdict_text
        return verdict_text(self.result)

    def json(self) -> dict:
        import msgspec
        return msgspec.to_builtins(self.result)


def run(args) -> CheckOutcome:
    from ivyzmq.checker import check
    from ivyzmq.histfmt import load_history
    from ivyzmq.history import HistoryError
    try:
        ops = load_history(args.history, args.format)
    except HistoryError as exc:
        raise Fail(f"error: {exc}", 2) from None
    return CheckOutcome(check(ops, max_states=args.max_states))

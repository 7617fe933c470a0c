"""The programs of the `ivy` command that drive or check a cluster, one module each.

A program module declares `NAME`, `HELP`, `add_arguments(parser)` and `run(args)`, which
returns a `Result`: the `ivy` command prints its `text()` (or its `json()` with --json) and
exits with its `status`. The registry below is the only list of them; `ivy` builds a
subcommand from each. A program reaches daemons only through the client API and
`ivyzmq.deploy`.
"""
from __future__ import annotations

import importlib
import json
from types import ModuleType

NAMES = ("workload", "homework", "experiment", "chaos", "check", "sim", "keys")


class Result:
    """What a program found. Subclasses fill `text` and `json`; `status` is the exit code
    (0 success, 1 a check failed)."""

    status: int = 0

    def text(self) -> str:
        raise NotImplementedError

    def json(self) -> dict:
        raise NotImplementedError

    def render(self, as_json: bool) -> str:
        return json.dumps(self.json(), indent=1) if as_json else self.text()


def load(name: str) -> ModuleType:
    return importlib.import_module(f"ivyzmq.programs.{name}")


class Fail(Exception):
    """A failure to report in one line (after the program's name), with an exit status."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status

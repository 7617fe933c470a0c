"""Progress of long runs (simulator seeds, experiments, chaos, workloads, the homework): a bar
with its rate and the time left, drawn with rich on stderr while it is a terminal.

Nothing at all when stderr is not a terminal (piped, redirected to a file) or in CI (`CI`
set to true): their output is read by programs and logs, where a bar is noise. stdout is
never touched, so `--json` output stays clean either way. A bar is thread-safe: client
threads advance it after each operation.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator


def wanted(stream=None) -> bool:
    """Draw bars on `stream` (default stderr): only a terminal, and never in CI."""
    stream = sys.stderr if stream is None else stream
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Quiet:
    """The bar when nothing is drawn: every call does nothing."""

    def advance(self, n: float = 1) -> None:
        pass

    def update(self, completed: float) -> None:
        pass


class Bar:
    """One task of a rich Progress."""

    def __init__(self, progress, task):
        self._progress, self._task = progress, task

    def advance(self, n: float = 1) -> None:
        self._progress.advance(self._task, n)

    def update(self, completed: float) -> None:
        self._progress.update(self._task, completed=completed)


def _columns(unit: str) -> list:
    from rich.progress import (BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.1f} {unit}/s")

    return [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            Rate(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]


@contextmanager
def bar(what: str, total: float, unit: str = "ops") -> Iterator[Bar | Quiet]:
    """A bar for `total` steps of `unit` (drawn only when `wanted()`)."""
    if not wanted():
        yield Quiet()
        return
    from rich.console import Console
    from rich.progress import Progress
    with Progress(*_columns(unit), console=Console(stderr=True), transient=True,
                  refresh_per_second=5) as progress:
        yield Bar(progress, progress.add_task(what, total=total))


@contextmanager
def timed(what: str, seconds: float) -> Iterator[None]:
    """A bar that fills with the clock, for a run of a known duration (chaos)."""
    with bar(what, round(seconds), "s") as b:
        if isinstance(b, Quiet):
            yield
            return
        stop = threading.Event()
        t0 = time.monotonic()

        def tick() -> None:
            while not stop.wait(0.2):
                b.update(min(seconds, time.monotonic() - t0))
        thread = threading.Thread(target=tick, name="progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(1.0)

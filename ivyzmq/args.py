"""Command-line values of the `ivy` command, checked where they are parsed.

Each kind of value has one `type=` function here, so a count of 0, a share of 2 or a
duration of `nan` stops the command with argparse's one line naming the option (exit 2)
before anything runs, instead of running a workload of no clients or reporting a history
nobody asked for. A value bounded by the cluster (a page number, a count of pages) can be
checked only once the config is loaded: the subcommand declares the bound with `fits`, and
`check_fits` refuses a value beyond it with `OptionError`, one line naming the option.
"""
from __future__ import annotations

import argparse
import typing
import math

BOUNDS = "config_bounds"     # the parser default holding a subcommand's declared bounds


class OptionError(ValueError):
    """A command-line value that parsed but does not fit the config (exit status 2)."""


def _number(kind, text: str, what: str, ok) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def count(text: str) -> int:
    """How many of something: clients, operations, seeds, jobs, cycles."""
    return _number(int, text, "a whole number of at least 1", lambda v: v >= 1)


def natural(text: str) -> int:
    """A seed or an offset: 0 or more."""
    return _number(int, text, "a whole number of at least 0", lambda v: v >= 0)


def mix(text: str) -> dict[str, float]:
    """An operation mix such as read=4,write=2,cas=2,add=2: weights by kind."""
    from ivyzmq.history import Kind
    kinds, out = typing.get_args(Kind), {}
    for part in text.split(","):
        name, _, weight = part.strip().partition("=")
        if name not in kinds:
            raise argparse.ArgumentTypeError(f"unknown operation {name!r} in {text!r} "
                                             f"(known: {', '.join(kinds)})")
        out[name] = _number(float, weight, f"a weight of at least 0 for {name}",
                            lambda v: v >= 0)
    if not sum(out.values()) > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the mix needs a positive weight")
    return out


def share(text: str) -> float:
    """A fraction or a probability."""
    return _number(float, text, "a number from 0 to 1", lambda v: 0.0 <= v <= 1.0)


def duration(text: str) -> float:
    """Seconds, more than none and fewer than forever."""
    return _number(float, text, "a positive number of seconds",
                   lambda v: math.isfinite(v) and v > 0)


# What a value may be bounded by: how to read the bound off a Cluster, and how to say it.
SIZES = {
    "nodes": (lambda c: len(c.nodes), "{} nodes"),
    "pages": (lambda c: c.pages, "{} pages"),
    "page_size": (lambda c: c.page_size, "pages of {} bytes"),
}


def fits(p: argparse.ArgumentParser, option: str, size: str, *, index: bool = False,
         default: int | None = None) -> None:
    """Declare that `option` (a positional's name or `--flag`) must fit the config's
    `size`: an index below it, or else a count up to it. A count left out on the command
    line becomes `default`, or the config's size if that is smaller, so a default never
    fails on a small cluster."""
    bounds = p.get_default(BOUNDS) or []
    p.set_defaults(**{BOUNDS: [*bounds, (option, size, index, default)]})


def check_fits(args: argparse.Namespace, cluster) -> None:
    """Refuse a value beyond its declared bound (OptionError); fill in the left-out counts."""
    for option, size, index, default in getattr(args, BOUNDS, None) or []:
        dest = option.lstrip("-").replace("-", "_")
        value = getattr(args, dest)
        limit = SIZES[size][0](cluster)
        has = SIZES[size][1].format(limit)
        if value is None:
            setattr(args, dest, None if default is None else min(default, limit))
        elif index and not 0 <= value < limit:
            raise OptionError(f"{option} {value} out of range 0..{limit - 1} "
                              f"({args.config} has {has})")
        elif not index and value > limit:
            raise OptionError(f"{option} {value}: more than the {has} of {args.config}")

"""Deliberately broken protocol variants, to show that the simulator and the checker catch
real mistakes.

Who can select them: the simulator (`World(..., bugs=...)`, `run_plan`/`run_seed`/`run_many`
in ivyzmq/sim/runner.py and the hidden `ivy sim --bug NAME`) and the tests. The simulator
passes the names to the cores it builds, as the `bugs` argument of `Manager` and `Node`;
no configuration file, daemon or other command reaches them. Each name is checked at one
place in the cores:

"""
from __future__ import annotations

from collections.abc import Iterable

_DESCRIPTIONS: dict[str, str] = {
    "skip_invalidation": "the manager forgets to invalidate the last member of a copy_set",
    "accept_old_epoch": "nodes obey messages from a manager of an older epoch",
    "trust_replica": "a new active manager serves its replicated table without asking the "
                     "nodes (with replicate_after_act this loses writes)",
    "replicate_after_act": "the active manager sends a membership step's messages before "
                           "its backups have it (a page step's go out at once anyway)",
    "no_dedupe": "the manager runs a retried request again",
    "forward_each_confirmation": "one WriteForward per InvalidateConfirmation (a classic trap)",
    "no_lease": "a node answers local hits without a lease (a node declared dead while it "
                "was paused serves its old copies when it wakes)",
    "declare_alone": "a manager that hears no other manager declares silent nodes dead (the "
                     "old side of a partition lets writes skip a node that follows the new "
                     "side and still reads its copy)",
    "ack_before_replica": "with replicas, an owner's write returns before its replica "
                          "holders have it",
    "unfenced_nodes": "nodes accept node messages of an older epoch (a dead owner's late "
                      "page or update is taken after its replica was promoted)",
}

NAMES: tuple[str, ...] = tuple(_DESCRIPTIONS)

# The list in the docstring is made from the table above, so the names are written once.
__doc__ += "".join(f"  {name:<26} {text}\n" for name, text in _DESCRIPTIONS.items())


def check(names: Iterable[str]) -> frozenset[str]:
    """The names as a set, or ValueError naming any that is not a broken variant (a typo
    would otherwise switch nothing on, and a test meant to fail would pass)."""
    chosen = frozenset(names)
    unknown = sorted(chosen - set(NAMES))
    if unknown:
        raise ValueError(f"unknown broken variant(s): {', '.join(unknown)} "
                         f"(known: {', '.join(NAMES)})")
    return chosen

"""Deliberately broken protocol variants, switched on only by tests and the simulator's
self-check, to show that the simulator and the checker catch real mistakes.

Nothing in the configuration or the command line reaches this set. Each name is checked at
one place in the cores:

  skip_invalidation   the manager forgets to invalidate the last member of a copy_set
  accept_old_epoch    nodes obey messages from a manager of an older epoch
  trust_replica       a new active manager serves from its replicated table alone, without
                      asking the nodes (together with replicate_after_act this loses writes)
  replicate_after_act the active manager sends a step's messages before its backups have it
  no_dedupe           the manager runs a retried request again
  forward_each_confirmation  one WriteForward per InvalidateConfirmation (a classic trap)
"""
ENABLED: set[str] = set()

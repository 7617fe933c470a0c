"""The manager's role machine as a table, in the manner of the zguide's Binary Star.

Roles: passive (a backup, or a primary that is not serving: follows the active manager's log),
recovering (has taken a new epoch and waits for every node's page table), active (serves).

Events:
  alone         the primary sees no manager serving (start-up, or every other one is silent)
  vote          a node asked this passive manager while no earlier manager is alive
                and none serves: the node's request is the vote that lets a backup take over
  recovered     every live node has reported its page table (and the freshest peer's
                records are in; see manager/members.py)
  newer_epoch   a manager with a higher epoch serves (heard in a heartbeat, a replication
                message, or the epoch a node carries)
  primary_back  (backup serving, failback on) the primary is alive, passive and caught up
  handback      (passive primary) the serving backup hands control back
  members_changed  (serving, replicas >= 1) a node was declared dead, or a node joined
                while some page has fewer replica holders than it should: a new term's
                recovery round moves the dead node's pages to their replicas and picks new
                holders (section 6.2)
  refused       a node refused our Recover: it is at our epoch already, from this manager's
                previous life (a restarted manager cannot know the epochs it used); a node
                at a newer epoch makes a newer_epoch event instead

Every pair is listed. None as the action means the event is dropped in that role - for
example a vote reaching a manager that already serves is just a request to serve.
"""
from __future__ import annotations

TABLE: dict[tuple[str, str], tuple[str, str | None]] = {
    ("passive", "alone"): ("recovering", "_begin_recovery"),
    ("passive", "vote"): ("recovering", "_begin_recovery"),
    ("passive", "recovered"): ("passive", None),        # a late report after stepping down
    ("passive", "newer_epoch"): ("passive", None),      # we follow whoever serves
    ("passive", "primary_back"): ("passive", None),     # only a serving backup hands back
    ("passive", "handback"): ("recovering", "_begin_recovery"),
    ("passive", "refused"): ("passive", None),          # a late answer after stepping down
    ("passive", "members_changed"): ("passive", None),  # only the serving manager decides

    ("recovering", "alone"): ("recovering", None),
    ("recovering", "vote"): ("recovering", None),
    ("recovering", "recovered"): ("active", "_serve"),
    ("recovering", "newer_epoch"): ("passive", "_step_down"),
    ("recovering", "primary_back"): ("recovering", None),
    ("recovering", "handback"): ("recovering", None),   # already taking over
    ("recovering", "refused"): ("recovering", "_begin_recovery"),   # again, newer epoch
    ("recovering", "members_changed"): ("recovering", None),   # this round sees it already

    ("active", "alone"): ("active", None),
    ("active", "vote"): ("active", None),
    ("active", "recovered"): ("active", None),          # duplicate report: impossible twice
    ("active", "newer_epoch"): ("passive", "_step_down"),
    ("active", "primary_back"): ("passive", "_hand_back"),
    ("active", "handback"): ("active", None),           # a stale handback from an old term
    ("active", "refused"): ("active", None),            # a late refusal of an earlier round
    ("active", "members_changed"): ("recovering", "_begin_recovery"),
}

ROLES = ("passive", "recovering", "active")
EVENTS = ("alone", "vote", "recovered", "newer_epoch", "primary_back", "handback", "refused",
          "members_changed")


def transition(role: str, event: str) -> tuple[str, str | None]:
    return TABLE[(role, event)]

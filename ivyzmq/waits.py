"""Why a read or write timed out, in one line that names the culprit.

After a time-out (never before: nothing here is on the hot path) the client asks the node
what the page waits for (`WaitQuery`): a fault sent to a manager, its lease, or its
admission. It then asks that manager what the page's operation waits for (`PageQuery`):
the owner's page, copy holders' invalidations, or the lock held by another fault. Last it
checks that the process waited on answers at all (`StatusQuery`), so that a paused owner,
a dead manager and a paused node read differently. Each question may take `PROBE`
seconds. `explain` puts the answers into words; client.py does the asking.
"""
from __future__ import annotations

from typing import Callable

import msgspec       # not dataclasses: that costs the client's import 10 ms (inspect)

from ivyzmq import config as C
from ivyzmq import protocol as P

PROBE = 0.5     # seconds each question after a time-out may take

# Ask a daemon at an endpoint: its answer, an ErrorReply if it refused, None if silent.
Ask = Callable[[str, P.Msg], "P.Msg | None"]
SILENT = "does not answer (paused or dead)"


class Why(msgspec.Struct, frozen=True):
    """The line for the user, the daemon waited on (`peer`, a daemon name such as
    "node1" or "primary") and for how many seconds (`since`)."""

    text: str
    peer: str | None = None
    since: float | None = None


class _Names:
    """How the line names processes; without a config, by pid, and nobody else is asked."""

    def __init__(self, cluster: C.Cluster | None, ask: Ask):
        self.cluster, self._ask = cluster, ask

    def daemon(self, pid: int) -> str:
        """A node's or manager's daemon name ("node1", "primary"); "pid 3" for a manager
        of a cluster whose config is not known."""
        if self.cluster is not None and 0 <= pid < len(self.cluster.daemon_names()):
            return self.cluster.name(pid)
        return f"node{pid}" if self.cluster is None else f"pid {pid}"

    def manager(self, pid: int, long: bool = False) -> str:
        name = self.daemon(pid) if self.cluster is not None else f"pid {pid}"
        if not long:
            return name
        return f"manager {name}" + ("" if name.startswith("pid") else f" (pid {pid})")

    def node_at(self, endpoint: str) -> int | None:
        if self.cluster is not None:
            for pid in self.cluster.node_ids:
                if self.cluster.endpoint(pid) == endpoint:
                    return pid
        return None

    def ask(self, pid: int, msg: P.Msg) -> P.Msg | None | bool:
        """The daemon's answer; False when there is no config to find it by."""
        if self.cluster is None or not 0 <= pid < len(self.cluster.daemon_names()):
            return False
        return self._ask(self.cluster.endpoint(pid), msg)


def _s(seconds: float | None) -> str:
    return f"{seconds:.1f} s"


def explain(ask: Ask, cluster: C.Cluster | None, endpoint: str, page: int,
            timeout: float) -> Why:
    """Why the operation on `page` through the node at `endpoint` got no answer within
    `timeout` seconds."""
    names = _Names(cluster, ask)
    w = ask(endpoint, P.WaitQuery(page=page))
    if not isinstance(w, P.WaitReply):
        pid = names.node_at(endpoint)
        who = endpoint if pid is None else f"node {pid} ({endpoint})"
        why = "it does not answer a question either: it is paused or dead" if w is None \
            else f"it does not say why ({getattr(w, 'error', w)})"
        return Why(f"page {page}: no answer from {who} within {timeout:g} s, and {why}",
                   peer=endpoint if pid is None else names.daemon(pid), since=timeout)
    node = f"node {w.sender}"
    if w.waits == "nothing":
        return Why(f"page {page}: no answer from {node} within {timeout:g} s, though nothing "
                   "waits on the page there now (the operation may have ended just after)")
    if w.waits == "fault":
        return _fault(names, w, page)
    return _membership(names, w, page)


def _membership(names: _Names, w: P.WaitReply, page: int) -> Why:
    """A local operation that waits for the node's lease or its admission."""
    mgr = names.manager(w.manager, long=True)
    if w.waits == "lease":
        renewed = "" if w.lease is None else f", last renewed {_s(w.lease)} ago"
        head = f"page {page}: node {w.sender} holds the page but waits for its lease " \
               f"from {mgr}{renewed}"
    else:
        head = f"page {page}: node {w.sender} is not admitted yet and waits for {mgr} " \
               "to admit it"
    reply = names.ask(w.manager, P.StatusQuery(rows=False))
    short = names.manager(w.manager)
    if reply is None:
        return Why(f"{head}; {short} {SILENT}", short, w.heard)
    if isinstance(reply, P.StatusReply) and not reply.serving:
        return Why(f"{head}; {short} does not serve (it is {reply.role})", short, w.heard)
    return Why(head, short, w.lease if w.waits == "lease" else w.heard)


def _fault(names: _Names, w: P.WaitReply, page: int) -> Why:
    """A fault: what the node asked its manager, then what the manager's operation waits
    on and whether that process answers."""
    mgr, short = names.manager(w.manager, long=True), names.manager(w.manager)
    head = f"page {page}: node {w.sender} asked {mgr} for a {w.kind}"
    if w.asked is not None:
        head += f" {_s(w.asked)} ago"
        if w.began is not None and w.began - w.asked > 0.1:
            head += f" (it has waited {_s(w.began)} in all)"
    since = w.began if w.began is not None else w.asked
    reply = names.ask(w.manager, P.PageQuery(page=page))
    if reply is False:
        return Why(head, short, since)
    if reply is None:
        heard = "" if w.heard is None else f" and has heard nothing from it for {_s(w.heard)}"
        return Why(f"{head}{heard}; {short} {SILENT}", short,
                   w.heard if w.heard is not None else since)
    if not isinstance(reply, P.PageReply):
        return Why(f"{head}; {short} does not say more ({getattr(reply, 'error', reply)})",
                   short, since)
    if not reply.serving:
        return Why(f"{head}; {short} does not serve (it is {reply.role})", short, since)
    if reply.record.lost:
        return Why(f"{head}; the page is lost (its owner, node {reply.record.owner}, died)",
                   names.daemon(reply.record.owner), since)
    return _operation(names, w, reply, head, since)


def _operation(names: _Names, w: P.WaitReply, reply: P.PageReply, head: str,
               since: float | None) -> Why:
    short = names.manager(w.manager)
    op = reply.op
    queued = [i for i, q in enumerate(reply.queue) if (q.requester, q.rid) == (w.sender, w.rid)]
    if op is None or (not queued and (op.requester, op.rid) != (w.sender, w.rid)):
        busy = "" if op is None else f" (the page is busy with node {op.requester}'s {op.kind})"
        return Why(f"{head}; {short} does not hold the request{busy}: it may still be on "
                   "its way", short, since)
    targets, what, verb = _waits_on(op, reply.record)
    what += "" if reply.sent is None else f" ({short} {verb} {_s(reply.sent)} ago)"
    if queued:
        head += f"; it is number {queued[0] + 1} in the queue behind node {op.requester}'s " \
                f"{op.kind}, which waits for {what}"
    else:
        head += f" and waits for {what}"
    others = [t for t in targets if t != w.sender]
    for t in others:
        if names.ask(t, P.StatusQuery(rows=False)) is None:
            return Why(f"{head}; node {t} {SILENT}", names.daemon(t), since)
    if others:
        head += f"; node {others[0]} answers but has not done its part yet"
    return Why(head, names.daemon(targets[0]) if targets else short, since)


def _waits_on(op: P.InFlight, rec: P.RecordRow) -> tuple[list[int], str, str]:
    """The nodes an in-flight operation waits on, the words for it, and for what the
    manager last sent about it."""
    if op.phase == "forwarded":
        return [rec.owner], f"the page from its owner, node {rec.owner}", \
            "forwarded the request"
    if op.phase == "invalidating":
        who = ", ".join(f"node {n}" for n in op.waiting)
        copies = "its copy" if len(op.waiting) == 1 else "their copies"
        return list(op.waiting), f"{who} to drop {copies}", "asked for it"
    return [op.requester], f"node {op.requester} to confirm the write it was granted", \
        "granted it"

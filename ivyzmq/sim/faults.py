"""How the simulated world applies each kind of fault of ivyzmq/harness/faults.py: the
`World` inherits these methods, so a fault acts on the world's processes and links."""
from __future__ import annotations

from ivyzmq.harness.faults import Fault


class FaultInjection:
    """Fault handlers of `World` (ivyzmq/sim/world.py), one per kind, in `FAULTS`."""

    def _kill_manager(self, m: int, loss: float) -> None:
        self.managers[m] = None
        self.paused.pop(m, None)
        self.roles[m] = ("down", 0)
        self._kill_links(m, loss)

    def _fault(self, f: Fault) -> None:
        self.faults_left -= 1
        self.note(str(f).strip())
        self.FAULTS[f.kind](self, f)

    def _kill_node(self, n: int, loss: float) -> None:
        """A node dies with its memory; requests its clients sent it go unanswered."""
        del self.nodes[n]
        self.paused.pop(n, None)
        self._kill_links(n, loss)

    def _kill_links(self, a: int, loss: float) -> None:
        for q in self.node_ids + self.manager_ids:
            if q != a:
                self.lose_in_flight(q, a, "receiver crashed")   # its TCP buffers are gone
                if loss and self.rng.random() < loss:
                    self.lose_in_flight(a, q, "sender crashed")
                # What it sent before dying may still arrive; a restarted process talks over
                # new connections, so its messages are not ordered behind those.
                self.fifo.pop((a, q), None)
                self.fifo.pop((q, a), None)

    def _kill(self, f: Fault) -> None:
        if self.managers.get(f.a) is not None:
            self._kill_manager(f.a, f.loss)
        elif f.a in self.nodes:
            self._kill_node(f.a, f.loss)

    def _restart(self, f: Fault) -> None:
        if f.a in self.manager_ids and self.managers.get(f.a) is None:
            self.managers[f.a] = self._new_manager(f.a)
            self.roles[f.a] = ("passive", 0)
        elif f.a in self.node_ids and f.a not in self.nodes:
            self.nodes[f.a] = self._new_node(f.a)   # a new incarnation, empty once admitted
            self.node_epoch[f.a] = 0

    def _pause(self, f: Fault) -> None:
        if self.alive(f.a):
            self.paused.setdefault(f.a, [])

    def _resume(self, f: Fault) -> None:
        held = self.paused.pop(f.a, None)
        if held is None:
            return
        # After SIGCONT a daemon may see its timers or its inbox first: try both. Messages
        # keep their order; a client's request may come before or after any of them (the
        # inbox takes connections in turn).
        if self.rng.random() < 0.5:
            self._tick_process(f.a)
        msgs = [h for h in held if h[0] == "deliver"]
        for start in (h for h in held if h[0] == "start"):
            msgs.insert(self.rng.randint(0, len(msgs)), start)
        for kind, *args in msgs:
            self._at(self.now, kind, *args)

    def _cut(self, f: Fault) -> None:
        self.cut.add(frozenset((f.a, f.b)))

    def _heal(self, f: Fault) -> None:
        self.cut.discard(frozenset((f.a, f.b)))

    def _reset(self, f: Fault) -> None:
        self.resets.add(frozenset((f.a, f.b)))

    def _slow(self, f: Fault) -> None:
        self.slow[frozenset((f.a, f.b))] = f.x

    def _fast(self, f: Fault) -> None:
        self.slow.pop(frozenset((f.a, f.b)), None)

    def _kill_on_replicate(self, f: Fault) -> None:
        self.armed.append(f)

    def _kill_on_send(self, f: Fault) -> None:
        self.armed_nodes.append(f)

    def _node_sent(self, n: int, out) -> None:
        """A node just sent `out`: the armed kill_on_send that matches one of them fires."""
        for f in self.armed_nodes:
            if any(type(msg).__name__ == f.msg for _, msg, _ in out):
                self.armed_nodes.remove(f)
                self.note(f"kill_on_send fires: node {n} sent {f.msg}")
                self._kill_node(n, f.loss)
                self.faults_left += 1
                self._at(self.now + f.x, "fault", Fault(self.now + f.x, "restart", n))
                return

    # Every kind of ivyzmq/harness/faults.py (tests/test_faults.py checks the list).
    FAULTS = {"kill": _kill, "restart": _restart, "pause": _pause, "resume": _resume,
              "cut": _cut, "heal": _heal, "reset": _reset, "slow": _slow, "fast": _fast,
              "kill_on_replicate": _kill_on_replicate, "kill_on_send": _kill_on_send}

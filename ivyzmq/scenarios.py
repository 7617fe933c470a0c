"""The homework's `make r` / `make w`: random reads or writes by random nodes on random pages,
one at a time, while the primary manager is killed (SIGKILL) and restarted at random. Prints
the message trace, the readouts, `Done in N ms` and the checker's verdict."""
from __future__ import annotations

import random
import time

from ivyzmq import protocol as P
from ivyzmq import readout
from ivyzmq.client import connect
from ivyzmq.config import Cluster
from ivyzmq.control import RunDir
from ivyzmq.history import History
from ivyzmq.workload import timed_op, verdict_text


def homework(args, cluster: Cluster, run: RunDir) -> int:
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    primary = cluster.managers[0].name
    started = run.up()
    rows = []
    run.trace(clear=True)
    mems = {n: connect(cluster, n) for n in cluster.node_ids}
    history = History()
    events: list[str] = []
    busy = 0.0          # time spent on operations and faults, not on collecting traces
    tag = f"{rng.getrandbits(24):06x}"
    try:
        for i in range(args.ops):
            t0 = time.monotonic()
            node, page = rng.choice(cluster.node_ids), rng.randrange(cluster.pages)
            kind = "read" if args.mode == "r" else "write"
            history.append(timed_op(mems[node], cluster.page_size, client=node, node=node,
                                    page=page, kind=kind, value=f"{tag}-n{node}-{i}"))
            # Collect the trace before any kill, so the primary's messages are not lost with it.
            busy += time.monotonic() - t0
            rows += run.trace(clear=True)
            t1 = time.monotonic()
            alive = primary in run.running()
            if alive and rng.random() < args.kill_prob:
                # Say whether it was serving: a primary restarted a moment ago may still be
                # catching up as a backup, and killing it then costs no failover.
                reply = run.query(primary, P.StatusQuery(), timeout=0.3)
                role = "serving" if reply and reply[0].serving else "not serving"
                run.kill(primary)
                events.append(f"after op {i}: killed {primary} ({role})")
            elif not alive and rng.random() < args.restart_prob:
                run.start(primary)
                events.append(f"after op {i}: restarted {primary}")
            busy += time.monotonic() - t1
        if primary not in run.running():
            run.start(primary)
            events.append(f"at the end: restarted {primary}")
        _wait_settled(run, primary if cluster.failback else None)
        rows += run.trace(clear=True)
    finally:
        for mem in mems.values():
            mem.close()
    print(readout.trace_text(rows))
    print(readout.status_text(cluster, run.status()))
    print("\n".join(events) if events else "no faults this time")
    ops = history.ops()
    counts = {o: sum(op.outcome == o for op in ops) for o in ("ok", "failed", "unknown")}
    print(f"{len(ops)} {'reads' if args.mode == 'r' else 'writes'} (seed {seed}): "
          f"{counts['ok']} ok, {counts['failed']} failed, {counts['unknown']} unknown")
    from ivyzmq.checker import check
    verdict = check(ops)
    print(f"checker: {verdict_text(verdict)}")
    print(f"Done in {busy * 1000:.0f} ms")
    if started:
        run.down()
    return 0 if verdict.ok else 1


def _wait_settled(run: RunDir, serving: str | None, timeout: float = 15.0) -> None:
    """Wait until `serving` (or any manager) serves and every answering manager's table
    matches the serving one's, so the final readouts show the state carried over."""
    deadline = time.monotonic() + timeout
    managers = {m.name for m in run.cluster.managers}
    while time.monotonic() < deadline:
        replies = {n: r for n, r in run.status(timeout=0.5) if n in managers and r}
        active = [r for r in replies.values() if r.serving]
        if active and (serving is None or active[0].name == serving) and \
                all(r.table == active[0].table for r in replies.values()) and \
                len(replies) == len(managers):
            return
        time.sleep(0.05)   # poll

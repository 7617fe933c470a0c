"""A running cluster (security: curve) takes thousands of random and mutated frames at every
daemon, sent with the client key while a workload runs: every daemon keeps serving, every
operation of the workload succeeds, and its history is linearizable. The frames
(ivyzmq/harness/garbage.py) are seeded; a valid client request among them only touches the
pages the workload leaves alone. CI runs a slice; `make fuzz FRAMES=N` a longer run."""
from __future__ import annotations

import os
import threading

import zmq

from ivyzmq.client import dealer
from ivyzmq.harness.agreement import problems
from ivyzmq.harness.garbage import Garbage
from ivyzmq.harness.ops import Clients

from conftest import wait_until

FRAMES = int(os.environ.get("IVY_FUZZ_FRAMES", "10000"))
WORKLOAD_PAGES = 3          # pages 0..2: the workload's; 3..5: the fuzzer's


def fuzz(cluster, frames: int, seed: int, stop: threading.Event) -> dict[str, int]:
    """Send `frames` fuzz inputs round robin to every daemon; drain what comes back."""
    gen = Garbage(cluster, range(WORKLOAD_PAGES, cluster.pages), seed)
    socks = {name: dealer(cluster, name) for name in cluster.daemon_names()}
    answers = dict.fromkeys(socks, 0)
    try:
        names = list(socks)
        for i in range(frames):
            if stop.is_set():
                break
            sock = socks[names[i % len(names)]]
            try:
                sock.send_multipart(gen.frames(), zmq.NOBLOCK)
            except zmq.Again:
                sock.poll(100, zmq.POLLOUT)     # the daemon is behind: until it has room
            for name, s in socks.items():
                while s.poll(0):
                    s.recv_multipart()
                    answers[name] += 1
    finally:
        for s in socks.values():
            s.close()
    return answers


def test_a_fuzzed_cluster_keeps_serving_and_stays_linearizable(clusters):
    run = clusters.make("fuzz", nodes=3, pages=6, replicas=1, heartbeat_interval=0.2)
    c = run.cluster
    stop = threading.Event()
    answers: dict = {}
    fuzzer = threading.Thread(target=lambda: answers.update(fuzz(c, FRAMES, 11, stop)),
                              name="fuzzer")
    clients = Clients(c, clients=4, pages=WORKLOAD_PAGES, ops=10 ** 6, seed=5)
    fuzzer.start()
    try:
        fuzzer.join(timeout=60 + FRAMES / 200)
    finally:
        stop.set()
        res = clients.finish()
    assert not fuzzer.is_alive()
    assert all(n > 0 for n in answers.values()), answers   # every daemon answered some
    counts = res.counts()
    assert counts["ok"] >= 50 and counts["failed"] == counts["unknown"] == 0, counts
    verdict = res.verdict()
    assert verdict.ok is True, verdict
    assert set(run.procs.running()) == set(c.daemon_names())
    # The fuzzer's own valid requests (pages 3-5) may still be on their way: the tables
    # must come to agree, not agree at the first look.
    last: list = []

    def agreed():
        statuses = dict(run.status())
        assert all(r is not None for r in statuses.values()), statuses
        serving = next(r for r in statuses.values() if r.kind == "manager" and r.serving)
        nodes = {int(n.removeprefix("node")): r.pages for n, r in statuses.items()
                 if r.kind == "node"}
        last[:] = problems(serving.records, nodes)
        return statuses if not last else None
    statuses = wait_until(agreed, 10, what=lambda: f"the tables to agree: {last}")
    assert all(r.epoch < 1000 for r in statuses.values())
    refused = sum(run.path.joinpath(f"{n}.log").read_text().count("refused ")
                  for n in c.daemon_names())
    assert refused > 0            # the forged peer messages were refused, not ignored

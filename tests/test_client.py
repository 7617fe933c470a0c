"""The Python API (ivyzmq/client.py): `connect` to a running node daemon, and `embed` a node
in this process, against daemons started as real OS processes."""
from __future__ import annotations

import signal
import threading
import time

import pytest
import yaml

from conftest import cluster_dict, wait_until
from ivyzmq import protocol as P
from ivyzmq.client import (IvyError, IvyTimeout, Memory, PageRangeError, PageSizeError,
                           connect, embed)

SIZE = 4096


def page(data: bytes) -> bytes:
    return data.ljust(SIZE, b"\0")


def test_connect_read_write_and_errors(clusters):
    run = clusters.make("client", heartbeat_interval=0.2)
    with connect(run.config_path, node=0) as m0, connect(run.cluster, 2) as m2:
        assert m2.read(1) == bytes(SIZE)
        m0.write(1, b"abc")
        assert m2.read(1) == page(b"abc")
        m2.write(1, b"XY", offset=1)
        assert m0.read(1) == page(b"aXY")
        m2.write(1, b"!", offset=SIZE - 1)           # the last byte
        assert m0.read(1)[-1:] == b"!"

        # refused before any traffic
        for bad in (5, -1, 10**6, "1"):
            with pytest.raises(PageRangeError, match=r"out of range 0\.\.4"):
                m0.read(bad)
        with pytest.raises(PageRangeError):
            m0.write(5, b"x")
        with pytest.raises(PageSizeError, match="do not fit"):
            m0.write(0, b"x" * (SIZE + 1))
        with pytest.raises(PageSizeError):
            m0.write(0, b"xy", offset=SIZE - 1)
        with pytest.raises(PageSizeError):
            m0.write(0, b"x", offset=-1)
        assert issubclass(PageRangeError, IndexError) and issubclass(PageSizeError, ValueError)

    # the same errors when only the daemon checks (a Memory that knows no limits; the
    # cluster gives it the client key)
    with Memory(run.cluster.endpoint(0), timeout=5, cluster=run.cluster) as raw:
        with pytest.raises(PageRangeError, match=r"out of range 0\.\.4"):
            raw.read(5)
        with pytest.raises(PageSizeError, match="do not fit"):
            raw.write(0, b"x" * (SIZE + 1))
        data = raw.read(1)                          # and it still serves
        assert data[:4] == b"aXY\0" and data[-1:] == b"!" and len(data) == SIZE
        reply, _ = raw.request(P.StatusQuery())
        assert isinstance(reply, P.StatusReply) and reply.name == "node0"

    with pytest.raises(IvyError, match=r"node 3 out of range 0\.\.2"):
        connect(run.cluster, 3)


def test_one_memory_shared_by_threads(clusters):
    run = clusters.make("threads", heartbeat_interval=0.2)
    errors: list[BaseException] = []
    with connect(run.cluster, 1) as mem, connect(run.cluster, 0) as other:
        def worker(k: int) -> None:
            try:
                for i in range(30):
                    mem.write(k, f"t{k}-{i}".encode())
                    assert mem.read(k) == page(f"t{k}-{i}".encode())
            except BaseException as exc:        # reported below
                errors.append(exc)
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        for k in range(4):
            assert other.read(k) == page(f"t{k}-29".encode())


def test_timeout_when_nothing_answers(tmp_path):
    path = tmp_path / "none.yaml"
    path.write_text(yaml.safe_dump(cluster_dict(security="none")))    # no keys to find
    with connect(str(path), 1, timeout=0.5) as mem:
        t0 = time.monotonic()
        with pytest.raises(IvyTimeout, match="within 0.5 s"):
            mem.read(0)
        assert 0.45 <= time.monotonic() - t0 < 3
        with pytest.raises(IvyTimeout):
            mem.write(0, b"x")
    assert issubclass(IvyTimeout, TimeoutError) and issubclass(IvyTimeout, IvyError)


def test_late_answer_to_a_timed_out_request_is_skipped(clusters):
    run = clusters.make("late", managers=("primary",), heartbeat_interval=0.2)
    with connect(run.cluster, 2, timeout=0.5) as mem, connect(run.cluster, 0) as m0:
        m0.write(0, b"before")
        assert run.procs.signal("primary", signal.SIGSTOP)
        try:
            with pytest.raises(IvyTimeout):
                mem.read(0)                          # a fault: the manager is paused
        finally:
            assert run.procs.signal("primary", signal.SIGCONT)
        # the node finishes the read and answers it: that answer waits in our socket
        wait_until(lambda: mem._channel().poll(0), 10, what="the late answer")
        mem.timeout = 10
        mem.write(2, b"own page")                    # the late answer is skipped: the write
        assert mem.read(2) == page(b"own page")      # gets its own, so does this read
        assert mem.read(0) == page(b"before")
        assert mem._channel().poll(0) == 0            # nothing left over


def test_embed_hosts_a_node_and_hits_locally(clusters):
    run = clusters.make("embed", only=["node0", "node2"], heartbeat_interval=0.2,
                        retry_timeout=5.0, redrive_timeout=10.0)
    mem = embed(run.cluster, node=1)
    try:
        run.up(["primary", "backup"])
        run.wait_serving(15)
        with connect(run.cluster, 0) as m0, connect(run.cluster, 2) as m2:
            m0.write(0, b"zero")
            run.trace(clear=True)

            mem.write(1, b"embedded")                # node 1 owns page 1: no Ivy traffic
            t0 = time.monotonic()
            for _ in range(10_000):
                data = mem.read(1)
            assert time.monotonic() - t0 < 1.0
            assert data == page(b"embedded")
            assert run.trace(clear=True) == []        # not one message for the hits
            assert list(mem.daemon.transport.trace) == []

            assert mem.read(0) == page(b"zero")       # a miss goes through the protocol
            assert [(r.type, r.sender, r.to) for r in run.trace(clear=True)] == [
                ("ReadRequest", 1, 3), ("ReadForward", 3, 0), ("ReadPage", 0, 1),
                ("ReadConfirmation", 1, 3)]
            for _ in range(1000):
                assert mem.read(0) == page(b"zero")   # now a hit
            assert run.trace(clear=True) == []

            assert m2.read(1) == page(b"embedded")    # the others see its writes
            m2.write(1, b"from 2")                    # and it sees theirs: no stale copy
            assert mem.read(1) == page(b"from 2ed")     # (a write covers its bytes only)
            with pytest.raises(PageRangeError):
                mem.read(5)
            with pytest.raises(PageSizeError):
                mem.write(1, b"x" * (SIZE + 1))
    finally:
        mem.close()
    assert not mem._thread.is_alive()
    assert run.admin.query("node1", P.StatusQuery(), timeout=0.3) is None

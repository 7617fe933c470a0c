"""Real-process tests: the daemons run as separate OS processes started through the
`ivy-cm` / `ivy-node` entry points (the `clusters` fixture), and these tests talk ZeroMQ and
the real `ivy` command to them. The traces are exact: every protocol message sent, in causal
(Lamport) order, as the homework prints them."""
from __future__ import annotations

import json
import re


from conftest import ivy, wait_until
from ivyzmq import protocol as P
from ivyzmq import readout
from ivyzmq.harness.ops import run_clients
from ivyzmq.client import connect, dealer

# Exact traces need no retries or re-drives on a busy test machine: make them rare.
EXACT = dict(heartbeat_interval=0.2, retry_timeout=5.0, redrive_timeout=10.0)


def ok(proc) -> str:
    assert proc.returncode == 0, f"{proc.args}: {proc.returncode} {proc.stderr}"
    return proc.stdout


def trace_cli(run, clear: bool = True) -> list[tuple]:
    """`ivy trace --clear` parsed: (Type, From, To, Page, Requester) rows."""
    out = ok(ivy(run, "trace", *(["--clear"] if clear else [])))
    lines = out.strip().splitlines()
    assert lines[0].split() == ["Type", "From", "To", "Page", "Requester", "Op"]
    return [(t, int(a), int(b), int(p), int(r)) for t, a, b, p, r, _op in
            (line.split() for line in lines[1:])]


def trace_api(run) -> list[tuple]:
    return [(r.type, r.sender, r.to, r.page, r.requester) for r in run.trace(clear=True)]


def status_cli(run) -> dict[str, dict[int, list[str]]]:
    """`ivy status` parsed: heading label -> page -> the row's other cells."""
    return parse_status(ok(ivy(run, "status")))


def status_api(run) -> dict[str, dict[int, list[str]]]:
    """The same readout made in this process (what `ivy status` prints), parsed."""
    return parse_status(readout.status_text(run.cluster, run.status()))


def parse_status(out: str) -> dict[str, dict[int, list[str]]]:
    tables: dict[str, dict[int, list[str]]] = {}
    label = None
    for line in out.splitlines():
        m = re.match(r"^(cm_\w+|process_\d+):", line)
        if m:
            label = m.group(1)
            tables[label] = {}
            assert "not answering" not in line, line
        elif line.startswith("security: "):
            tables["security"] = line.split()[1]
        elif line.split()[0] not in ("Record", "Page"):
            page, *rest = line.split(None, 2)
            tables[label][int(page)] = rest
    return tables


# -- the homework's scenarios with exact traces ---------------------------------------------------

def test_read_then_write_exact_traces_and_readouts(clusters):
    run = clusters.make("trace", **EXACT)
    assert trace_api(run) == []          # start-up (recovery) is not Ivy traffic

    # node 2 reads page 1, owned by node 1; the manager is 3 (= number of nodes)
    assert ok(ivy(run, "read", 2, 1)) == "\n"
    assert trace_cli(run) == [
        ("ReadRequest", 2, 3, 1, 2),
        ("ReadForward", 3, 1, 1, 2),
        ("ReadPage", 1, 2, 1, 2),
        ("ReadConfirmation", 2, 3, 1, 2),
    ]
    st = status_cli(run)
    assert st["cm_primary"][1] == ["1", "map[2:true]"]
    assert st["cm_backup"][1] == ["1", "map[2:true]"]     # replicated
    assert st["process_2"][1] == ["false", "Read"]
    assert st["process_1"][1] == ["true", "Read"]
    assert st["process_0"][1] == ["false", "Nil"]
    assert st["cm_primary"][0] == ["0", "map[]"] and st["process_0"][0] == ["true", "ReadWrite"]

    # node 0 reads it too
    with connect(run.cluster, 0) as mem:
        assert mem.read(1) == bytes(4096)
    assert trace_api(run) == [
        ("ReadRequest", 0, 3, 1, 0),
        ("ReadForward", 3, 1, 1, 0),
        ("ReadPage", 1, 0, 1, 0),
        ("ReadConfirmation", 0, 3, 1, 0),
    ]
    assert status_api(run)["cm_primary"][1] == ["1", "map[0:true 2:true]"]

    # node 2 (a copy holder) writes: only node 0 is invalidated, one WriteForward
    ok(ivy(run, "write", 2, 1, "hello"))
    assert trace_cli(run) == [
        ("WriteRequest", 2, 3, 1, 2),
        ("Invalidate", 3, 0, 1, 2),
        ("InvalidateConfirmation", 0, 3, 1, 2),
        ("WriteForward", 3, 1, 1, 2),
        ("WritePage", 1, 2, 1, 2),
        ("WriteConfirmation", 2, 3, 1, 2),
    ]
    st = status_api(run)
    assert st["cm_primary"][1] == ["2", "map[]"]
    assert st["process_2"][1] == ["true", "ReadWrite"]
    assert st["process_1"][1] == ["false", "Nil"]
    assert st["process_0"][1] == ["false", "Nil"]

    # the bytes: other nodes read them back (text, trailing zero bytes dropped; --json)
    # (one operation per trace: two operations' rows are ordered only by causality)
    assert ok(ivy(run, "read", 0, 1)) == "hello\n"
    assert trace_api(run) == [
        ("ReadRequest", 0, 3, 1, 0),
        ("ReadForward", 3, 2, 1, 0),                # the new owner answers
        ("ReadPage", 2, 0, 1, 0),
        ("ReadConfirmation", 0, 3, 1, 0),
    ]
    got = json.loads(ok(ivy(run, "read", 1, 1, "--json")))
    assert got == {"node": 1, "page": 1, "text": "hello", "hex": b"hello".hex()}
    with connect(run.cluster, 2) as mem:                   # a hit at the owner: no traffic
        assert mem.read(1) == b"hello".ljust(4096, b"\0")
    assert [t[0] for t in trace_api(run)] == ["ReadRequest", "ReadForward", "ReadPage",
                                              "ReadConfirmation"]
    st = status_api(run)
    assert st["cm_primary"][1] == ["2", "map[0:true 1:true]"]
    assert st["process_2"][1] == ["true", "Read"]


def test_owner_upgrade_through_the_daemons(clusters):
    run = clusters.make("upgrade", **EXACT)
    with connect(run.cluster, 1) as mem1, connect(run.cluster, 0) as mem0:
        mem1.write(1, b"first")                    # node 1 owns page 1: a hit, no traffic
        assert trace_api(run) == []
        assert mem0.read(1).rstrip(b"\0") == b"first"
        assert [t[0] for t in trace_api(run)] == ["ReadRequest", "ReadForward", "ReadPage",
                                                  "ReadConfirmation"]
        mem1.write(1, b"second")                   # the owner holds Read only now
        assert trace_api(run) == [
            ("WriteRequest", 1, 3, 1, 1),
            ("Invalidate", 3, 0, 1, 1),
            ("InvalidateConfirmation", 0, 3, 1, 1),
            ("WriteGrant", 3, 1, 1, 1),
            ("WriteConfirmation", 1, 3, 1, 1),
        ]                                          # no WriteForward, no WritePage
        st = status_api(run)
        assert st["cm_primary"][1] == ["1", "map[]"]
        assert st["process_1"][1] == ["true", "ReadWrite"]
        assert st["process_0"][1] == ["false", "Nil"]
        assert mem0.read(1).rstrip(b"\0") == b"second"


def test_writes_are_seen_by_every_node(clusters):
    run = clusters.make("data", nodes=4, pages=6, heartbeat_interval=0.2)
    mems = [connect(run.cluster, n) for n in range(4)]
    try:
        for n in range(4):
            for pg in range(6):
                mems[n].write(pg, f"n{n}p{pg}".encode(), offset=n)
            for m in mems:
                for pg in range(6):
                    data = m.read(pg)
                    assert len(data) == 4096
                    assert data[n:n + 4] == f"n{n}p{pg}".encode()
                    # below offset n: the first byte of each earlier writer's value
                    assert data[:n] == b"n" * n
    finally:
        for m in mems:
            m.close()


# -- concurrency ----------------------------------------------------------------------------------

def test_concurrent_workload_is_linearizable(clusters):
    run = clusters.make("ten", nodes=10, pages=3)
    res = run_clients(run.cluster, clients=10, ops=1000, read_share=0.5, pages=3, seed=7)
    ops = res.history.ops()
    counts, verdict = res.counts(), res.verdict()
    assert len(ops) == 1003                      # 3 initial writes + 1000
    assert counts == {"ok": 1003, "failed": 0, "unknown": 0}
    assert {op.node for op in ops if op.client >= 0} == set(range(10))
    assert {op.page for op in ops} == {0, 1, 2}
    assert sum(op.kind == "read" for op in ops) > 300
    assert sum(op.kind == "write" for op in ops) > 300
    assert verdict.ok is True, verdict
    assert verdict.ops_checked == 1003

    # quiescent invariants: one owner per page, a ReadWrite holder is alone, and the
    # serving manager agrees with the nodes
    status = dict(run.status())
    manager = next(r for r in status.values() if r and r.kind == "manager" and r.serving)
    for rec in manager.records:
        views = {n: status[f"node{n}"].pages[rec.page] for n in range(10)}
        owners = [n for n, v in views.items() if v.is_owner]
        assert owners == [rec.owner]
        readers = sorted(n for n, v in views.items() if v.access == "Read" and not v.is_owner)
        assert readers == rec.copy_set
        if views[rec.owner].access == "ReadWrite":
            assert all(v.access == "Nil" for n, v in views.items() if n != rec.owner)


# -- garbage ------------------------------------------------------------------------------------

def _dealer(cluster, pid):
    return dealer(cluster, cluster.name(pid))


def _ask(sock, frames, expect_answer: bool = True, timeout: float = 5.0):
    sock.send_multipart(frames)
    if not expect_answer:
        return None
    assert sock.poll(timeout * 1000), f"no answer to {frames[:1]!r}"
    return P.decode(sock.recv_multipart())


def _j(**fields) -> bytes:
    return json.dumps(fields).encode()


def _error_reply(answer, *words):
    msg, _ = answer
    assert isinstance(msg, P.ErrorReply), msg
    for w in words:
        assert w in msg.error, (w, msg.error)
    return msg.error


COMMON_GARBAGE = [
    ("not-json", [b"this is not json"], ["malformed"]),
    ("unknown-type", [_j(type="Bogus", page=1)], ["Bogus"]),
    ("missing-field", [_j(type="ReadRequest", page=1, requester=0, sender=0)], ["`rid`"]),
    ("wrong-type", [_j(type="ReadRequest", page="1", requester=0, rid=1, sender=0)],
     ["$.page"]),
    ("unknown-field", [_j(type="StatusQuery", colour="red")], ["colour"]),
    ("too-many-frames", [_j(type="StatusQuery"), b"x", b"y"], ["got 3"]),
    ("empty-frame", [b""], []),
    ("no-payload", [_j(type="ClientWrite", page=0, cid=1)], ["payload"]),
    ("big-junk", [b"\x00\xff" * 30_000], []),        # under the frame limit: decoded
]


def test_garbage_never_takes_a_daemon_down(clusters):
    # Open sockets (security: none), so the garbage reaches the decoder and the cores; the
    # same under CURVE is in test_security.py.
    run = clusters.make("garbage", heartbeat_interval=0.2, security="none")
    c = run.cluster
    epoch = run.admin.query("primary", P.StatusQuery()).epoch
    manager, node = _dealer(c, 3), _dealer(c, 0)
    try:
        for sock in (manager, node):
            for name, frames, words in COMMON_GARBAGE:
                _error_reply(_ask(sock, frames), *words)

        # to the manager: a page out of range (ignored: no answer expected), client
        # requests (not something a manager answers)
        _ask(manager, P.encode(P.ReadRequest(page=99, requester=0, rid=1, sender=0,
                                             epoch=epoch)), expect_answer=False)
        _ask(manager, P.encode(P.ReadRequest(page=1, requester=0, rid=1, sender=42)),
             expect_answer=False)
        _error_reply(_ask(manager, P.encode(P.ClientWrite(page=0, cid=5), b"x" * 5000)),
                     "ClientWrite")
        _error_reply(_ask(manager, P.encode(P.ClientRead(page=0, cid=6))), "ClientRead")

        # to the node: out-of-range and oversize client requests get a ClientReply error
        reply, _ = _ask(node, P.encode(P.ClientRead(page=99, cid=7)))
        assert isinstance(reply, P.ClientReply) and reply.cid == 7
        assert reply.code == "range" and "out of range 0..4" in reply.error
        reply, _ = _ask(node, P.encode(P.ClientWrite(page=0, cid=8), b"x" * 5000))
        assert (reply.cid, reply.code) == (8, "size") and "do not fit" in reply.error
        reply, _ = _ask(node, P.encode(P.ClientWrite(page=0, offset=-3, cid=9), b"x"))
        assert (reply.cid, reply.code) == (9, "size")
        # protocol messages with a page out of range, or not meant for a node: ignored
        _ask(node, P.encode(P.ReadForward(page=99, requester=1, rid=1, opseq=1, sender=3,
                                          epoch=epoch)), expect_answer=False)
        _ask(node, P.encode(P.ReadRequest(page=1, requester=1, rid=1, sender=1, epoch=epoch)),
             expect_answer=False)
        _error_reply(_ask(node, P.encode(P.ClientReply(cid=1))), "ClientReply")

        # the daemons still answer, and in order: the answers above came back one by one
        for sock in (manager, node):
            reply, _ = _ask(sock, P.encode(P.StatusQuery()))
            assert isinstance(reply, P.StatusReply)
    finally:
        manager.close()
        node.close()

    assert set(run.procs.running()) == set(c.daemon_names())
    statuses = dict(run.status())
    assert all(r is not None for r in statuses.values())
    assert statuses["primary"].serving
    with connect(c, 2) as m2, connect(c, 0) as m0, connect(c, 1) as m1:
        m2.write(0, b"still fine")
        assert m0.read(0).rstrip(b"\0") == b"still fine"
        m0.write(1, b"and this")
        assert m1.read(1).rstrip(b"\0") == b"and this"
        assert m2.read(1).rstrip(b"\0") == b"and this"

    # the logs record the bad frames
    def logged(name, *words):
        text = (run.path / f"{name}.log").read_text()
        return all(w in text for w in words) and text.count("bad frame") >= len(COMMON_GARBAGE)
    wait_until(lambda: logged("primary", "Bogus", "`rid`", "got 3", "refused ReadRequest",
                              "sender 42 is no process"), 5, what="primary log")
    wait_until(lambda: logged("node0", "Bogus", "`rid`", "got 3", "page 99 out of range"),
               5, what="node0 log")


# -- bugs: frames that do take a daemon down ----------------------------------------------------

def test_forward_naming_an_unknown_requester_does_not_kill_the_node(clusters):
    run = clusters.make("badfwd", security="none", **EXACT)
    epoch = run.admin.query("primary", P.StatusQuery()).epoch
    sock = _dealer(run.cluster, 1)
    try:
        _ask(sock, P.encode(P.ReadForward(page=1, requester=99, rid=1, opseq=1, sender=3,
                                          epoch=epoch)), expect_answer=False)
        reply = _ask(sock, P.encode(P.StatusQuery()), timeout=2.0)
        assert isinstance(reply[0], P.StatusReply)
    finally:
        sock.close()
    with connect(run.cluster, 2, timeout=5) as m2:
        assert len(m2.read(1)) == 4096


def test_recover_from_a_node_id_does_not_kill_the_node(clusters):
    run = clusters.make("badrecover", heartbeat_interval=0.2, retry_timeout=0.1, retries=2,
                        security="none")
    sock = _dealer(run.cluster, 1)
    try:
        _ask(sock, P.encode(P.Recover(sender=0)), expect_answer=False)
        reply = _ask(sock, P.encode(P.StatusQuery()), timeout=3.0)
        assert isinstance(reply[0], P.StatusReply)
    finally:
        sock.close()
    with connect(run.cluster, 1, timeout=2) as m1:
        assert len(m1.read(0)) == 4096             # a fault: node 1 must find the manager
    assert run.admin.query("node1", P.StatusQuery()) is not None

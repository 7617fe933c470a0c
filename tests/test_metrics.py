"""Every daemon's Prometheus metrics over HTTP, on a real cluster: known operations move the
counters by exactly what they imply, a failover moves the failover counters and the role
gauges, and `ivy metrics` prints them."""
from __future__ import annotations


from conftest import ivy, wait_until
from ivyzmq import scrape
from ivyzmq.client import dealer
from ivyzmq.metrics import address_of


def scrape_every(run) -> dict[str, dict]:
    got = scrape.scrape_all(run.cluster)
    assert all(isinstance(s, dict) for s in got.values()), got
    return got


def diff(before: dict, after: dict, name: str, metric: str, **labels) -> float:
    return scrape.total(after[name], metric, **labels) - scrape.total(before[name], metric,
                                                                      **labels)


def test_counters_move_by_exactly_what_the_operations_imply(clusters):
    run = clusters.make("metrics", heartbeat_interval=0.2, metrics=True)
    before = scrape_every(run)
    for name, s in before.items():        # the process metrics come for free
        assert scrape.total(s, "process_cpu_seconds_total") > 0, name
        assert ("ivy_bad_frames_total", frozenset()) in s, name
    assert ivy(run, "read", 2, 1).returncode == 0      # page 1 is node 1's
    after = scrape_every(run)
    recv, sent = "ivy_messages_received_total", "ivy_messages_sent_total"
    assert diff(before, after, "node2", "ivy_page_faults_total", kind="read") == 1
    assert diff(before, after, "node2", "ivy_page_faults_total", kind="write") == 0
    assert diff(before, after, "node2", "ivy_page_fault_duration_seconds_count",
                kind="read") == 1
    assert diff(before, after, "node1", recv, type="ReadForward") == 1
    assert diff(before, after, "node1", sent, type="ReadPage") == 1
    assert diff(before, after, "primary", recv, type="ReadRequest") == 1
    assert diff(before, after, "primary", recv, type="ReadConfirmation") == 1
    assert diff(before, after, "primary", sent, type="ReadForward") == 1
    assert diff(before, after, "node2", recv, type="ClientRead") == 1
    assert diff(before, after, "node2", "ivy_read_copies") == 1
    assert diff(before, after, "node1", "ivy_page_faults_total") == 0
    assert diff(before, after, "node2", "ivy_received_bytes_total") >= 4096   # the page
    assert diff(before, after, "primary", "ivy_replication_ack_seconds_count") >= 1
    assert scrape.total(after["primary"], "ivy_replication_lag_steps", replica="backup") == 0

    assert ivy(run, "write", 0, 1, "x").returncode == 0   # node 2's copy goes
    third = scrape_every(run)
    assert diff(after, third, "node0", "ivy_page_faults_total", kind="write") == 1
    assert diff(after, third, "node2", "ivy_invalidations_total") == 1
    assert diff(after, third, "primary", sent, type="Invalidate") == 1
    assert diff(after, third, "node2", "ivy_read_copies") == -1

    sock = dealer(run.cluster, "node2")
    sock.send(b"not a message")
    wait_until(lambda: scrape.total(scrape.fetch(address_of(run.cluster, 2)),
                                    "ivy_bad_frames_total") == 1, 5, what="a bad frame counted")
    sock.close()


def role(s: dict, which: str) -> float:
    return scrape.total(s, "ivy_manager_role", role=which)


def test_a_failover_moves_the_failover_counters_and_the_role_gauges(clusters):
    run = clusters.make("metricsfo", heartbeat_interval=0.1, retry_timeout=0.1, metrics=True,
                        failback=False)
    backup = address_of(run.cluster, run.cluster.pid_of("backup"))
    # The backup must have heard the primary before it can miss it (a cluster just up may
    # not have finished connecting its heartbeat channel).
    wait_until(lambda: scrape.total(scrape.fetch(backup), "ivy_heartbeats_received_total",
                                    peer="primary") >= 3, 10,
               what="the backup to hear the primary's heartbeats")
    before = scrape_every(run)
    assert (role(before["primary"], "active"), role(before["backup"], "passive")) == (1, 1)
    assert scrape.total(before["backup"], "ivy_manager_serving") == 0
    run.procs.kill("primary")
    assert ivy(run, "read", 2, 1).returncode == 0      # a node's request is the vote
    wait_until(lambda: scrape.total(scrape.fetch(backup), "ivy_manager_serving") == 1, 10,
               what="the backup to serve")
    got = scrape.scrape_all(run.cluster)
    assert got["primary"] is None                      # dead: nothing answers
    b = got["backup"]
    assert (role(b, "active"), role(b, "passive"), role(b, "recovering")) == (1, 0, 0)
    assert scrape.total(b, "ivy_recoveries_total") == \
        scrape.total(before["backup"], "ivy_recoveries_total") + 1
    assert scrape.total(b, "ivy_epoch") > scrape.total(before["primary"], "ivy_epoch")
    # The silence counts as it goes on: three beat intervals after the last beat at most.
    wait_until(lambda: scrape.total(scrape.fetch(backup), "ivy_heartbeats_missed_total",
                                    peer="primary") >= 3, 5,
               what="the backup to count 3 missed heartbeats of the primary")
    for node in ("node0", "node1", "node2"):
        assert diff(before, got, node, "ivy_failovers_total") == 1, node
        assert scrape.total(got[node], "ivy_node_manager") == run.cluster.pid_of("backup")

    lines = ivy(run, "metrics").stdout.splitlines()
    assert lines[0].split()[:2] == ["primary", "not"]
    assert lines[1].split()[:2] == ["backup", "active"] and " serving " in lines[1]
    assert lines[4].startswith("node2") and "faults read 1 write 0" in lines[4]
    one = ivy(run, "metrics", "node2")
    assert one.returncode == 0 and 'ivy_page_faults_total{kind="read"} 1.0' in one.stdout
    off = clusters.make("nometrics", up=False)
    proc = ivy(off, "metrics", "node0")
    assert proc.returncode == 1 and "no metrics address" in proc.stderr


def test_a_node_death_moves_the_dead_and_lost_gauges(clusters):
    """Node 1 dies holding pages 1 and 4 (the only copies): the serving manager's gauges say
    one node dead and two pages lost; the surviving nodes are admitted members."""
    run = clusters.make("metricsdead", heartbeat_interval=0.1, retry_timeout=0.1,
                        metrics=True)
    before = scrape_every(run)
    assert scrape.total(before["primary"], "ivy_nodes_dead") == 0
    assert scrape.total(before["primary"], "ivy_pages_lost") == 0
    assert all(scrape.total(before[n], "ivy_node_member") == 1 for n in ("node0", "node2"))
    run.procs.kill("node1")
    primary = address_of(run.cluster, run.cluster.pid_of("primary"))
    wait_until(lambda: scrape.total(scrape.fetch(primary), "ivy_nodes_dead") == 1, 10,
               what="node 1 to be declared dead")
    assert scrape.total(scrape.fetch(primary), "ivy_pages_lost") == 2

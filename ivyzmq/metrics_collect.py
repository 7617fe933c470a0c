"""The metric families of one daemon, built at scrape time from its transport's counting
(ivyzmq/metrics.py) and its core's plain attributes. Reading the core from the HTTP
server's thread is a race with the daemon loop only in the way a glance at a moving thing
is: each number is a consistent Python value, and the next scrape is fresher."""
from __future__ import annotations

import time

from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily)

ROLES = ("passive", "recovering", "active")


def _counter(name: str, doc: str, value: float, labels: dict | None = None):
    fam = CounterMetricFamily(name, doc, labels=list(labels or {}))
    fam.add_metric(list((labels or {}).values()), value)
    return fam


def _gauge(name: str, doc: str, value: float):
    fam = GaugeMetricFamily(name, doc)
    fam.add_metric([], value)
    return fam


def _histogram(name: str, doc: str, hists: dict[str, object], label: str | None):
    fam = HistogramMetricFamily(name, doc, labels=[label] if label else [])
    for key, h in hists.items():
        fam.add_metric([key] if label else [], h.cumulative(), h.sum)
    return fam


class DaemonCollector:
    def __init__(self, daemon, counting):
        self.daemon, self.c = daemon, counting
        self.names = daemon.cluster.name

    def describe(self):
        return []        # built at scrape time only

    def collect(self):
        yield from self._transport()
        if self.c.is_node:
            yield from self._node()
        else:
            yield from self._manager()

    def _transport(self):
        c = self.c
        for name, doc, table in (
                ("ivy_messages_sent", "Messages this daemon sent, by type.", c.sent),
                ("ivy_messages_received", "Messages this daemon received, by type.",
                 c.received)):
            fam = CounterMetricFamily(name, doc, labels=["type"])
            for cls, n in sorted(table.items(), key=lambda kv: kv[0].__name__):
                fam.add_metric([cls.__name__], n)
            yield fam
        yield _counter("ivy_sent_bytes", "Bytes sent in message frames.", c.sent_bytes)
        yield _counter("ivy_received_bytes", "Bytes received in message frames.",
                       c.received_bytes)
        yield _counter("ivy_bad_frames", "Frames that were not valid messages.", c.bad_frames)
        yield _counter("ivy_refused_messages", "Messages dropped because their connection's "
                       "key or kind may not send them.", c.refused)
        yield _counter("ivy_send_dropped", "Messages dropped: no such daemon or a full "
                       "queue.", c.dropped)

    def _node(self):
        c, core = self.c, self.daemon.core
        fam = CounterMetricFamily("ivy_page_faults", "Page faults this node began, by kind.",
                                  labels=["kind"])
        for kind in ("read", "write"):
            fam.add_metric([kind], c.faults[kind])
        yield fam
        yield _histogram("ivy_page_fault_duration_seconds", "From a fault's first request "
                         "to its confirmation.", c.fault_seconds, "kind")
        yield _counter("ivy_invalidations", "Read copies this node dropped on Invalidate.",
                       c.invalidations)
        yield _counter("ivy_failovers", "New terms this node followed from another manager "
                       "than the last one.", c.failovers)
        pages = core.pages
        yield _gauge("ivy_pages_owned", "Pages this node owns.",
                     sum(st.is_owner for st in pages))
        yield _gauge("ivy_read_copies", "Pages this node holds a read copy of, not owning "
                     "them.", sum(st.access == "Read" and not st.is_owner for st in pages))
        yield _gauge("ivy_pending_faults", "Faults this node waits on.",
                     sum(st.pending is not None for st in pages))
        yield _gauge("ivy_epoch", "The highest manager term this node has seen.", core.epoch)
        yield _gauge("ivy_node_manager", "The process id of the manager this node follows.",
                     core.manager)
        yield _gauge("ivy_node_member", "1 once this incarnation is admitted.", core.member)
        yield _gauge("ivy_node_lease_seconds", "How long this node may still answer local "
                     "hits without a manager (0: it waits for one).",
                     max(0.0, core.lease_until - time.monotonic()))

    def _manager(self):
        c, core = self.c, self.daemon.core
        fam = GaugeMetricFamily("ivy_manager_role", "1 for this manager's role.",
                                labels=["role"])
        for role in ROLES:
            fam.add_metric([role], float(core.role == role))
        yield fam
        yield _gauge("ivy_manager_serving", "1 while this manager serves.", core.serving)
        yield _gauge("ivy_epoch", "The term this manager serves in or follows.", core.epoch)
        yield _counter("ivy_recoveries", "Recovery rounds this manager began (each a new "
                       "term: failover, handback or cold start).", c.recoveries)
        yield _gauge("ivy_replication_seq", "This manager's replication log position.",
                     core.seq)
        lag = GaugeMetricFamily("ivy_replication_lag_steps", "Log steps a replica has not "
                                "acknowledged yet.", labels=["replica"])
        for q, acked in sorted(core.replicas.items()):
            lag.add_metric([self.names(q)], max(0, core.seq - acked))
        yield lag
        yield _histogram("ivy_replication_ack_seconds", "From a Replicate to its "
                         "acknowledgement.", {"": c.ack_seconds}, None)
        beats = CounterMetricFamily("ivy_heartbeats_received", "Heartbeats from each peer.",
                                    labels=["peer"])
        missed = CounterMetricFamily("ivy_heartbeats_missed", "Heartbeats a peer should "
                                     "have sent but did not (silences included).",
                                     labels=["peer"])
        for q in self.daemon.cluster.manager_ids:
            if q != self.daemon.pid:
                beats.add_metric([self.names(q)], c.beats[q])
                missed.add_metric([self.names(q)], c.missed_now(q))
        yield beats
        yield missed
        table = core.table
        yield _gauge("ivy_locked_pages", "Pages with an operation in flight.",
                     sum(rec.op is not None for rec in table))
        yield _gauge("ivy_queued_faults", "Faults waiting for a page's lock.",
                     sum(len(rec.queue) for rec in table))
        yield _gauge("ivy_held_steps", "Steps whose messages wait for the replicas.",
                     len(getattr(core, "held", ())))
        yield _gauge("ivy_nodes_dead", "Nodes this manager holds dead (not back yet).",
                     len(core.dead_nodes()))
        yield _gauge("ivy_pages_lost", "Pages whose owner died with the only copy.",
                     sum(rec.lost for rec in table))


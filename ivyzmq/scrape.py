"""Reading the daemons' Prometheus metrics back: `ivy metrics [NAME]` (one daemon's
exposition, or a line for each), `ivy top` and the tests scrape through here.

A scrape is an HTTP GET of /metrics at the address the config gives the daemon; the text
is parsed with prometheus_client's own parser into {(sample name, labels): value}.
"""
from __future__ import annotations

import urllib.error
import urllib.request

from ivyzmq.config import Cluster
from ivyzmq.metrics import address_of

Samples = dict[tuple[str, frozenset], float]


def fetch_text(address: str, timeout: float = 1.0) -> str | None:
    """The exposition text at http://ADDRESS/metrics, or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=timeout) as resp:
            return resp.read().decode()
    except (OSError, urllib.error.URLError):
        return None


def parse(text: str) -> Samples:
    from prometheus_client.parser import text_string_to_metric_families
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def fetch(address: str, timeout: float = 1.0) -> Samples | None:
    text = fetch_text(address, timeout)
    return None if text is None else parse(text)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= lab)


def scrape_all(cluster: Cluster, timeout: float = 1.0) -> dict[str, Samples | None | str]:
    """Per daemon name: its samples, None (silent) or "off" (no metrics address)."""
    out: dict[str, Samples | None | str] = {}
    for name in cluster.daemon_names():
        where = address_of(cluster, cluster.pid_of(name))
        out[name] = "off" if not where else fetch(where, timeout)
    return out


def summary_line(name: str, s: Samples) -> str:
    """One line: what matters of a daemon at a glance."""
    msgs = (f"msgs in {total(s, 'ivy_messages_received_total'):.0f} "
            f"out {total(s, 'ivy_messages_sent_total'):.0f}")
    if ("ivy_manager_serving", frozenset()) in s:
        role = next((dict(lab)["role"] for (n, lab), v in s.items()
                     if n == "ivy_manager_role" and v), "?")
        serving = "serving" if total(s, "ivy_manager_serving") else "not serving"
        return (f"{name:<10} {role:<10} epoch {total(s, 'ivy_epoch'):.0f}  {serving}  "
                f"recoveries {total(s, 'ivy_recoveries_total'):.0f}  "
                f"lag {total(s, 'ivy_replication_lag_steps'):.0f}  {msgs}")
    return (f"{name:<10} node       epoch {total(s, 'ivy_epoch'):.0f}  "
            f"faults read {total(s, 'ivy_page_faults_total', kind='read'):.0f} "
            f"write {total(s, 'ivy_page_faults_total', kind='write'):.0f}  "
            f"owned {total(s, 'ivy_pages_owned'):.0f} copies "
            f"{total(s, 'ivy_read_copies'):.0f}  {msgs}")


def command(args, cluster: Cluster) -> int:
    """`ivy metrics [NAME]`."""
    from ivyzmq.programs import Fail
    if args.name:
        where = address_of(cluster, cluster.pid_of(args.name))
        if not where:
            raise Fail(f"{args.name} has no metrics address in the config (metrics: "
                       "\"HOST:PORT\")")
        text = fetch_text(where)
        if text is None:
            raise Fail(f"{args.name}: nothing answers at http://{where}/metrics")
        print(text, end="")
        return 0
    got = scrape_all(cluster)
    for name, s in got.items():
        if s == "off":
            print(f"{name:<10} metrics off (no metrics: address in the config)")
        elif s is None:
            print(f"{name:<10} not answering")
        else:
            print(summary_line(name, s))
    if not any(isinstance(s, dict) for s in got.values()):
        raise Fail("no daemon serves metrics (is the cluster up, with metrics: in its "
                   "config?)")
    return 0

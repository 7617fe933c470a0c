"""Generated cluster configs: free loopback ports (or an address per daemon inside a
network namespace), timing from `config.TIMING_PRESETS`. The one place tests, benchmarks
and the chaos runner make a config."""
from __future__ import annotations

import socket
from pathlib import Path

import msgspec
import yaml

from ivyzmq import config as C


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """n ports free on `host` right now."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((host, 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def cluster_dict(nodes: int = 3, pages: int = 5, managers=("primary", "backup"), *,
                 page_size: int = 4096, failback: bool = True, timing: str = "default",
                 own_addresses: bool = False, metrics: bool = False, replicas: int = 0,
                 security: str = "curve", **overrides) -> dict:
    """A config as plain data. `timing` names a preset; keyword overrides change single
    timing values. With own_addresses (inside a fresh namespace) every daemon gets a
    127.0.0.x of its own and fixed ports; else free ports on 127.0.0.1. With metrics every
    daemon serves Prometheus metrics on a port of its own."""
    m = len(managers)
    if own_addresses:
        mgr = [(f"127.0.0.{2 + i}", 5000, 5001) for i in range(m)]
        nds = [(f"127.0.0.{10 + i}", 5000) for i in range(nodes)]
    else:       # every port in one call: two calls may hand out the same port twice
        ports = free_ports(2 * m + nodes + (m + nodes if metrics else 0))
        mgr = [("127.0.0.1", ports[2 * i], ports[2 * i + 1]) for i in range(m)]
        nds = [("127.0.0.1", ports[2 * m + i]) for i in range(nodes)]
    timing_values = msgspec.structs.asdict(C.TIMING_PRESETS[timing]) | overrides
    data = {
        "pages": pages, "page_size": page_size, "replicas": replicas, "failback": failback,
        "security": security,
        "timing": timing_values,
        "managers": [{"name": name, "endpoint": f"tcp://{h}:{p}", "heartbeat": f"tcp://{h}:{q}"}
                     for name, (h, p, q) in zip(managers, mgr)],
        "nodes": [{"id": i, "endpoint": f"tcp://{h}:{p}"} for i, (h, p) in enumerate(nds)],
    }
    if metrics:
        specs = data["managers"] + data["nodes"]
        hosts = [h for h, *_ in mgr] + [h for h, _ in nds]
        extra = [9100] * len(specs) if own_addresses else ports[2 * m + nodes:]
        for spec, host, port in zip(specs, hosts, extra):
            spec["metrics"] = f"{host}:{port}"
    return data


def write(path: str | Path, data: dict) -> Path:
    path = Path(path)
    path.write_text(yaml.safe_dump(data))
    return path

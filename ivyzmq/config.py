"""The YAML cluster file, loaded once into validated, typed objects.

A bad file raises ConfigError with one message naming the field; the command-line entry
points print it and exit with status 2.
"""
from __future__ import annotations

import functools
import ipaddress
import math
import os
from pathlib import Path

import msgspec

DEFAULT_CONFIG = "config/cluster.yaml"


class ConfigError(ValueError):
    pass


SECURITY = ("curve", "none")


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class Timing(_Strict):
    heartbeat_interval: float = 0.5   # managers publish a heartbeat this often (s)
    liveness: int = 3                 # a peer is dead after this many missed heartbeats
    retry_timeout: float = 0.5        # a node re-sends an unanswered request after this (s)
    retries: int = 3                  # unanswered re-sends before a node tries the next manager
    redrive_timeout: float = 2.0      # a manager re-sends the messages of a stuck operation (s)
    step_delay: float = 0.0           # demo knob: pause before acting on each state change (s)
    op_timeout: float = 10.0          # a client gives up waiting for one read or write (s)
    node_liveness: float = 0.0        # a node silent this long is dead (s); 0: dead_after

    @property
    def dead_after(self) -> float:
        return self.heartbeat_interval * self.liveness

    @property
    def node_dead_after(self) -> float:
        return self.node_liveness or self.dead_after

    @property
    def lease(self) -> float:
        """How long a node may answer local hits after a beat the serving manager answered:
        shorter than the node liveness time, so a node declared dead has stopped by then."""
        return 2 / 3 * self.node_dead_after


# Named timings for generated clusters (chaos runs, benchmarks, tests): the defaults above,
# and everything five times faster for runs that want many failovers in little time.
TIMING_PRESETS = {
    "default": Timing(),
    "fast": Timing(heartbeat_interval=0.1, retry_timeout=0.1, redrive_timeout=0.5,
                   op_timeout=5.0),
}


class ManagerSpec(_Strict):
    name: str
    endpoint: str      # ROUTER: nodes, peers and tools talk to the manager here
    heartbeat: str     # PUB: heartbeats for the other managers
    metrics: str | None = None   # "HOST:PORT": serve Prometheus metrics there (off if absent)


class NodeSpec(_Strict):
    id: int
    endpoint: str      # ROUTER: page transfers, manager messages and client requests
    metrics: str | None = None   # "HOST:PORT": serve Prometheus metrics there (off if absent)

    @property
    def name(self) -> str:
        return f"node{self.id}"


class Cluster(_Strict):
    pages: int
    managers: list[ManagerSpec]
    nodes: list[NodeSpec]
    page_size: int = 4096
    replicas: int = 0           # replica holders of each page besides its owner
    failback: bool = True
    timing: Timing = Timing()
    security: str = "curve"     # curve: CURVE keys on every socket; none: open (benchmarks)
    keys: str = ""              # the keys directory; load() makes it absolute

    @property
    def keys_dir(self) -> str:
        return self.keys or ".keys/cluster"

    # -- derived ids: nodes 0..N-1, managers N..N+M-1 in failover order --------------------
    @property
    def manager_ids(self) -> list[int]:
        n = len(self.nodes)
        return list(range(n, n + len(self.managers)))

    @property
    def node_ids(self) -> list[int]:
        return [spec.id for spec in self.nodes]

    def initial_owner(self, page: int) -> int:
        return page % len(self.nodes)

    def endpoint(self, pid: int) -> str:
        n = len(self.nodes)
        return self.nodes[pid].endpoint if pid < n else self.managers[pid - n].endpoint

    def name(self, pid: int) -> str:
        n = len(self.nodes)
        return self.nodes[pid].name if pid < n else self.managers[pid - n].name

    def daemon_names(self) -> list[str]:
        return [m.name for m in self.managers] + [nd.name for nd in self.nodes]

    def pid_of(self, name: str) -> int:
        """Process id for a daemon name: a manager name, `nodeK`, or a bare node number."""
        for i, m in enumerate(self.managers):
            if m.name == name:
                return len(self.nodes) + i
        key = name.removeprefix("node")
        if key.isdigit() and int(key) < len(self.nodes):
            return int(key)
        raise ConfigError(f"no daemon named {name!r} (have: {', '.join(self.daemon_names())})")


def _check(c: Cluster) -> None:
    if not 1 <= c.pages <= 1_000_000:
        raise ConfigError("pages: must be between 1 and 1000000")
    if not 1 <= c.page_size <= 64 * 1024 * 1024:
        raise ConfigError("page_size: must be between 1 and 67108864 bytes")
    if not c.managers:
        raise ConfigError("managers: at least one manager is needed")
    if not c.nodes:
        raise ConfigError("nodes: at least one node is needed")
    if not 0 <= c.replicas < len(c.nodes):
        raise ConfigError(f"replicas: must be between 0 and {len(c.nodes) - 1} (the other "
                          f"nodes besides a page's owner), got {c.replicas}")
    if c.security not in SECURITY:
        raise ConfigError(f"security: must be one of {', '.join(SECURITY)}, got {c.security!r}")
    if len(c.managers) > 16:
        raise ConfigError("managers: at most 16 managers")
    for i, nd in enumerate(c.nodes):
        if nd.id != i:
            raise ConfigError(f"nodes[{i}].id: expected {i} (ids run 0..N-1 in order), got {nd.id}")
    seen: dict[str, str] = {}
    for i, m in enumerate(c.managers):
        if not m.name or m.name.startswith("node") or m.name.isdigit():
            raise ConfigError(f"managers[{i}].name: {m.name!r} is empty or looks like a node name")
        if m.name in seen:
            raise ConfigError(f"managers[{i}].name: duplicate name {m.name!r} "
                              f"(also {seen[m.name]})")
        seen[m.name] = f"managers[{i}].name"
    _check_endpoints(c)
    t = c.timing
    _check_finite(t)
    for name in ("heartbeat_interval", "retry_timeout", "redrive_timeout", "op_timeout"):
        if getattr(t, name) <= 0:
            raise ConfigError(f"timing.{name}: must be positive")
    if t.step_delay < 0:
        raise ConfigError("timing.step_delay: must not be negative")
    if t.node_liveness < 0:
        raise ConfigError("timing.node_liveness: must not be negative (0: as the managers')")
    if t.liveness < 1 or t.retries < 1:
        raise ConfigError("timing.liveness and timing.retries: must be at least 1")


def _check_finite(t: Timing) -> None:
    """NaN passes every comparison the range checks make, and an infinite time-out is a
    hang: no timing value may be either."""
    for f in msgspec.structs.fields(t):
        value = getattr(t, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"timing.{f.name}: must be a finite number, got {value}")


def _check_endpoints(c: Cluster) -> None:
    """Each endpoint is bound by one daemon and connected to by every other, so it must
    name an address a peer can reach; two endpoints that reach the same socket address
    (localhost and 127.0.0.1, say) would have two daemons bind one port."""
    fields = [(f"managers[{i}].{f}", getattr(m, f)) for i, m in enumerate(c.managers)
              for f in ("endpoint", "heartbeat")]
    fields += [(f"nodes[{i}].endpoint", nd.endpoint) for i, nd in enumerate(c.nodes)]
    seen: dict[tuple, tuple[str, str]] = {}
    for where, ep in fields:
        for key in _endpoint_keys(where, ep):
            if key in seen:
                other, other_ep = seen[key]
                same = "" if other_ep == ep else f" {other_ep!r}, the same address"
                raise ConfigError(f"{where}: duplicate endpoint {ep!r} (also {other}{same})")
            seen[key] = (where, ep)


def _endpoint_keys(where: str, ep: str) -> set[tuple]:
    """Check one endpoint; its socket addresses after normalisation, to compare."""
    scheme, sep, rest = ep.partition("://")
    if not sep or scheme not in _TRANSPORTS:
        raise ConfigError(f"{where}: {ep!r} is not a tcp://, ipc:// or inproc:// endpoint")
    if not ep.isprintable():
        raise ConfigError(f"{where}: {ep!r} holds characters that cannot be printed")
    try:
        return _TRANSPORTS[scheme](rest)
    except _Refused as why:
        raise ConfigError(f"{where}: {ep!r} {why}") from None


class _Refused(Exception):
    """Why an endpoint is refused; `_endpoint_keys` puts the field and endpoint first."""


def _tcp(rest: str) -> set[tuple]:
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port:
        raise _Refused("needs a host and a port (tcp://HOST:PORT)")
    if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise _Refused(f"has port {port!r}: a port is a number in 1..65535")
    return {("tcp", addr, int(port)) for addr in _addresses(host)}


def _addresses(host: str) -> frozenset[str]:
    """The IPv4 addresses of `host` (the daemons' sockets are IPv4 only)."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        ip = None
    if bare == "*" or (ip is not None and ip.is_unspecified):
        raise _Refused("has a wildcard host, which only binds: the other daemons connect "
                       "to this endpoint, so name an address they can reach")
    if ip is not None and ip.version == 6:
        raise _Refused("has an IPv6 address: the daemons' sockets are IPv4 only")
    if ip is not None:
        return frozenset([str(ip)])
    if all(part.isdigit() for part in bare.split(".")):
        raise _Refused(f"has host {host!r}, which is not a valid IPv4 address")
    addrs = _resolve(bare)
    if not addrs:
        raise _Refused(f"has host {host!r}, which does not resolve to an IPv4 address")
    return addrs


@functools.lru_cache(maxsize=256)
def _resolve(name: str) -> frozenset[str]:
    """Cached: a config is loaded by every command and often several times by one."""
    import socket       # here: a config of IP addresses does not need it
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    except (OSError, ValueError):      # unknown name, or not even a valid one
        return frozenset()
    return frozenset(info[4][0] for info in infos)


IPC_PATH_MAX = 107      # bytes in a Unix socket address on Linux (sun_path, less the NUL)


def _ipc(path: str) -> set[tuple]:
    if not path or path in ("*", "@"):
        raise _Refused("needs a path (ipc:///dir/name, or ipc://@name in the abstract "
                       "namespace)")
    if path.startswith("@"):
        return {("ipc", path)}
    if len(path.encode()) > IPC_PATH_MAX:
        raise _Refused(f"has a path longer than {IPC_PATH_MAX} bytes, the limit of a Unix "
                       "socket address")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise _Refused(f"names directory {folder!r}, which does not exist")
    return {("ipc", os.path.realpath(path))}


def _inproc(name: str) -> set[tuple]:
    if not name:
        raise _Refused("needs a name (inproc://NAME)")
    return {("inproc", name)}


_TRANSPORTS = {"tcp": _tcp, "ipc": _ipc, "inproc": _inproc}


def parse(data: object, source: str = "<config>") -> Cluster:
    try:
        cluster = msgspec.convert(data, Cluster, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(_readable(str(exc))) from None
    _check(cluster)
    return cluster


def _readable(text: str) -> str:
    """msgspec says 'Expected `int`, got `str` - at `$.nodes[0].id`'; put the field first."""
    if " - at `$." in text:
        what, where = text.rsplit(" - at `$.", 1)
        return f"{where.rstrip('`')}: {what}"
    return text


def load(path: str | Path) -> Cluster:
    import yaml     # here: only what reads a config pays for it (~15 ms)
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        cluster = parse(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    # The keys directory is relative to the config file, so every process finds the same.
    keys = path.parent / (cluster.keys or f".keys/{path.stem}")
    return msgspec.structs.replace(cluster, keys=str(keys.absolute()))

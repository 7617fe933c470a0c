"""Network partitions between real managers on one machine: a network namespace of the run's
own (so the rules touch nothing else), an address per daemon in it, and firewall rules that
cut the link between two managers, with nftables, or iptables when nft is missing.

A packet on loopback leaves from 127.0.0.1 whoever sends it, so addresses alone cannot tell
whose connection a packet belongs to. The managers therefore run under uids of their own
(`setpriv`, keeping only the capability to read and write the run's files); the firewall marks
each connection (conntrack) with the uid of the manager that opened it, and a cut drops both
directions of every connection between the two managers. Everything here needs root.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

from loguru import logger

from ivyzmq.config import Cluster

MANAGER_UID = 61000          # managers run as 61000, 61001, ... when partitions are on
TABLE = "ivychaos"


def manager_uids(cluster: Cluster) -> dict[str, int]:
    return {m.name: MANAGER_UID + i for i, m in enumerate(cluster.managers)}


def setpriv(uid: int) -> list[str]:
    """The argv to put before a daemon's command to run it as `uid`. setpriv execs the daemon
    in place (same os_pid); keeping CAP_DAC_OVERRIDE lets it read the config and write its
    log wherever root's run directory is."""
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--inh-caps=+dac_override", "--ambient-caps=+dac_override", "--"]


def host_of(endpoint: str) -> str:
    return endpoint.split("://", 1)[1].rsplit(":", 1)[0]


# -- the namespace -------------------------------------------------------------------------

def _ip(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *argv], capture_output=True, text=True, timeout=10)


def why_no_netns() -> str:
    """Why this process cannot make a namespace ("" when it can)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "not root, so no network namespace"
    if not shutil.which("ip"):
        return "`ip` is not installed, so no network namespace"
    return ""


class Namespace:
    """A network namespace created for one run and deleted at its end. Each method returns
    "" on success, else the tool's error in one line."""

    def __init__(self, name: str):
        self.name = name

    def create(self) -> str:
        made = _ip("netns", "add", self.name)
        return "" if made.returncode == 0 else made.stderr.strip()

    def lo_up(self) -> str:
        """A new namespace's loopback is down: every 127.0.0.x needs it."""
        lo = _ip("-n", self.name, "link", "set", "lo", "up")
        return "" if lo.returncode == 0 else lo.stderr.strip()

    def exec_argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def delete(self) -> str:
        gone = _ip("netns", "del", self.name)
        return "" if gone.returncode == 0 else gone.stderr.strip()


# -- the firewall (inside the namespace) ---------------------------------------------------

class FirewallError(RuntimeError):
    pass


def pick_firewall() -> tuple[str | None, str]:
    if shutil.which("nft"):
        return "nft", ""
    if shutil.which("iptables"):
        return "iptables", ""
    return None, "neither nft nor iptables is installed"


class Firewall:
    """Cuts links between managers. `managers` is [(name, address, uid)]. Connections are
    marked (conntrack) with 1 + the index of the manager whose uid opened them; cutting a
    and b drops every packet of a's connections to b's address and of b's to a's, both
    ways. `dropped` counts the packets the cuts dropped (proof they cut live traffic)."""

    def __init__(self, kind: str, managers: list[tuple[str, str, int]]):
        self.kind, self.managers = kind, managers
        self.cuts: set[frozenset[str]] = set()
        self.dropped = 0

    @classmethod
    def for_cluster(cls, kind: str, cluster: Cluster) -> "Firewall":
        uids = manager_uids(cluster)
        return cls(kind, [(m.name, host_of(m.endpoint), uids[m.name])
                          for m in cluster.managers])

    def _run(self, args: list[str], stdin: str | None = None) -> None:
        proc = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=10)
        if proc.returncode != 0:
            err = " ".join(proc.stderr.split())[:200]
            raise FirewallError(f"{' '.join(args[:3])}: {err}")

    def _links(self, a: str, b: str):
        """(connection mark, peer address) of both directions of the link a <-> b."""
        index = {name: i for i, (name, _, _) in enumerate(self.managers)}
        addr = {name: address for name, address, _ in self.managers}
        for src, dst in ((a, b), (b, a)):
            yield index[src] + 1, addr[dst]

    def install(self) -> None:
        if self.kind == "nft":
            marks = "\n".join(f"    ct state new meta skuid {uid} ct mark set {i + 1}"
                              for i, (_, _, uid) in enumerate(self.managers))
            self._run(["nft", "-f", "-"], f"""table inet {TABLE} {{
  chain marking {{
    type filter hook output priority -150; policy accept;
{marks}
  }}
  chain cutoff {{
    type filter hook output priority 0; policy accept;
  }}
}}
""")
            return
        self._run(["iptables", "-t", "mangle", "-N", "IVYCHAOS_MARK"])
        self._run(["iptables", "-t", "mangle", "-A", "OUTPUT", "-j", "IVYCHAOS_MARK"])
        for i, (_, _, uid) in enumerate(self.managers):
            self._run(["iptables", "-t", "mangle", "-A", "IVYCHAOS_MARK", "-m", "owner",
                       "--uid-owner", str(uid), "-m", "conntrack", "--ctstate", "NEW",
                       "-j", "CONNMARK", "--set-mark", str(i + 1)])
        self._run(["iptables", "-N", "IVYCHAOS_CUT"])
        self._run(["iptables", "-A", "OUTPUT", "-j", "IVYCHAOS_CUT"])

    def _drop(self, a: str, b: str) -> None:
        if self.kind == "nft":
            rules = "\n".join(f"add rule inet {TABLE} cutoff ct mark {m} ip {way} {addr} "
                              "counter drop"
                              for m, addr in self._links(a, b) for way in ("daddr", "saddr"))
            self._run(["nft", "-f", "-"], rules + "\n")
            return
        for m, addr in self._links(a, b):
            for way in ("-d", "-s"):
                self._run(["iptables", "-A", "IVYCHAOS_CUT", "-m", "connmark", "--mark",
                           str(m), way, addr, "-j", "DROP"])

    def cut(self, a: str, b: str) -> None:
        self._drop(a, b)
        self.cuts.add(frozenset((a, b)))

    def heal(self, a: str, b: str) -> None:
        """Count what the cuts dropped, remove every cut rule, and put back the other cuts."""
        try:
            self.dropped += self._counted()
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            logger.warning("cannot read the firewall's counters: {}", exc)
        if self.kind == "nft":
            self._run(["nft", "flush", "chain", "inet", TABLE, "cutoff"])
        else:
            self._run(["iptables", "-F", "IVYCHAOS_CUT"])
        self.cuts.discard(frozenset((a, b)))
        for pair in sorted(self.cuts, key=sorted):
            self._drop(*sorted(pair))

    def _counted(self) -> int:
        """Packets the present cut rules have dropped."""
        if self.kind == "nft":
            out = subprocess.run(["nft", "list", "chain", "inet", TABLE, "cutoff"],
                                 capture_output=True, text=True, timeout=10).stdout
            return sum(int(n) for n in re.findall(r"packets (\d+)", out))
        out = subprocess.run(["iptables", "-L", "IVYCHAOS_CUT", "-v", "-x", "-n"],
                             capture_output=True, text=True, timeout=10).stdout
        return sum(int(line.split()[0]) for line in out.splitlines()[2:]
                   if line.split() and line.split()[0].isdigit())

    def remove(self) -> None:
        cmds = [["nft", "delete", "table", "inet", TABLE]] if self.kind == "nft" else [
            ["iptables", "-D", "OUTPUT", "-j", "IVYCHAOS_CUT"],
            ["iptables", "-F", "IVYCHAOS_CUT"], ["iptables", "-X", "IVYCHAOS_CUT"],
            ["iptables", "-t", "mangle", "-D", "OUTPUT", "-j", "IVYCHAOS_MARK"],
            ["iptables", "-t", "mangle", "-F", "IVYCHAOS_MARK"],
            ["iptables", "-t", "mangle", "-X", "IVYCHAOS_MARK"]]
        try:
            for cmd in cmds:
                self._run(cmd)
        except (FirewallError, subprocess.TimeoutExpired) as exc:
            logger.warning("firewall cleanup: {}", exc)

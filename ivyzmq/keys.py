"""The cluster's CURVE keys: one pair for every daemon of a config and one for clients.

A keys directory (the config's `keys`, by default `.keys/<config name>/` beside the config
file) holds, for each name (`primary`, `node0`, ..., `client`):

    NAME.key         the public key: every machine of the cluster needs every one of these
    NAME.key_secret  the public and the secret key: only the machine that runs NAME
                     (for `client`: every machine that runs `ivy` commands or programs)

in ZeroMQ's certificate format (the files `zmq.auth` reads), the secret ones readable by
their owner only. A daemon's sockets are CURVE servers towards whoever connects to them and
CURVE clients towards the daemons they connect to; see docs/PROTOCOL.md section 10.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import zmq

from ivyzmq.config import Cluster, ConfigError

CLIENT = "client"          # the key every tool and client program uses
_KEY = re.compile(rb'(public|secret)-key\s*=\s*"([^"]{40})"')


class KeysError(ConfigError):
    """A key file is missing, unreadable, malformed or readable by others."""


def names(cluster: Cluster) -> list[str]:
    return cluster.daemon_names() + [CLIENT]


def ensure(cluster: Cluster, if_none: bool = False) -> list[str]:
    """Create the key pairs of `cluster` that are missing (with `if_none`, only when the
    keys directory has none at all: on a machine that holds its own share of a cluster's
    keys, nothing is made up); the names created. Safe when several processes do it at
    once: a secret file appears whole or not at all, and a public file is always derived
    from the secret one beside it."""
    folder = Path(cluster.keys_dir)
    if if_none and folder.is_dir() and any(folder.glob("*.key")):
        return []
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    made = []
    for name in names(cluster):
        secret = folder / f"{name}.key_secret"
        if not secret.exists():
            public_key, secret_key = zmq.curve_keypair()
            if _write_new(secret, _text(name, public_key, secret_key)):
                made.append(name)
        public = folder / f"{name}.key"
        if not public.exists():
            public_key, _ = _read(secret, name)
            _write_new(public, _text(name, public_key, None), mode=0o644)
    return made


def _text(name: str, public: bytes, secret: bytes | None) -> bytes:
    what = "secret" if secret else "public"
    lines = [f"#   ivyzmq CURVE {what} key of {name}, made {time.strftime('%Y-%m-%d %H:%M')}",
             "metadata", "curve", f'    public-key = "{public.decode()}"']
    if secret:
        lines.append(f'    secret-key = "{secret.decode()}"')
    return ("\n".join(lines) + "\n").encode()


def _write_new(path: Path, data: bytes, mode: int = 0o600) -> bool:
    """Write `path` only if it does not exist yet; False if another process was first."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


def _read(path: Path, name: str) -> tuple[bytes, bytes | None]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeysError(f"no CURVE key for {name}: {path} is missing (create the cluster's "
                        "keys with `ivy keys -c CONFIG`; `ivy up` does it when none exist)"
                        ) from None
    except OSError as exc:
        raise KeysError(f"cannot read {path}: {exc.strerror}") from None
    found = dict(_KEY.findall(data))
    if b"public" not in found:
        raise KeysError(f"{path}: no public-key line, not a ZeroMQ certificate")
    return found[b"public"], found.get(b"secret")


class Keys:
    """The public keys of every process of a cluster, and the pair of the one that uses
    them (`me`: a daemon name or CLIENT). Loaded from the keys directory at once, so a
    missing or bad file is an error before any socket exists."""

    def __init__(self, cluster: Cluster, me: str):
        self.cluster, self.me = cluster, me
        folder = Path(cluster.keys_dir)
        self.public = {name: _read(folder / f"{name}.key", name)[0] for name in names(cluster)}
        secret_path = folder / f"{me}.key_secret"
        mine, secret = _read(secret_path, me)
        if secret is None:
            raise KeysError(f"{secret_path}: no secret-key line")
        if mine != self.public[me]:
            raise KeysError(f"{secret_path} does not match {me}.key beside it")
        if os.stat(secret_path).st_mode & 0o077:
            raise KeysError(f"{secret_path} is readable by others: chmod 600 it")
        self.pair = (mine, secret)
        self.by_key = {key: name for name, key in self.public.items()}

    def client(self, sock: zmq.Socket, server: str) -> None:
        """Make `sock` a CURVE client that only talks to the daemon named `server`."""
        sock.curve_publickey, sock.curve_secretkey = self.pair
        sock.curve_serverkey = self.public[server]

    def server(self, sock: zmq.Socket, domain: str) -> None:
        """Make `sock` a CURVE server; the ZAP handler decides who gets in (`domain`)."""
        sock.curve_publickey, sock.curve_secretkey = self.pair
        sock.curve_server = True
        sock.zap_domain = domain.encode()


def for_process(cluster: Cluster, me: str) -> Keys | None:
    """The keys `me` uses under the config's security; None with `security: none`."""
    return Keys(cluster, me) if cluster.security == "curve" else None


_client_keys: dict[str, Keys] = {}


def client_keys(cluster: Cluster) -> Keys | None:
    """The client's keys (loaded once per keys directory), None with `security: none`."""
    if cluster.security != "curve":
        return None
    keys = _client_keys.get(cluster.keys_dir)
    if keys is None:
        keys = _client_keys[cluster.keys_dir] = Keys(cluster, CLIENT)
    return keys

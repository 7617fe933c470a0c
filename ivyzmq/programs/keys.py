"""`ivy keys [-c CONFIG]`: make the CURVE key pairs of a config's daemons and of its
clients that are missing, in the config's keys directory (docs/PROTOCOL.md section 10).
Existing keys are kept. `ivy up` does the same when the directory has no keys at all.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ivyzmq.programs import Result

NAME = "keys"
HELP = "make the CURVE keys of the config's daemons and clients that are missing"


def add_arguments(p) -> None:
    p.epilog = ("which files go where: every machine of the cluster gets every NAME.key "
                "(public); the machine that runs daemon NAME gets NAME.key_secret; every "
                "machine that runs ivy commands or client programs gets client.key_secret")


@dataclass
class KeysMade(Result):
    folder: str
    made: list[str]
    names: list[str] = field(default_factory=list)

    def text(self) -> str:
        if not self.made:
            return f"every key of the config is in {self.folder}: nothing made"
        return (f"made key pairs for {', '.join(self.made)} in {self.folder}\n"
                f"public keys (NAME.key): copy all of them to every machine of the cluster\n"
                f"secret keys (NAME.key_secret): only to the machine that runs NAME "
                f"(client: where ivy commands and programs run)")

    def json(self) -> dict:
        return {"keys": self.folder, "made": self.made, "names": self.names}


def run(args) -> KeysMade:
    from ivyzmq import config as C
    from ivyzmq import keys as K
    cluster = C.load(args.config)
    return KeysMade(cluster.keys_dir, K.ensure(cluster), K.names(cluster))

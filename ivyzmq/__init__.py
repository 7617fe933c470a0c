"""ivyzmq: a fault-tolerant Ivy distributed shared memory over ZeroMQ.

Logging stays off for the library (loguru's convention): a program that embeds a node gets
no log lines unless it calls `logger.enable("ivyzmq")`; the daemons and `ivy` enable it.
Importing loguru (and the asyncio it imports) would cost a short command such as `ivy read`
about half its time, so the package does not import it: it disables itself in loguru as
soon as anybody imports loguru.
"""
import sys


class _QuietWhenLoguruLoads:
    """An import hook that finds nothing itself: when loguru is first imported, it lets the
    usual finders load it and then disables ivyzmq's logging, before anyone can log."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "loguru":
            return None
        # A new list, not remove(): another thread may be going through the old one.
        sys.meta_path = [f for f in sys.meta_path if f is not cls]
        from importlib.util import find_spec
        spec = find_spec(name)
        if spec is not None and spec.loader is not None:
            run = spec.loader.exec_module

            def exec_module(module) -> None:
                run(module)
                module.logger.disable("ivyzmq")
            spec.loader.exec_module = exec_module
        return spec


if "loguru" in sys.modules:
    sys.modules["loguru"].logger.disable("ivyzmq")
else:
    sys.meta_path.insert(0, _QuietWhenLoguruLoads)

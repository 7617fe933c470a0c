"""The `ivy` command: run a cluster from a YAML config, use its memory, watch and break it.

Exit status: 0 on success, 1 when the operation failed, 2 for bad arguments or a bad config.
"""
from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import threading
import time
from pathlib import Path

import msgspec

from ivyzmq import args as A
from ivyzmq import config as C
from ivyzmq import memcmds, programs, readout, tracing
from ivyzmq.client import IvyError
from ivyzmq.programs import Fail

# A command imports what it uses when it runs: `ivy read` pays for zmq, the config and the
# client, not for loguru, the supervisor or the programs (tests/test_cli_imports.py).

EPILOG = """examples:
  ivy up                        start the cluster of config/cluster.yaml
  ivy read 2 1                  node 2 reads page 1
  ivy write 2 1 hello           node 2 writes 'hello' at the start of page 1
  ivy add 2 3 1                 node 2 adds 1 to the counter at the start of page 3
  ivy cas 2 4 '' locked         node 2 takes page 4 from empty to 'locked', or says not
  ivy status                    every manager's and node's page table
  ivy trace --clear             the protocol messages so far, then forget them
  ivy kill primary              SIGKILL the primary manager (ivy restart primary)
  ivy workload --clients 10 --ops 1000 --pages 3
  ivy down                      stop every daemon this config started
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", default=C.DEFAULT_CONFIG,
                   help=f"cluster YAML file (default {C.DEFAULT_CONFIG})")
    p.add_argument("--run-dir", help="where pids and logs go (default .ivy/<config name>, "
                   "or $IVY_RUN_DIR)")


class _Unused:
    """Stands for the subparser of a command that is not the one run: takes its arguments
    and drops them (argparse spends a millisecond on each subparser it builds)."""

    def add_argument(self, *args, **kw) -> None:
        pass

    def set_defaults(self, **kw) -> None:
        pass

    def get_default(self, dest: str) -> None:
        return None


def parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or only the subcommand `only` (and only its program)."""
    ap = argparse.ArgumentParser(prog="ivy", description=__doc__.splitlines()[0],
                                 epilog=EPILOG, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND", required=True)

    def cmd(name: str, help: str) -> argparse.ArgumentParser:
        if only not in (None, name):
            return _Unused()
        p = sub.add_parser(name, help=help, description=help)
        _common(p)
        return p

    p = cmd("up", "start the config's daemons in the background and wait until they answer")
    p.add_argument("--only", help="comma-separated daemon names (e.g. primary,node0,node1): "
                   "one machine's share of a cluster spread over hosts")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    p.add_argument("--log-format", default="text", choices=["text", "json"],
                   help="the daemons' logs: text, or one JSON object a line")
    cmd("down", "stop exactly the daemons `ivy up` started for this config")
    p = cmd("status", "page tables of every manager and node (the homework's readout)")
    p.add_argument("--json", action="store_true")
    memcmds.add_parsers(cmd)
    p = cmd("trace", "every protocol message sent, in causal order, operation by operation")
    p.add_argument("--clear", action="store_true", help="forget the messages after printing")
    p.add_argument("--json", action="store_true")
    p.add_argument("--op", type=int, metavar="N", help="only operation N (the Op column: "
                   "one fault, the messages sharing its requester and rid)")
    p.add_argument("--page", type=int, metavar="P", help="only the messages about page P")
    p.add_argument("--svg", metavar="FILE", help="write a sequence diagram (SVG) instead")
    p.add_argument("--html", metavar="FILE", help="write it as an HTML page instead")
    for name, what in [("kill", "SIGKILL"), ("pause", "SIGSTOP"), ("resume", "SIGCONT")]:
        p = cmd(name, f"send {what} to one daemon of the running cluster")
        p.add_argument("name", help="daemon name: a manager name or nodeK")
    p = cmd("restart", "start one daemon again (killing it first if it runs); a node comes "
            "back empty, as a new incarnation, and rejoins")
    p.add_argument("name")
    p = cmd("metrics", "one daemon's Prometheus metrics, or a line for each daemon")
    p.add_argument("name", nargs="?", help="daemon name (default: a summary of each)")
    p = cmd("top", "a live view of the cluster (q quits); one snapshot when not a terminal")
    p.add_argument("--interval", type=float, default=0.3, help="seconds between looks")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    for name in programs.NAMES:
        if only in (None, name):
            mod = programs.load(name)
            p = cmd(name, mod.HELP)
            p.add_argument("--json", action="store_true", help="print the result as JSON")
            mod.add_arguments(p)
    return ap


def _command(argv: list[str]) -> str | None:
    """The subcommand, when it is the first word (`ivy` itself has only -h): then argparse
    builds that one alone."""
    if argv and (argv[0] in COMMANDS or argv[0] in programs.NAMES):
        return argv[0]
    return None


def _logging() -> None:
    """Warnings and errors of the code a program runs go to stderr. Only programs log:
    the other commands never import loguru."""
    from loguru import logger
    logger.remove()
    logger.add(sys.stderr, level="WARNING", format="{level}: {message}")
    logger.enable("ivyzmq")     # the library is quiet until an application says otherwise


def main(argv: list[str] | None = None) -> int:
    if argv is not None:
        return _main(argv)
    status = _main(sys.argv[1:])
    # The process exits next: the objects left need no cyclic garbage collection, which
    # the interpreter's exit would otherwise run over all of them (20 ms of `ivy read`).
    gc.freeze()
    return status


def _main(argv: list[str]) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        args = parser(_command(argv)).parse_args(argv)
    except SystemExit as exc:     # --help or a usage error: return instead of exiting
        return exc.code if isinstance(exc.code, int) else 2
    _thread_errors(args, argv)
    try:
        return _dispatch(args)
    except (C.ConfigError, A.OptionError) as exc:
        print(f"ivy {args.cmd}: error: {exc}", file=sys.stderr)
        return 2
    except Fail as exc:
        print(f"ivy {args.cmd}: {exc}", file=sys.stderr)
        return exc.status
    except IvyError as exc:
        print(f"ivy {args.cmd}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:         # a file or device the command needed: say which
        print(f"ivy {args.cmd}: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:       # a bug, not the input: one line, the rest in a file
        return _internal_error(args, argv, exc)


def _internal_error(args, argv: list[str], exc: BaseException, where: str = "") -> int:
    """Nobody expected this exception, so its traceback is what a fix needs; the user
    gets one line and the path of the file that keeps it."""
    import traceback
    path = _error_log(args, argv, "".join(traceback.format_exception(exc)))
    what = " ".join(str(exc).split())[:200]
    print(f"ivy {args.cmd}: internal error{where}: {type(exc).__name__}: {what}; details "
          f"in {path}", file=sys.stderr)
    return 1


def _error_log(args, argv: list[str], text: str) -> str:
    """Append to ivy-errors.log in the run directory if there is one, else a temp file."""
    import shlex
    import tempfile
    from ivyzmq.supervisor import default_run_dir
    head = f"{time.strftime('%Y-%m-%d %H:%M:%S')} ivy {shlex.join(argv)}\n"
    run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(args.config)
    try:
        if not run_dir.is_dir():
            raise FileNotFoundError(run_dir)
        path = run_dir / "ivy-errors.log"
        with path.open("a") as f:
            f.write(head + text + "\n")
    except OSError:
        with tempfile.NamedTemporaryFile("w", prefix="ivy-error-", suffix=".log",
                                         delete=False) as f:
            f.write(head + text)
            path = f.name
    return str(path)


def _thread_errors(args, argv: list[str]) -> None:
    """A thread's uncaught exception (a workload client's, say) is kept like the main
    thread's, instead of Python printing its traceback."""
    def hook(info) -> None:
        if isinstance(info.exc_value, Exception):
            name = info.thread.name if info.thread else "?"
            _internal_error(args, argv, info.exc_value, f" in thread {name}")
    threading.excepthook = hook


def _dispatch(args) -> int:
    """Run the subcommand, once the values bounded by the config fit it."""
    if args.cmd in programs.NAMES:
        _logging()
        if getattr(args, A.BOUNDS, None):
            A.check_fits(args, _config(args))
        res = programs.load(args.cmd).run(args)
        print(res.render(args.json))
        return res.status
    cluster = _config(args)
    A.check_fits(args, cluster)
    return COMMANDS[args.cmd](args, cluster) or 0


CONFIG_COPY = "config-cache.json"


def _config(args) -> C.Cluster:
    """`config.load`, through a copy of what it returned kept in the run directory (if
    there is one): importing and running PyYAML costs `ivy read` a fifth of its time. The
    copy stands only for the same file text, read from the same place, by the same
    config.py; a config that fails to load is never kept."""
    from ivyzmq.supervisor import default_run_dir
    path = Path(args.config)
    copy = (Path(args.run_dir) if args.run_dir else default_run_dir(args.config)) / CONFIG_COPY
    try:
        code = os.stat(C.__file__)
        key = [str(path.absolute()), path.read_text(), code.st_mtime_ns, code.st_size]
    except (OSError, ValueError):
        return C.load(args.config)  # which says what is wrong with the file
    try:
        kept = msgspec.json.decode(copy.read_bytes())
        if kept["key"] == key:
            return msgspec.convert(kept["cluster"], C.Cluster)
    except (OSError, KeyError, TypeError, msgspec.MsgspecError):
        pass
    cluster = C.load(args.config)
    if copy.parent.is_dir():
        tmp = copy.with_name(f"{CONFIG_COPY}.{os.getpid()}")
        try:
            tmp.write_bytes(msgspec.json.encode({"key": key, "cluster": cluster}))
            os.replace(tmp, copy)
        except OSError:
            pass                    # a read-only run directory: no copy, that is all
    return cluster


def _run(args, cluster: C.Cluster, **kw):
    from ivyzmq.deploy import Deployment
    return Deployment(args.config, cluster, args.run_dir, **kw)


def _names(cluster: C.Cluster, text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:       # not "all of them": that is leaving --only out
        raise Fail(f"--only {text!r} names no daemon (have: "
                   f"{', '.join(cluster.daemon_names())})", 2)
    for n in names:
        if n not in cluster.daemon_names():
            raise Fail(f"no daemon named {n!r} (have: {', '.join(cluster.daemon_names())})", 2)
    return names


def cmd_up(args, cluster):
    run = _run(args, cluster, log_level=args.log_level, log_format=args.log_format)
    names = _names(cluster, args.only)
    started = run.up(names)
    if run.made_keys:
        print(f"made CURVE keys for {', '.join(run.made_keys)} in {cluster.keys_dir}/")
    if not started:
        raise Fail(f"already running (see {run.procs.record_file}); `ivy down` stops it")
    print(f"started {', '.join(started)}; logs in {run.path}/")


def cmd_down(args, cluster):
    stopped = _run(args, cluster).down()
    print(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")


def cmd_status(args, cluster):
    replies = _run(args, cluster).status()
    print(readout.status_json(replies) if args.json else readout.status_text(cluster, replies))
    if all(r is None for _, r in replies):
        raise Fail("no daemon answers (is the cluster up?)")


def cmd_trace(args, cluster):
    run = _run(args, cluster)
    if all(reply is None for _, reply in run.status(timeout=0.5)):
        raise Fail("no daemon answers (is the cluster up?)")
    rows = run.trace(clear=args.clear)
    nums = tracing.numbers(rows)
    rows = tracing.select(rows, args.op, args.page)
    if args.svg or args.html:
        from ivyzmq import sequence
        names = {pid: cluster.name(pid) for pid in range(len(cluster.daemon_names()))}
        for path, page in ((args.svg, sequence.svg), (args.html, sequence.html)):
            if path:
                with open(path, "w") as f:
                    f.write(page(rows, names, nums))
                print(f"wrote {path}: {len(rows)} messages, "
                      f"{len({tracing.op_key(r) for r in rows})} operations")
        return
    print(readout.trace_json(cluster, rows, nums) if args.json else
          readout.trace_text(rows, nums))


def _signal(what: str):
    def run(args, cluster):
        cluster.pid_of(args.name)
        procs = _run(args, cluster).procs
        ok = procs.kill(args.name) if what == "kill" else \
            procs.signal(args.name, signal.SIGSTOP if what == "pause" else signal.SIGCONT)
        if not ok:
            raise Fail(f"{args.name} is not running")
        print(f"{what} {args.name}")
    return run


def cmd_restart(args, cluster):
    cluster.pid_of(args.name)
    _run(args, cluster).restart(args.name)
    print(f"restarted {args.name}")


def cmd_metrics(args, cluster):
    from ivyzmq import scrape
    return scrape.command(args, cluster)


def cmd_top(args, cluster):
    from ivyzmq import top
    return top.run(cluster, max(0.05, args.interval), args.once)


COMMANDS = {
    "up": cmd_up, "down": cmd_down, "status": cmd_status, **memcmds.COMMANDS,
    "trace": cmd_trace, "kill": _signal("kill"),
    "pause": _signal("pause"), "resume": _signal("resume"), "restart": cmd_restart,
    "metrics": cmd_metrics, "top": cmd_top,
}

if __name__ == "__main__":
    raise SystemExit(main())

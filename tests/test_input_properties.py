"""Property-based tests of what a user may type: the shipped configs mutated (values of
wrong types and out of range, keys missing and extra, bad endpoints) and generated command
lines. Each must end in exit 0, or exit 2 with one line naming the field or option at
fault - never a traceback, never a run that should have been refused. They run `ivy`
in-process (`cli.main`, with the programs themselves replaced by a stub, so nothing but
the checking runs); the last tests run the real command on a few of the same inputs.
Fixed seed (derandomize) and bounded examples, so CI sees the same cases every time."""
from __future__ import annotations

import contextlib
import copy
import io
import math
import re
import string
import subprocess
import tempfile
from pathlib import Path

import msgspec
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import BIN, cluster_dict
from ivyzmq import cli, memcmds, programs
from ivyzmq import config as C
from ivyzmq.harness import configs

REPO = Path(__file__).resolve().parent.parent
SHIPPED = {p.name: yaml.safe_load(p.read_text())
           for p in sorted((REPO / "config").glob("*.yaml"))}
SETTINGS = dict(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def run_ivy(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    return rc, out.getvalue(), err.getvalue()


def error_line(rc: int, out: str, err: str, cmd: str) -> str:
    """Exit 2 with the error as the last line (argparse's usage lines may come before)."""
    assert rc == 2 and out == "", (rc, out, err)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines and all(line.startswith(("usage:", " ")) for line in lines[:-1]), err
    assert lines[-1].startswith(f"ivy {cmd}: error: "), err
    return lines[-1]


# -- mutated configs -----------------------------------------------------------------------

STRUCTS = {(): C.Cluster, ("timing",): C.Timing, ("managers",): C.ManagerSpec,
           ("nodes",): C.NodeSpec}
REQUIRED = {(): {"pages", "managers", "nodes"}, ("managers",): {"name", "endpoint",
            "heartbeat"}, ("nodes",): {"id", "endpoint"}, ("timing",): set()}
SPECIAL = [math.nan, math.inf, -math.inf, 0, -1, 0.0, -0.5, 2**63, "", [], {}]
JUNK = st.one_of(st.sampled_from(SPECIAL), st.none(), st.booleans(),
                 st.integers(-10**6, 10**6),
                 st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                 st.lists(st.integers(-3, 3), max_size=2),
                 st.dictionaries(st.text(string.ascii_lowercase, max_size=3),
                                 st.integers(), max_size=2))
# Hosts no peer can connect to, whatever the port; and endpoints bad whatever else holds.
BAD_HOSTS = ["*", "0.0.0.0", "::", "[::]", "[::1]", "", "999.1.1.1", "127.0.0.01", "1.2.3",
             "no-such-host.invalid"]
HOSTS = BAD_HOSTS + ["127.0.0.1", "localhost", "127.0.0.9"]
PORTS = st.one_of(st.integers(-2, 70000).map(str), st.sampled_from(["", "x", " 80", "8e3"]))
BAD_ENDPOINTS = ["tcp://", "ipc://", "inproc://", "ipc://*", "ipc://@",
                 "ipc:///no/such/dir/ivy", "udp://127.0.0.1:1", "127.0.0.1:7100", "tcp:/x:1"]
ENDPOINTS = st.one_of(st.builds("tcp://{}:{}".format, st.sampled_from(HOSTS), PORTS),
                      st.sampled_from(BAD_ENDPOINTS + ["inproc://x", "ipc://@ivy-prop"]))


def field(path: tuple) -> str:
    """A path as the messages write it: ('nodes', 1, 'id') -> 'nodes[1].id'."""
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out


def kind_of(path: tuple) -> tuple:
    """The struct a dict at `path` decodes to, as a key of STRUCTS."""
    return tuple(k for k in path if not isinstance(k, int))


def containers(data: dict) -> list[tuple]:
    """Paths of every mapping in a config (the top, timing, each manager and node) that
    earlier changes left a mapping."""
    out = [()] + [("timing",)] * isinstance(data.get("timing"), dict)
    out += [(group, i) for group in ("managers", "nodes")
            if isinstance(data.get(group), list)
            for i, item in enumerate(data[group]) if isinstance(item, dict)]
    return out


def get(data, path: tuple):
    for key in path:
        data = data[key]
    return data


@st.composite
def mutation(draw, data: dict):
    """One change to `data`, in place: (what, path, value set)."""
    what = draw(st.sampled_from(["set", "delete", "extra", "endpoint"]))
    spots = containers(data)
    daemons = [w for w in spots if w[:1] in (("managers",), ("nodes",))]
    if what == "endpoint" and daemons:
        where = draw(st.sampled_from(daemons))
        key = draw(st.sampled_from(["endpoint", "heartbeat"] if where[0] == "managers"
                                   else ["endpoint"]))
        value = get(data, where)[key] = draw(ENDPOINTS)
        return what, where + (key,), value
    where = draw(st.sampled_from(spots))
    box = get(data, where)
    if what == "extra" or not box:
        known = {f.name for f in msgspec.structs.fields(STRUCTS[kind_of(where)])}
        key = draw(st.text(string.ascii_letters + "_", min_size=1, max_size=8)
                   .filter(lambda k: k not in known))
        box[key] = draw(JUNK)
        return "extra", where + (key,), None
    key = draw(st.sampled_from(sorted(box)))
    if what == "delete":
        del box[key]
        return what, where + (key,), None
    value = box[key] = draw(JUNK)
    return "set", where + (key,), value


@st.composite
def mutated_config(draw):
    name = draw(st.sampled_from(sorted(SHIPPED)))
    data = copy.deepcopy(SHIPPED[name])
    changes = [draw(mutation(data)) for _ in range(draw(st.integers(1, 3)))]
    return data, changes


def names_a_change(line: str, changes: list) -> bool:
    """The message names a changed field: its path, or its parent's path and its key
    (msgspec's 'nodes[1]: Object missing required field `id`')."""
    for _, path, _ in changes:
        parent, key = field(path[:-1]), path[-1]
        if field(path) in line or (parent in line and f"`{key}`" in line):
            return True
    return False


def must_fail(changes: list) -> bool:
    """Changes no config survives: an unknown key, a required key gone, an endpoint that
    is bad whatever else holds."""
    extras = set()              # unknown keys added and not deleted again after
    for what, path, value in changes:
        if what == "extra":
            extras.add(path)
        elif what == "delete" and path[-1] in REQUIRED[kind_of(path[:-1])]:
            return True
        elif what == "delete":        # the key goes, and any extra key inside it
            extras = {e for e in extras if e[:len(path)] != path}
        if what == "endpoint" and _bad_endpoint(value):
            return True
    return bool(extras)


def _bad_endpoint(ep: str) -> bool:
    if ep in BAD_ENDPOINTS:
        return True
    m = re.fullmatch(r"tcp://(.*):(.*)", ep)
    if not m:
        return False
    host, port = m.groups()
    return host in BAD_HOSTS or not (port.isdigit() and 1 <= int(port) <= 65535)


def kept(cluster: C.Cluster, data: dict, changes: list) -> None:
    """A config that loaded holds the values set, where no later change undid them:
    nothing was dropped or bent on the way, and no NaN or infinity got through."""
    for what, path, value in changes:
        try:
            if what not in ("set", "endpoint") or get(data, path) is not value:
                continue
        except (KeyError, IndexError, TypeError):
            continue
        got = cluster
        for key in path:
            got = got[key] if isinstance(key, int) else getattr(got, key)
        if isinstance(value, (bool, int, float, str)):
            assert got == value, (path, value, got)


@settings(max_examples=300, **SETTINGS)
@given(mutated_config())
def test_a_mutated_config_loads_or_names_the_field(case):
    data, changes = case
    with tempfile.TemporaryDirectory() as tmp:
        path = configs.write(Path(tmp) / "mutated.yaml", data)
        rc, out, err = run_ivy(["down", "-c", str(path), "--run-dir", f"{tmp}/run"])
        if rc == 0:
            assert out == "nothing was running\n" and err == ""
            assert not must_fail(changes), changes
            kept(C.load(path), data, changes)
            return
        line = error_line(rc, out, err, "down")
        assert line.startswith(f"ivy down: error: {path}: ")
        assert names_a_change(line, changes), (line, changes)


TIMING_FLOATS = sorted(f.name for f in msgspec.structs.fields(C.Timing) if f.type is float)


@settings(max_examples=100, **SETTINGS)
@given(st.sampled_from(sorted(SHIPPED)), st.sampled_from(TIMING_FLOATS),
       st.one_of(st.sampled_from([math.nan, math.inf, -math.inf]),
                 st.floats(max_value=-1e-9, allow_infinity=False)))
def test_a_timing_value_that_is_no_time_is_refused(name, key, value):
    """NaN slips past a `<= 0` check; an infinite time-out is a hang; none is negative."""
    data = copy.deepcopy(SHIPPED[name])
    data.setdefault("timing", {})[key] = value
    with pytest.raises(C.ConfigError, match=rf"^timing\.{key}: "):
        C.parse(data)


def test_the_unchanged_shipped_configs_load():
    for name, data in SHIPPED.items():
        assert C.parse(copy.deepcopy(data)).pages >= 1, name


# -- generated command lines -----------------------------------------------------------------

def count(v) -> bool:
    return isinstance(v, int) and v >= 1


def natural(v) -> bool:
    return isinstance(v, int) and v >= 0


def share(v) -> bool:
    return isinstance(v, (int, float)) and 0 <= v <= 1


def duration(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and v > 0


INT_JUNK = ["", "x", "1.5", "1e3", "nan", "0x10", "ten"]
FLOAT_JUNK = ["", "x", "nan", "inf", "1e999", "0,5"]
INTS = st.one_of(st.integers(-3, 12), st.integers(-10**12, 10**12), st.sampled_from(INT_JUNK))
FLOATS = st.one_of(st.floats(-2, 3), st.floats(allow_nan=True, allow_infinity=True),
                   st.integers(-2, 3), st.sampled_from(FLOAT_JUNK))
# For each subcommand: positionals, then options; each with its values and when it is fine
# (`pages`, `nodes`, `page_size`: it must also fit the config).
SPECS = {
    "workload": [("--clients", INTS, count), ("--ops", INTS, count),
                 ("--read-share", FLOATS, share), ("--pages", INTS, "pages"),
                 ("--seed", INTS, natural)],
    "homework": [("mode", st.sampled_from(["r", "w"]), None), ("--ops", INTS, count),
                 ("--kill-prob", FLOATS, share), ("--restart-prob", FLOATS, share),
                 ("--seed", INTS, natural)],
    "experiment": [("which", st.sampled_from("abcd"), None), ("--clients", INTS, count),
                   ("--ops", INTS, count), ("--pages", INTS, "pages"),
                   ("--seed", INTS, natural), ("--cycles", INTS, count)],
    "chaos": [("--duration", FLOATS, duration), ("--seed", INTS, natural),
              ("--nodes", INTS, count), ("--clients", INTS, count),
              ("--pages", INTS, count), ("--read-share", FLOATS, share)],
    "sim": [("--seeds", INTS, count), ("--start", INTS, natural), ("--jobs", INTS, count)],
    "check": [("history", st.just("h.jsonl"), None), ("--max-states", INTS, count)],
    "read": [("node", INTS, "nodes"), ("page", INTS, "pages")],
    "write": [("node", INTS, "nodes"), ("page", INTS, "pages"), ("data", st.just("x"), None),
              ("--offset", INTS, "page_size")],
}
SIZES = {"nodes": lambda c: len(c.nodes), "pages": lambda c: c.pages,
         "page_size": lambda c: c.page_size}


@st.composite
def command_line(draw):
    cmd = draw(st.sampled_from(sorted(SPECS)))
    config = draw(st.sampled_from(sorted(SHIPPED)))
    argv, given_values = [cmd], []
    for name, values, ok in SPECS[cmd]:
        positional = not name.startswith("--")
        if not positional and not draw(st.booleans()):
            continue
        value = draw(values)
        argv += [str(value)] if positional else [name, str(value)]
        given_values.append((name, value, ok))
    if cmd == "sim" and not any(n == "--seeds" for n, _, _ in given_values):
        argv += ["--seed", "0"]
    argv += ["-c", str(REPO / "config" / config)]
    return cmd, argv, given_values, C.load(REPO / "config" / config)


def expected_ok(name: str, value, ok, cluster) -> bool:
    """Is this value fine, by the rules of the issue (independent of ivyzmq/args.py)?"""
    if isinstance(value, str) and ok is not None:
        return False            # every junk string is refused, and no option takes text
    if ok is None:
        return True
    if callable(ok):
        return ok(value)
    limit = SIZES[ok](cluster)
    if name.startswith("--") and ok == "pages":     # a count of pages
        return isinstance(value, int) and 1 <= value <= limit
    return isinstance(value, int) and 0 <= value < limit   # an index


class _Ran(programs.Result):
    def text(self) -> str:
        return "ran"


class _Memory:
    """Stands for a node's memory: the memory commands run whole (their own checks of the
    page and data included), but nothing is sent."""

    def __init__(self, ran: list):
        self.ran = ran

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def __getattr__(self, name):
        results = {"compare_and_swap": (True, b""), "add": 0}

        def op(*args, **kw):
            self.ran.append((name, args))
            return results.get(name, b"")
        return op


@settings(max_examples=400, **SETTINGS)
@given(command_line())
def test_a_command_line_runs_or_names_the_option(case):
    cmd, argv, values, cluster = case
    ran = []
    with pytest.MonkeyPatch.context() as mp:
        if cmd in programs.NAMES:
            mp.setattr(programs.load(cmd), "run", lambda args: ran.append(args) or _Ran())
        elif cmd in memcmds.COMMANDS:
            mp.setattr(memcmds, "connect", lambda cluster, node: _Memory(ran))
        else:
            mp.setitem(cli.COMMANDS, cmd, lambda args, cluster: ran.append(args) or 0)
        rc, out, err = run_ivy(argv)
    bad = [name for name, value, ok in values if not expected_ok(name, value, ok, cluster)]
    if rc == 0:
        assert not bad, (argv, bad)
        assert ran and err == "", (argv, err)
        if cmd in ("workload", "experiment"):
            assert 1 <= ran[0].pages <= cluster.pages       # a left-out count fits too
        return
    line = error_line(rc, out, err, cmd)
    assert not ran, argv
    named = re.match(rf"ivy {cmd}: error: (?:argument )?([-\w]+)", line).group(1)
    assert named in bad, (argv, line, bad)


# -- the real command, end to end ------------------------------------------------------------

@settings(max_examples=8, **SETTINGS)
@given(mutated_config())
def test_real_ivy_on_mutated_configs(case):
    data, changes = case
    with tempfile.TemporaryDirectory() as tmp:
        path = configs.write(Path(tmp) / "m.yaml", data)
        proc = subprocess.run([str(BIN / "ivy"), "down", "-c", str(path), "--run-dir",
                               f"{tmp}/run"], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in proc.stderr
    if proc.returncode == 0:
        assert proc.stdout == "nothing was running\n" and not must_fail(changes)
    else:
        line = proc.stderr.strip()
        assert proc.returncode == 2 and "\n" not in line and names_a_change(line, changes)


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> Path:
    """A cluster that does not run, with short time-outs: a command that should have been
    refused but runs ends in seconds with exit 1 instead of hanging the test."""
    return configs.write(tmp_path_factory.mktemp("stopped") / "c.yaml",
                         cluster_dict(pages=5, op_timeout=0.3))


@pytest.mark.parametrize("option,value", [
    ("--clients", "0"), ("--ops", "-1"), ("--read-share", "2"), ("--read-share", "nan"),
    ("--pages", "0"), ("--pages", "99"), ("--seed", "-1"), ("--clients", "x")])
def test_real_ivy_workload_refuses(stopped, option, value):
    proc = subprocess.run([str(BIN / "ivy"), "workload", "--ops", "3", option, value,
                           "-c", str(stopped)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr and last.startswith("ivy workload: error: ")
    assert option in last and value in last

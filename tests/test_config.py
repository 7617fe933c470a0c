"""The YAML cluster file: the shipped configs load into typed objects; a bad file makes the
real `ivy`, `ivy-cm` and `ivy-node` commands exit with status 2 and one line naming the field."""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ivyzmq import config as C

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent          # the venv's console scripts
SHIPPED = sorted((REPO / "config").glob("*.yaml"))


def test_there_are_shipped_configs():
    names = {p.name for p in SHIPPED}
    assert {"cluster.yaml", "ten.yaml", "multi.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_config_loads(path):
    c = C.load(path)
    assert c.pages >= 1 and c.nodes and c.managers
    n = len(c.nodes)
    assert c.node_ids == list(range(n))
    assert c.manager_ids == list(range(n, n + len(c.managers)))
    eps = [m.endpoint for m in c.managers] + [m.heartbeat for m in c.managers] + \
        [nd.endpoint for nd in c.nodes]
    assert len(set(eps)) == len(eps)
    assert all(ep.startswith("tcp://127.0.0.1:") for ep in eps)


def test_homework_cluster_shape():
    c = C.load(REPO / "config" / "cluster.yaml")
    assert (c.pages, len(c.nodes), c.page_size) == (5, 3, 4096)
    assert c.manager_ids == [3, 4]                   # the primary is 3, as in the homework
    assert [c.name(i) for i in range(5)] == ["node0", "node1", "node2", "primary", "backup"]
    assert [c.initial_owner(p) for p in range(5)] == [0, 1, 2, 0, 1]
    assert c.pid_of("primary") == 3 and c.pid_of("node2") == 2 and c.pid_of("1") == 1
    assert c.timing.dead_after == pytest.approx(1.5)
    with pytest.raises(C.ConfigError, match="no daemon named 'node7'"):
        c.pid_of("node7")


def test_timing_defaults_when_absent(tmp_path):
    data = copy.deepcopy(BASE)
    del data["timing"]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    c = C.load(path)
    assert c.timing == C.Timing()
    assert c.timing.op_timeout > 0 and c.page_size == 4096 and c.failback is True


def test_security_defaults_to_curve_with_keys_beside_the_config(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "c.yaml"
    path.write_text(yaml.safe_dump(BASE))
    c = C.load(path)
    assert (c.security, c.keys_dir) == ("curve", str(tmp_path / "sub" / ".keys" / "c"))
    path.write_text(yaml.safe_dump(BASE | {"security": "none", "keys": "../k"}))
    c = C.load(path)
    assert c.security == "none" and c.keys_dir == str(tmp_path / "sub" / ".." / "k")
    path.write_text(yaml.safe_dump(BASE | {"security": "tls"}))
    with pytest.raises(C.ConfigError, match="security: must be one of curve, none, got 'tls'"):
        C.load(path)
    for c in map(C.load, SHIPPED):
        assert c.security == "curve"


BASE = {
    "pages": 5,
    "timing": {"retry_timeout": 0.5},
    "managers": [{"name": "primary", "endpoint": "tcp://127.0.0.1:8690",
                  "heartbeat": "tcp://127.0.0.1:8691"},
                 {"name": "backup", "endpoint": "tcp://127.0.0.1:8692",
                  "heartbeat": "tcp://127.0.0.1:8693"}],
    "nodes": [{"id": i, "endpoint": f"tcp://127.0.0.1:{8694 + i}"} for i in range(3)],
}


def _edit(fn):
    data = copy.deepcopy(BASE)
    fn(data)
    return yaml.safe_dump(data)


def _set(path: list, value):
    def fn(data):
        d = data
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value
    return fn


def _delete(path: list):
    def fn(data):
        d = data
        for key in path[:-1]:
            d = d[key]
        del d[path[-1]]
    return fn


# (id, file text, words the one-line message must contain)
BAD = [
    ("missing-pages", _edit(_delete(["pages"])), ["pages", "missing"]),
    ("missing-node-endpoint", _edit(_delete(["nodes", 1, "endpoint"])),
     ["nodes[1]", "endpoint"]),
    ("missing-managers", _edit(_delete(["managers"])), ["managers"]),
    ("pages-wrong-type", _edit(_set(["pages"], "five")), ["pages", "int", "str"]),
    ("pages-bool", _edit(_set(["pages"], True)), ["pages", "int"]),
    ("timing-wrong-type", _edit(_set(["timing", "retry_timeout"], "fast")),
     ["timing.retry_timeout", "float"]),
    ("nodes-not-a-list", _edit(_set(["nodes"], {"id": 0})), ["nodes", "array"]),
    ("duplicate-node-id", _edit(_set(["nodes", 1, "id"], 0)), ["nodes[1].id"]),
    ("duplicate-endpoint", _edit(_set(["nodes", 2, "endpoint"], "tcp://127.0.0.1:8694")),
     ["nodes[2].endpoint", "duplicate"]),
    ("duplicate-endpoint-manager", _edit(_set(["managers", 1, "heartbeat"],
                                               "tcp://127.0.0.1:8690")),
     ["managers[1].heartbeat", "duplicate"]),
    ("duplicate-manager-name", _edit(_set(["managers", 1, "name"], "primary")),
     ["managers[1].name", "duplicate"]),
    ("unknown-key", _edit(_set(["colour"], "red")), ["colour"]),
    ("unknown-timing-key", _edit(_set(["timing", "retry_timout"], 1)),
     ["retry_timout", "timing"]),
    ("negative-timeout", _edit(_set(["timing", "retry_timeout"], -1)),
     ["timing.retry_timeout", "positive"]),
    ("zero-pages", _edit(_set(["pages"], 0)), ["pages"]),
    ("bad-endpoint", _edit(_set(["nodes", 0, "endpoint"], "127.0.0.1:8694")),
     ["nodes[0].endpoint"]),
    ("not-yaml", "pages: [1, 2\nnodes: {\n", ["YAML"]),
    ("not-a-mapping", "- pages\n- nodes\n", ["mapping"]),
    ("empty-file", "", ["mapping"]),
]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def _one_line(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr.strip()
    assert err and "\n" not in err, f"expected one line, got {proc.stderr!r}"
    assert "Traceback" not in err
    return err


def _run_all(cmds: dict[str, list]) -> dict[str, subprocess.CompletedProcess]:
    """Run the commands side by side (each is a fresh interpreter; this keeps the module
    quick) and collect their results."""
    procs = {key: subprocess.Popen([str(a) for a in cmd], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
             for key, cmd in cmds.items()}
    results = {}
    for key, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        results[key] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return results


DAEMON_CASES = ["duplicate-endpoint", "pages-wrong-type", "missing-file"]
DAEMONS = [("ivy-cm", "primary"), ("ivy-node", "1")]
UNKNOWN_NAMES = [("ivy-cm", "nosuch", ["nosuch", "primary"]), ("ivy-node", "7", ["7"]),
                 ("ivy-node", "primary", ["primary"])]


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory):
    """Every bad file, given to `ivy status`, `ivy-cm` and `ivy-node`."""
    tmp = tmp_path_factory.mktemp("badconfig")
    paths = {name: _write(tmp, name, text) for name, text, _ in BAD}
    paths["missing-file"] = tmp / "nope.yaml"
    good = _write(tmp, "good", yaml.safe_dump(BASE))
    cmds = {("ivy", name): [BIN / "ivy", "status", "-c", path] for name, path in paths.items()}
    for prog, daemon in DAEMONS:
        for case in DAEMON_CASES:
            cmds[(prog, case)] = [BIN / prog, daemon, "-c", paths[case],
                                  "--log-file", tmp / f"{prog}-{case}.log"]
    for prog, daemon, _ in UNKNOWN_NAMES:
        cmds[(prog, "name", daemon)] = [BIN / prog, daemon, "-c", good]
    return paths, _run_all(cmds)


@pytest.mark.parametrize("name,text,words", BAD, ids=[b[0] for b in BAD])
def test_bad_config_ivy_exits_2_naming_the_field(bad_runs, name, text, words):
    paths, runs = bad_runs
    with pytest.raises(C.ConfigError):            # the library says the same thing
        C.load(paths[name])
    proc = runs[("ivy", name)]
    assert proc.returncode == 2
    err = _one_line(proc)
    assert err.startswith("ivy status: error:")
    assert str(paths[name]) in err
    for word in words:
        assert word in err, f"{word!r} not in {err!r}"
    assert proc.stdout == ""


def test_missing_file(bad_runs):
    paths, runs = bad_runs
    proc = runs[("ivy", "missing-file")]
    assert proc.returncode == 2
    err = _one_line(proc)
    assert str(paths["missing-file"]) in err and "No such file" in err


@pytest.mark.parametrize("prog,name", DAEMONS)
@pytest.mark.parametrize("case", DAEMON_CASES)
def test_daemons_reject_bad_config(bad_runs, prog, name, case):
    words = ["No such file"] if case == "missing-file" else \
        next(b for b in BAD if b[0] == case)[2]
    proc = bad_runs[1][(prog, case)]
    assert proc.returncode == 2
    err = _one_line(proc)
    assert err.startswith(f"{prog}: error:")
    for word in words:
        assert word in err


@pytest.mark.parametrize("prog,name,words", UNKNOWN_NAMES)
def test_daemons_reject_unknown_name(bad_runs, prog, name, words):
    proc = bad_runs[1][(prog, "name", name)]
    assert proc.returncode == 2
    out = (proc.stdout + proc.stderr).strip()
    assert out and "\n" not in out and "Traceback" not in out
    for word in words:
        assert word in out

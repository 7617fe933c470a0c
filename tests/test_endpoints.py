"""Endpoints are checked when the config is loaded: an endpoint no peer could connect to
(no host, a wildcard host, a port out of range, an address that is no address, an ipc path
in a missing directory) or two endpoints that reach one socket address stop every command
with one line naming the field and exit status 2, instead of a ZMQError traceback or a
"no daemon answers" that blames the cluster."""
from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import BIN
from ivyzmq import config as C

REPO = Path(__file__).resolve().parent.parent
SHIPPED = yaml.safe_load((REPO / "config" / "cluster.yaml").read_text())


def with_endpoint(field: str, value: str) -> dict:
    """The shipped cluster.yaml with one endpoint changed: 'nodes[1].endpoint',
    'managers[0].heartbeat', ..."""
    data = copy.deepcopy(SHIPPED)
    group, rest = field.split("[", 1)
    index, key = rest.split("].")
    data[group][int(index)][key] = value
    return data


def refused(field: str, value: str) -> str:
    with pytest.raises(C.ConfigError) as info:
        C.parse(with_endpoint(field, value))
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{field}: ")
    return message


# The cases of the issue, each with the words its one line must hold.
ISSUE_CASES = [
    ("tcp-without-address", "tcp://", ["needs a host and a port"]),
    ("ipc-without-path", "ipc://", ["needs a path"]),
    ("wildcard-host", "tcp://*:7110", ["wildcard host", "connect"]),
    ("port-99999", "tcp://127.0.0.1:99999", ["port '99999'", "1..65535"]),
    ("port-0", "tcp://127.0.0.1:0", ["port '0'", "1..65535"]),
    ("host-999.1.1.1", "tcp://999.1.1.1:7110", ["'999.1.1.1'", "not a valid IPv4 address"]),
]


@pytest.mark.parametrize("value,words", [c[1:] for c in ISSUE_CASES],
                         ids=[c[0] for c in ISSUE_CASES])
def test_issue_endpoint_is_refused_naming_the_field(value, words):
    message = refused("nodes[1].endpoint", value)
    assert repr(value) in message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("value,words", [
    ("tcp://0.0.0.0:7110", ["wildcard host"]),
    ("tcp://[::]:7110", ["wildcard host"]),
    ("tcp://[::1]:7110", ["IPv6", "IPv4 only"]),
    ("tcp://127.0.0.1", ["needs a host and a port"]),
    ("tcp://:7110", ["needs a host and a port"]),
    ("tcp://127.0.0.1:-1", ["port '-1'"]),
    ("tcp://127.0.0.1:http", ["port 'http'"]),
    ("tcp://127.0.0.1: 7110", ["port ' 7110'"]),
    ("tcp://127.0.0.01:7110", ["not a valid IPv4 address"]),
    ("tcp://no-such-host.invalid:7110", ["'no-such-host.invalid'", "does not resolve"]),
    ("ipc://*", ["needs a path"]),
    ("ipc:///no/such/dir/ivy.sock", ["'/no/such/dir'", "does not exist"]),
    ("ipc:///tmp/" + "x" * 120, ["longer than 107 bytes"]),
    ("inproc://", ["needs a name"]),
    ("tcp://127.0.0.1:7110\0", ["cannot be printed"]),
    ("udp://127.0.0.1:7110", ["not a tcp://, ipc:// or inproc:// endpoint"]),
])
def test_unreachable_endpoint_is_refused(value, words):
    message = refused("managers[1].heartbeat", value)
    for word in words:
        assert word in message, message


def test_localhost_and_127_0_0_1_are_the_same_endpoint():
    message = refused("nodes[2].endpoint", "tcp://localhost:7100")
    assert "duplicate endpoint 'tcp://localhost:7100'" in message
    assert "managers[0].endpoint 'tcp://127.0.0.1:7100', the same address" in message


def test_a_port_written_with_a_leading_zero_is_the_same_port():
    message = refused("nodes[2].endpoint", "tcp://127.0.0.1:07111")
    assert "duplicate endpoint" in message and "also nodes[1].endpoint" in message


def test_the_same_ipc_path_spelled_twice_is_a_duplicate(tmp_path):
    data = with_endpoint("nodes[0].endpoint", f"ipc://{tmp_path}/n0")
    data["nodes"][1]["endpoint"] = f"ipc://{tmp_path}/./n0"
    with pytest.raises(C.ConfigError, match=r"nodes\[1\].endpoint: duplicate endpoint"):
        C.parse(data)


def test_good_endpoints_of_every_transport_load(tmp_path):
    data = with_endpoint("nodes[0].endpoint", f"ipc://{tmp_path}/node0.sock")
    data["nodes"][1]["endpoint"] = "ipc://@ivy-test-node1"
    data["nodes"][2]["endpoint"] = "inproc://node2"
    data["managers"][1]["heartbeat"] = "tcp://localhost:7199"
    cluster = C.parse(data)
    assert cluster.endpoint(0) == f"ipc://{tmp_path}/node0.sock"
    assert cluster.managers[1].heartbeat == "tcp://localhost:7199"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """`ivy status`, `ivy-cm` and `ivy-node` on a config with each issue case, side by side:
    before, the first died in a ZMQError traceback or blamed the cluster."""
    tmp = tmp_path_factory.mktemp("endpoints")
    procs = {}
    for name, value, _ in ISSUE_CASES:
        path = tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(with_endpoint("nodes[1].endpoint", value)))
        procs[("ivy", name)] = [BIN / "ivy", "status", "-c", path, "--run-dir", tmp / "run"]
        procs[("ivy-cm", name)] = [BIN / "ivy-cm", "primary", "-c", path]
        procs[("ivy-node", name)] = [BIN / "ivy-node", "1", "-c", path]
    started = {key: subprocess.Popen([str(a) for a in cmd], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
               for key, cmd in procs.items()}
    return {key: (p.wait(timeout=60), *p.communicate()) for key, p in started.items()}


@pytest.mark.parametrize("prog", ["ivy", "ivy-cm", "ivy-node"])
@pytest.mark.parametrize("case", [c[0] for c in ISSUE_CASES])
def test_commands_exit_2_with_one_line(runs, prog, case):
    rc, out, err = runs[(prog, case)]
    assert rc == 2, err
    assert out == ""
    line = err.strip()
    assert line and "\n" not in line and "Traceback" not in line, err
    assert line.startswith(f"{prog}{' status' if prog == 'ivy' else ''}: error: ")
    assert "nodes[1].endpoint" in line

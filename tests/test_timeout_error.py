"""An IvyTimeout carries what was waited for as attributes, not only in its message: the
daemon asked, for how long, and the page; `peer` and `since` (the process waited on, and
since when: here the node itself, which answers nothing at all). What a node that does
answer reports is in tests/test_wait_reason.py."""
from __future__ import annotations

import pickle

import pytest

from ivyzmq import protocol as P
from ivyzmq.client import Channel, IvyError, IvyTimeout, Memory
from ivyzmq.harness.configs import free_ports


@pytest.fixture
def nobody() -> str:
    """An endpoint nothing listens on: every request to it times out."""
    return f"tcp://127.0.0.1:{free_ports(1)[0]}"


def test_a_read_that_times_out_names_the_daemon_and_the_page(nobody):
    with Memory(nobody, pages=8, page_size=64, timeout=0.2) as mem:
        with pytest.raises(IvyTimeout) as info:
            mem.read(5)
    exc = info.value
    assert (exc.endpoint, exc.waited, exc.page) == (nobody, 0.2, 5)
    assert (exc.peer, exc.since) == (nobody, 0.2)
    assert str(exc) == (f"page 5: no answer from {nobody} within 0.2 s, and it does not "
                        "answer a question either: it is paused or dead")
    assert isinstance(exc, IvyError) and isinstance(exc, TimeoutError)


def test_a_query_without_a_page_has_none(nobody):
    chan = Channel(nobody)
    with pytest.raises(IvyTimeout) as info:
        chan.request(P.StatusQuery(), timeout=0.1)
    chan.close()
    assert (info.value.endpoint, info.value.page) == (nobody, None)


def test_the_attributes_survive_pickling():
    """Worker processes (the simulator's, a harness's) hand exceptions back pickled."""
    exc = IvyTimeout("waited", endpoint="tcp://h:1", waited=1.5, page=3, peer="node1",
                     since=0.7)
    back = pickle.loads(pickle.dumps(exc))
    assert (back.endpoint, back.waited, back.page, back.peer, back.since) == \
        ("tcp://h:1", 1.5, 3, "node1", 0.7)
    assert str(back) == "waited"

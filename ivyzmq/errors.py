"""The exceptions of the client API (re-exported by `ivyzmq.client`), and the one place a
refused request's error code becomes an exception class."""
from __future__ import annotations

from ivyzmq import protocol as P


class IvyError(Exception):
    """Something went wrong talking to the cluster."""


class PageRangeError(IvyError, IndexError):
    """No such page (ErrorCode.RANGE)."""


class PageSizeError(IvyError, ValueError):
    """The data does not fit the page at that offset (ErrorCode.SIZE)."""


class PageLostError(IvyError):
    """The page's owner died holding its only copy (replicas: 0): `page` and the dead
    `node` say which (ErrorCode.LOST). Other pages are not affected."""

    def __init__(self, text: str, page: int | None = None, node: int | None = None):
        super().__init__(text)
        self.page, self.node = page, node


class NodeFencedError(IvyError):
    """The node serving the request was declared dead while it waited, and rejoined with
    an empty memory (ErrorCode.FENCED). A read did not happen; a write did not take effect,
    except one that was reaching its page's replica holders (the text says so), which may
    have."""


class IvyTimeout(IvyError, TimeoutError):
    """No answer in time. For a write this means unknown: it may still take effect.

    The attributes say what was waited for, so that a program can tell a paused owner
    from a dead manager without parsing the message: `endpoint` (the daemon asked),
    `waited` (seconds) and `page` (of a read or write). After a read or write timed out,
    the client asks what the page waits for (ivyzmq/waits.py) and the message says it:
    `peer` is the daemon waited on (its name: the owner, a copy holder, the manager, or
    the node itself when it does not answer at all) and `since` how many seconds it has
    been waited on; both None when nobody could tell."""

    def __init__(self, message: str, *, endpoint: str | None = None,
                 waited: float | None = None, page: int | None = None,
                 peer: str | None = None, since: float | None = None):
        super().__init__(message)
        self.endpoint, self.waited, self.page = endpoint, waited, page
        self.peer, self.since = peer, since


# The one place a reply's error code becomes an exception class (no code: IvyError).
ERRORS: dict[P.ErrorCode, type[IvyError]] = {
    P.ErrorCode.RANGE: PageRangeError, P.ErrorCode.SIZE: PageSizeError,
    P.ErrorCode.REQUEST: IvyError, P.ErrorCode.LOST: PageLostError,
    P.ErrorCode.FENCED: NodeFencedError,
}

"""Where ivyzmq's log lines go: the daemons' stderr and log file, as text or as one JSON object
a line (for log shippers), and nowhere at all for a program that embeds a node.

ivyzmq follows loguru's convention for libraries: the package is disabled when imported
(`ivyzmq/__init__.py`), so `ivyzmq.client.embed` prints nothing on the program's stderr. The
entry points that own their process (the daemons, the `ivy` command) enable it; a program
that wants the embedded node's lines calls `logger.enable("ivyzmq")` and adds its own sink.
"""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from loguru import logger

FORMATS = ("text", "json")


def _text_format(name: str) -> str:
    return "{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <7} " + name + " | {message}"


def json_record(name: str, record) -> str:
    """One log record as a JSON object: the fields a shipper indexes, the traceback if any."""
    obj = {"time": record["time"].isoformat(), "level": record["level"].name,
           "daemon": name, "message": record["message"], "module": record["name"],
           "function": record["function"], "line": record["line"]}
    exc = record["exception"]
    if exc is not None:
        obj["exception"] = "".join(traceback.format_exception(exc.type, exc.value,
                                                              exc.traceback))
    return json.dumps(obj)


def _json_format(name: str):
    def fmt(record) -> str:
        # loguru formats the returned template with the record: hand it the JSON through
        # `extra` so that its braces are not read as fields.
        record["extra"]["_json"] = json_record(name, record)
        return "{extra[_json]}\n"
    return fmt


def setup(name: str, log_file: str | None, level: str, fmt: str = "text") -> None:
    """A daemon's logging: stderr (INFO and up) and, if given, the log file at `level`."""
    logger.remove()
    logger.enable("ivyzmq")
    form = _json_format(name) if fmt == "json" else _text_format(name)
    logger.add(sys.stderr, level="INFO" if level == "DEBUG" else level, format=form)
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        logger.add(log_file, level=level, format=form, enqueue=False)

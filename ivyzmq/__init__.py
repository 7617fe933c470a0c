"""ivyzmq: a fault-tolerant Ivy distributed shared memory over ZeroMQ.

Logging stays off for the library (loguru's convention): a program that embeds a node gets
no log lines unless it calls `logger.enable("ivyzmq")`; the daemons and `ivy` enable it.
"""
from loguru import logger

logger.disable("ivyzmq")

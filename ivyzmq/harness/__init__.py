"""What every program that drives a live cluster shares, each piece once: generated configs,
timed client operations, the monitor, the fault vocabulary and the nemesis, network
partitions, the quiescent-agreement check and failover measurement. See docs/ARCHITECTURE.md.
"""

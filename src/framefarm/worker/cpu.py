"""The CPU time a node spends on a task: its own process and the children it waited for
(FFmpeg, Node.js), from ``getrusage``. Deltas of these counters are the task's usage;
nodes that share one process (tests run several in threads) see each other's time."""

from __future__ import annotations

import resource


def used() -> float:
    """CPU-seconds (user + system) of this process and its finished children so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def since(start: float) -> float:
    """CPU-seconds spent since ``start`` (a value of :func:`used`)."""
    return round(max(0.0, used() - start), 3)

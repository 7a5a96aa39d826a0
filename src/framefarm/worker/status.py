"""A render node's state in a file beside its work: what Docker's health check and
Kubernetes' probes read (``python -m framefarm.worker.health``), and how a preStop hook
asks the node to drain.

A node serves no HTTP, and with host networking several nodes share one machine's ports,
so each node reports through its own work folder instead of a port:

- ``node.state``: JSON (``state``, ``pid``, ``node_id``, ``task``, ``at``), replaced whole on
  every change and at least every ``BEAT_SECONDS`` while the node's loop or a task's
  heartbeat runs, so a stale file means a stuck or dead node;
- ``drain.request``: written by ``health --drain`` (the preStop hook); the node then claims
  nothing more, finishes its task and stays idle (``drained``) until it is stopped, so the
  SIGTERM that follows the hook finds nothing left to finish.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

STATE_FILE = "node.state"
DRAIN_FILE = "drain.request"
BEAT_SECONDS = 5.0
log = logging.getLogger("framefarm.worker")


class NodeState(enum.StrEnum):
    STARTING = "starting"  # registering with the API
    READY = "ready"  # registered and taking work (``task`` says whether it has some)
    DRAINING = "draining"  # finishing the task in hand, claiming nothing more
    DRAINED = "drained"  # no task and claiming none: waiting to be stopped
    STOPPED = "stopped"  # its loop has ended


@dataclass(frozen=True)
class Report:
    state: NodeState
    pid: int
    node_id: str
    task: str | None
    at: float  # wall-clock time of the write


class StatusFile:
    """The node's side: the agent sets what changed; every write is the whole state."""

    def __init__(self, folder: Path, *, wall: Callable[[], float] = time.time) -> None:
        self.folder = folder
        self.path = folder / STATE_FILE
        self.wall = wall
        self.registered = False
        self.draining = False
        self.stopped = False
        self.node_id = ""
        self.task: str | None = None
        self._written = float("-inf")
        # Re-entrant: a second SIGTERM may interrupt a write and end the loop, which writes.
        self._lock = threading.RLock()
        self._count = 0

    @property
    def state(self) -> NodeState:
        if self.stopped:
            return NodeState.STOPPED
        if self.draining:
            return NodeState.DRAINING if self.task else NodeState.DRAINED
        return NodeState.READY if self.registered else NodeState.STARTING

    def write(self) -> None:
        """Replace the file with the current state (never a half-written file: the
        checker may read at any moment). Not from a signal handler: it takes a lock."""
        with self._lock:
            self._count += 1
            body = {"state": str(self.state), "pid": os.getpid(), "node_id": self.node_id,
                    "task": self.task, "at": self.wall()}
            tmp = self.folder / f".{STATE_FILE}.{os.getpid()}.{self._count}"
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                tmp.write_text(json.dumps(body), encoding="utf-8")
                os.replace(tmp, self.path)
            except OSError as exc:
                # Never at the cost of the work (this runs in the heartbeat thread too): the
                # file goes stale, and the health check reports the node as stuck.
                log.warning("could not write the node's state to %s: %s", self.path, exc)
                with contextlib.suppress(OSError):
                    tmp.unlink()
            self._written = self.wall()

    def beat(self) -> None:
        """Show the node is alive: rewrite the file if the last write is old."""
        if self.wall() - self._written >= BEAT_SECONDS:
            self.write()

    def drain_requested(self) -> bool:
        return (self.folder / DRAIN_FILE).exists()

    def clear_request(self) -> None:
        """A request left by an earlier process in a reused work folder is not for us."""
        with contextlib.suppress(FileNotFoundError):
            (self.folder / DRAIN_FILE).unlink()


def read(folder: Path) -> Report | None:
    """The last state the node wrote; None if it wrote none (or not yet)."""
    try:
        raw = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        return Report(state=NodeState(raw["state"]), pid=int(raw["pid"]),
                      node_id=str(raw.get("node_id") or ""), task=raw.get("task"),
                      at=float(raw["at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def request_drain(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DRAIN_FILE).write_text("drain\n", encoding="utf-8")


def judge(report: Report | None, *, now: float, max_age: float,
          live_only: bool = False) -> tuple[bool, str]:
    """(healthy, why). Ready: registered, not draining, and written within ``max_age``
    seconds. Live (``live_only``): written within ``max_age``, in any state but stopped."""
    if report is None:
        return False, "no state written yet (starting, or not a render node's work folder)"
    age = now - report.at
    where = f"node {report.node_id or '(unregistered)'} pid {report.pid}"
    if report.state is NodeState.STOPPED:
        return False, f"{where}: stopped"
    if age > max_age:
        return False, f"{where}: {report.state}, but its last sign of life is {age:.0f} s old"
    if live_only or report.state is NodeState.READY:
        doing = f"rendering task {report.task}" if report.task else "idle"
        return True, f"{where}: {report.state}, {doing}"
    return False, f"{where}: {report.state}"

"""The render node's health check, for Docker's HEALTHCHECK and Kubernetes' probes.

    python -m framefarm.worker.health --workdir /data/node            # ready? (exit 0 / 1)
    python -m framefarm.worker.health --workdir /data/node --live     # alive?
    python -m framefarm.worker.health --workdir /data/node --drain --wait 570   # preStop

It reads the state the node writes into its work folder (:mod:`framefarm.worker.status`)
and imports nothing heavy, so a probe every few seconds costs a Python start and no more.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from framefarm.worker import status


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drain(folder: Path, *, wait: float, clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> tuple[bool, str]:
    """Ask the node to drain; with ``wait``, return once it holds no task (drained or
    stopped, or its process is gone), or say it did not within ``wait`` seconds."""
    status.request_drain(folder)
    if wait <= 0:
        return True, f"drain requested in {folder}"
    deadline = clock() + wait
    while True:
        report = status.read(folder)
        if report is None:
            return True, "no node has written a state here: nothing to drain"
        if report.state in (status.NodeState.DRAINED, status.NodeState.STOPPED):
            return True, f"node {report.node_id}: {report.state}"
        if not _alive(report.pid):
            return True, f"node {report.node_id}: its process has exited"
        if clock() >= deadline:
            return False, (f"node {report.node_id}: still {report.state} (task "
                           f"{report.task}) after {wait:g} s")
        sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m framefarm.worker.health",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workdir", type=Path, default=Path.cwd() / "framefarm-node",
                        help="the node's --workdir (default: ./framefarm-node, as the node's)")
    parser.add_argument("--max-age", type=float, default=60.0,
                        help="seconds without a sign of life before the node counts as stuck")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--live", action="store_true",
                      help="alive rather than ready: draining still counts")
    mode.add_argument("--drain", action="store_true",
                      help="ask the node to finish its task and take no more (preStop)")
    parser.add_argument("--wait", type=float, default=0.0,
                        help="with --drain: wait this long for the task in hand to finish")
    args = parser.parse_args(argv)
    if args.drain:
        ok, why = drain(args.workdir, wait=args.wait)
    else:
        ok, why = status.judge(status.read(args.workdir), now=time.time(),
                               max_age=args.max_age, live_only=args.live)
    print(why, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

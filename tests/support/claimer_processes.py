"""Entry points for claimer processes, started by ``multiprocessing`` with ``spawn``.

A spawned child imports this module by its name, ``support.claimer_processes`` (pickle
refers to the function by module and name); it can, because the child starts with the
parent's ``sys.path``, which holds ``tests/``. So: top-level functions only, and nothing
that needs pytest.
"""

from __future__ import annotations

import datetime as dt

from framefarm.clock import ManualClock
from support.queue_farm import open_store


def claim_until_done(url: str, node_id: str, now: dt.datetime) -> list[str]:
    store = open_store(url, ManualClock(now))
    claimed: list[str] = []
    try:
        for _ in range(100_000):
            claim = store.claim(node_id)
            if claim is None:
                overview = store.queue_overview()
                if not overview.get("queued") and not overview.get("running"):
                    return claimed
                continue
            claimed.append(claim.task_id)
            store.complete(claim.task_id, claim.lease_token, f"out/{claim.task_id}")
        raise AssertionError("the queue never ran dry")
    finally:
        store.close()

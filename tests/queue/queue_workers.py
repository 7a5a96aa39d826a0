"""Entry points for claimer processes (spawned: importable, top level)."""

from __future__ import annotations

import datetime as dt

from framefarm.queue.clock import ManualClock
from framefarm.queue.store import open_store


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

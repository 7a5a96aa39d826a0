"""Live events are pushed: a stream reads its job again only when the database announces a
change to it (PostgreSQL's NOTIFY, reaching every API process; SQLite's signal from the
commit), and a quiet job costs no query."""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
from typing import Any

import pytest

from framefarm import application
from framefarm.api import events
from support.documents import simple_doc
from support.farm import Farm


def test_streams_read_only_the_job_that_changed(farm: Farm,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    app = farm.svc
    tenant_id, key = app.accounts.create_tenant("watchers")
    jobs = [farm.submit(key, {"document": simple_doc()})["id"] for _ in range(20)]
    reads: list[str] = []
    get_view = app.renders.get

    def counted_get(tenant: str | None, job_id: str) -> Any:
        reads.append(job_id)
        return get_view(tenant, job_id)

    monkeypatch.setattr(app.renders, "get", counted_get)
    _listening(farm)
    watcher = events.JobWatcher(app.on_job_change)

    async def watch() -> tuple[list[Any], int, list[Any]]:
        streams = [events.job_events(app, watcher, tenant_id, j) for j in jobs]
        # Each says its state and progress at once.
        first = [[await anext(s), await anext(s)] for s in streams]
        assert watcher.watched == len(jobs)
        pending = [asyncio.ensure_future(anext(s)) for s in streams]
        # A quiet while in which no job changes: no stream wakes, none reads its job.
        await asyncio.sleep(0.5)
        quiet_reads = len(reads) - len(jobs)
        assert not any(p.done() for p in pending)
        await asyncio.to_thread(app.renders.cancel, tenant_id, jobs[3])
        cancelled = [await asyncio.wait_for(pending[3], 10),
                     await asyncio.wait_for(anext(streams[3]), 10)]
        for p in pending:
            p.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for stream in streams:
            await stream.aclose()
        assert watcher.watched == 0
        watcher.close()
        return first, quiet_reads, cancelled

    # On a thread of its own: another suite's browser driver may hold this one's loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first, quiet_reads, cancelled = pool.submit(asyncio.run, watch()).result()
    assert [[e["event"] for e in pair] for pair in first] == [["state", "progress"]] * 20
    assert all(pair[0]["state"] == "queued" for pair in first)
    assert quiet_reads == 0
    assert [e["event"] for e in cancelled] == ["state", "done"], cancelled
    assert cancelled[1]["state"] == "cancelled"
    # The cancel woke only its own stream.
    assert set(reads[len(jobs):]) == {jobs[3]}


def _listening(farm: Farm) -> None:
    """Wait until PostgreSQL's listener listens (it announces None then: changes before
    it may have been missed, and every stream reads its job again)."""
    if farm.backend == "postgresql":
        heard: queue.Queue[str | None] = queue.Queue()
        stop = farm.svc.on_job_change(heard.put)
        assert heard.get(timeout=10) is None
        stop()


def test_a_rolled_back_change_is_never_announced(farm: Farm) -> None:
    db = farm.svc.ctx.db
    _listening(farm)
    seen: queue.Queue[str | None] = queue.Queue()
    stop = farm.svc.on_job_change(seen.put)
    try:
        with pytest.raises(RuntimeError), db.tx() as conn:
            db.job_changed(conn, "job_rolled_back")
            raise RuntimeError("abort")
        with db.tx() as conn:
            db.job_changed(conn, "job_committed")
            db.job_changed(conn, "job_committed")  # once per transaction
        assert seen.get(timeout=10) == "job_committed"
        assert seen.empty()
    finally:
        stop()


# SQLite has one API process: its signal is in-process (the tests above).
@pytest.mark.parametrize("backend", ["postgresql"])
def test_every_api_replica_hears_a_change_on_postgresql(make_farm: Any) -> None:
    farm: Farm = make_farm()
    # A second API process's application on the same database.
    replica = application.build(farm.settings)
    heard: queue.Queue[str | None] = queue.Queue()
    stop = replica.on_job_change(heard.put)
    try:
        assert heard.get(timeout=10) is None  # listening
        key = farm.tenant("replicas")
        job_id = farm.submit(key, {"document": simple_doc()})["id"]
        farm.client.post(f"/v1/renders/{job_id}/cancel",
                         headers={"Authorization": f"Bearer {key}"}).raise_for_status()
        assert heard.get(timeout=10) == job_id
    finally:
        stop()
        replica.close()

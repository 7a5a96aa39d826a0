"""Live events at scale: one poll per tick for every watched job, and a stream reads its
job again only when the job changed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from framefarm.api import events
from support.documents import simple_doc
from support.farm import Farm


def test_many_streams_share_one_poll_and_read_only_changed_jobs(
        farm: Farm, monkeypatch: pytest.MonkeyPatch) -> None:
    app = farm.svc
    tenant_id, key = app.accounts.create_tenant("watchers")
    jobs = [farm.submit(key, {"document": simple_doc()})["id"] for _ in range(20)]
    polls: list[int] = []
    reads: list[str] = []
    update_times, get_view = app.renders.update_times, app.renders.get

    def counted_times(ids: Any) -> Any:
        polls.append(len(ids))
        return update_times(ids)

    def counted_get(tenant: str | None, job_id: str) -> Any:
        reads.append(job_id)
        return get_view(tenant, job_id)

    monkeypatch.setattr(app.renders, "get", counted_get)
    watcher = events.JobWatcher(counted_times, interval=0.05)

    async def watch() -> tuple[list[Any], list[Any]]:
        streams = [events.job_events(farm.svc, watcher, tenant_id, j) for j in jobs]
        # Each says its state and progress at once.
        first = [[await anext(s), await anext(s)] for s in streams]
        assert watcher.watched == len(jobs)
        polls_before = len(polls)
        # The scenario: a quiet window of about 12 ticks in which no job changes.
        await asyncio.sleep(0.6)
        quiet_reads = len(reads) - len(jobs)
        quiet_polls = polls[polls_before:]
        app.renders.cancel(tenant_id, jobs[3])
        cancelled = [await asyncio.wait_for(anext(streams[3]), 5) for _ in range(2)]
        for stream in streams:
            await stream.aclose()
        assert watcher.watched == 0
        return first, [quiet_reads, quiet_polls, cancelled]

    first, (quiet_reads, quiet_polls, cancelled) = asyncio.run(watch())
    assert [[e["event"] for e in pair] for pair in first] == [["state", "progress"]] * 20
    assert all(pair[0]["state"] == "queued" for pair in first)
    # While nothing changed: a handful of polls, each for all 20 jobs, and no job read.
    assert 5 <= len(quiet_polls) <= 20 and set(quiet_polls) == {20}, quiet_polls
    assert quiet_reads == 0
    assert [e["event"] for e in cancelled] == ["state", "done"], cancelled
    assert cancelled[1]["state"] == "cancelled"
    # The cancel woke only its own stream.
    assert set(reads[len(jobs):]) == {jobs[3]}

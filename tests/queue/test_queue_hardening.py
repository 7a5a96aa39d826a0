"""Jobs that no render node may take any more: every live node (online, not draining) is
blocked from the job after failing it, so its queued tasks would wait for ever. The
server's upkeep fails such a job (``Queue.fail_stranded``) with an error that says why,
once it has stayed stranded for ``stranded_seconds``."""

from __future__ import annotations

import pytest

from framefarm.application.queue import QueueSettings
from framefarm.clock import ManualClock
from support.queue_farm import Farm

SETTINGS = QueueSettings(lease_seconds=30, max_attempts=5, retry_backoff_seconds=2,
                         node_block_failures=2, max_concurrent_jobs=100,
                         node_offline_seconds=60, stranded_seconds=10)
pytestmark = pytest.mark.parametrize("settings", [SETTINGS])


def fail_until_blocked(farm: Farm, node_id: str, job_id: str) -> None:
    """The node fails the job's tasks (retryable) until it is blocked from the job."""
    for _ in range(SETTINGS.node_block_failures):
        farm.clock.advance(SETTINGS.retry_backoff_seconds * 4)
        claim = farm.claim(node_id)
        assert claim.job_id == job_id
        farm.store.fail(claim.task_id, claim.lease_token,
                        "OSError: image file is truncated (73 bytes not processed)")
    assert farm.store.claim(node_id) is None  # blocked: nothing for it any more


def test_a_job_whose_only_node_is_blocked_fails(farm: Farm, clock: ManualClock) -> None:
    """One node, a deterministic failure: two failures block the node, the task is queued
    with retries left and nobody may take it. Upkeep fails the job once it has stayed so
    for stranded_seconds, with an error naming the node, and the job is finished."""
    tenant, node = farm.tenant(), farm.node()
    job = farm.render_job(tenant, renders=1)
    fail_until_blocked(farm, node, job.id)
    assert farm.job(job.id).state in ("queued", "running")  # unfinished
    assert farm.task_states(job.id)["render0"] == "queued"

    assert farm.store.queue.fail_stranded() == 0  # within the grace period
    clock.advance(SETTINGS.stranded_seconds + 1)
    farm.store.node_heartbeat(node)  # the node is alive (it keeps polling)
    assert farm.store.queue.fail_stranded() == 1

    failed = farm.job(job.id)
    assert failed.state == "failed" and failed.finished_at is not None
    assert failed.failed_step == "render"
    assert failed.error is not None
    assert "no render node may take this task" in failed.error, failed.error
    assert f"({node}) blocked after 2 failures" in failed.error, failed.error
    assert "image file is truncated" in failed.error, failed.error  # the last error
    assert set(farm.task_states(job.id).values()) <= {"cancelled", "succeeded"}
    summary = farm.store.summary(failed)
    assert (summary.state, summary.step) == ("failed", "failed")
    assert any("no render node may take this task" in line.message
               for line in farm.store.logs(tenant, job.id, "error"))
    assert farm.store.queue.fail_stranded() == 0  # once


def test_a_live_node_that_is_not_blocked_keeps_the_job(farm: Farm, clock: ManualClock) -> None:
    tenant = farm.tenant()
    bad, good = farm.nodes(2)
    farm.store.set_draining(good, True)  # so the bad node gets the tasks
    job = farm.render_job(tenant, renders=1)
    fail_until_blocked(farm, bad, job.id)
    farm.store.set_draining(good, False)
    clock.advance(SETTINGS.stranded_seconds + 1)
    for node in (bad, good):
        farm.store.node_heartbeat(node)
    assert farm.store.queue.fail_stranded() == 0
    assert farm.job(job.id).state in ("queued", "running")  # unfinished
    claim = farm.claim(good)
    assert claim.job_id == job.id


@pytest.mark.parametrize("other", ["draining", "offline"])
def test_nodes_that_are_draining_or_offline_do_not_count(farm: Farm, clock: ManualClock,
                                                         other: str) -> None:
    tenant = farm.tenant()
    bad, spare = farm.nodes(2)
    farm.store.set_draining(spare, True)
    job = farm.render_job(tenant, renders=1)
    fail_until_blocked(farm, bad, job.id)
    clock.advance(SETTINGS.node_offline_seconds + 1)
    farm.store.node_heartbeat(bad)
    if other == "draining":
        farm.store.node_heartbeat(spare)  # online, but draining
    else:
        farm.store.set_draining(spare, False)  # not draining, but silent for too long
    assert farm.store.queue.fail_stranded() == 1
    error = farm.job(job.id).error or ""
    assert farm.job(job.id).state == "failed" and bad in error and spare not in error


def test_a_farm_with_no_live_node_waits(farm: Farm, clock: ManualClock) -> None:
    """Every node away (a restart of the farm, say): nothing is failed, the job waits."""
    tenant, node = farm.tenant(), farm.node()
    job = farm.render_job(tenant, renders=1)
    fail_until_blocked(farm, node, job.id)
    clock.advance(SETTINGS.node_offline_seconds + 1)
    assert farm.store.queue.fail_stranded() == 0
    assert farm.job(job.id).state in ("queued", "running")  # unfinished


"""Failures: retries with backoff, blocking a failing node, permanent failures, cancel and
retry of a whole job."""

from __future__ import annotations

import datetime as dt

import pytest

from framefarm.application.queue import QueueSettings
from framefarm.clock import ManualClock
from framefarm.queue.errors import Conflict, NotFound, StaleLease
from framefarm.queue.states import JobState, TaskState
from support.queue_farm import Farm

BACKOFF = QueueSettings(lease_seconds=30, max_attempts=4, retry_backoff_seconds=10,
                        node_block_failures=99, max_concurrent_jobs=100)
NO_BACKOFF = QueueSettings(lease_seconds=30, max_attempts=5, retry_backoff_seconds=0,
                           node_block_failures=2, max_concurrent_jobs=100)


@pytest.mark.parametrize("settings", [BACKOFF], ids=["backoff10"])
def test_failures_back_off_exponentially_then_fail_the_job(
        farm: Farm, clock: ManualClock, settings: QueueSettings) -> None:
    job = farm.render_job(farm.tenant(), renders=2)
    n1, n2, n3 = farm.nodes(3)
    claim = farm.claim(n1)
    other = farm.claim(n2)  # render 1 keeps running meanwhile
    assert (claim.idx, other.idx) == (0, 1)
    farm.store.heartbeat(other.task_id, other.lease_token)

    def wait(seconds: float) -> None:
        """Let time pass; the other node keeps its lease meanwhile."""
        while seconds > 0:
            step = min(seconds, 10.0)
            clock.advance(step)
            seconds -= step
            assert farm.store.heartbeat(other.task_id, other.lease_token) == "continue"

    node = n1
    for attempt, delay in ((1, 10.0), (2, 20.0), (3, 40.0)):
        row = farm.store.fail(claim.task_id, claim.lease_token, f"boom {attempt}")
        assert row.state == JobState.RUNNING
        task = farm.task(claim.task_id)
        assert (task.state, task.failures, task.requeues) == (
            TaskState.QUEUED, attempt, 0)
        assert task.not_before == clock.now() + dt.timedelta(seconds=delay)
        assert task.error == f"boom {attempt}"
        assert task.last_failed_node == node
        with pytest.raises(StaleLease):
            farm.store.heartbeat(claim.task_id, claim.lease_token)
        # The audio task is free meanwhile; after it, nothing is runnable until the backoff.
        if attempt == 1:
            audio = farm.claim(n1)
            assert audio.kind == "audio"
            farm.finish(audio)
        assert farm.store.claim(n1) is None
        wait(delay - 0.5)
        assert farm.store.claim(n1) is None, f"claimed before the {delay}s backoff ended"
        wait(0.5)
        node = (n1, n3)[attempt % 2]  # n2 is busy with render 1
        claim = farm.claim(node)
        assert claim.idx == 0
    row = farm.store.fail(claim.task_id, claim.lease_token, "boom 4", step="render")
    assert row.state == JobState.FAILED
    assert (row.error, row.failed_step) == ("boom 4", "render")
    assert row.finished_at == clock.now()
    states = farm.task_states(job.id)
    assert states == {"render0": TaskState.FAILED, "render1": TaskState.CANCELLED,
                      "audio2": TaskState.SUCCEEDED, "assemble3": TaskState.CANCELLED}
    assert farm.task(claim.task_id).failures == 4
    # The other node is told to stop and cannot report success any more.
    assert farm.store.heartbeat(other.task_id, other.lease_token) == "cancel"
    with pytest.raises(StaleLease):
        farm.store.complete(other.task_id, other.lease_token, "late")
    assert farm.store.claim(n1) is None
    assert farm.store.summary(farm.job(job.id)).step == "failed"


@pytest.mark.parametrize("settings", [NO_BACKOFF], ids=["nobackoff"])
def test_failed_task_goes_to_another_node_first(farm: Farm, settings: QueueSettings) -> None:
    farm.render_job(farm.tenant(), renders=2)
    n1, n2 = farm.nodes(2)
    failed = farm.claim(n1)
    assert failed.idx == 0
    farm.store.fail(failed.task_id, failed.lease_token, "boom")
    # n1 would take render 0 again by chunk order; it gets render 1 instead ...
    mine = farm.claim(n1)
    assert mine.idx == 1
    # ... and the failed chunk goes to the other node.
    theirs = farm.claim(n2)
    assert theirs.task_id == failed.task_id


@pytest.mark.parametrize("settings", [NO_BACKOFF], ids=["nobackoff"])
def test_failing_node_is_only_a_last_resort(farm: Farm, settings: QueueSettings) -> None:
    """With nothing else to do, the node that failed may retry (it is not blocked yet)."""
    farm.snapshot_job(farm.tenant())
    n1 = farm.node()
    claim = farm.claim(n1)
    farm.store.fail(claim.task_id, claim.lease_token, "boom")
    assert farm.claim(n1).task_id == claim.task_id


@pytest.mark.parametrize("settings", [NO_BACKOFF], ids=["nobackoff"])
def test_node_failing_a_job_repeatedly_is_blocked_from_it(
        farm: Farm, settings: QueueSettings) -> None:
    tenant = farm.tenant()
    job = farm.snapshot_job(tenant)
    n1, n2 = farm.nodes(2)
    for _ in range(settings.node_block_failures):
        claim = farm.claim(n1)
        assert claim.job_id == job.id
        farm.store.fail(claim.task_id, claim.lease_token, "gpu fell off the bus")
    assert farm.store.claim(n1) is None, "a blocked node was handed the job again"
    assert farm.store.get_node(n1).tasks_failed == settings.node_block_failures
    # Only this job is blocked: the node still gets other jobs.
    other = farm.snapshot_job(tenant)
    assert farm.claim(n1).job_id == other.id
    rescue = farm.claim(n2)
    assert rescue.job_id == job.id
    assert farm.finish(rescue).state == JobState.SUCCEEDED
    assert any("blocked" in log.message for log in farm.store.logs(tenant, job.id))


@pytest.mark.parametrize("settings", [NO_BACKOFF], ids=["nobackoff"])
def test_permanent_failure_fails_the_job_at_once(farm: Farm, settings: QueueSettings) -> None:
    tenant = farm.tenant()
    job = farm.render_job(tenant, renders=2)
    n1, n2 = farm.nodes(2)
    bad = farm.claim(n1)
    running = farm.claim(n2)
    row = farm.store.fail(bad.task_id, bad.lease_token, "font not found", permanent=True,
                          step="validate")
    assert (row.state, row.error, row.failed_step) == (
        JobState.FAILED, "font not found", "validate")
    assert farm.task(bad.task_id).failures == 1
    assert farm.task_states(job.id) == {
        "render0": TaskState.FAILED, "render1": TaskState.CANCELLED,
        "audio2": TaskState.CANCELLED, "assemble3": TaskState.CANCELLED}
    assert farm.store.heartbeat(running.task_id, running.lease_token) == "cancel"
    assert farm.store.claim(n1) is None
    errors = farm.store.logs(tenant, job.id, level="error")
    assert len(errors) == 1 and "font not found" in errors[0].message


@pytest.mark.parametrize("settings", [NO_BACKOFF], ids=["nobackoff"])
def test_failed_step_defaults_to_the_task_kind(farm: Farm, settings: QueueSettings) -> None:
    farm.snapshot_job(farm.tenant())
    claim = farm.claim(farm.node())
    row = farm.store.fail(claim.task_id, claim.lease_token, "bad", permanent=True)
    assert row.failed_step == "snapshot"


def test_cancel_stops_queued_tasks_now_and_running_ones_at_their_next_report(
        farm: Farm, clock: ManualClock) -> None:
    tenant = farm.tenant()
    job = farm.render_job(tenant, renders=2)
    n1, n2 = farm.nodes(2)
    running = farm.claim(n1)
    row = farm.store.cancel(tenant, job.id)
    assert (row.state, row.step) == (JobState.CANCELLED, "cancelled")
    assert row.finished_at == clock.now()
    assert set(farm.task_states(job.id).values()) == {TaskState.CANCELLED}
    assert farm.store.claim(n2) is None
    assert farm.store.heartbeat(running.task_id, running.lease_token) == "cancel"
    with pytest.raises(StaleLease):
        farm.store.complete(running.task_id, running.lease_token, "late")
    with pytest.raises(StaleLease):
        farm.store.fail(running.task_id, running.lease_token, "killed")
    assert farm.job(job.id).state == JobState.CANCELLED
    with pytest.raises(Conflict):
        farm.store.cancel(tenant, job.id)
    # A node that never reports again does not keep the cancelled task leased forever.
    clock.advance(31)
    farm.store.requeue_expired()
    assert farm.task(running.task_id).lease_token is None
    assert farm.task(running.task_id).state == TaskState.CANCELLED


def test_finished_jobs_cannot_be_cancelled(farm: Farm) -> None:
    tenant = farm.tenant()
    job = farm.snapshot_job(tenant)
    farm.run_all(farm.node())
    assert farm.job(job.id).state == JobState.SUCCEEDED
    with pytest.raises(Conflict):
        farm.store.cancel(tenant, job.id)
    assert farm.job(job.id).state == JobState.SUCCEEDED


@pytest.mark.parametrize("settings", [NO_BACKOFF], ids=["nobackoff"])
@pytest.mark.parametrize("how", ["cancelled", "failed"])
def test_retry_makes_a_new_attempt_with_the_same_ranges(
        farm: Farm, settings: QueueSettings, how: str) -> None:
    tenant = farm.tenant()
    old = farm.render_job(tenant, renders=3, frames_per_chunk=7, priority=4)
    claim = farm.claim(farm.node())
    if how == "cancelled":
        farm.store.cancel(tenant, old.id)
    else:
        farm.store.fail(claim.task_id, claim.lease_token, "bad", permanent=True)
    assert farm.job(old.id).state == how
    new = farm.store.retry(tenant, old.id)
    assert new.id != old.id
    assert (new.state, new.attempt, new.retry_of) == (JobState.QUEUED, 2, old.id)
    for key in ("tenant_id", "kind", "document", "options", "assets", "frames_total", "fps",
                "priority"):
        assert getattr(new, key) == getattr(old, key), key

    def ranges(job_id: str) -> list[tuple[str, int, int, int]]:
        return [(t.kind, t.idx, t.frame_start, t.frame_end)
                for t in farm.tasks(job_id)]

    assert ranges(new.id) == ranges(old.id)
    assert farm.task_states(new.id) == {
        "render0": TaskState.QUEUED, "render1": TaskState.QUEUED, "render2": TaskState.QUEUED,
        "audio3": TaskState.QUEUED, "assemble4": TaskState.WAITING}
    assert farm.job(old.id).state == how  # the old attempt stays as it was
    third = farm.store.retry(tenant, old.id)
    assert third.attempt == 2  # counted from the job retried
    farm.store.cancel(tenant, new.id)
    assert farm.store.retry(tenant, new.id).attempt == 3


def test_only_failed_or_cancelled_jobs_can_be_retried(farm: Farm) -> None:
    tenant = farm.tenant()
    queued = farm.snapshot_job(tenant)
    with pytest.raises(Conflict):
        farm.store.retry(tenant, queued.id)
    farm.run_all(farm.node())
    with pytest.raises(Conflict):
        farm.store.retry(tenant, queued.id)
    with pytest.raises(NotFound):
        farm.store.retry(tenant, "job_missing")

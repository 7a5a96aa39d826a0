"""Leases: expiry requeues without spending a retry, heartbeats extend, stale tokens are
fenced off, and a restarted server picks up where the last one stopped."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import pytest

from framefarm.application.queue import QueueSettings
from framefarm.clock import ManualClock
from framefarm.queue.errors import StaleLease
from framefarm.queue.states import JobState, TaskState
from support.queue_farm import Farm
from support.queue_farm import QueueStore as Store

LEASE = 30.0


def test_expired_lease_requeues_the_task_to_another_node(farm: Farm, clock: ManualClock) -> None:
    job = farm.snapshot_job(farm.tenant())
    n1, n2 = farm.nodes(2)
    first = farm.claim(n1)
    clock.advance(LEASE - 1)
    farm.store.requeue_expired()  # the server's upkeep loop
    assert farm.store.claim(n2) is None, "the lease has not expired yet"
    clock.advance(2)
    farm.store.requeue_expired()  # the server's upkeep loop
    second = farm.claim(n2)
    assert second.task_id == first.task_id
    assert second.lease_token != first.lease_token
    task = farm.task(first.task_id)
    assert (task.state, task.node_id, task.requeues, task.failures) == (
        TaskState.RUNNING, n2, 1, 0)
    assert farm.store.get_node(n1).crashes == 1
    assert farm.job(job.id).state == JobState.RUNNING
    farm.finish(second)
    assert farm.job(job.id).state == JobState.SUCCEEDED


def test_requeue_expired_is_what_claim_relies_on(farm: Farm, clock: ManualClock) -> None:
    farm.snapshot_job(farm.tenant())
    claim = farm.claim(farm.node())
    assert farm.store.requeue_expired() == 0
    clock.advance(LEASE + 1)
    assert farm.store.requeue_expired() == 1
    assert farm.store.requeue_expired() == 0
    task = farm.task(claim.task_id)
    assert (task.state, task.lease_token, task.node_id) == (TaskState.QUEUED, None, None)


def test_heartbeats_keep_the_lease(farm: Farm, clock: ManualClock) -> None:
    farm.snapshot_job(farm.tenant())
    n1, n2 = farm.nodes(2)
    claim = farm.claim(n1)
    for beat in range(10):  # 10 x 20 s: well past one lease
        clock.advance(LEASE * 2 / 3)
        assert farm.store.heartbeat(claim.task_id, claim.lease_token, frames_done=0) == "continue"
        farm.store.requeue_expired()  # the server's upkeep loop
        assert farm.store.claim(n2) is None, f"requeued despite heartbeat {beat}"
    task = farm.task(claim.task_id)
    assert task.lease_expires_at == clock.now() + dt.timedelta(seconds=LEASE)
    assert (task.state, task.node_id, task.requeues) == (TaskState.RUNNING, n1, 0)
    farm.finish(claim)


def test_heartbeat_records_progress_within_the_chunk(farm: Farm) -> None:
    job = farm.render_job(farm.tenant(), renders=2, frames_per_chunk=10)
    claim = farm.claim(farm.node())
    farm.store.heartbeat(claim.task_id, claim.lease_token, frames_done=4, preview_key="p/1.png")
    assert farm.task(claim.task_id).frames_done == 4
    assert farm.job(job.id).preview_key == "p/1.png"
    farm.store.heartbeat(claim.task_id, claim.lease_token, frames_done=999)
    assert farm.task(claim.task_id).frames_done == 10
    farm.store.heartbeat(claim.task_id, claim.lease_token, frames_done=-5)
    assert farm.task(claim.task_id).frames_done == 0


def test_wrong_token_is_stale_for_every_write(farm: Farm) -> None:
    farm.snapshot_job(farm.tenant())
    claim = farm.claim(farm.node())
    for write in (
        lambda: farm.store.heartbeat(claim.task_id, "0" * 32),
        lambda: farm.store.complete(claim.task_id, "0" * 32, "out"),
        lambda: farm.store.fail(claim.task_id, "0" * 32, "boom"),
        lambda: farm.store.task_for_node(claim.task_id, "0" * 32),
        lambda: farm.store.heartbeat("tsk_missing", claim.lease_token),
    ):
        with pytest.raises(StaleLease):
            write()
    task = farm.task(claim.task_id)
    assert (task.state, task.failures) == (TaskState.RUNNING, 0)
    assert farm.store.task_for_node(claim.task_id, claim.lease_token).id == claim.task_id


def test_token_is_spent_once_the_task_is_done(farm: Farm) -> None:
    farm.render_job(farm.tenant(), renders=2)
    claim = farm.claim(farm.node())
    farm.finish(claim)
    for write in (
        lambda: farm.store.heartbeat(claim.task_id, claim.lease_token),
        lambda: farm.store.complete(claim.task_id, claim.lease_token, "again"),
        lambda: farm.store.fail(claim.task_id, claim.lease_token, "late"),
    ):
        with pytest.raises(StaleLease):
            write()
    assert farm.task(claim.task_id).state == TaskState.SUCCEEDED


def test_after_a_requeue_only_the_new_lease_may_write(farm: Farm, clock: ManualClock) -> None:
    job = farm.snapshot_job(farm.tenant())
    n1, n2 = farm.nodes(2)
    old = farm.claim(n1)
    clock.advance(LEASE + 1)
    farm.store.requeue_expired()  # the server's upkeep loop
    new = farm.claim(n2)
    assert new.task_id == old.task_id
    with pytest.raises(StaleLease):
        farm.store.heartbeat(old.task_id, old.lease_token)
    with pytest.raises(StaleLease):
        farm.store.complete(old.task_id, old.lease_token, "from-the-presumed-dead")
    with pytest.raises(StaleLease):
        farm.store.fail(old.task_id, old.lease_token, "late failure")
    task = farm.task(old.task_id)
    assert (task.state, task.node_id, task.failures) == (TaskState.RUNNING, n2, 0)
    assert farm.store.heartbeat(new.task_id, new.lease_token) == "continue"
    done = farm.store.complete(new.task_id, new.lease_token, "from-n2")
    assert done.state == JobState.SUCCEEDED
    assert done.result_key == "from-n2"
    assert farm.job(job.id).result_key == "from-n2"


def test_restart_loses_nothing(farm: Farm, clock: ManualClock,
                               make_store: Callable[..., Store]) -> None:
    tenant = farm.tenant()
    job = farm.render_job(tenant, renders=3, frames_per_chunk=10)
    n1, n2, n3 = farm.nodes(3)
    done = farm.claim(n1)
    farm.finish(done)
    alive = farm.claim(n1)  # keeps heartbeating across the restart
    dead = farm.claim(n2)   # its node goes quiet
    farm.store.heartbeat(alive.task_id, alive.lease_token, frames_done=3)
    before = {t.id: dataclasses.asdict(t) for t in farm.tasks(job.id)}
    farm.store.close()  # the server stops ...

    clock.advance(LEASE * 2 / 3)
    restarted = make_store()  # ... and a new one starts on the same database
    again = Farm(restarted, clock)
    assert {t.id: dataclasses.asdict(t) for t in again.tasks(job.id)} == before
    row = again.job(job.id)
    assert (row.state, row.tenant_id) == (JobState.RUNNING, tenant)
    assert restarted.authenticate_node(n1, "wrong") is False
    assert restarted.heartbeat(alive.task_id, alive.lease_token, frames_done=7) == "continue"

    clock.advance(LEASE * 2 / 3)  # past the quiet node's lease, not the live one's
    restarted.requeue_expired()  # the restarted server's upkeep loop
    takeover = again.claim(n3)
    assert takeover.task_id == dead.task_id
    moved = again.task(dead.task_id)
    assert (moved.node_id, moved.requeues, moved.failures) == (n3, 1, 0)
    assert again.task(alive.task_id).state == TaskState.RUNNING
    with pytest.raises(StaleLease):
        restarted.complete(dead.task_id, dead.lease_token, "late")
    again.finish(alive)
    again.finish(takeover)
    while (claim := restarted.claim(n3)) is not None:
        again.finish(claim)
    final = again.job(job.id)
    assert final.state == JobState.SUCCEEDED
    assert again.store.summary(final).percent == 100.0


def test_leases_that_expired_while_the_server_was_down_are_requeued(
        farm: Farm, clock: ManualClock, make_store: Callable[..., Store]) -> None:
    job = farm.snapshot_job(farm.tenant())
    n1, n2 = farm.nodes(2)
    claim = farm.claim(n1)
    farm.store.close()
    clock.advance(LEASE * 10)
    restarted = make_store()
    assert farm.task(claim.task_id).state == TaskState.RUNNING  # nothing moved by itself
    restarted.requeue_expired()  # the restarted server's upkeep loop
    again = restarted.claim(n2)
    assert again is not None and again.task_id == claim.task_id
    restarted.complete(again.task_id, again.lease_token, "out")
    assert restarted.get_job(None, job.id).state == JobState.SUCCEEDED


@pytest.mark.parametrize("settings", [QueueSettings(lease_seconds=5)], ids=["lease5"])
def test_lease_length_comes_from_the_settings(farm: Farm, clock: ManualClock,
                                              settings: QueueSettings) -> None:
    farm.snapshot_job(farm.tenant())
    n1, n2 = farm.nodes(2)
    claim = farm.claim(n1)
    clock.advance(4)
    farm.store.requeue_expired()  # the server's upkeep loop
    assert farm.store.claim(n2) is None
    clock.advance(2)
    farm.store.requeue_expired()  # the server's upkeep loop
    assert farm.claim(n2).task_id == claim.task_id

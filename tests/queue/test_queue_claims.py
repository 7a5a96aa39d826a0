"""Claiming: one task per claim, never twice; priority, fairness, draining nodes."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
from collections import Counter

import pytest

from framefarm.application.queue import QueueSettings
from framefarm.clock import ManualClock
from framefarm.queue.errors import StaleLease
from framefarm.queue.states import JobState, TaskState
from support import claimer_processes as queue_workers
from support.queue_farm import AssemblyStalled, Claim, Farm, plan_render
from support.queue_farm import QueueStore as Store

THREADS = 8


def _claim_until_done(store: Store, node_id: str, claims: list[Claim],
                      errors: list[BaseException], barrier: threading.Barrier) -> None:
    """Claim and complete until the queue holds nothing runnable. A queue with tasks
    waiting but none queued or running is stalled for good (a completion queues the
    waiting ones in the same transaction), so that ends the loop too."""
    try:
        barrier.wait()
        for _ in range(100_000):
            claim = store.claim(node_id)
            if claim is None:
                overview = store.queue_overview()
                if not overview.get("queued") and not overview.get("running"):
                    return
                continue
            claims.append(claim)
            store.complete(claim.task_id, claim.lease_token, f"out/{claim.task_id}")
        raise AssertionError(f"{node_id} spun forever")
    except BaseException as exc:
        errors.append(exc)


def test_concurrent_claimers_never_share_a_task(farm: Farm) -> None:
    store = farm.store
    tenants = [farm.tenant() for _ in range(2)]
    # plan_render: 480 frames at 24 fps for 8 nodes -> 8 chunks, audio, assemble.
    plan = plan_render(480, 24, nodes=8, min_chunk_seconds=1)
    assert [p.kind for p in plan].count("render") == 8
    jobs = [farm.submit(tenants[i % 2], plan, priority=i % 3) for i in range(8)]
    tasks = {t.id: t for job in jobs for t in farm.tasks(job.id)}
    assert len(tasks) == 8 * 10

    nodes = farm.nodes(THREADS)
    per_node: list[list[Claim]] = [[] for _ in nodes]
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)
    threads = [threading.Thread(target=_claim_until_done,
                                args=(store, node, per_node[i], errors, barrier))
               for i, node in enumerate(nodes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    claims = [c for node_claims in per_node for c in node_claims]
    claimed = Counter(c.task_id for c in claims)
    assert set(claimed.values()) == {1}, [t for t, n in claimed.items() if n > 1]
    assert len({c.lease_token for c in claims}) == len(claims)
    # Every render and audio task was claimed exactly once, by the node recorded on it.
    assert {t for t, row in tasks.items() if row.kind != "assemble"} <= set(claimed)
    for node, node_claims in zip(nodes, per_node, strict=True):
        for claim in node_claims:
            assert farm.task(claim.task_id).node_id == node

    stalled = [t for t in tasks if farm.task(t).state == TaskState.WAITING]
    if stalled:
        raise AssemblyStalled(f"{len(stalled)} of {len(jobs)} assemble tasks wait forever")
    assert len(claims) == len(tasks)
    for job in jobs:
        assert farm.job(job.id).state == JobState.SUCCEEDED
        assert all(t.state == TaskState.SUCCEEDED and t.requeues == 0
                   for t in farm.tasks(job.id))


def test_concurrent_claimer_processes_never_share_a_task(pg_farm: Farm, pg_url: str) -> None:
    """Separate processes, each with its own store and connection pool, on PostgreSQL
    (single-task jobs: the assemble stall above is not what this is about)."""
    farm = pg_farm
    tenants = [farm.tenant() for _ in range(3)]
    jobs = [farm.snapshot_job(tenants[i % 3]) for i in range(40)]
    nodes = farm.nodes(2)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(len(nodes)) as pool:
        results = pool.starmap(queue_workers.claim_until_done,
                               [(pg_url, node, farm.clock.now()) for node in nodes])
    claimed = Counter(task_id for result in results for task_id in result)
    assert set(claimed.values()) == {1}
    assert set(claimed) == {t.id for job in jobs for t in farm.tasks(job.id)}
    assert all(farm.job(job.id).state == JobState.SUCCEEDED for job in jobs)


def test_higher_priority_is_claimed_first(farm: Farm) -> None:
    tenant = farm.tenant()
    low = farm.render_job(tenant, renders=3)
    farm.clock.advance(1)
    high = farm.render_job(tenant, renders=3, priority=10)
    # One node per claim: a node that claims again while it holds a task gets that task.
    first = [farm.claim(node) for node in farm.nodes(4)]
    assert [c.job_id for c in first] == [high.id] * 4
    assert [c.kind for c in first] == ["render", "render", "render", "audio"]
    assert farm.claim(farm.node()).job_id == low.id


def test_same_priority_goes_oldest_job_then_chunk_order(farm: Farm) -> None:
    tenant = farm.tenant()
    older = farm.render_job(tenant, renders=2)
    farm.clock.advance(1)
    farm.render_job(tenant, renders=2)
    first = [farm.claim(node) for node in farm.nodes(3)]
    assert [(c.job_id, c.idx) for c in first] == [(older.id, 0), (older.id, 1),
                                                  (older.id, 2)]


def test_a_small_tenant_is_not_stuck_behind_a_big_one(farm: Farm) -> None:
    a = farm.tenant("a")
    b = farm.tenant("b")
    for _ in range(50):
        farm.snapshot_job(a)
    farm.clock.advance(5)
    b_job = farm.snapshot_job(b)
    n1, n2 = farm.nodes(2)

    order: list[str] = []
    held: dict[str, Claim] = {}
    for turn in range(6):
        node = (n1, n2)[turn % 2]
        if node in held:
            farm.finish(held.pop(node))
        claim = farm.claim(node)
        held[node] = claim
        order.append(claim.tenant_id)
    assert order[0] == a  # the older work goes first while nobody runs anything
    assert b in order[:3], f"tenant b waited behind tenant a: {order}"
    assert order.count(b) == 1
    # When b's task was claimed, tenant a had a task running (it was not just idle luck).
    b_turn = order.index(b)
    assert b_turn >= 1 and order[b_turn - 1] == a
    assert farm.job(b_job.id).state in (JobState.RUNNING, JobState.SUCCEEDED)
    assert farm.store.queue_overview().get("queued", 0) >= 45


def test_draining_node_gets_nothing(farm: Farm) -> None:
    tenant = farm.tenant()
    job = farm.snapshot_job(tenant)
    n1, n2 = farm.nodes(2)
    farm.store.set_draining(n1, True)
    assert farm.store.claim(n1) is None
    assert farm.store.node_heartbeat(n1) == "drain"
    assert farm.store.node_status(farm.store.get_node(n1)) == "draining"
    claim = farm.claim(n2)
    assert claim.job_id == job.id
    farm.store.set_draining(n1, False)
    assert farm.store.node_heartbeat(n1) == "continue"
    farm.render_job(tenant, renders=1)
    assert farm.store.claim(n1) is not None


def test_release_node_requeues_its_running_task(farm: Farm) -> None:
    tenant = farm.tenant()
    job = farm.snapshot_job(tenant)
    n1, n2 = farm.nodes(2)
    claim = farm.claim(n1)
    assert farm.store.get_node(n1).current_task_id == claim.task_id
    assert farm.store.release_node(n1) == 1
    task = farm.task(claim.task_id)
    assert (task.state, task.node_id, task.requeues, task.failures) == (
        TaskState.QUEUED, None, 1, 0)
    assert farm.store.get_node(n1).current_task_id is None
    with pytest.raises(StaleLease):
        farm.store.complete(claim.task_id, claim.lease_token, "late")
    again = farm.claim(n2)
    assert again.task_id == claim.task_id
    farm.finish(again)
    assert farm.job(job.id).state == JobState.SUCCEEDED
    assert farm.store.release_node(n1) == 0


def test_unknown_node_gets_nothing(farm: Farm) -> None:
    farm.snapshot_job(farm.tenant())
    assert farm.store.claim("node_unknown") is None


@pytest.mark.parametrize("settings", [QueueSettings(lease_seconds=5)], ids=["lease5"])
def test_claim_grants_a_lease_of_the_configured_length(farm: Farm, clock: ManualClock,
                                                       settings: QueueSettings) -> None:
    farm.snapshot_job(farm.tenant())
    claim = farm.claim(farm.node())
    assert claim.lease_expires_at == clock.now() + dt.timedelta(seconds=5)
    task = farm.task(claim.task_id)
    assert task.lease_token == claim.lease_token
    assert task.lease_expires_at == claim.lease_expires_at


def test_a_node_that_claims_again_gets_its_task_back(farm: Farm) -> None:
    """The answer to a claim was lost: the node asks again and gets the same task and
    lease, instead of a second task while the first runs until its lease expires."""
    farm.render_job(farm.tenant(), renders=2)
    node = farm.node()
    first = farm.claim(node)
    again = farm.claim(node)
    assert (again.task_id, again.lease_token) == (first.task_id, first.lease_token)
    assert farm.task(first.task_id).node_id == node
    farm.finish(again)
    assert farm.claim(node).task_id != first.task_id


def test_an_idle_claim_leaves_expired_leases_to_the_upkeep_loop(farm: Farm,
                                                                 clock: ManualClock) -> None:
    farm.snapshot_job(farm.tenant())
    n1, n2 = farm.nodes(2)
    claim = farm.claim(n1)
    clock.advance(3600)
    assert farm.store.claim(n2) is None, "a claim requeued an expired lease itself"
    assert farm.task(claim.task_id).state == TaskState.RUNNING
    assert farm.store.requeue_expired() == 1
    assert farm.claim(n2).task_id == claim.task_id

"""A claim and a completion: on PostgreSQL each is one statement (the functions of migration
0009), on SQLite a handful; both hand back exactly what is stored, log the same lines and
route by engine the same way."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from framefarm.queue.errors import StaleLease
from framefarm.queue.states import JobState, TaskState
from framefarm.repos import usage
from support import claimer_processes
from support.queue_farm import Farm, render_plan


@contextmanager
def statements(farm: Farm) -> Iterator[list[str]]:
    """The statements run on the store's engine inside the block."""
    seen: list[str] = []

    def keep(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(" ".join(statement.split()))

    sa.event.listen(farm.store.engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        sa.event.remove(farm.store.engine, "before_cursor_execute", keep)


def test_a_claim_hands_over_the_task_as_it_is_stored(farm: Farm) -> None:
    job = farm.render_job(farm.tenant(), renders=2)
    node = farm.node()
    task = farm.store.queue.claim(node)
    assert task is not None and task.job_id == job.id
    assert task == farm.task(task.id)
    assert task.state == TaskState.RUNNING and task.node_id == node
    again = farm.store.queue.claim(node)  # the answer was lost: the node asks again
    assert again == task


def test_a_completion_hands_back_the_job_as_it_is_stored(farm: Farm) -> None:
    job = farm.render_job(farm.tenant(), renders=2)
    nodes = farm.nodes(3)
    first, second, audio = (farm.claim(node) for node in nodes)
    for claim in (first, second):  # a chunk among others, then the last render
        done = farm.finish(claim)
        assert done == farm.job(job.id)
        assert (done.state, done.step) == (JobState.RUNNING, "render" if claim is first
                                           else "audio")
    assert farm.task_states(job.id)["assemble3"] == TaskState.WAITING
    done = farm.finish(audio)  # the last input: the assemble task is queued with it
    assert done == farm.job(job.id) and done.step == "assemble"
    assert farm.task_states(job.id)["assemble3"] == TaskState.QUEUED
    done = farm.finish(farm.claim(nodes[0]))
    assert done == farm.job(job.id) and done.state == JobState.SUCCEEDED


def test_claims_and_completions_log_the_same_lines_everywhere(farm: Farm) -> None:
    tenant = farm.tenant()
    job = farm.render_job(tenant, renders=1, frames_per_chunk=12)
    farm.finish(farm.claim(farm.node()))
    lines = [line.message for line in farm.store.logs(tenant, job.id)]
    assert lines[-2:] == ["render 0 [0, 12) claimed", "render 0 done"]


def test_a_completion_adds_the_nodes_cpu_seconds_to_the_job(farm: Farm) -> None:
    job = farm.render_job(farm.tenant(), renders=1)
    render, audio = farm.claim(farm.node()), farm.claim(farm.node())
    farm.store.queue.complete(render.task_id, render.lease_token, "out", cpu_seconds=2.5)
    farm.store.queue.complete(audio.task_id, audio.lease_token, "out", cpu_seconds=0.5)
    with farm.store.db.read() as conn:
        used = usage.get(conn, job.id)
    assert used is not None and (used.cpu_render, used.cpu_audio) == (2.5, 0.5)


def test_a_spent_or_cancelled_lease_is_refused_with_its_reason(farm: Farm) -> None:
    tenant = farm.tenant()
    job = farm.render_job(tenant, renders=2)
    first, second = farm.claim(farm.node()), farm.claim(farm.node())
    farm.finish(first)
    with pytest.raises(StaleLease, match="no longer valid"):
        farm.finish(first)
    farm.store.cancel(tenant, job.id)
    with pytest.raises(StaleLease, match="is cancelled"):
        farm.finish(second)


def test_a_node_gets_only_tasks_of_the_engines_it_has(farm: Farm) -> None:
    tenant = farm.tenant()
    remotion, _created = farm.store.submit(
        tenant, kind="render", engine="remotion", document={}, options={}, assets={},
        frames_total=20, fps=24, plan=render_plan(1))
    plain = farm.render_job(tenant, renders=1)
    remotion_node, _secret = farm.store.register_node("r", {"engines": ["remotion"]})
    assert farm.claim(remotion_node).job_id == remotion.id
    assert farm.claim(farm.node()).job_id == plain.id  # no engines reported: framefarm


def test_on_postgresql_a_claim_and_a_completion_are_one_statement_each(
        pg_farm: Farm) -> None:
    farm = pg_farm
    farm.render_job(farm.tenant(), renders=3)
    n1, n2 = farm.nodes(2)
    farm.claim(n1)  # the job's first claim moves the job on: that is a few more
    with statements(farm) as seen:
        claim = farm.claim(n2)
        farm.finish(claim)
    assert [s.split("(")[0] for s in seen] == ["SELECT framefarm_claim",
                                              "SELECT framefarm_complete"]


def test_a_token_no_database_can_store_is_a_stale_lease(farm: Farm) -> None:
    farm.render_job(farm.tenant(), renders=1)
    claim = farm.claim(farm.node())
    with pytest.raises(StaleLease):
        farm.store.complete(claim.task_id, "\x00" + claim.lease_token, "out")
    assert farm.task(claim.task_id).state == TaskState.RUNNING


@pytest.mark.parametrize("backend", ["sqlite"])  # PostgreSQL's: test_queue_claims
def test_processes_on_one_sqlite_file_take_turns(farm: Farm, db_url: str) -> None:
    """Writers of separate processes queue on the lock file beside the database
    (db/database.py: _WriterTurns) and still never share a task."""
    jobs = [farm.snapshot_job(farm.tenant()) for _ in range(12)]
    nodes = farm.nodes(3)
    with multiprocessing.get_context("spawn").Pool(len(nodes)) as pool:
        results = pool.starmap(claimer_processes.claim_until_done,
                               [(db_url, node, farm.clock.now()) for node in nodes])
    claimed = Counter(task_id for result in results for task_id in result)
    assert set(claimed.values()) == {1}
    assert all(farm.job(job.id).state == JobState.SUCCEEDED for job in jobs)

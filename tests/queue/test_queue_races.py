"""Interleavings of concurrent writers on PostgreSQL, forced step by step.

SQLite cannot interleave: every transaction takes the write lock up front (BEGIN
IMMEDIATE). PostgreSQL runs transactions side by side (READ COMMITTED), so each write
must lock or re-check what it read. Each test here stops one thread right after a chosen
statement, runs a competing call to its end (or until it waits for a row lock), then
lets the first one go on, and checks an invariant that must hold whatever the order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from framefarm.clock import ManualClock
from framefarm.queue.errors import StaleLease
from framefarm.queue.states import JobState, TaskState
from support.database import connect_admin
from support.queue_farm import Claim, Farm

LEASE = 30.0


class Step:
    """A call run in its own thread; with ``pause_after``, it stops right after the first
    statement it executes that matches, until :meth:`go` is called."""

    def __init__(self, engine: sa.Engine, call: Callable[[], Any],
                 pause_after: Callable[[str], bool] | None = None) -> None:
        self.engine = engine
        self.call = call
        self.pause_after = pause_after
        self.paused = threading.Event()
        self._go = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self._ident: int | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._hook = self._after_execute
        if pause_after is not None:
            sa.event.listen(engine, "after_cursor_execute", self._hook)

    def _after_execute(self, conn: Any, cursor: Any, statement: str, parameters: Any,
                       context: Any, executemany: bool) -> None:
        assert self.pause_after is not None
        if (threading.get_ident() == self._ident and not self.paused.is_set()
                and self.pause_after(statement)):
            self.paused.set()
            self._go.wait(15)

    def _run(self) -> None:
        self._ident = threading.get_ident()
        try:
            self.result = self.call()
        except BaseException as exc:
            self.error = exc

    def start(self) -> Step:
        self._thread.start()
        return self

    def wait_paused(self) -> None:
        """Until the thread stopped at its statement (or ended without reaching it)."""
        deadline = time.monotonic() + 15
        while not self.paused.is_set() and self._thread.is_alive():
            assert time.monotonic() < deadline, "never reached the pause"
            self.paused.wait(0.01)

    def go(self) -> None:
        self._go.set()

    def join(self) -> None:
        self.go()
        self._thread.join(20)
        assert not self._thread.is_alive()
        if self.pause_after is not None:
            sa.event.remove(self.engine, "after_cursor_execute", self._hook)

    def done(self) -> bool:
        return not self._thread.is_alive()


def wait_done_or_blocked(step: Step, url: str) -> str:
    """Until ``step`` ended, or some transaction on the database waits for a lock."""
    name = sa.make_url(url).database
    deadline = time.monotonic() + 15
    with connect_admin(url) as conn:
        while time.monotonic() < deadline:
            if step.done():
                return "done"
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND wait_event_type = 'Lock'", (name,)).fetchone()
            if waiting and waiting[0]:
                return "blocked"
            time.sleep(0.005)
    raise AssertionError("neither done nor waiting for a lock")


class Race:
    """Run ``first`` up to its pause, then ``second`` until done or blocked, then let
    both finish. Counts the deadlocks PostgreSQL broke meanwhile (the store may retry the
    victim, which hides them otherwise)."""

    def __init__(self, farm: Farm, url: str, first: Callable[[], Any],
                 pause_after: Callable[[str], bool], second: Callable[[], Any]) -> None:
        self.deadlocks = 0
        engine = farm.store.engine
        sa.event.listen(engine, "handle_error", self._on_error)
        self.one = Step(engine, first, pause_after).start()
        two: Step | None = None
        try:
            self.one.wait_paused()
            assert self.one.paused.is_set(), "the first step never reached its pause"
            two = Step(engine, second).start()
            wait_done_or_blocked(two, url)
        finally:
            self.one.join()
            if two is not None:
                two.join()
            sa.event.remove(engine, "handle_error", self._on_error)
        assert two is not None
        self.two = two

    def _on_error(self, context: sa.engine.ExceptionContext) -> None:
        if getattr(context.original_exception, "sqlstate", None) == "40P01":
            self.deadlocks += 1


def race(farm: Farm, url: str, first: Callable[[], Any], pause_after: Callable[[str], bool],
         second: Callable[[], Any]) -> tuple[Step, Step]:
    r = Race(farm, url, first, pause_after, second)
    return r.one, r.two


# Regression tests for races fixed in the store: a late requeue overwriting a task that
# changed after it was selected, and requeue_expired() taking the node row before the
# job/task locks (the reverse of complete()), which deadlocked.


def _statement(prefix: str) -> Callable[[str], bool]:
    return lambda sql: " ".join(sql.split()).startswith(prefix)


# After this statement a completion on PostgreSQL holds its task and its job's lock.
_COMPLETED = _statement("SELECT framefarm_complete")


def _select_tasks_where(fragment: str) -> Callable[[str], bool]:
    """A SELECT of task rows whose WHERE clause holds ``fragment``."""
    def matches(sql: str) -> bool:
        flat = " ".join(sql.split())
        return flat.startswith("SELECT tasks.id") and fragment in flat.partition(" WHERE ")[2]
    return matches


def _takeover(farm: Farm, node_id: str) -> Claim | None:
    """What another server and node do meanwhile: the upkeep loop requeues the expired
    task, and the node claims it."""
    farm.store.requeue_expired()
    return farm.store.claim(node_id)


def test_last_two_completions_unblock_assemble(pg_farm: Farm, pg_url: str) -> None:
    farm = pg_farm
    job = farm.render_job(farm.tenant(), renders=2)
    n1, n2, n3 = farm.nodes(3)
    r0, r1, audio = farm.claim(n1), farm.claim(n2), farm.claim(n3)
    farm.finish(audio)
    # r0 holds the job's lock (framefarm_complete took it) when r1 completes.
    one, two = race(farm, pg_url, lambda: farm.finish(r0), _COMPLETED, lambda: farm.finish(r1))
    assert one.error is None and two.error is None
    assert farm.task_states(job.id)["assemble3"] == TaskState.QUEUED
    farm.finish(farm.claim(n3))
    assert farm.job(job.id).state == JobState.SUCCEEDED


def test_a_late_requeue_does_not_take_a_fresh_lease_away(
        pg_farm: Farm, pg_url: str, clock: ManualClock) -> None:
    farm = pg_farm
    farm.snapshot_job(farm.tenant())
    n1, n2 = farm.nodes(2)
    old = farm.claim(n1)
    clock.advance(LEASE + 1)
    one, two = race(farm, pg_url, farm.store.requeue_expired,
                    _select_tasks_where("tasks.lease_expires_at <"),
                    lambda: _takeover(farm, n2))
    assert one.error is None and two.error is None
    task = farm.task(old.task_id)
    assert task.requeues == 1, "requeued twice for one expiry"
    assert farm.store.get_node(n1).crashes == 1
    new: Claim | None = two.result
    assert new is not None, "the takeover claimed nothing"
    assert (task.state, task.lease_token) == (TaskState.RUNNING, new.lease_token)
    assert farm.store.heartbeat(new.task_id, new.lease_token) == "continue"


def _check_one_winner(farm: Farm, job_id: str, old: Claim, one: Step, two: Step) -> None:
    """Either n1's completion landed and nobody took the task over, or the takeover won
    and n1 was told its lease is stale: never both."""
    new: Claim | None = two.result
    assert two.error is None
    task = farm.task(old.task_id)
    if one.error is None:  # n1's report won: nobody else may have the task
        assert new is None, "n1's completion landed although n2 holds a lease on the task"
        assert (task.state, task.output_key) == (TaskState.SUCCEEDED, "from-n1")
        assert farm.job(job_id).state == JobState.SUCCEEDED
    else:  # the takeover won: n1 is told its lease is stale
        assert isinstance(one.error, StaleLease)
        assert new is not None and new.task_id == old.task_id
        assert (task.state, task.lease_token) == (TaskState.RUNNING, new.lease_token)


def test_a_stale_completion_cannot_land_after_a_takeover(
        pg_farm: Farm, pg_url: str, clock: ManualClock) -> None:
    """n1 reports its expired task while n2's takeover holds it, not yet committed (a
    completion is one statement: it reads the task as it locks it)."""
    farm = pg_farm
    job = farm.snapshot_job(farm.tenant())
    n1, n2 = farm.nodes(2)
    old = farm.claim(n1)
    clock.advance(LEASE + 1)  # expired, not yet requeued: n1 reports just in time
    one, two = race(
        farm, pg_url, lambda: _takeover(farm, n2), _statement("SELECT framefarm_claim"),
        lambda: farm.store.complete(old.task_id, old.lease_token, "from-n1"))
    _check_one_winner(farm, job.id, old, two, one)
    assert isinstance(two.error, StaleLease), "the takeover went first"


def test_a_reclaim_waiting_on_a_completion_leaves_the_task_done(
        pg_farm: Farm, pg_url: str, clock: ManualClock) -> None:
    """n1 has checked its lease (and holds whatever complete() locks) when a claim tries
    to reclaim the expired task."""
    farm = pg_farm
    job = farm.snapshot_job(farm.tenant())
    n1, n2 = farm.nodes(2)
    old = farm.claim(n1)
    clock.advance(LEASE + 1)
    r = Race(farm, pg_url,
             lambda: farm.store.complete(old.task_id, old.lease_token, "from-n1"),
             _COMPLETED,
             lambda: _takeover(farm, n2))
    _check_one_winner(farm, job.id, old, r.one, r.two)
    assert r.deadlocks == 0


def test_a_completion_racing_its_expiry_does_not_deadlock(
        pg_farm: Farm, pg_url: str, clock: ManualClock) -> None:
    farm = pg_farm
    farm.snapshot_job(farm.tenant())
    n1 = farm.node()
    old = farm.claim(n1)
    clock.advance(LEASE + 1)
    r = Race(farm, pg_url, farm.store.requeue_expired,
             lambda sql: sql.startswith("UPDATE nodes") and "crashes" in sql,
             lambda: farm.store.complete(old.task_id, old.lease_token, "from-n1"))
    one, two = r.one, r.two
    for step in (one, two):
        if step.error is not None and not isinstance(step.error, StaleLease):
            raise step.error
    task = farm.task(old.task_id)
    if two.error is None:  # the completion won: the reclaimer must leave the task alone
        assert (task.state, task.requeues) == (TaskState.SUCCEEDED, 0)
    else:
        assert (task.state, task.requeues) == (TaskState.QUEUED, 1)
    assert r.deadlocks == 0, "the two took their locks in opposite orders"


def test_a_release_racing_a_completion_does_not_rerun_the_task(
        pg_farm: Farm, pg_url: str) -> None:
    farm = pg_farm
    job = farm.snapshot_job(farm.tenant())
    n1 = farm.node()
    claim = farm.claim(n1)
    one, two = race(farm, pg_url, lambda: farm.store.release_node(n1),
                    _select_tasks_where("tasks.node_id ="),
                    lambda: farm.finish(claim))
    assert one.error is None
    task = farm.task(claim.task_id)
    if two.error is None:  # the completion won: the release finds nothing to release
        assert one.result == 0
        assert (task.state, task.requeues) == (TaskState.SUCCEEDED, 0), \
            "a succeeded task was queued again"
        assert farm.job(job.id).state == JobState.SUCCEEDED
    else:
        assert isinstance(two.error, StaleLease)
        assert one.result == 1
        assert (task.state, task.requeues) == (TaskState.QUEUED, 1)

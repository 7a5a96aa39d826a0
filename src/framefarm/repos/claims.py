"""Which queued task a node gets: the claim's two queries.

Claim order: higher priority first; between tenants, the one with the fewest running tasks
(so one tenant's 10,000 chunks do not starve another's single render), then the oldest
job; within a job, chunk order. A task this node just failed is taken only when its
tenant has nothing else for it, jobs that blocked the node are skipped, and a task of an
engine the node does not have (``engines``: what it reported) is never offered to it.

The queue is never sorted as a whole: :func:`tenant_heads` ranks the tenants by the head
of each one's queue (a few index probes per tenant, through ``ix_tasks_tenant_claim``),
and :func:`next_task` walks one tenant's queue in index order to the first task it can
lock. So a claim costs the same with 100 queued tasks or 100,000.

On PostgreSQL a claim and a completion are each one statement: the functions of migration
0009 (:func:`claim_in_database`, :func:`complete_in_database`) do what the statements
here and ``Queue.claim`` / ``Queue.complete`` do, in one round trip instead of ten. SQLite,
whose writers take turns anyway, runs the statements.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from framefarm.db import database
from framefarm.db import schema as t
from framefarm.queue import states
from framefarm.queue.states import TaskEvent, TaskKind, TaskState
from framefarm.records import Job, Task, load
from framefarm.repos import usage

R = TypeVar("R")
# Runs a candidate query and locks its row for the transaction (Database.lock_candidate).
Lock = Callable[[Connection, sa.Select[Any]], Any]
# What a node that reports no engines runs (nodes from before engines were reported).
DEFAULT_ENGINES = ("framefarm",)


def node_engines(capabilities: Any) -> tuple[str, ...]:
    """The engines a node reported in its capabilities (``engines``: a list of names)."""
    found = capabilities.get("engines") if isinstance(capabilities, dict) else None
    if not isinstance(found, list) or not found:
        return DEFAULT_ENGINES
    return tuple(str(name) for name in found)


@dataclasses.dataclass(frozen=True, slots=True)
class Head:
    """A tenant with claimable work, and what ranks it."""

    tenant_id: str
    priority: int
    running: int
    oldest: dt.datetime


def _claimable(tasks: Any, node_id: str, now: dt.datetime,
               engines: Sequence[str]) -> list[Any]:
    """Queued, due, of an engine the node has, and not in a job that blocked it."""
    blocked = sa.select(t.node_blocks.c.job_id).where(
        t.node_blocks.c.job_id == tasks.c.job_id, t.node_blocks.c.node_id == node_id,
        t.node_blocks.c.blocked.is_(True)).exists()
    return [tasks.c.state == TaskState.QUEUED, tasks.c.not_before <= now,
            tasks.c.engine.in_(list(engines)), ~blocked]


def tenant_heads(conn: Connection, node_id: str, now: dt.datetime,
                 engines: Sequence[str] = DEFAULT_ENGINES) -> list[Head]:
    """The tenants with a task this node may claim, best first."""
    head = t.tasks.alias("head")
    first = (sa.select(head.c.priority, head.c.job_created_at)
             .where(head.c.tenant_id == t.tenants.c.id,
                    *_claimable(head, node_id, now, engines))
             .order_by(head.c.priority.desc(), head.c.job_created_at, head.c.idx)
             .limit(1))
    priority = first.with_only_columns(head.c.priority).scalar_subquery()
    oldest = first.with_only_columns(head.c.job_created_at).scalar_subquery()
    heads = sa.select(t.tenants.c.id, priority.label("priority"),
                      oldest.label("oldest")).subquery("heads")
    running = (sa.select(t.tasks.c.tenant_id, sa.func.count().label("n"))
               .where(t.tasks.c.state == TaskState.RUNNING)
               .group_by(t.tasks.c.tenant_id).subquery("running"))
    n = sa.func.coalesce(running.c.n, 0)
    query = (sa.select(heads.c.id, heads.c.priority, n.label("running"), heads.c.oldest)
             .select_from(heads.outerjoin(running, running.c.tenant_id == heads.c.id))
             .where(heads.c.priority.is_not(None))
             .order_by(heads.c.priority.desc(), n, heads.c.oldest, heads.c.id))
    return [Head(r.id, r.priority, r.running, r.oldest) for r in conn.execute(query)]


def next_task(tenant_id: str, node_id: str, now: dt.datetime, *, failed_here: bool,
              engines: Sequence[str] = DEFAULT_ENGINES) -> sa.Select[Any]:
    """The tenant's next claimable task (all its columns), in index order; the caller
    locks it (PostgreSQL: SKIP LOCKED, so concurrent claimers pass each other). With
    ``failed_here`` False, tasks this node last failed are passed over."""
    conditions = [t.tasks.c.tenant_id == tenant_id,
                  *_claimable(t.tasks, node_id, now, engines)]
    if not failed_here:
        conditions.append(sa.or_(t.tasks.c.last_failed_node.is_(None),
                                 t.tasks.c.last_failed_node != node_id))
    return (sa.select(t.tasks).where(*conditions)
            .order_by(t.tasks.c.priority.desc(), t.tasks.c.job_created_at, t.tasks.c.idx)
            .limit(1))


def job_state(conn: Connection, job_id: str) -> str:
    """The state of a claimed task's job (its first claim moves it on)."""
    return str(conn.execute(sa.select(t.jobs.c.state).where(t.jobs.c.id == job_id))
               .scalar_one())


def kinds_and_states(conn: Connection, job_id: str) -> list[states.TaskView]:
    """The job's tasks as far as its state and step go: each kind and state it has once
    (no frames), instead of every task's row."""
    found = conn.execute(sa.select(t.tasks.c.kind, t.tasks.c.state).distinct()
                         .where(t.tasks.c.job_id == job_id))
    return [states.TaskView(kind, state, 0, 0, 0) for kind, state in found]


def lock_next(conn: Connection, node_id: str, now: dt.datetime, *, lock: Lock,
              engines: Sequence[str] = DEFAULT_ENGINES) -> Task | None:
    """The next task for this node, locked for this transaction; None if there is none."""
    for head in tenant_heads(conn, node_id, now, engines):
        for failed_here in (False, True):
            row = lock(conn, next_task(head.tenant_id, node_id, now, failed_here=failed_here,
                                       engines=engines))
            if row is not None:
                return load(Task, row._mapping)
    return None


# -- PostgreSQL: one round trip each (migration 0009) -----------------------------------------


def in_database(conn: Connection) -> bool:
    """Whether this database claims and completes in one function call (PostgreSQL)."""
    return conn.dialect.name == "postgresql"


@dataclasses.dataclass(frozen=True, slots=True)
class Claimed:
    """A claim: the task as leased, and its job's state before the claim (queued: its
    first task); None when the node held the task already (nothing changed)."""

    task: Task
    job_state: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Completed:
    """A completion up to its job's lock (``job`` None: the caller goes on), or for a render
    or audio chunk to the end: the job as it stands, and the kinds and states of its tasks
    (what its state and step follow from)."""

    task: Task
    job: Job | None = None
    tasks: tuple[states.TaskView, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Stale:
    """No completion: the lease is not the task's any more (``state`` None), or the task is
    in ``state``, which does not complete."""

    state: str | None


_CLAIM = sa.text(
    "SELECT framefarm_claim(:node, :now, :token, :expires, CAST(:engines AS text[]), "
    ":queued, :running, :log)")
_COMPLETE = sa.text(
    "SELECT framefarm_complete(:task, :token, :now, :output, CAST(:cpu AS double precision), "
    ":running, :succeeded, :log, CAST(:cpu_steps AS text[]), CAST(:inputs AS text[]), "
    "CAST(:waiting AS text[]), :ready, :channel)")
# The kinds whose completion the function takes to the end (the assemble task's inputs;
# not a batch's shared part): after any other, Queue.complete goes on from the job's lock.
_INPUTS = [TaskKind.RENDER.value, TaskKind.AUDIO.value]


def claim_in_database(conn: Connection, node_id: str, now: dt.datetime, *, token: str,
                      expires: dt.datetime, log: str) -> Claimed | None:
    """``Queue.claim`` in one statement: the task the node holds, or the next one leased to
    it with ``token`` until ``expires`` and logged (``log``: the line's format, given the
    task's kind, index, first and end frame); None: nothing for it (or it is unknown or
    draining)."""
    found = conn.execute(_CLAIM, {
        "node": node_id, "now": now, "token": token, "expires": expires,
        "engines": list(DEFAULT_ENGINES), "queued": TaskState.QUEUED.value,
        "running": states.task_transition(TaskState.QUEUED, TaskEvent.CLAIM).value,
        "log": log}).scalar()
    if found is None:
        return None
    return Claimed(_record(Task, t.tasks, found["task"]), found.get("job_state"))


def complete_in_database(conn: Connection, task_id: str, token: str, now: dt.datetime, *,
                         output_key: str | None, cpu_seconds: float | None,
                         log: str) -> Completed | Stale:
    """The start of ``Queue.complete`` in one statement, to the job's lock: the task
    succeeded (if ``token`` is its lease), its node counted, the line logged (``log``: its
    format, given the task's kind and index), the CPU-seconds added to the job's usage.
    For a render or audio chunk it goes on to the end but for the job's own row: the
    waiting tasks queued when it was the job's last input, the job's change announced to
    live events."""
    if "\x00" in token:  # no token has one, and PostgreSQL's text cannot hold it
        return Stale(None)
    (running,), succeeded = states.task_sources(TaskEvent.COMPLETE)
    waiting, ready = states.task_sources(TaskEvent.READY)
    found = conn.execute(_COMPLETE, {
        "task": task_id, "token": token, "now": now, "output": output_key,
        "cpu": cpu_seconds or None, "running": running.value, "succeeded": succeeded.value,
        "log": log, "cpu_steps": [str(s) for s in usage.CPU_STEPS], "inputs": _INPUTS,
        "waiting": [s.value for s in waiting], "ready": ready.value,
        "channel": database.JOBS_CHANNEL}).scalar_one()
    if "stale" in found:
        return Stale(found["stale"])
    task = _record(Task, t.tasks, found["task"])
    if "job" not in found:
        return Completed(task)
    views = tuple(states.TaskView(kind, state, 0, 0, 0) for kind, state in found["tasks"])
    return Completed(task, _record(Job, t.jobs, found["job"]), views)


def _record(cls: type[R], table: sa.Table, row: dict[str, Any]) -> R:
    """A record from a row the database wrote as JSON (its times as ISO 8601 text)."""
    for name in _times(table):
        if row[name] is not None:
            row[name] = dt.datetime.fromisoformat(row[name]).astimezone(dt.UTC)
    return load(cls, row)


@functools.cache
def _times(table: sa.Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.c if isinstance(c.type, t.UtcDateTime))

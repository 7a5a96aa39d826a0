"""Jobs, their tasks, their logs and the nodes blocked from them.

State columns are written only by :func:`move_task`, :func:`move_tasks` and
:func:`move_job`, which ask the state machine (:mod:`framefarm.queue.states`) for the new
state and write it guarded by the old one, so a row that changed meanwhile is not
overwritten.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from framefarm.db import direct
from framefarm.db import schema as t
from framefarm.db.database import hash_secret
from framefarm.queue import states
from framefarm.queue.errors import NotFound
from framefarm.queue.states import JobEvent, TaskEvent, TaskState
from framefarm.records import Caller, Export, Job, JobUsage, LogLine, Task, load
from framefarm.repos import rows

_LEVELS = ("debug", "info", "warning", "error")


# -- jobs ---------------------------------------------------------------------------------


# The statements a submit runs, built once with their parameters named: a statement made
# per call (``.values(**row)``, ``.where(col == value)``) spends more Python on coercing
# and cache keys than the database spends on it, and a submit runs them under the tenant's
# lock (SQLite: the one writer), where every millisecond of one is every other's wait.
_INSERT_JOB = t.jobs.insert()
_INSERT_TASKS = t.tasks.insert()
_INSERT_LOG = t.job_logs.insert()
_GET = sa.select(t.jobs).where(t.jobs.c.id == sa.bindparam("job_id"))
_GET_OF = _GET.where(t.jobs.c.tenant_id == sa.bindparam("tenant_id"))
_BY_KEY = sa.select(t.jobs).where(t.jobs.c.tenant_id == sa.bindparam("tenant_id"),
                                  t.jobs.c.idempotency_key == sa.bindparam("key"))


def insert(conn: Connection, job: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]]) -> None:
    conn.execute(_INSERT_JOB, dict(job))
    add_tasks(conn, tasks)


def add_tasks(conn: Connection, tasks: Sequence[Mapping[str, Any]]) -> None:
    conn.execute(_INSERT_TASKS, [dict(task) for task in tasks])


def get(conn: Connection, job_id: str, tenant_id: str | None = None) -> Job:
    """A job; ``tenant_id`` None is for nodes and admins."""
    if tenant_id is None:
        row = conn.execute(_GET, {"job_id": job_id}).mappings().first()
    else:
        row = conn.execute(_GET_OF, {"job_id": job_id, "tenant_id": tenant_id}
                           ).mappings().first()
    if row is None:
        raise NotFound(f"no job {job_id}")
    return load(Job, row)


@dataclasses.dataclass(frozen=True)
class Viewed:
    """A job with what its view needs: its tasks' progress, its export, its credits."""

    job: Job
    tasks: list[states.TaskView]
    export: Export | None
    usage: JobUsage | None


@dataclasses.dataclass(frozen=True)
class KeyedJob:
    """What one statement read for an API key and a job id: who the key is (None: no such
    key, or revoked), and the job when it is that tenant's."""

    caller: Caller | None
    viewed: Viewed | None = None


def _fields(record: type[Any]) -> list[str]:
    return [f.name for f in dataclasses.fields(record)]


_JOB, _EXPORT, _USAGE = _fields(Job), _fields(Export), _fields(JobUsage)
_AT_EXPORT = len(_JOB)
_AT_USAGE = _AT_EXPORT + len(_EXPORT)
# A job with its export and its credits (one row: both are one per job), then its tasks'
# progress in a statement of their own: joined, every task row would carry the job's
# document, options and assets again (a long document on a job of 200 chunks: 200 copies).
_VIEW_COLUMNS = (*(t.jobs.c[n] for n in _JOB), *(t.exports.c[n] for n in _EXPORT),
                 *(t.job_usage.c[n] for n in _USAGE))


def _with_parts(joined: sa.FromClause) -> sa.FromClause:
    return (joined.outerjoin(t.exports, t.exports.c.job_id == t.jobs.c.id)
            .outerjoin(t.job_usage, t.job_usage.c.job_id == t.jobs.c.id))


_VIEW = (sa.select(*_VIEW_COLUMNS).select_from(_with_parts(t.jobs))
         .where(t.jobs.c.id == sa.bindparam("job_id")))
_VIEW_OF = _VIEW.where(t.jobs.c.tenant_id == sa.bindparam("tenant_id"))
_TASK_VIEWS = (sa.select(*(t.tasks.c[n] for n in _fields(states.TaskView)))
               .where(t.tasks.c.job_id == sa.bindparam("job_id")).order_by(t.tasks.c.idx))
# The key, left-joined to its tenant's job (none: another tenant's or no such job) and its
# export and credits: with _TASK_VIEWS, what GET /v1/renders/{id} needs, run from the event
# loop (db/direct.py).
_KEYED_VIEW = (
    sa.select(t.api_keys.c.tenant_id, t.api_keys.c.admin, *_VIEW_COLUMNS)
    .select_from(_with_parts(t.api_keys.outerjoin(t.jobs, sa.and_(
        t.jobs.c.id == sa.bindparam("job_id"), t.jobs.c.tenant_id == t.api_keys.c.tenant_id))))
    .where(t.api_keys.c.key_hash == sa.bindparam("key_hash"),
           t.api_keys.c.revoked_at.is_(None)))


def _viewed(row: Sequence[Any], tasks: Sequence[Sequence[Any]]) -> Viewed:
    job = Job(**dict(zip(_JOB, row[:_AT_EXPORT], strict=True)))
    export = (Export(**dict(zip(_EXPORT, row[_AT_EXPORT:_AT_USAGE], strict=True)))
              if row[_AT_EXPORT] is not None else None)
    usage = (JobUsage(**dict(zip(_USAGE, row[_AT_USAGE:], strict=True)))
             if row[_AT_USAGE] is not None else None)
    return Viewed(job, [states.TaskView(*task) for task in tasks], export, usage)


def viewed(conn: Connection, job_id: str, tenant_id: str | None = None) -> Viewed:
    """A job with its parts, in two statements; ``tenant_id`` None is for nodes and admins."""
    if tenant_id is None:
        row = conn.execute(_VIEW, {"job_id": job_id}).first()
    else:
        row = conn.execute(_VIEW_OF, {"job_id": job_id, "tenant_id": tenant_id}).first()
    if row is None:
        raise NotFound(f"no job {job_id}")
    return _viewed(row, conn.execute(_TASK_VIEWS, {"job_id": job_id}).all())


async def keyed(reader: direct.Reader, key: str, job_id: str) -> KeyedJob:
    """The caller of API key ``key`` and, when it is theirs, job ``job_id`` with its
    parts; two statements on one snapshot, so the job's state (made from its tasks) and its
    export come from the same commits (a revoked key is refused from its revocation's
    commit on)."""
    found, tasks = await reader.together(
        (_KEYED_VIEW, {"key_hash": hash_secret(key), "job_id": job_id}),
        (_TASK_VIEWS, {"job_id": job_id}))
    if not found:
        return KeyedJob(None)
    caller = Caller(found[0][0], bool(found[0][1]))
    if found[0][2] is None:
        return KeyedJob(caller)
    return KeyedJob(caller, _viewed(found[0][2:], tasks))


def by_idempotency_key(conn: Connection, tenant_id: str, key: str) -> Job | None:
    row = conn.execute(_BY_KEY, {"tenant_id": tenant_id, "key": key}).mappings().first()
    return load(Job, row) if row is not None else None


# The unfinished states named (not "not finished"): the index on (tenant_id, state,
# batch_id) is then read at these states only, never through the tenant's finished jobs.
UNFINISHED_JOB = tuple(s for s in states.JobState if s not in states.FINISHED_JOB)


def _count_unfinished() -> sa.Select[Any]:
    unfinished = [t.jobs.c.tenant_id == sa.bindparam("tenant_id"),
                  t.jobs.c.state.in_(UNFINISHED_JOB)]
    single = sa.select(sa.func.count()).select_from(t.jobs).where(
        *unfinished, t.jobs.c.batch_id.is_(None)).scalar_subquery()
    batched = sa.select(sa.func.count(sa.distinct(t.jobs.c.batch_id))).where(
        *unfinished, t.jobs.c.batch_id.is_not(None)).scalar_subquery()
    return sa.select(single + batched)


_COUNT_UNFINISHED = _count_unfinished()


def count_unfinished(conn: Connection, tenant_id: str) -> int:
    """The tenant's queued and running jobs against its concurrent-jobs limit: single
    jobs, and each batch with a row still unfinished once (however many rows it has)."""
    return int(conn.execute(_COUNT_UNFINISHED, {"tenant_id": tenant_id}).scalar_one())


def count_unfinished_of_project(conn: Connection, tenant_id: str, project_id: str) -> int:
    """The project's queued and running jobs (renders and snapshots)."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(t.jobs).where(
        t.jobs.c.tenant_id == tenant_id, t.jobs.c.project_id == project_id,
        t.jobs.c.state.notin_(states.FINISHED_JOB))).scalar_one())


def list_for(conn: Connection, tenant_id: str, *, state: str | None = None, limit: int = 50,
             before: str | None = None, project_id: str | None = None) -> list[Job]:
    """Newest first; ``before`` is the last id of the previous page; only the project's
    jobs with ``project_id``."""
    query = sa.select(t.jobs).where(t.jobs.c.tenant_id == tenant_id)
    if state:
        query = query.where(t.jobs.c.state == state)
    if project_id is not None:
        query = query.where(t.jobs.c.project_id == project_id)
    if before:
        anchor = get(conn, before, tenant_id)
        query = query.where(sa.or_(
            t.jobs.c.created_at < anchor.created_at,
            sa.and_(t.jobs.c.created_at == anchor.created_at, t.jobs.c.id < before)))
    return rows.every(conn, query.order_by(t.jobs.c.created_at.desc(), t.jobs.c.id.desc())
                      .limit(limit), Job)


def update(conn: Connection, job_id: str, **values: Any) -> None:
    """Write columns other than ``state`` (use :func:`move_job` for that)."""
    assert "state" not in values, "job states change through move_job"
    conn.execute(t.jobs.update().where(t.jobs.c.id == job_id).values(**values))


def move_job(conn: Connection, job: Job, event: JobEvent, **values: Any) -> states.JobState:
    """Apply ``event`` to the job (as read in this transaction); returns its new state."""
    new = states.job_transition(job.state, event)
    conn.execute(t.jobs.update().where(t.jobs.c.id == job.id, t.jobs.c.state == job.state)
                 .values(state=new, **values))
    return new


# -- tasks --------------------------------------------------------------------------------


def tasks(conn: Connection, job_id: str) -> list[Task]:
    return rows.every(conn, sa.select(t.tasks).where(t.tasks.c.job_id == job_id)
                      .order_by(t.tasks.c.idx), Task)


def tasks_of(conn: Connection, job_ids: Sequence[str]) -> dict[str, list[Task]]:
    """The tasks of many jobs in one query (lists of jobs run a fixed number of queries)."""
    found: dict[str, list[Task]] = {job_id: [] for job_id in job_ids}
    if job_ids:
        for task in rows.every(conn, sa.select(t.tasks).where(t.tasks.c.job_id.in_(
                list(job_ids))).order_by(t.tasks.c.job_id, t.tasks.c.idx), Task):
            found[task.job_id].append(task)
    return found


def get_task(conn: Connection, task_id: str) -> Task | None:
    return rows.first(conn, sa.select(t.tasks).where(t.tasks.c.id == task_id), Task)


def job_of_task(conn: Connection, task_id: str) -> str | None:
    return conn.execute(sa.select(t.tasks.c.job_id).where(t.tasks.c.id == task_id)).scalar()


def outputs(conn: Connection, job_id: str) -> list[Task]:
    """The job's succeeded tasks, in order: what an assemble task joins."""
    return rows.every(conn, sa.select(t.tasks).where(
        t.tasks.c.job_id == job_id, t.tasks.c.state == TaskState.SUCCEEDED)
        .order_by(t.tasks.c.idx), Task)


def count_pending_inputs(conn: Connection, job_id: str) -> int:
    """Render and audio tasks of the job that have not succeeded yet."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(t.tasks).where(
        t.tasks.c.job_id == job_id, t.tasks.c.kind.in_([states.TaskKind.RENDER,
                                                        states.TaskKind.AUDIO]),
        t.tasks.c.state != TaskState.SUCCEEDED)).scalar_one())


def expired(conn: Connection, now: dt.datetime) -> list[Task]:
    return rows.every(conn, sa.select(t.tasks).where(
        t.tasks.c.state == TaskState.RUNNING, t.tasks.c.lease_expires_at < now), Task)


def running_on(conn: Connection, node_id: str) -> list[Task]:
    return rows.every(conn, sa.select(t.tasks).where(
        t.tasks.c.node_id == node_id, t.tasks.c.state == TaskState.RUNNING), Task)


def state_counts(conn: Connection) -> dict[str, int]:
    counted = conn.execute(sa.select(t.tasks.c.state, sa.func.count())
                           .group_by(t.tasks.c.state)).all()
    return {row[0]: int(row[1]) for row in counted}


def update_task(conn: Connection, task_id: str, **values: Any) -> None:
    """Write columns other than ``state`` (use :func:`move_task` for that)."""
    assert "state" not in values, "task states change through move_task"
    conn.execute(t.tasks.update().where(t.tasks.c.id == task_id).values(**values))


def move_task(conn: Connection, task: Task, event: TaskEvent, *,
              expired_before: dt.datetime | None = None, on_node: str | None = None,
              leased_by: str | None = None, **values: Any) -> bool:
    """Apply ``event`` to the task (as read in this transaction), if it is still in that
    state (and its lease expired before ``expired_before``, on node ``on_node``, or is
    still the lease ``leased_by``); False if it changed meanwhile."""
    new = states.task_transition(task.state, event)
    query = t.tasks.update().where(t.tasks.c.id == task.id, t.tasks.c.state == task.state)
    if leased_by is not None:
        query = query.where(t.tasks.c.lease_token == leased_by)
    if expired_before is not None:
        query = query.where(t.tasks.c.lease_expires_at < expired_before)
    if on_node is not None:
        query = query.where(t.tasks.c.node_id == on_node)
    return bool(conn.execute(query.values(state=new, **values)).rowcount)


def requeue(conn: Connection, task: Task, event: TaskEvent, *, now: dt.datetime,
            expired_before: dt.datetime | None = None, on_node: str | None = None) -> bool:
    """Queue a running task again (expired or released), away from its node, without
    spending a retry; False if it changed since it was read."""
    return move_task(conn, task, event, expired_before=expired_before, on_node=on_node,
                     node_id=None, last_failed_node=task.node_id, lease_token=None,
                     lease_expires_at=None, frames_done=0, requeues=t.tasks.c.requeues + 1,
                     not_before=now)


def move_tasks(conn: Connection, job_id: str, event: TaskEvent, **values: Any) -> int:
    """Apply ``event`` to every task of the job in a state that allows it."""
    sources, target = states.task_sources(event)
    return int(conn.execute(t.tasks.update().where(
        t.tasks.c.job_id == job_id, t.tasks.c.state.in_(sources),
    ).values(state=target, **values)).rowcount)


def forget_quiet_leases(conn: Connection, now: dt.datetime) -> None:
    """Cancelled tasks whose node went quiet need no more answers: drop their leases."""
    conn.execute(t.tasks.update().where(
        t.tasks.c.state == TaskState.CANCELLED, t.tasks.c.lease_expires_at < now,
    ).values(lease_token=None, lease_expires_at=None))


# -- nodes blocked from a job ---------------------------------------------------------------


def count_node_failure(conn: Connection, job_id: str, node_id: str) -> int:
    """One more failure of this node on this job; returns how many it has made."""
    row = conn.execute(sa.select(t.node_blocks.c.failures).where(
        t.node_blocks.c.job_id == job_id, t.node_blocks.c.node_id == node_id)).first()
    failures = (row.failures if row else 0) + 1
    if row:
        conn.execute(t.node_blocks.update().where(
            t.node_blocks.c.job_id == job_id, t.node_blocks.c.node_id == node_id,
        ).values(failures=failures))
    else:
        conn.execute(t.node_blocks.insert().values(job_id=job_id, node_id=node_id,
                                                   failures=failures, blocked=False))
    return failures


def blocked_nodes(conn: Connection, job_id: str) -> dict[str, int]:
    """The nodes blocked from the job, with how many failures blocked each."""
    return {row.node_id: int(row.failures) for row in conn.execute(
        sa.select(t.node_blocks.c.node_id, t.node_blocks.c.failures).where(
            t.node_blocks.c.job_id == job_id, t.node_blocks.c.blocked.is_(True))
        .order_by(t.node_blocks.c.node_id))}


def stranded(conn: Connection, node_ids: Sequence[str], *, quiet_since: dt.datetime,
             job_id: str | None = None) -> list[str]:
    """Unfinished jobs with a queued task that none of ``node_ids`` may claim, because
    every one of them is blocked from the job, and unchanged since ``quiet_since``."""
    if not node_ids:
        return []
    # Start from the few jobs that block nodes, not from every unfinished job: the upkeep
    # loop asks this every round.
    blocked_all = (sa.select(t.node_blocks.c.job_id).where(
        t.node_blocks.c.blocked.is_(True), t.node_blocks.c.node_id.in_(list(node_ids)))
        .group_by(t.node_blocks.c.job_id)
        .having(sa.func.count() >= len(set(node_ids))))
    queued = sa.select(t.tasks.c.id).where(
        t.tasks.c.job_id == t.jobs.c.id, t.tasks.c.state == TaskState.QUEUED).exists()
    query = sa.select(t.jobs.c.id).where(
        t.jobs.c.id.in_(blocked_all), t.jobs.c.state.notin_(states.FINISHED_JOB),
        t.jobs.c.updated_at <= quiet_since, queued)
    if job_id is not None:
        query = query.where(t.jobs.c.id == job_id)
    return [row.id for row in conn.execute(query.order_by(t.jobs.c.created_at))]


def first_queued(conn: Connection, job_id: str) -> Task | None:
    """The job's first queued task (the one a stranded job reports)."""
    return rows.first(conn, sa.select(t.tasks).where(
        t.tasks.c.job_id == job_id, t.tasks.c.state == TaskState.QUEUED)
        .order_by(t.tasks.c.idx).limit(1), Task)


def block_node(conn: Connection, job_id: str, node_id: str) -> None:
    conn.execute(t.node_blocks.update().where(
        t.node_blocks.c.job_id == job_id, t.node_blocks.c.node_id == node_id,
    ).values(blocked=True))


# -- logs ---------------------------------------------------------------------------------


def log(conn: Connection, job_id: str, level: str, message: str, *, now: dt.datetime,
        task_id: str | None = None, node_id: str | None = None) -> None:
    conn.execute(_INSERT_LOG, {"job_id": job_id, "at": now, "level": level,
                               "message": message[:8000], "task_id": task_id,
                               "node_id": node_id})


def logs(conn: Connection, job_id: str, level: str | None = None) -> list[LogLine]:
    query = sa.select(t.job_logs).where(t.job_logs.c.job_id == job_id)
    if level in _LEVELS:
        query = query.where(t.job_logs.c.level.in_(_LEVELS[_LEVELS.index(level):]))
    return rows.every(conn, query.order_by(t.job_logs.c.id), LogLine)


# -- parts shared by a batch's rows ---------------------------------------------------------


def waiting_for(conn: Connection, tenant_id: str, key: str) -> list[str]:
    """The jobs with a task waiting for the shared part ``key``, sorted (the order their
    locks are taken in)."""
    return sorted(set(conn.execute(sa.select(t.tasks.c.job_id).where(
        t.tasks.c.tenant_id == tenant_id, t.tasks.c.shared_key == key,
        t.tasks.c.state == TaskState.WAITING)).scalars()))


def share(conn: Connection, tenant_id: str, key: str, *, output_key: str,
          now: dt.datetime) -> int:
    """Every task waiting for the shared part ``key`` succeeds with it as its output."""
    sources, target = states.task_sources(TaskEvent.SHARE)
    return int(conn.execute(t.tasks.update().where(
        t.tasks.c.tenant_id == tenant_id, t.tasks.c.shared_key == key,
        t.tasks.c.state.in_(sources),
    ).values(state=target, output_key=output_key, finished_at=now,
             frames_done=t.tasks.c.frame_end - t.tasks.c.frame_start)).rowcount)


def unmade_parts(conn: Connection, job_id: str) -> list[str]:
    """The shared parts this job was to make but did not (its task failed or was
    cancelled): another row's must make them now."""
    return list(conn.execute(sa.select(t.tasks.c.shared_key).where(
        t.tasks.c.job_id == job_id, t.tasks.c.shared_key.is_not(None),
        t.tasks.c.state.in_([TaskState.FAILED, TaskState.CANCELLED]))).scalars())


def first_waiting(conn: Connection, tenant_id: str, key: str) -> Task | None:
    """The task (of the earliest job) that waits for the shared part ``key``."""
    return rows.first(conn, sa.select(t.tasks).where(
        t.tasks.c.tenant_id == tenant_id, t.tasks.c.shared_key == key,
        t.tasks.c.state == TaskState.WAITING).order_by(t.tasks.c.job_id).limit(1), Task)


def part_in_hand(conn: Connection, tenant_id: str, key: str) -> bool:
    """A task is queued or running to make the shared part ``key``."""
    return conn.execute(sa.select(t.tasks.c.id).where(
        t.tasks.c.tenant_id == tenant_id, t.tasks.c.shared_key == key,
        t.tasks.c.state.in_([TaskState.QUEUED, TaskState.RUNNING])).limit(1)).first() \
        is not None

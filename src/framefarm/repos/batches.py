"""Batches: one template rendered for many rows of data, a job per good row. The jobs
carry ``batch_id`` and ``batch_row``; a batch's counts and state are read from them.

A row retried gets a new job (``attempt`` + 1) with the same row number; a row's
*current* job is its newest attempt, and every count here is of current jobs only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from framefarm.db import schema as t
from framefarm.queue import states
from framefarm.records import Batch, Job
from framefarm.repos import rows


def insert(conn: Connection, batch: Mapping[str, Any]) -> None:
    conn.execute(t.batches.insert().values(**batch))


def get(conn: Connection, batch_id: str, tenant_id: str | None = None) -> Batch:
    """A batch; ``tenant_id`` None is for admins."""
    query = sa.select(t.batches).where(t.batches.c.id == batch_id)
    if tenant_id is not None:
        query = query.where(t.batches.c.tenant_id == tenant_id)
    return rows.one(conn, query, Batch, f"no batch {batch_id}")


def by_idempotency_key(conn: Connection, tenant_id: str, key: str) -> Batch | None:
    return rows.first(conn, sa.select(t.batches).where(
        t.batches.c.tenant_id == tenant_id, t.batches.c.idempotency_key == key), Batch)


def list_for(conn: Connection, tenant_id: str, *, limit: int,
             before: str | None = None) -> list[Batch]:
    """Newest first; ``before`` is the last id of the previous page."""
    query = sa.select(t.batches).where(t.batches.c.tenant_id == tenant_id)
    if before:
        anchor = get(conn, before, tenant_id)
        query = query.where(sa.or_(
            t.batches.c.created_at < anchor.created_at,
            sa.and_(t.batches.c.created_at == anchor.created_at, t.batches.c.id < before)))
    return rows.every(conn, query.order_by(t.batches.c.created_at.desc(),
                                           t.batches.c.id.desc()).limit(limit), Batch)


def set_cancelled(conn: Connection, batch_id: str, now: dt.datetime) -> None:
    conn.execute(t.batches.update().where(t.batches.c.id == batch_id)
                 .values(cancelled_at=now))


def clear_cancelled(conn: Connection, batch_id: str) -> None:
    """A retried batch runs again: it is no longer cancelled."""
    conn.execute(t.batches.update().where(t.batches.c.id == batch_id)
                 .values(cancelled_at=None, finished_at=None))


# -- the row jobs -----------------------------------------------------------------------------


def _current(jobs: sa.TableClause | sa.Table = t.jobs) -> sa.ColumnElement[bool]:
    """The job is its row's newest attempt (found by the batch's index)."""
    newer = t.jobs.alias("newer")
    return ~sa.exists().where(
        newer.c.batch_id == jobs.c.batch_id, newer.c.batch_row == jobs.c.batch_row,
        sa.or_(newer.c.attempt > jobs.c.attempt,
               sa.and_(newer.c.attempt == jobs.c.attempt, newer.c.id > jobs.c.id)))


@dataclasses.dataclass(frozen=True)
class Counts:
    """A batch's current row jobs: how many in each state, their frames (all, and done)
    and when the last one finished."""

    states: dict[str, int]
    frames_total: int
    frames_done: int
    last_finished: dt.datetime | None


def counts(conn: Connection, batch_ids: Sequence[str]) -> dict[str, Counts]:
    """The counts of many batches in two queries, whatever their number of rows."""
    if not batch_ids:
        return {}
    ids = list(batch_ids)
    by_batch: dict[str, dict[str, Any]] = {
        b: {"states": {}, "total": 0, "done": 0, "finished": None} for b in ids}
    grouped = conn.execute(
        sa.select(t.jobs.c.batch_id, t.jobs.c.state, sa.func.count(),
                  sa.func.sum(t.jobs.c.frames_total), sa.func.max(t.jobs.c.finished_at))
        .where(t.jobs.c.batch_id.in_(ids), _current())
        .group_by(t.jobs.c.batch_id, t.jobs.c.state))
    for batch_id, state, count, frames, finished in grouped:
        found = by_batch[batch_id]
        found["states"][state] = int(count)
        found["total"] += int(frames or 0)
        if state == states.JobState.SUCCEEDED:
            found["done"] += int(frames or 0)
        if finished is not None and (found["finished"] is None or finished > found["finished"]):
            found["finished"] = finished
    # Frames of rows under way: their tasks' progress (rows not started have none).
    length = t.tasks.c.frame_end - t.tasks.c.frame_start
    done = sa.case((t.tasks.c.state == states.TaskState.SUCCEEDED, length),
                   else_=t.tasks.c.frames_done)
    moving = conn.execute(
        sa.select(t.jobs.c.batch_id, sa.func.sum(done))
        .select_from(t.tasks.join(t.jobs, t.tasks.c.job_id == t.jobs.c.id))
        .where(t.jobs.c.batch_id.in_(ids), _current(),
               t.jobs.c.state.in_([states.JobState.QUEUED, states.JobState.RUNNING]),
               t.jobs.c.started_at.is_not(None),
               t.tasks.c.kind.in_([states.TaskKind.RENDER, states.TaskKind.SNAPSHOT]))
        .group_by(t.jobs.c.batch_id))
    for batch_id, frames in moving:
        by_batch[batch_id]["done"] += int(frames or 0)
    return {b: Counts(v["states"], v["total"], v["done"], v["finished"])
            for b, v in by_batch.items()}


def row_jobs(conn: Connection, batch_id: str, *, after_row: int = 0,
             limit: int | None = None) -> list[Job]:
    """The current job of each row after ``after_row``, by row number."""
    query = (sa.select(t.jobs).where(t.jobs.c.batch_id == batch_id,
                                     t.jobs.c.batch_row > after_row, _current())
             .order_by(t.jobs.c.batch_row))
    if limit is not None:
        query = query.limit(limit)
    return rows.every(conn, query, Job)


def job_ids(conn: Connection, batch_id: str) -> list[str]:
    """Every job of the batch, each attempt of each row (what its live stream wakes on)."""
    return list(conn.execute(sa.select(t.jobs.c.id).where(t.jobs.c.batch_id == batch_id))
                .scalars())


def unfinished_job_ids(conn: Connection, batch_id: str, *, limit: int) -> list[str]:
    """Up to ``limit`` of the batch's queued and running jobs."""
    return list(conn.execute(sa.select(t.jobs.c.id).where(
        t.jobs.c.batch_id == batch_id, t.jobs.c.state.notin_(states.FINISHED_JOB))
        .order_by(t.jobs.c.batch_row).limit(limit)).scalars())


def retryable_job_ids(conn: Connection, batch_id: str) -> list[str]:
    """The current jobs of rows that failed or were cancelled."""
    return list(conn.execute(sa.select(t.jobs.c.id).where(
        t.jobs.c.batch_id == batch_id, _current(),
        t.jobs.c.state.in_([states.JobState.FAILED, states.JobState.CANCELLED]))
        .order_by(t.jobs.c.batch_row)).scalars())


@dataclasses.dataclass(frozen=True)
class ManifestRow:
    """One row job as a manifest shows it, with its export when it has one."""

    row: int
    job_id: str
    state: str
    error: str | None
    export_id: str | None
    storage_key: str | None
    export_format: str | None
    export_created: dt.datetime | None


def manifest(conn: Connection, batch_id: str) -> list[ManifestRow]:
    """The current job of every row with its export, by row number, in one query (the
    documents, which the jobs also hold, are not read)."""
    e = t.exports
    query = (sa.select(t.jobs.c.batch_row, t.jobs.c.id, t.jobs.c.state, t.jobs.c.error,
                       e.c.id, e.c.storage_key, e.c.format, e.c.created_at)
             .select_from(t.jobs.outerjoin(e, e.c.job_id == t.jobs.c.id))
             .where(t.jobs.c.batch_id == batch_id, _current())
             .order_by(t.jobs.c.batch_row))
    return [ManifestRow(*row) for row in conn.execute(query)]

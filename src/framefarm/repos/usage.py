"""Per-job usage rows and what is read from them: a tenant's output this month, its
storage, and the usage of every (tenant, day).

Daily usage is a query, not a second table: ``job_usage`` has one row per job and an
index on (tenant_id, day), so a month of a tenant is one index range grouped by day, and
there is no running total to keep in step (nor a hot per-day row that every finishing job
of a tenant would queue for)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from framefarm.db import schema as t
from framefarm.queue.states import TaskKind, TaskState
from framefarm.records import JobUsage, UsageDay
from framefarm.repos import rows

CPU_STEPS = (TaskKind.RENDER, TaskKind.AUDIO, TaskKind.ASSEMBLE, TaskKind.SNAPSHOT)
_u = t.job_usage


def insert(conn: Connection, row: Mapping[str, Any]) -> None:
    values: dict[str, Any] = {f"cpu_{step}": 0.0 for step in CPU_STEPS}
    values.update(frames=0, output_seconds=0.0, bytes_stored=0, credits_charged=0,
                  credits_refunded=0, settled_at=None)
    conn.execute(_u.insert().values(**{**values, **row}))


def get(conn: Connection, job_id: str) -> JobUsage | None:
    return rows.first(conn, sa.select(_u).where(_u.c.job_id == job_id), JobUsage)


def for_jobs(conn: Connection, job_ids: list[str]) -> dict[str, JobUsage]:
    if not job_ids:
        return {}
    return {u.job_id: u for u in rows.every(conn, sa.select(_u).where(
        _u.c.job_id.in_(job_ids)), JobUsage)}


def add_cpu(conn: Connection, job_id: str, step: str, seconds: float) -> None:
    """Add a node's CPU-seconds for one task of the job, under the task's step."""
    if step not in CPU_STEPS:
        return
    column = _u.c[f"cpu_{step}"]
    conn.execute(_u.update().where(_u.c.job_id == job_id).values({column: column + seconds}))


def prepared(conn: Connection, job_id: str, *, width: int, height: int, fps: int,
             frames: int, credits_per_second: float, credits_reserved: int) -> None:
    """A code template's estimate, known once it was prepared."""
    conn.execute(_u.update().where(_u.c.job_id == job_id).values(
        width=width, height=height, fps=fps, frames_estimated=frames,
        credits_per_second=credits_per_second, credits_reserved=credits_reserved))


def settle(conn: Connection, job_id: str, *, frames: int, output_seconds: float,
           bytes_stored: int, charged: int, refunded: int, now: dt.datetime) -> bool:
    """Write the job's final figures once: False if it was settled already."""
    return bool(conn.execute(_u.update().where(_u.c.job_id == job_id,
                                               _u.c.settled_at.is_(None)).values(
        frames=frames, output_seconds=output_seconds, bytes_stored=bytes_stored,
        credits_charged=charged, credits_refunded=refunded, settled_at=now)).rowcount)


def rendered_frames(conn: Connection, job_id: str) -> int:
    """The frames of the job's succeeded render chunks and snapshots: what it made."""
    span = t.tasks.c.frame_end - t.tasks.c.frame_start
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(span), 0)).where(
        t.tasks.c.job_id == job_id, t.tasks.c.state == TaskState.SUCCEEDED,
        t.tasks.c.kind.in_([TaskKind.RENDER, TaskKind.SNAPSHOT]))).scalar_one())


def output_seconds_between(conn: Connection, tenant_id: str, first: dt.date,
                           last: dt.date) -> float:
    """The tenant's output seconds of the jobs submitted on days [first, last]: what a
    finished job rendered, and what an unfinished one is estimated at."""
    estimated = sa.case((_u.c.fps > 0, _u.c.frames_estimated * 1.0 / _u.c.fps), else_=0.0)
    seconds = sa.case((_u.c.settled_at.is_(None), estimated), else_=_u.c.output_seconds)
    return float(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(seconds), 0.0)).where(
        _u.c.tenant_id == tenant_id, _u.c.day >= first, _u.c.day <= last)).scalar_one())


def days(conn: Connection, first: dt.date, last: dt.date,
         tenant_id: str | None = None) -> list[UsageDay]:
    """Usage per (tenant, day) of the jobs submitted on days [first, last], in order."""
    sums = [sa.func.coalesce(sa.func.sum(c), 0).label(c.name) for c in (
        _u.c.frames, _u.c.output_seconds, _u.c.cpu_render, _u.c.cpu_audio,
        _u.c.cpu_assemble, _u.c.cpu_snapshot, _u.c.bytes_stored, _u.c.credits_charged,
        _u.c.credits_refunded)]
    query = (sa.select(_u.c.tenant_id, _u.c.day, sa.func.count().label("jobs"), *sums)
             .where(_u.c.day >= first, _u.c.day <= last)
             .group_by(_u.c.tenant_id, _u.c.day).order_by(_u.c.tenant_id, _u.c.day))
    if tenant_id is not None:
        query = query.where(_u.c.tenant_id == tenant_id)
    return [UsageDay(tenant_id=r.tenant_id, day=r.day, jobs=int(r.jobs), frames=int(r.frames),
                     output_seconds=float(r.output_seconds), cpu_render=float(r.cpu_render),
                     cpu_audio=float(r.cpu_audio), cpu_assemble=float(r.cpu_assemble),
                     cpu_snapshot=float(r.cpu_snapshot), bytes_stored=int(r.bytes_stored),
                     credits_charged=int(r.credits_charged),
                     credits_refunded=int(r.credits_refunded))
            for r in conn.execute(query)]


def storage_used(conn: Connection, tenant_id: str, *, now: dt.datetime,
                 besides: tuple[str, str] | None = None) -> int:
    """The bytes the tenant keeps: its projects' assets and its unexpired exports.
    ``besides``: (project id, asset name) of an asset about to be replaced, not counted."""
    assets = (sa.select(sa.func.coalesce(sa.func.sum(t.assets.c.size), 0))
              .select_from(t.assets.join(t.projects, t.assets.c.project_id == t.projects.c.id))
              .where(t.projects.c.tenant_id == tenant_id))
    if besides is not None:
        assets = assets.where(sa.not_(sa.and_(t.assets.c.project_id == besides[0],
                                              t.assets.c.name == besides[1])))
    exports = sa.select(sa.func.coalesce(sa.func.sum(t.exports.c.size), 0)).where(
        t.exports.c.tenant_id == tenant_id, t.exports.c.expires_at > now)
    return int(conn.execute(sa.select(assets.scalar_subquery() + exports.scalar_subquery()))
               .scalar_one())

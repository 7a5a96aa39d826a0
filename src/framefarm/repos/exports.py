"""Exports: the finished videos, with their metadata and auto-delete date."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from framefarm.db import schema as t
from framefarm.db.database import new_id
from framefarm.protocol import MediaInfo
from framefarm.records import Export
from framefarm.repos import rows


@dataclasses.dataclass(frozen=True)
class ExportMeta:
    """What an export records about its file: where it is, what the assembling node's
    probe found, and how long to keep it."""

    storage_key: str
    media: MediaInfo
    keep_days: float


def insert(conn: Connection, tenant_id: str, job_id: str, meta: ExportMeta, *,
           now: dt.datetime) -> str:
    export_id = new_id("exp")
    media = meta.media
    conn.execute(t.exports.insert().values(
        id=export_id, tenant_id=tenant_id, job_id=job_id, storage_key=meta.storage_key,
        size=media.size, duration=media.duration, width=media.width, height=media.height,
        codec=media.codec, format=media.format, created_at=now,
        expires_at=now + dt.timedelta(days=meta.keep_days)))
    return export_id


def get(conn: Connection, export_id: str, tenant_id: str | None = None) -> Export:
    query = sa.select(t.exports).where(t.exports.c.id == export_id)
    if tenant_id is not None:
        query = query.where(t.exports.c.tenant_id == tenant_id)
    return rows.one(conn, query, Export, f"no export {export_id}")


def for_jobs(conn: Connection, job_ids: Sequence[str]) -> dict[str, Export]:
    """The exports of these jobs, by job id (one query for a whole list)."""
    if not job_ids:
        return {}
    found = rows.every(conn, sa.select(t.exports).where(t.exports.c.job_id.in_(list(job_ids))),
                       Export)
    return {export.job_id: export for export in found}


def list_for(conn: Connection, tenant_id: str) -> list[Export]:
    return rows.every(conn, sa.select(t.exports).where(t.exports.c.tenant_id == tenant_id)
                      .order_by(t.exports.c.created_at.desc()), Export)


def delete(conn: Connection, export_id: str) -> None:
    conn.execute(t.exports.delete().where(t.exports.c.id == export_id))


def set_expiry(conn: Connection, export_id: str, expires_at: dt.datetime) -> None:
    conn.execute(t.exports.update().where(t.exports.c.id == export_id).values(
        expires_at=expires_at))


def expired(conn: Connection, now: dt.datetime) -> list[Export]:
    return rows.every(conn, sa.select(t.exports).where(t.exports.c.expires_at < now), Export)

"""Batches: one template rendered for many rows of data, a job per good row. The jobs
carry ``batch_id`` and ``batch_row``; a batch's counts and state are read from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from framefarm.db import schema as t
from framefarm.records import Batch
from framefarm.repos import rows


def insert(conn: Connection, batch: Mapping[str, Any]) -> None:
    conn.execute(t.batches.insert().values(**batch))


def get(conn: Connection, batch_id: str, tenant_id: str | None = None) -> Batch:
    """A batch; ``tenant_id`` None is for admins."""
    query = sa.select(t.batches).where(t.batches.c.id == batch_id)
    if tenant_id is not None:
        query = query.where(t.batches.c.tenant_id == tenant_id)
    return rows.one(conn, query, Batch, f"no batch {batch_id}")

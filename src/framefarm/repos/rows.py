"""Reading rows as records: the three shapes every repository query takes."""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from framefarm.queue.errors import NotFound
from framefarm.records import load

R = TypeVar("R")


def first(conn: Connection, query: sa.Select[Any], cls: type[R]) -> R | None:
    row = conn.execute(query).mappings().first()
    return load(cls, row) if row is not None else None


def one(conn: Connection, query: sa.Select[Any], cls: type[R], missing: str) -> R:
    """The row, or NotFound(``missing``) (for another tenant's rows too)."""
    found = first(conn, query, cls)
    if found is None:
        raise NotFound(missing)
    return found


def every(conn: Connection, query: sa.Select[Any], cls: type[R]) -> list[R]:
    return [load(cls, row) for row in conn.execute(query).mappings()]

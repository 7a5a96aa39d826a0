"""PostgreSQL test databases, on the server named by ``FRAMEFARM_TEST_POSTGRES_URL`` (an
admin URL; default ``postgres@127.0.0.1:5432/postgres``): an autocommit psycopg connection
to its admin database, databases created and dropped by name (always ``ff_test_...``), and
emptied between tests."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import sqlalchemy as sa

from framefarm.db import schema
from support.ci import skip_or_fail

ADMIN_URL = os.environ.get(
    "FRAMEFARM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def connect_admin(url: str = ADMIN_URL) -> psycopg.Connection[Any]:
    """A psycopg connection (autocommit) to the admin database of a SQLAlchemy URL."""
    u = sa.make_url(url)
    kwargs: dict[str, Any] = u.translate_connect_args(username="user", database="dbname")
    kwargs.update({k: v for k, v in u.query.items() if isinstance(v, str)})
    return psycopg.connect(autocommit=True, connect_timeout=5, **kwargs)


def safe_url(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def require_postgres(url: str = ADMIN_URL) -> str:
    """``url``, checked to be reachable; otherwise the test skips (fails under CI=true)."""
    try:
        with connect_admin(url) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        skip_or_fail(f"PostgreSQL at {safe_url(url)} is not reachable ({exc}); set "
                     "FRAMEFARM_TEST_POSTGRES_URL to an admin URL")
    return url


def database_url(admin_url: str, name: str) -> str:
    return sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def new_database_name(purpose: str) -> str:
    return f"ff_test_{purpose}_{os.getpid()}_{secrets.token_hex(3)}"


def create_database(admin_url: str, name: str) -> str:
    assert name.startswith("ff_test_")
    with connect_admin(admin_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    assert name.startswith("ff_test_")
    with connect_admin(admin_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_database(purpose: str, admin_url: str = ADMIN_URL) -> Iterator[str]:
    """A new, empty database (its URL) for as long as the ``with`` lasts, then dropped."""
    name = new_database_name(purpose)
    url = create_database(admin_url, name)
    try:
        yield url
    finally:
        drop_database(admin_url, name)


def empty_all_tables(url: str) -> None:
    """Delete every row (cheaper than TRUNCATE for the few rows a test leaves); a database
    that was never migrated has no tables yet."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            if not sa.inspect(conn).has_table("jobs"):
                return
            for table in reversed(schema.metadata.sorted_tables):
                conn.execute(table.delete())
    finally:
        engine.dispose()

"""The one seam between SQLite and PostgreSQL: connections, transactions and the two
places where the databases differ.

- :class:`SqliteDatabase` — every write transaction starts with ``BEGIN IMMEDIATE`` (one
  writer at a time, WAL so readers are not blocked).
- :class:`PostgresDatabase` — a claim locks one candidate row with ``FOR UPDATE SKIP
  LOCKED``, so concurrent claimers never wait for each other nor get the same task.

Repositories (``framefarm.repos``) run their statements on the connections this hands out;
the time always comes from the injected clock.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from framefarm.clock import Clock, SystemClock
from framefarm.db import schema as t

_T = TypeVar("_T")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def retry_deadlocks(method: Callable[..., _T]) -> Callable[..., _T]:
    """Run a transaction again when PostgreSQL aborted it as a deadlock or serialisation
    victim: a claim locks a task then its job, a cancel the job then its tasks; rarely,
    the two meet. The retry sees the other's committed result."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> _T:
        for attempt in range(5):
            try:
                return method(*args, **kwargs)
            except sa.exc.DBAPIError as exc:
                code = getattr(exc.orig, "sqlstate", None)
                if code not in ("40P01", "40001") or attempt == 4:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    return wrapper


class Database:
    """Connections on one engine; subclasses set up the engine and the claim lock."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()

    def now(self) -> dt.datetime:
        return self.clock.now()

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        """A write transaction, committed when the block ends without an exception."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection (a deferred transaction: never waits for writers)."""
        with self.engine.connect() as conn:
            yield conn

    def lock_job(self, conn: Connection, job_id: str) -> None:
        """Serialise changes to one job's tasks. Without it, on PostgreSQL two nodes
        completing the last two chunks at once each see the other's chunk unfinished and
        neither releases the assemble task. (SQLite's BEGIN IMMEDIATE already serialises.)"""
        conn.execute(sa.select(t.jobs.c.id).where(t.jobs.c.id == job_id).with_for_update())

    def lock_candidate(self, conn: Connection, query: sa.Select[Any]) -> Any | None:
        """The first row of a claim's candidate query, held for this transaction."""
        return conn.execute(query).first()

    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_engine(url: str) -> Engine:
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Writers take the write lock up front, so two claimers can never read the same
        # queued task; readers begin deferred and, in WAL mode, never wait for a writer.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")

    return engine


class SqliteDatabase(Database):
    """SQLite (WAL): ``serve`` with nothing configured."""

    def __init__(self, url: str, clock: Clock | None = None) -> None:
        super().__init__(_sqlite_engine(url), clock)

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.info["write"] = True  # BEGIN IMMEDIATE (see _sqlite_engine)
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info.pop("write", None)


class PostgresDatabase(Database):
    """PostgreSQL: many API processes and nodes at once."""

    def __init__(self, url: str, clock: Clock | None = None) -> None:
        super().__init__(sa.create_engine(url, pool_size=10, max_overflow=20,
                                          pool_pre_ping=True), clock)

    def lock_candidate(self, conn: Connection, query: sa.Select[Any]) -> Any | None:
        # SKIP LOCKED: a row another claimer holds is passed over, not waited for.
        return conn.execute(query.with_for_update(skip_locked=True, of=t.tasks)).first()


def open_database(url: str, clock: Clock | None = None) -> Database:
    if url.startswith("sqlite"):
        return SqliteDatabase(url, clock)
    if url.startswith("postgresql"):
        return PostgresDatabase(url, clock)
    raise ValueError(f"unsupported database URL {url.split(':', 1)[0]!r}: use sqlite:/// or "
                     "postgresql+psycopg://")

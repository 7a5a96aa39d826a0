"""The one seam between SQLite and PostgreSQL: connections, transactions and the two
places where the databases differ.

- :class:`SqliteDatabase` — every write transaction starts with ``BEGIN IMMEDIATE`` (one
  writer at a time, WAL so readers are not blocked).
- :class:`PostgresDatabase` — a claim locks one candidate row with ``FOR UPDATE SKIP
  LOCKED``, so concurrent claimers never wait for each other nor get the same task.

Both also carry the feed of changed jobs that live events wait on (:meth:`job_changed`,
:meth:`subscribe`): PostgreSQL's NOTIFY, sent at commit to every API process that
LISTENs; on SQLite, whose writers are this process, a signal after the commit.

Repositories (``framefarm.repos``) run their statements on the connections this hands out,
and the API's hottest reads on :attr:`Database.direct` (:mod:`framefarm.db.direct`, from the
event loop); the time always comes from the injected clock.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from framefarm.clock import Clock, SystemClock
from framefarm.db import direct
from framefarm.db import schema as t

_T = TypeVar("_T")
log = logging.getLogger("framefarm.db")

JOBS_CHANNEL = "framefarm_jobs"
# A subscriber is called with the id of a job that changed, or None when changes may have
# been missed (the listening connection was lost) and every watched job should be re-read.
# It is called on a background thread.
Subscriber = Callable[[str | None], None]
_CHANGED = "framefarm_changed_jobs"  # Connection.info key: the jobs a transaction changed


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

    def __init__(self, engine: Engine, direct_reader: direct.Reader,
                 clock: Clock | None = None) -> None:
        self.engine = engine
        # Single statements from the event loop, on the driver (db/direct.py).
        self.direct = direct_reader
        self.clock = clock or SystemClock()
        self._subscribers: list[Subscriber] = []
        self._subscribers_lock = threading.Lock()

    def now(self) -> dt.datetime:
        return self.clock.now()

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        """A write transaction, committed when the block ends without an exception."""
        with self.engine.begin() as conn:
            conn.info.pop(_CHANGED, None)  # info lives as long as the pooled connection
            try:
                yield conn
            finally:
                changed = conn.info.pop(_CHANGED, set())
        self._committed(changed)  # reached only when the commit succeeded

    # -- the feed of changed jobs ---------------------------------------------------------

    def job_changed(self, conn: Connection, job_id: str) -> None:
        """Announce, when ``conn``'s transaction commits, that the job changed (and
        nothing if it rolls back)."""
        conn.info.setdefault(_CHANGED, set()).add(job_id)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` for every job change committed from now on; returns the
        function that stops it."""
        with self._subscribers_lock:
            self._subscribers.append(subscriber)

        def stop() -> None:
            with self._subscribers_lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return stop

    def _committed(self, changed: set[str]) -> None:
        for job_id in changed:
            self._publish(job_id)

    def _publish(self, job_id: str | None) -> None:
        with self._subscribers_lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(job_id)
            except Exception:  # one broken subscriber must not stop the others
                log.exception("a job change subscriber failed")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection (a deferred transaction: never waits for writers)."""
        with self.engine.connect() as conn:
            yield conn

    def lock_job(self, conn: Connection, job_id: str) -> None:
        """Serialise changes to one job's tasks. Without it, on PostgreSQL two nodes
        completing the last two chunks at once each see the other's chunk unfinished and
        neither releases the assemble task. (SQLite's BEGIN IMMEDIATE already serialises.)

        FOR NO KEY UPDATE, the lock an UPDATE of the row takes: it does not wait for the
        key-share locks that inserting a job's log lines takes, so a transaction that
        logged first cannot deadlock against another that did the same."""
        conn.execute(sa.select(t.jobs.c.id).where(t.jobs.c.id == job_id)
                     .with_for_update(key_share=True))

    def lock_candidate(self, conn: Connection, query: sa.Select[Any]) -> Any | None:
        """The first row of a claim's candidate query, held for this transaction."""
        return conn.execute(query).first()

    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_engine(url: str) -> Engine:
    # A pool as large as the API's thread pool (anyio's 40 threads) can use at once: a
    # connection opened past the pool's size is closed after its request, and the next one
    # pays for opening it again (and its PRAGMAs).
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                              pool_size=20, max_overflow=20)

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # WAL's usual setting: a commit is safe when the process dies, and waits for no
        # fsync (only a power loss can take the last commits back).
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Writers take the write lock up front, so two claimers can never read the same
        # queued task; readers begin deferred and, in WAL mode, never wait for a writer.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")

    return engine


class _WriterTurns:
    """Where the writers of one SQLite file take turns: this process's threads (reentrant),
    and every process's, on a lock file beside the database (``flock``). SQLite's busy
    handler polls with sleeps of up to 100 ms; here a waiting writer starts as soon as the
    one before it commits (8 processes claiming at once: p99 1.4 s -> 0.2 s, as many claims
    per second: bench/claims.py --sqlite).
    A transaction opened inside another still fails as before, on SQLite's busy timeout;
    writers that do not come through here (another program) are still waited for there."""

    def __init__(self, database: str) -> None:
        self._path = f"{database}-writer"
        self._threads = threading.RLock()
        self._depth = 0  # how deep this process's holder is (changed holding _threads)
        self._file: int | None = None
        self._pid = 0

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            if self._depth == 0:
                fcntl.flock(self._lock_file(), fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        self._depth += 1

    def __exit__(self, *_exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
        self._threads.release()

    def _lock_file(self) -> int:
        # A forked child opens its own: a lock on the parent's open file would be shared.
        if self._file is None or self._pid != os.getpid():
            if self._file is not None:
                os.close(self._file)
            self._file = os.open(self._path, os.O_RDONLY | os.O_CREAT, 0o644)
            self._pid = os.getpid()
        return self._file


class SqliteDatabase(Database):
    """SQLite (WAL): ``serve`` with nothing configured."""

    def __init__(self, url: str, clock: Clock | None = None) -> None:
        engine = _sqlite_engine(url)
        assert engine.url.database, "SQLite needs a file (readers open their own connections)"
        super().__init__(engine, direct.SqliteReader(engine.url.database, engine.dialect),
                         clock)
        # Writers take turns here rather than in SQLite's busy handler (_WriterTurns).
        self._writer = _WriterTurns(engine.url.database)

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        with self._writer, self.engine.connect() as conn:
            conn.info["write"] = True  # BEGIN IMMEDIATE (see _sqlite_engine)
            conn.info.pop(_CHANGED, None)
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info.pop("write", None)
                changed = conn.info.pop(_CHANGED, set())
        self._committed(changed)


class PostgresDatabase(Database):
    """PostgreSQL: many API processes and nodes at once."""

    def __init__(self, url: str, clock: Clock | None = None) -> None:
        # A fixed pool, as large as the API's thread pool can use at once: with overflow,
        # connections past the pool's size were opened and closed per request under load
        # (263 in 5 s at 32 clients), each a new PostgreSQL backend.
        engine = sa.create_engine(url, pool_size=20, max_overflow=0, pool_pre_ping=True)
        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        super().__init__(engine, direct.PostgresReader(dsn, engine.dialect), clock)
        self._listener: _Listener | None = None

    def job_changed(self, conn: Connection, job_id: str) -> None:
        # Delivered by PostgreSQL at commit to every listening process, this one included
        # (and dropped on rollback); one NOTIFY per job and transaction.
        changed: set[str] = conn.info.setdefault(_CHANGED, set())
        if job_id not in changed:
            changed.add(job_id)
            conn.execute(sa.select(sa.func.pg_notify(JOBS_CHANNEL, job_id)))

    def _committed(self, changed: set[str]) -> None:
        pass  # the listener publishes what PostgreSQL delivers

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        stop = super().subscribe(subscriber)
        with self._subscribers_lock:
            if self._listener is None:
                url = self.engine.url.set(drivername="postgresql")
                self._listener = _Listener(url.render_as_string(hide_password=False),
                                           self._publish)
        return stop

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        super().close()

    def lock_candidate(self, conn: Connection, query: sa.Select[Any]) -> Any | None:
        # SKIP LOCKED: a row another claimer holds is passed over, not waited for.
        return conn.execute(query.with_for_update(skip_locked=True, of=t.tasks)).first()


class _Listener:
    """One connection per process that LISTENs for job changes and hands each to
    ``publish``. Each time it starts listening (the first time, and after a lost
    connection) it publishes None: changes may have been missed until then."""

    def __init__(self, dsn: str, publish: Subscriber) -> None:
        self._dsn = dsn
        self._publish = publish
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="framefarm-listen",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg  # the PostgreSQL driver, only where PostgreSQL is used

        backoff = 0.1
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {JOBS_CHANNEL}")
                    backoff = 0.1
                    self._publish(None)
                    while not self._stopping.is_set():
                        # The timeout only bounds how long stop() waits.
                        for note in conn.notifies(timeout=0.5):
                            self._publish(note.payload)
            except psycopg.Error:
                log.warning("job changes: lost the LISTEN connection; reconnecting",
                            exc_info=True)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)


def open_database(url: str, clock: Clock | None = None) -> Database:
    if url.startswith("sqlite"):
        return SqliteDatabase(url, clock)
    if url.startswith("postgresql"):
        return PostgresDatabase(url, clock)
    raise ValueError(f"unsupported database URL {url.split(':', 1)[0]!r}: use sqlite:/// or "
                     "postgresql+psycopg://")

"""Single statements run on the driver itself, from the event loop: the API's hottest
reads (an API key, with the job it asks for) without SQLAlchemy's pool or the thread pool.

Under concurrent clients most of a small request's cost was its trips to the thread pool
(one for a sync dependency, one for a sync endpoint), not its SQL; these readers keep such
a request on the event loop from its first byte to its last.

- :class:`SqliteReader` — a read-only connection per thread that uses it (the event
  loop's): a single SELECT is its own snapshot, and under WAL it never waits for a writer.
  The call blocks the loop for the statement's time, so only short statements belong here.
- :class:`PostgresReader` — a small pool of psycopg ``AsyncConnection`` (``psycopg_pool``),
  opened with the application's lifespan. Without one running on the caller's event loop
  (an app used without its lifespan) each call opens a connection of its own: slower,
  never wrong.

A :class:`Statement` is a SQLAlchemy ``Select`` compiled once for the database's dialect,
with its columns' result processors (SQLite's text datetimes and JSON become what
SQLAlchemy itself would return). Its parameters are ``sa.bindparam`` names given as
strings or numbers: no bind processing is applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

Row = tuple[Any, ...]
_Processor = Callable[[Any], Any] | None


class Statement:
    """A query compiled for one dialect: its SQL, how its parameters are passed, and how
    each column of a row is read."""

    def __init__(self, query: sa.Select[Any], dialect: Dialect) -> None:
        compiled = query.compile(dialect=dialect)
        self.sql = str(compiled)
        self._dialect = dialect
        self._types = [column.type.dialect_impl(dialect) for column in query.selected_columns]
        # qmark (SQLite): a sequence in this order; pyformat (psycopg): a mapping.
        self._positions = list(compiled.positiontup or ()) if compiled.positional else None
        self._processors: list[_Processor] | None = None

    def parameters(self, values: dict[str, Any]) -> Sequence[Any] | dict[str, Any]:
        if self._positions is None:
            return values
        return [values[name] for name in self._positions]

    def rows(self, description: Callable[[], Sequence[Any] | None],
             raw: Sequence[Sequence[Any]]) -> list[Row]:
        """The driver's rows as SQLAlchemy would return them. The processors are chosen
        once, with the type codes of the first result's ``description()`` (as SQLAlchemy
        does: psycopg's numeric columns need them). A value equal to the one above it (a
        joined row's repeated columns) is processed once."""
        if self._processors is None:
            found = description()
            codes = [d[1] for d in found] if found else [None] * len(self._types)
            self._processors = [kind.result_processor(self._dialect, code)
                                for kind, code in zip(self._types, codes, strict=True)]
        processors = self._processors
        rows: list[Row] = []
        above: Sequence[Any] = ()
        for row in raw:
            if not rows:
                rows.append(tuple(value if process is None or value is None
                                  else process(value)
                                  for process, value in zip(processors, row, strict=True)))
            else:
                done = rows[-1]
                rows.append(tuple(
                    done[i] if value == above[i] else
                    value if process is None or value is None else process(value)
                    for i, (process, value) in enumerate(zip(processors, row, strict=True))))
            above = row
        return rows


class Reader(Protocol):
    """Runs a :class:`Statement`-compiled query from the event loop."""

    async def rows(self, query: sa.Select[Any], **values: Any) -> list[Row]:
        """Every row of ``query`` with these parameters, processed."""
        ...

    async def together(self, *queries: tuple[sa.Select[Any], dict[str, Any]]
                       ) -> list[list[Row]]:
        """The rows of each (query, parameters), all read from one snapshot of the
        database: a commit between them cannot show half of itself."""
        ...

    async def open(self) -> None:
        """Start what the reader keeps (with the application's lifespan)."""
        ...

    async def close(self) -> None:
        ...


class _Compiled:
    """Statements compiled once per query object (queries are module-level constants)."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._found: dict[int, tuple[sa.Select[Any], Statement]] = {}

    def __call__(self, query: sa.Select[Any]) -> Statement:
        found = self._found.get(id(query))
        if found is None or found[0] is not query:
            found = (query, Statement(query, self._dialect))
            self._found[id(query)] = found
        return found[1]


class SqliteReader:
    def __init__(self, path: str, dialect: Dialect) -> None:
        self._path = path
        self._compiled = _Compiled(dialect)
        self._local = threading.local()
        self._opened: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # Autocommit: each SELECT is its own read transaction, ended with it, so the
            # connection never holds a WAL snapshot between requests.
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only=ON")
            # A WAL reader waits only in rare cases (recovering the WAL index after a
            # crash): bounded well below the writers' 30 s, as it holds the event loop.
            conn.execute("PRAGMA busy_timeout=5000")
            self._local.conn = conn
            with self._lock:
                # Threads that ended (an event loop per request, as a TestClient outside
                # its lifespan runs) leave their connections behind: closed here.
                ended = [c for thread, c in self._opened if not thread.is_alive()]
                self._opened = [(thread, c) for thread, c in self._opened
                                if thread.is_alive()]
                self._opened.append((threading.current_thread(), conn))
            for old in ended:
                old.close()
        return conn

    async def rows(self, query: sa.Select[Any], **values: Any) -> list[Row]:
        return self._read(self._connection(), query, values)

    async def together(self, *queries: tuple[sa.Select[Any], dict[str, Any]]
                       ) -> list[list[Row]]:
        conn = self._connection()
        conn.execute("BEGIN")  # a WAL read transaction: one snapshot from its first read
        try:
            return [self._read(conn, query, values) for query, values in queries]
        finally:
            conn.execute("COMMIT")

    def _read(self, conn: sqlite3.Connection, query: sa.Select[Any],
              values: dict[str, Any]) -> list[Row]:
        statement = self._compiled(query)
        cursor = conn.execute(statement.sql, statement.parameters(values))
        return statement.rows(lambda: cursor.description, cursor.fetchall())

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for _thread, conn in opened:
            conn.close()
        self._local = threading.local()


class PostgresReader:
    def __init__(self, dsn: str, dialect: Dialect, size: int = 4) -> None:
        self._dsn = dsn
        self._size = size
        self._compiled = _Compiled(dialect)
        self._pool: Any = None  # psycopg_pool.AsyncConnectionPool, on self._loop
        self._loop: asyncio.AbstractEventLoop | None = None

    async def open(self) -> None:
        from psycopg_pool import AsyncConnectionPool  # only where PostgreSQL is used

        # Each connection is checked as it is handed out (as the sync engine's pre-ping
        # does): after a PostgreSQL restart the pool's connections are dead, and a request
        # must get a new one, not an error.
        pool = AsyncConnectionPool(self._dsn, min_size=1, max_size=self._size, open=False,
                                   kwargs={"autocommit": True}, name="framefarm-direct",
                                   check=AsyncConnectionPool.check_connection)
        await pool.open()
        self._pool, self._loop = pool, asyncio.get_running_loop()

    async def close(self) -> None:
        pool, self._pool, self._loop = self._pool, None, None
        if pool is not None:
            await pool.close()

    async def rows(self, query: sa.Select[Any], **values: Any) -> list[Row]:
        return (await self._reads([(query, values)], snapshot=False))[0]

    async def together(self, *queries: tuple[sa.Select[Any], dict[str, Any]]
                       ) -> list[list[Row]]:
        return await self._reads(list(queries), snapshot=True)

    async def _reads(self, queries: list[tuple[sa.Select[Any], dict[str, Any]]], *,
                     snapshot: bool) -> list[list[Row]]:
        async with contextlib.AsyncExitStack() as stack:
            if self._pool is not None and self._loop is asyncio.get_running_loop():
                conn = await stack.enter_async_context(self._pool.connection())
            else:
                import psycopg

                conn = await stack.enter_async_context(
                    await psycopg.AsyncConnection.connect(self._dsn, autocommit=True))
            if snapshot:  # READ COMMITTED would take a new snapshot per statement
                await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                found = []
                for query, values in queries:
                    statement = self._compiled(query)
                    cursor = await conn.execute(statement.sql, statement.parameters(values))
                    fetched = await cursor.fetchall()
                    found.append(statement.rows(
                        functools.partial(getattr, cursor, "description"), fetched))
            finally:
                if snapshot:
                    await conn.execute("COMMIT")
            return found

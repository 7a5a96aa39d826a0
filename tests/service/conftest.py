"""Fixtures for the render-service tests: the real FastAPI app in-process, on SQLite and on
PostgreSQL, with render nodes (the real :class:`Agent`) in background threads.

- ``farm``: the app with default test settings; ``make_farm(**settings)`` for others.
  Every test that takes either runs once per backend.
- SQLite: the default database inside the test's data dir.
- PostgreSQL: a fresh database created for the session on the server named by
  ``FRAMEFARM_TEST_POSTGRES_URL`` (default ``postgres@127.0.0.1:5432/postgres``) through
  psycopg (autocommit, on the admin database), migrated by each farm, emptied before each
  test and dropped at the end. Unreachable: the test skips, except under ``CI=true``, where
  it fails.
- ``farm.start_nodes(n)``: agents that talk to the app through the same TestClient (an
  httpx.Client), so nodes, API and database are the real ones with no sockets.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from service_support import Farm, skip_or_fail, write_photo, write_tone

from framefarm.api.app import build_service, create_app
from framefarm.db import migrate, schema
from framefarm.settings import Settings

PG_ADMIN_URL = os.environ.get(
    "FRAMEFARM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgresql"]

# Fast heartbeats so cancels and progress arrive quickly; a lease long enough that a
# busy CI machine never loses one by accident.
DEFAULT_SETTINGS: dict[str, Any] = {
    "lease_seconds": 10.0, "heartbeat_seconds": 0.2, "retry_backoff_seconds": 0.0,
    "public_url": "http://testserver",
}


# -- PostgreSQL --------------------------------------------------------------------------------


def _connect_admin() -> psycopg.Connection[Any]:
    url = sa.make_url(PG_ADMIN_URL)
    kwargs: dict[str, Any] = url.translate_connect_args(username="user", database="dbname")
    return psycopg.connect(autocommit=True, connect_timeout=5, **kwargs)


@pytest.fixture(scope="session")
def pg_admin() -> str:
    """The admin URL, checked once to be reachable."""
    try:
        with _connect_admin() as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        shown = sa.make_url(PG_ADMIN_URL).render_as_string(hide_password=True)
        skip_or_fail(f"PostgreSQL at {shown} is not reachable ({exc}); set "
                     "FRAMEFARM_TEST_POSTGRES_URL to an admin URL")
    return PG_ADMIN_URL


def _pg_url(name: str) -> str:
    return sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _create_database() -> str:
    name = f"ff_test_service_{os.getpid()}_{secrets.token_hex(4)}"
    with _connect_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_databases(names: list[str]) -> None:
    with _connect_admin() as conn:
        for name in names:
            assert name.startswith("ff_test_service_")
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_session_db(pg_admin: str) -> Iterator[str]:
    """One fresh database for the session (creating and dropping one per test costs about
    two seconds; emptying it costs a fifth of that), dropped at the end."""
    name = _create_database()
    try:
        yield _pg_url(name)
    finally:
        _drop_databases([name])


def _empty(url: str) -> None:
    """Empty every table of a migrated database (a database that was never migrated has
    none yet)."""
    tables = ", ".join(f'"{table.name}"' for table in schema.metadata.sorted_tables)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            if sa.inspect(conn).has_table("jobs"):
                conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated once: two 640x360 stills and two AAC tones (1.5 s and 1.0 s)."""
    folder = tmp_path_factory.mktemp("service-media")
    write_photo(folder / "a.jpg", "#c03030")
    write_photo(folder / "b.jpg", "#3050c0")
    write_tone(folder / "vo1.m4a", 1.5, 300)
    write_tone(folder / "vo2.m4a", 1.0, 500)
    return folder


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_farm(backend: str, tmp_path: Path, request: pytest.FixtureRequest,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Farm]]:
    """Build the app (migrated database, service, lifespan running) with these settings
    (and none from the environment: Settings would read FRAMEFARM_* variables)."""
    for name in os.environ:
        if name.startswith("FRAMEFARM_") and name not in ("FRAMEFARM_FFMPEG",
                                                          "FRAMEFARM_TEST_POSTGRES_URL"):
            monkeypatch.delenv(name)
    farms: list[Farm] = []
    clients: list[TestClient] = []
    extra_databases: list[str] = []

    def database() -> str:
        """PostgreSQL: the session's database, emptied, for the test's first farm; a fresh
        one (dropped after the test) for any other."""
        if not farms:
            url = str(request.getfixturevalue("pg_session_db"))
            _empty(url)
            return url
        extra_databases.append(_create_database())
        return _pg_url(extra_databases[-1])

    def make(**overrides: Any) -> Farm:
        data = tmp_path / f"farm{len(farms)}"
        values = {**DEFAULT_SETTINGS, **overrides}
        if backend == "postgresql":
            values.setdefault("database_url", database())
        settings = Settings(data_dir=data, **values)
        data.mkdir(parents=True)
        migrate.upgrade(settings.db_url)
        svc = build_service(settings)
        app = create_app(settings, svc)
        _, admin_key = svc.store.create_tenant("admin", admin=True)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        farm = Farm(backend, settings, svc, app, client, admin_key, data)
        farms.append(farm)
        return farm

    try:
        yield make
    finally:
        problems = []
        for farm in farms:
            try:
                farm.stop_nodes()
            except AssertionError as exc:
                problems.append(str(exc))
        for client in clients:
            client.__exit__(None, None, None)
        for farm in farms:
            farm.svc.store.close()
        if extra_databases:
            _drop_databases(extra_databases)
        if problems:
            pytest.fail("; ".join(problems), pytrace=False)


@pytest.fixture
def farm(make_farm: Callable[..., Farm]) -> Farm:
    return make_farm()

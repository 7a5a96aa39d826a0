"""Fixtures for the queue tests: every test that takes ``store`` (or ``farm``) runs once on
SQLite and once on PostgreSQL.

- SQLite: a fresh file per test, migrated with :func:`framefarm.db.migrate.upgrade`.
- PostgreSQL: one fresh database per test session (created through the admin URL in
  ``FRAMEFARM_TEST_POSTGRES_URL``, default ``postgres@127.0.0.1:5432/postgres``), migrated
  once, every table emptied before each test, dropped at the end. Without a reachable
  server these tests skip — except under ``CI=true``, where they fail.

Time never passes by itself: each test gets a :class:`ManualClock`. Tests choose queue
settings by overriding the ``settings`` fixture, e.g.
``@pytest.mark.parametrize("settings", [QueueSettings(lease_seconds=10)])``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from framefarm.application.queue import QueueSettings
from framefarm.clock import ManualClock
from framefarm.db import migrate
from support.database import (
    create_database,
    drop_database,
    empty_all_tables,
    new_database_name,
    require_postgres,
)
from support.queue_farm import Farm, open_store
from support.queue_farm import QueueStore as Store

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The admin connection URL, checked to be reachable."""
    return require_postgres()


@pytest.fixture(scope="session")
def pg_session_url(pg_admin_url: str) -> Iterator[str]:
    """A database of this test session, migrated to the newest revision."""
    name = new_database_name("queue")
    url = create_database(pg_admin_url, name)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture
def pg_url(pg_session_url: str) -> str:
    """The session's PostgreSQL database, emptied for this test."""
    empty_all_tables(pg_session_url)
    return pg_session_url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once; each test gets a copy (faster than migrating)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "framefarm.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings() -> QueueSettings:
    return QueueSettings(lease_seconds=30, max_attempts=3, retry_backoff_seconds=2,
                         node_block_failures=2, max_concurrent_jobs=100)


@pytest.fixture
def make_store(db_url: str, clock: ManualClock, settings: QueueSettings,
               tmp_path: Path) -> Iterator[Callable[..., Store]]:
    """Open (more) stores on the test's database, e.g. to simulate a restarted server;
    every one is closed after the test."""
    opened: list[Store] = []

    def make(clock_: ManualClock | None = None, settings_: QueueSettings | None = None) -> Store:
        store = open_store(db_url, clock_ or clock, settings_ or settings,
                           storage_dir=tmp_path / f"data{len(opened)}")
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    return make_store()


@pytest.fixture
def farm(store: Store, clock: ManualClock) -> Farm:
    return Farm(store, clock)


@pytest.fixture
def pg_farm(pg_url: str, clock: ManualClock, settings: QueueSettings,
            tmp_path: Path) -> Iterator[Farm]:
    """PostgreSQL only: for interleavings that SQLite's whole-database write lock rules out."""
    store = open_store(pg_url, clock, settings, storage_dir=tmp_path / "data")
    yield Farm(store, clock)
    store.close()

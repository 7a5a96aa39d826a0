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

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.database import (
    create_database,
    database_url,
    drop_database,
    empty_all_tables,
    fresh_database,
    new_database_name,
    require_postgres,
)
from support.farm import Farm, clear_framefarm_env
from support.media import write_photo, write_tone

BACKENDS = ["sqlite", "postgresql"]

# Fast heartbeats so cancels and progress arrive quickly; a lease long enough that a
# busy CI machine never loses one by accident.
DEFAULT_SETTINGS: dict[str, Any] = {
    "lease_seconds": 10.0, "heartbeat_seconds": 0.2, "retry_backoff_seconds": 0.0,
    "public_url": "http://testserver",
}


@pytest.fixture(scope="session")
def pg_session_db() -> Iterator[str]:
    """One fresh database for the session (creating and dropping one per test costs about
    two seconds; emptying it costs a fifth of that), dropped at the end."""
    with fresh_database("service", require_postgres()) as url:
        yield url


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
    clear_framefarm_env(monkeypatch)
    farms: list[Farm] = []
    extra_databases: list[str] = []

    def database() -> str:
        """PostgreSQL: the session's database, emptied, for the test's first farm; a fresh
        one (dropped after the test) for any other."""
        if not farms:
            url = str(request.getfixturevalue("pg_session_db"))
            empty_all_tables(url)
            return url
        admin = require_postgres()
        extra_databases.append(new_database_name("service"))
        create_database(admin, extra_databases[-1])
        return database_url(admin, extra_databases[-1])

    def make(**overrides: Any) -> Farm:
        values = {**DEFAULT_SETTINGS, **overrides}
        if backend == "postgresql":
            values.setdefault("database_url", database())
        farm = Farm.open(backend, tmp_path / f"farm{len(farms)}", **values)
        farms.append(farm)
        return farm

    try:
        yield make
    finally:
        problems = []
        for farm in farms:
            try:
                farm.close()
            except AssertionError as exc:
                problems.append(str(exc))
        for name in extra_databases:
            drop_database(require_postgres(), name)
        if problems:
            pytest.fail("; ".join(problems), pytrace=False)


@pytest.fixture
def farm(make_farm: Callable[..., Farm]) -> Farm:
    return make_farm()

"""Fixtures for the fault tests.

- ``servers(data, **settings)``: ``framefarm serve --workers 0`` as a process (SQLite in
  its data dir, the default of ``serve``), with ``server.worker(...)`` render node
  processes. Every process runs in its own process group and is SIGKILLed (a SIGSTOPped
  one too) by the fixture's teardown, whatever happens to the test.
- ``farm``: the app in-process (:class:`support.farm.Farm`) with ``farm.start_nodes(n)``
  agents in threads talking through its TestClient; once on SQLite and once on PostgreSQL
  (``FRAMEFARM_TEST_POSTGRES_URL``, default ``postgres@127.0.0.1:5432/postgres``;
  unreachable: skipped, under CI=true failed).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.database import fresh_database, require_postgres
from support.farm import Farm, clear_framefarm_env

# -- the app in-process ------------------------------------------------------------------------


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh database for one test, dropped after it."""
    with fresh_database("faults", require_postgres()) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def farm(request: pytest.FixtureRequest, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Farm]:
    """The app on this backend: short heartbeats, no retry back-off, nodes blocked only
    after many failures (the storage test is about storage, not node blocking)."""
    clear_framefarm_env(monkeypatch)
    values: dict[str, Any] = {
        "lease_seconds": 10.0, "heartbeat_seconds": 0.2, "retry_backoff_seconds": 0.0,
        "max_attempts": 3, "node_block_failures": 10, "min_chunk_seconds": 1.0,
        "public_url": "http://testserver"}
    if request.param == "postgresql":
        values["database_url"] = request.getfixturevalue("pg_database")
    farm = Farm.open(str(request.param), tmp_path / "farm", **values)
    try:
        yield farm
    finally:
        farm.close()

"""Fixtures for the fault tests.

- ``servers(data, **settings)``: ``framefarm serve --workers 0`` as a process (SQLite in
  its data dir, the default of ``serve``), with ``server.worker(...)`` render node
  processes. Every process runs in its own process group and is SIGKILLed (a SIGSTOPped
  one too) by the fixture's teardown, whatever happens to the test.
- ``farm``: the app in-process (Settings + migrate + build_service + create_app +
  TestClient) with ``farm.start_nodes(n)`` agents in threads talking through the
  TestClient; once on SQLite and once on PostgreSQL (``FRAMEFARM_TEST_POSTGRES_URL``,
  default ``postgres@127.0.0.1:5432/postgres``; unreachable: skipped, under CI=true failed).
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
from fault_support import Farm, Proc, Server

from framefarm.api.app import build_service, create_app
from framefarm.db import migrate
from framefarm.settings import Settings

PG_ADMIN_URL = os.environ.get(
    "FRAMEFARM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"


# -- processes ------------------------------------------------------------------------------


@pytest.fixture
def processes() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in reversed(started):
        proc.kill()


@pytest.fixture
def servers(processes: list[Proc]) -> Iterator[Callable[..., Server]]:
    made: list[Server] = []

    def make(data: Path, **settings: Any) -> Server:
        server = Server(processes, data, **settings)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop_and_close()


# -- the app in-process ------------------------------------------------------------------------


def _connect_admin() -> psycopg.Connection[Any]:
    url = sa.make_url(PG_ADMIN_URL)
    kwargs: dict[str, Any] = url.translate_connect_args(username="user", database="dbname")
    return psycopg.connect(autocommit=True, connect_timeout=5, **kwargs)


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh database for one test, dropped after it."""
    try:
        with _connect_admin() as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        shown = sa.make_url(PG_ADMIN_URL).render_as_string(hide_password=True)
        reason = f"PostgreSQL at {shown} is not reachable ({exc})"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: this must not be skipped)", pytrace=False)
        pytest.skip(reason)
    name = f"ff_test_faults_{os.getpid()}_{secrets.token_hex(4)}"
    with _connect_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(
            hide_password=False)
    finally:
        with _connect_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def farm(request: pytest.FixtureRequest, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Farm]:
    """The app on this backend: short heartbeats, no retry back-off, nodes blocked only
    after many failures (the storage test is about storage, not node blocking)."""
    for name in os.environ:
        if name.startswith("FRAMEFARM_") and name not in ("FRAMEFARM_FFMPEG",
                                                          "FRAMEFARM_TEST_POSTGRES_URL"):
            monkeypatch.delenv(name)
    values: dict[str, Any] = {
        "lease_seconds": 10.0, "heartbeat_seconds": 0.2, "retry_backoff_seconds": 0.0,
        "max_attempts": 3, "node_block_failures": 10, "min_chunk_seconds": 1.0,
        "public_url": "http://testserver"}
    if request.param == "postgresql":
        values["database_url"] = request.getfixturevalue("pg_database")
    data = tmp_path / "farm"
    data.mkdir()
    settings = Settings(data_dir=data, **values)
    migrate.upgrade(settings.db_url)
    svc = build_service(settings)
    _, admin_key = svc.store.create_tenant("admin", admin=True)
    client = TestClient(create_app(settings, svc))
    client.__enter__()
    farm = Farm(str(request.param), settings, svc, client, admin_key, tmp_path)
    try:
        yield farm
    finally:
        try:
            farm.stop_nodes()
        finally:
            client.__exit__(None, None, None)
            svc.store.close()

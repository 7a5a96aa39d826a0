"""The Alembic migrations create exactly the tables of ``framefarm.db.schema``."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

from framefarm.db import migrate, schema
from support.database import create_database, drop_database, new_database_name


def _diff(url: str) -> list[object]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), schema.metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _drop_index(url: str, name: str) -> None:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP INDEX {name}")
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, never migrated."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    admin = request.getfixturevalue("pg_admin_url")
    name = new_database_name("migrate")
    url = create_database(admin, name)
    try:
        yield url
    finally:
        drop_database(admin, name)


def test_migrations_ship_inside_the_package() -> None:
    folder = resources.files("framefarm.db").joinpath("migrations")
    assert folder.joinpath("env.py").is_file()
    assert folder.joinpath("script.py.mako").is_file()
    assert folder.joinpath("versions", "0001_initial.py").is_file()
    with migrate._config() as cfg:
        chain = [s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions()]
    assert chain[-1] == "0001", "0001 is the first revision"
    assert chain[0] == migrate.head(), "one head, no branches"


def test_upgrade_creates_exactly_the_schema(fresh_url: str) -> None:
    assert migrate.current(fresh_url) is None
    migrate.upgrade(fresh_url)
    assert migrate.current(fresh_url) == migrate.head()
    assert _tables(fresh_url) == {*schema.metadata.tables, "alembic_version"}
    assert _diff(fresh_url) == []
    # A second upgrade (another server starting) changes nothing.
    migrate.upgrade(fresh_url)
    assert migrate.current(fresh_url) == migrate.head()
    assert _diff(fresh_url) == []


def test_comparison_notices_a_difference(fresh_url: str) -> None:
    """The comparison above is not vacuous: a missing index shows up."""
    migrate.upgrade(fresh_url)
    _drop_index(fresh_url, "ix_tasks_lease")
    diff = _diff(fresh_url)
    assert len(diff) == 1
    assert diff[0][0] == "add_index"  # type: ignore[index]
    assert diff[0][1].name == "ix_tasks_lease"  # type: ignore[index]


def test_downgrade_to_base_and_up_again(fresh_url: str) -> None:
    migrate.upgrade(fresh_url)
    migrate.downgrade(fresh_url, "base")
    assert migrate.current(fresh_url) is None
    assert _tables(fresh_url) == {"alembic_version"}
    migrate.upgrade(fresh_url)
    assert _diff(fresh_url) == []


def test_upgraded_database_serves_the_store(fresh_url: str, tmp_path: Path) -> None:
    from support.queue_farm import open_store

    migrate.upgrade(fresh_url)
    store = open_store(fresh_url, storage_dir=tmp_path)
    try:
        tenant, key = store.create_tenant("acme")
        assert store.authenticate(key) == (tenant, False)
    finally:
        store.close()

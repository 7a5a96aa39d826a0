"""Bring a database to the newest schema with Alembic, from code (no alembic.ini).

The migration scripts live inside the package (``framefarm/db/migrations``), so an
installed wheel can migrate its own database::

    from framefarm.db import migrate
    migrate.upgrade("sqlite:///framefarm.db")
    migrate.upgrade("postgresql+psycopg://user@host/framefarm")

On PostgreSQL the upgrade holds a transaction-level advisory lock, so several servers
starting at once migrate one after the other (the later ones find nothing to do).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

# Any constant will do; it only has to be the same for every framefarm server.
_ADVISORY_LOCK = 0x6672_6D66  # "frmf"


@contextmanager
def _config(url: str | None = None) -> Iterator[Config]:
    package = resources.files("framefarm.db").joinpath("migrations")
    with resources.as_file(package) as path:
        cfg = Config()
        cfg.set_main_option("script_location", str(path))
        if url is not None:
            # ConfigParser interpolates '%': a URL-encoded password must be escaped.
            cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        yield cfg


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=NullPool)


def head() -> str:
    """The newest revision this version of framefarm knows."""
    with _config() as cfg:
        revision = ScriptDirectory.from_config(cfg).get_current_head()
    if revision is None:
        raise RuntimeError("no migrations found in framefarm/db/migrations")
    return revision


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` to ``revision`` (the newest by default)."""
    engine = _engine(url)
    try:
        with engine.begin() as conn, _config(url) as cfg:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                             {"key": _ADVISORY_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` back to ``revision`` ("base" empties it)."""
    engine = _engine(url)
    try:
        with engine.begin() as conn, _config(url) as cfg:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
    finally:
        engine.dispose()


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def current(url: str) -> str | None:
    """The database's revision, or None for a database never migrated."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return current_revision(conn)
    finally:
        engine.dispose()

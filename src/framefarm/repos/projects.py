"""Projects (a document and its assets, content-addressed by SHA-256) and templates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from framefarm.db import schema as t
from framefarm.db.database import new_id
from framefarm.queue.errors import NotFound
from framefarm.records import Asset, Export, Project, Template
from framefarm.repos import rows


def create(conn: Connection, tenant_id: str, name: str, *, now: dt.datetime) -> Project:
    project_id = new_id("prj")
    conn.execute(t.projects.insert().values(
        id=project_id, tenant_id=tenant_id, name=name, document=None, created_at=now,
        updated_at=now))
    return get(conn, tenant_id, project_id)


def get(conn: Connection, tenant_id: str, project_id: str) -> Project:
    return rows.one(conn, sa.select(t.projects).where(
        t.projects.c.id == project_id, t.projects.c.tenant_id == tenant_id), Project,
        f"no project {project_id}")


def list_for(conn: Connection, tenant_id: str) -> list[Project]:
    return rows.every(conn, sa.select(t.projects).where(t.projects.c.tenant_id == tenant_id)
                      .order_by(t.projects.c.created_at), Project)


def rename(conn: Connection, tenant_id: str, project_id: str, name: str, *,
           now: dt.datetime) -> Project:
    get(conn, tenant_id, project_id)
    conn.execute(t.projects.update().where(t.projects.c.id == project_id).values(
        name=name, updated_at=now))
    return get(conn, tenant_id, project_id)


def delete(conn: Connection, tenant_id: str, project_id: str) -> None:
    """The project, its assets and its templates. Their contents stay in storage until the
    sweeper finds that nothing points at them any more (``shas_in_use``)."""
    get(conn, tenant_id, project_id)
    conn.execute(t.assets.delete().where(t.assets.c.project_id == project_id))
    conn.execute(t.templates.delete().where(t.templates.c.project_id == project_id,
                                            t.templates.c.tenant_id == tenant_id))
    conn.execute(t.projects.delete().where(t.projects.c.id == project_id))


def put_document(conn: Connection, tenant_id: str, project_id: str, document: Any, *,
                 now: dt.datetime) -> None:
    get(conn, tenant_id, project_id)
    conn.execute(t.projects.update().where(t.projects.c.id == project_id).values(
        document=document, updated_at=now))


def put_asset(conn: Connection, tenant_id: str, project_id: str, name: str, sha256: str,
              size: int, *, now: dt.datetime) -> None:
    """Add an asset, or point an existing name at new content."""
    get(conn, tenant_id, project_id)
    conn.execute(t.assets.delete().where(t.assets.c.project_id == project_id,
                                         t.assets.c.name == name))
    conn.execute(t.assets.insert().values(project_id=project_id, name=name, sha256=sha256,
                                          size=size, created_at=now))


def assets(conn: Connection, tenant_id: str, project_id: str) -> list[Asset]:
    get(conn, tenant_id, project_id)
    return rows.every(conn, sa.select(t.assets).where(t.assets.c.project_id == project_id)
                      .order_by(t.assets.c.name), Asset)


def get_asset(conn: Connection, tenant_id: str, project_id: str, name: str) -> Asset:
    get(conn, tenant_id, project_id)
    return rows.one(conn, sa.select(t.assets).where(
        t.assets.c.project_id == project_id, t.assets.c.name == name), Asset,
        f"no asset {name!r} in project {project_id}")


def delete_asset(conn: Connection, tenant_id: str, project_id: str, name: str) -> None:
    get(conn, tenant_id, project_id)
    gone = conn.execute(t.assets.delete().where(
        t.assets.c.project_id == project_id, t.assets.c.name == name)).rowcount
    if not gone:
        raise NotFound(f"no asset {name!r} in project {project_id}")


def create_template(conn: Connection, tenant_id: str, name: str, document: Any,
                    project_id: str | None, *, now: dt.datetime) -> Template:
    template_id = new_id("tpl")
    conn.execute(t.templates.insert().values(
        id=template_id, tenant_id=tenant_id, name=name, document=document,
        project_id=project_id, created_at=now))
    return get_template(conn, tenant_id, template_id)


def get_template(conn: Connection, tenant_id: str, template_id: str) -> Template:
    return rows.one(conn, sa.select(t.templates).where(
        t.templates.c.id == template_id, t.templates.c.tenant_id == tenant_id), Template,
        f"no template {template_id}")


def templates(conn: Connection, tenant_id: str) -> list[Template]:
    return rows.every(conn, sa.select(t.templates).where(t.templates.c.tenant_id == tenant_id)
                      .order_by(t.templates.c.created_at), Template)


def update_template(conn: Connection, tenant_id: str, template_id: str, *,
                    name: str | None = None, document: Any = None) -> Template:
    """A new name and/or document (None leaves it as it is)."""
    get_template(conn, tenant_id, template_id)
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = name
    if document is not None:
        values["document"] = document
    if values:
        conn.execute(t.templates.update().where(t.templates.c.id == template_id)
                     .values(**values))
    return get_template(conn, tenant_id, template_id)


def delete_template(conn: Connection, tenant_id: str, template_id: str) -> None:
    get_template(conn, tenant_id, template_id)
    conn.execute(t.templates.delete().where(t.templates.c.id == template_id))


def exports(conn: Connection, tenant_id: str, project_id: str) -> list[Export]:
    """The exports of the project's renders, newest first (one query, after the check that
    the project is the tenant's)."""
    get(conn, tenant_id, project_id)
    return rows.every(conn, sa.select(t.exports).join(t.jobs, t.jobs.c.id == t.exports.c.job_id)
                      .where(t.exports.c.tenant_id == tenant_id,
                             t.jobs.c.project_id == project_id)
                      .order_by(t.exports.c.created_at.desc(), t.exports.c.id.desc()), Export)


def shas_in_use(conn: Connection, shas: Sequence[str]) -> set[str]:
    """Which of these contents some project's asset still points at."""
    found: set[str] = set()
    wanted = list(dict.fromkeys(shas))
    for start in range(0, len(wanted), 500):
        found.update(conn.execute(sa.select(t.assets.c.sha256).distinct().where(
            t.assets.c.sha256.in_(wanted[start:start + 500]))).scalars())
    return found

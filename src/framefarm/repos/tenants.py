"""Tenants and their API keys (stored hashed; a key is shown once, when made; a revoked
key stays listed and authenticates no more)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from framefarm.db import direct
from framefarm.db import schema as t
from framefarm.db.database import hash_secret, new_id
from framefarm.queue.errors import Conflict, NotFound
from framefarm.records import Caller, Tenant
from framefarm.repos import rows


@dataclasses.dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as admins see it: never the key, nor its hash."""

    id: str
    tenant_id: str
    admin: bool
    created_at: dt.datetime
    revoked_at: dt.datetime | None


def create(conn: Connection, name: str, *, now: dt.datetime,
           max_concurrent_jobs: int | None = None) -> str:
    if conn.execute(sa.select(t.tenants.c.id).where(t.tenants.c.name == name)).first():
        raise Conflict(f"a tenant named {name!r} exists")
    tenant_id = new_id("ten")
    conn.execute(t.tenants.insert().values(
        id=tenant_id, name=name, max_concurrent_jobs=max_concurrent_jobs, created_at=now))
    return tenant_id


def get(conn: Connection, tenant_id: str) -> Tenant:
    return rows.one(conn, sa.select(t.tenants).where(t.tenants.c.id == tenant_id), Tenant,
                    f"no tenant {tenant_id}")


def exists(conn: Connection, tenant_id: str) -> bool:
    return conn.execute(sa.select(t.tenants.c.id).where(t.tenants.c.id == tenant_id)
                        ).first() is not None


def add_key(conn: Connection, tenant_id: str, *, admin: bool,
            now: dt.datetime) -> tuple[str, str]:
    """A new API key for the tenant: (its id, the plain key). The key is returned once and
    stored hashed; the id is what lists show and revoking takes."""
    if not exists(conn, tenant_id):
        raise NotFound(f"no tenant {tenant_id}")
    key_id, key = new_id("key"), "ff_" + secrets.token_urlsafe(32)
    conn.execute(t.api_keys.insert().values(
        id=key_id, tenant_id=tenant_id, key_hash=hash_secret(key), admin=admin,
        created_at=now))
    return key_id, key


_KEY_COLUMNS = (t.api_keys.c.id, t.api_keys.c.tenant_id, t.api_keys.c.admin,
                t.api_keys.c.created_at, t.api_keys.c.revoked_at)


def keys(conn: Connection, tenant_id: str) -> list[ApiKey]:
    """The tenant's keys, revoked ones too, oldest first."""
    if not exists(conn, tenant_id):
        raise NotFound(f"no tenant {tenant_id}")
    return rows.every(conn, sa.select(*_KEY_COLUMNS).where(
        t.api_keys.c.tenant_id == tenant_id).order_by(t.api_keys.c.created_at,
                                                      t.api_keys.c.id), ApiKey)


def get_key(conn: Connection, key_id: str) -> ApiKey:
    return rows.one(conn, sa.select(*_KEY_COLUMNS).where(t.api_keys.c.id == key_id), ApiKey,
                    f"no API key {key_id}")


def revoke_key(conn: Connection, key_id: str, *, now: dt.datetime) -> ApiKey:
    """Revoke the key: from this transaction's commit on it authenticates no more.
    Revoking a revoked key is a conflict (its first revocation time stays)."""
    get_key(conn, key_id)
    revoked = conn.execute(t.api_keys.update().where(
        t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None),
    ).values(revoked_at=now)).rowcount
    if not revoked:
        raise Conflict(f"API key {key_id} is already revoked")
    return get_key(conn, key_id)


_CALLER = sa.select(t.api_keys.c.tenant_id, t.api_keys.c.admin).where(
    t.api_keys.c.key_hash == sa.bindparam("key_hash"), t.api_keys.c.revoked_at.is_(None))


def authenticate(conn: Connection, key: str) -> Caller | None:
    row = conn.execute(_CALLER, {"key_hash": hash_secret(key)}).first()
    return Caller(row.tenant_id, bool(row.admin)) if row else None


async def caller(reader: direct.Reader, key: str) -> Caller | None:
    """:func:`authenticate` from the event loop (db/direct.py)."""
    found = await reader.rows(_CALLER, key_hash=hash_secret(key))
    return Caller(found[0][0], bool(found[0][1])) if found else None


def list_all(conn: Connection) -> list[Tenant]:
    return rows.every(conn, sa.select(t.tenants).order_by(t.tenants.c.created_at), Tenant)


def count(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(t.tenants)).scalar_one())


def max_concurrent_jobs(conn: Connection, tenant_id: str) -> int | None:
    return conn.execute(sa.select(t.tenants.c.max_concurrent_jobs).where(
        t.tenants.c.id == tenant_id)).scalar()


def webhook_secret(conn: Connection, tenant_id: str) -> str:
    """The secret that signs calls to this tenant's notify_urls (made on first use)."""
    secret = conn.execute(sa.select(t.tenants.c.webhook_secret).where(
        t.tenants.c.id == tenant_id)).scalar()
    if not secret:
        secret = "whsec_" + secrets.token_hex(24)
        conn.execute(t.tenants.update().where(t.tenants.c.id == tenant_id).values(
            webhook_secret=secret))
    return str(secret)

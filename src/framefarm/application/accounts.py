"""Tenants and API keys: who may call the API, and as whom."""

from __future__ import annotations

import dataclasses

from framefarm.db.database import Database
from framefarm.records import Caller, Tenant
from framefarm.repos import tenants
from framefarm.repos.tenants import ApiKey

__all__ = ["Accounts", "ApiKey"]


@dataclasses.dataclass
class Accounts:
    """Needs only the database, so the admin commands can use it without storage.

    Every request's key is checked in the database, never trusted from a cache: a revoked
    key is refused from the revocation's commit on, by every API process."""

    db: Database

    def create_tenant(self, name: str, *, admin: bool = False,
                      max_concurrent_jobs: int | None = None) -> tuple[str, str]:
        """A new tenant and its first API key (returned once, stored hashed)."""
        tenant_id, _key_id, key = self.create_tenant_with_key(
            name, admin=admin, max_concurrent_jobs=max_concurrent_jobs)
        return tenant_id, key

    def create_tenant_with_key(self, name: str, *, admin: bool = False,
                               max_concurrent_jobs: int | None = None
                               ) -> tuple[str, str, str]:
        """A new tenant and its first API key: (tenant id, key id, key)."""
        now = self.db.now()
        with self.db.tx() as conn:
            tenant_id = tenants.create(conn, name, now=now,
                                       max_concurrent_jobs=max_concurrent_jobs)
            key_id, key = tenants.add_key(conn, tenant_id, admin=admin, now=now)
            return tenant_id, key_id, key

    def create_key(self, tenant_id: str, *, admin: bool = False) -> str:
        return self.add_key(tenant_id, admin=admin)[1]

    def add_key(self, tenant_id: str, *, admin: bool = False) -> tuple[str, str]:
        """Another API key for the tenant: (its id, the key, shown once)."""
        with self.db.tx() as conn:
            return tenants.add_key(conn, tenant_id, admin=admin, now=self.db.now())

    def keys(self, tenant_id: str) -> list[ApiKey]:
        """The tenant's keys (revoked ones too), without the keys themselves."""
        with self.db.read() as conn:
            return tenants.keys(conn, tenant_id)

    def revoke_key(self, key_id: str) -> ApiKey:
        """Revoke a key; every API process refuses it from the next request on."""
        with self.db.tx() as conn:
            return tenants.revoke_key(conn, key_id, now=self.db.now())

    def authenticate(self, key: str) -> Caller | None:
        """Who the key is (None: unknown or revoked), from a worker thread."""
        with self.db.read() as conn:
            return tenants.authenticate(conn, key)

    async def caller(self, key: str) -> Caller | None:
        """:meth:`authenticate` from the event loop: one statement on the driver
        (db/direct.py), no thread-pool trip; what every tenant route's key costs."""
        return await tenants.caller(self.db.direct, key)

    def tenant(self, tenant_id: str) -> Tenant:
        with self.db.read() as conn:
            return tenants.get(conn, tenant_id)

    def list_tenants(self) -> list[Tenant]:
        with self.db.read() as conn:
            return tenants.list_all(conn)

    def count_tenants(self) -> int:
        with self.db.read() as conn:
            return tenants.count(conn)

"""Tenants and API keys: who may call the API, and as whom."""

from __future__ import annotations

import dataclasses

from framefarm.db.database import Database
from framefarm.records import Caller, Tenant
from framefarm.repos import tenants


@dataclasses.dataclass
class Accounts:
    """Needs only the database, so the admin commands can use it without storage."""

    db: Database

    def create_tenant(self, name: str, *, admin: bool = False,
                      max_concurrent_jobs: int | None = None) -> tuple[str, str]:
        """A new tenant and its first API key (returned once, stored hashed)."""
        now = self.db.now()
        with self.db.tx() as conn:
            tenant_id = tenants.create(conn, name, now=now,
                                       max_concurrent_jobs=max_concurrent_jobs)
            return tenant_id, tenants.add_key(conn, tenant_id, admin=admin, now=now)

    def create_key(self, tenant_id: str, *, admin: bool = False) -> str:
        with self.db.tx() as conn:
            return tenants.add_key(conn, tenant_id, admin=admin, now=self.db.now())

    def authenticate(self, key: str) -> Caller | None:
        with self.db.read() as conn:
            return tenants.authenticate(conn, key)

    def list_tenants(self) -> list[Tenant]:
        with self.db.read() as conn:
            return tenants.list_all(conn)

    def count_tenants(self) -> int:
        with self.db.read() as conn:
            return tenants.count(conn)

"""Tenants and API keys: who may call the API, and as whom."""

from __future__ import annotations

import dataclasses
import time

from framefarm.db.database import Database, hash_secret
from framefarm.records import Caller, Tenant
from framefarm.repos import tenants
from framefarm.repos.tenants import ApiKey

__all__ = ["Accounts", "ApiKey"]

# A key that authenticated is trusted this long without asking the database again: every
# API request checks its key, and this saves most of them a transaction. A revoked key is
# refused at once by the process that revoked it, by the others within this time.
AUTH_CACHE_SECONDS = 5.0
_AUTH_CACHE_SIZE = 10_000


@dataclasses.dataclass
class Accounts:
    """Needs only the database, so the admin commands can use it without storage."""

    db: Database
    # sha256 of a key -> (when it was checked, who it is); only keys that were valid.
    _known: dict[str, tuple[float, Caller]] = dataclasses.field(default_factory=dict,
                                                                init=False, repr=False)

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
        """Revoke a key; it is refused from the next request on (in other API processes,
        within AUTH_CACHE_SECONDS)."""
        with self.db.tx() as conn:
            revoked = tenants.revoke_key(conn, key_id, now=self.db.now())
        self._known.clear()
        return revoked

    def authenticate(self, key: str) -> Caller | None:
        digest = hash_secret(key)
        now = time.monotonic()
        known = self._known.get(digest)
        if known is not None and now - known[0] < AUTH_CACHE_SECONDS:
            return known[1]
        with self.db.read() as conn:
            found = tenants.authenticate(conn, key)
        if found is None:
            self._known.pop(digest, None)
        else:
            if len(self._known) >= _AUTH_CACHE_SIZE:
                self._known.clear()
            self._known[digest] = (now, found)
        return found

    def tenant(self, tenant_id: str) -> Tenant:
        with self.db.read() as conn:
            return tenants.get(conn, tenant_id)

    def list_tenants(self) -> list[Tenant]:
        with self.db.read() as conn:
            return tenants.list_all(conn)

    def count_tenants(self) -> int:
        with self.db.read() as conn:
            return tenants.count(conn)

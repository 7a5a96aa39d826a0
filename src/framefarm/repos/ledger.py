"""Tenants' credit balances and the ledger of every change to one. A balance is only ever
changed by :func:`apply`, which writes its ledger row in the same statement pair, so a
balance is always the sum of its tenant's ledger."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from framefarm.db import schema as t
from framefarm.queue.errors import NotFound
from framefarm.records import LedgerEntry
from framefarm.repos import rows

KINDS = ("grant", "reserve", "settle", "refund", "adjust")


@dataclasses.dataclass(frozen=True, slots=True)
class Account:
    """A tenant's plan, balance and concurrent-jobs limit, read under its row's lock."""

    plan: dict[str, Any] | None
    balance: int | None
    max_concurrent_jobs: int | None


def lock_tenant(conn: Connection, tenant_id: str) -> Account:
    """The tenant's account, its row held until the transaction ends: concurrent submits
    and settlements of one tenant take turns, so none spends what another reserved.
    FOR NO KEY UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers):
    it does not wait for the key-share locks that inserting the tenant's jobs, exports
    and ledger rows take, so two finishing jobs of one tenant cannot deadlock."""
    row = conn.execute(sa.select(t.tenants.c.plan, t.tenants.c.credit_balance,
                                 t.tenants.c.max_concurrent_jobs)
                       .where(t.tenants.c.id == tenant_id)
                       .with_for_update(key_share=True)).first()
    if row is None:
        raise NotFound(f"no tenant {tenant_id}")
    return Account(row.plan, row.credit_balance, row.max_concurrent_jobs)


def account(conn: Connection, tenant_id: str) -> Account:
    """The tenant's account, unlocked (for reading)."""
    row = conn.execute(sa.select(t.tenants.c.plan, t.tenants.c.credit_balance,
                                 t.tenants.c.max_concurrent_jobs)
                       .where(t.tenants.c.id == tenant_id)).first()
    if row is None:
        raise NotFound(f"no tenant {tenant_id}")
    return Account(row.plan, row.credit_balance, row.max_concurrent_jobs)


def set_plan(conn: Connection, tenant_id: str, plan: dict[str, Any] | None) -> None:
    if not conn.execute(t.tenants.update().where(t.tenants.c.id == tenant_id)
                        .values(plan=plan)).rowcount:
        raise NotFound(f"no tenant {tenant_id}")


def apply(conn: Connection, tenant_id: str, amount: int, kind: str, *, now: dt.datetime,
          job_id: str | None = None, batch_id: str | None = None,
          note: str | None = None) -> LedgerEntry:
    """Add ``amount`` (signed) to the balance (a tenant without one starts at 0) and write
    the ledger row saying so. The caller holds the tenant's lock (:func:`lock_tenant`)."""
    assert kind in KINDS, kind
    balance = t.tenants.c.credit_balance
    conn.execute(t.tenants.update().where(t.tenants.c.id == tenant_id)
                 .values(credit_balance=sa.func.coalesce(balance, 0) + amount))
    after = int(conn.execute(sa.select(balance).where(t.tenants.c.id == tenant_id))
                .scalar_one())
    inserted = conn.execute(t.ledger.insert().values(
        tenant_id=tenant_id, at=now, amount=amount, kind=kind, job_id=job_id,
        batch_id=batch_id, balance_after=after, note=note)).inserted_primary_key
    assert inserted is not None
    entry_id = inserted[0]
    return LedgerEntry(int(entry_id), tenant_id, now, amount, kind, job_id, batch_id, after,
                       note)


def entries(conn: Connection, tenant_id: str, *, limit: int = 100,
            before: int | None = None) -> list[LedgerEntry]:
    """The tenant's ledger, newest first; ``before``: the id of the last one of the
    previous page."""
    query = sa.select(t.ledger).where(t.ledger.c.tenant_id == tenant_id)
    if before is not None:
        query = query.where(t.ledger.c.id < before)
    return rows.every(conn, query.order_by(t.ledger.c.id.desc()).limit(limit), LedgerEntry)


def total(conn: Connection, tenant_id: str) -> int:
    """The sum of the tenant's ledger: what its balance must be."""
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(t.ledger.c.amount), 0))
                            .where(t.ledger.c.tenant_id == tenant_id)).scalar_one())

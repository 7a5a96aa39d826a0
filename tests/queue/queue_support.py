"""Helpers for the queue tests: PostgreSQL test databases, and a small "farm" that makes
tenants, nodes and jobs on a store so each test says only what it is about."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from framefarm.db import schema
from framefarm.queue.clock import ManualClock
from framefarm.queue.store import Claim, Store, TaskPlan

IN_CI = os.environ.get("CI", "").lower() == "true"
ADMIN_URL = os.environ.get(
    "FRAMEFARM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def connect_admin(url: str = ADMIN_URL) -> psycopg.Connection[Any]:
    """A psycopg connection (autocommit) to the admin database of a SQLAlchemy URL."""
    u = sa.make_url(url)
    kwargs: dict[str, Any] = u.translate_connect_args(username="user", database="dbname")
    kwargs.update({k: v for k, v in u.query.items() if isinstance(v, str)})
    return psycopg.connect(autocommit=True, connect_timeout=5, **kwargs)


def safe_url(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def database_url(admin_url: str, name: str) -> str:
    return sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def new_database_name(purpose: str) -> str:
    return f"ff_test_{purpose}_{os.getpid()}_{secrets.token_hex(3)}"


def create_database(admin_url: str, name: str) -> str:
    assert name.startswith("ff_test_")
    with connect_admin(admin_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    assert name.startswith("ff_test_")
    with connect_admin(admin_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_all_tables(url: str) -> None:
    """Delete every row (cheaper than TRUNCATE for the few rows a test leaves)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for table in reversed(schema.metadata.sorted_tables):
                conn.execute(table.delete())
    finally:
        engine.dispose()


def render_plan(renders: int, frames_per_chunk: int = 10, audio: bool = True) -> list[TaskPlan]:
    total = renders * frames_per_chunk
    plan = [TaskPlan("render", i, i * frames_per_chunk, (i + 1) * frames_per_chunk)
            for i in range(renders)]
    if audio:
        plan.append(TaskPlan("audio", renders, 0, total))
    plan.append(TaskPlan("assemble", len(plan), 0, total, waiting=True))
    return plan


class Farm:
    """Tenants, nodes and jobs on one store, with the test's manual clock."""

    def __init__(self, store: Store, clock: ManualClock) -> None:
        self.store = store
        self.clock = clock
        self._names = 0

    def _name(self, prefix: str) -> str:
        self._names += 1
        return f"{prefix}-{self._names}"

    def tenant(self, name: str | None = None, **kwargs: Any) -> str:
        tenant_id, _key = self.store.create_tenant(name or self._name("tenant"), **kwargs)
        return tenant_id

    def node(self, name: str | None = None) -> str:
        node_id, _secret = self.store.register_node(name or self._name("node"), {"cores": 4})
        return node_id

    def nodes(self, count: int) -> list[str]:
        return [self.node() for _ in range(count)]

    def submit(self, tenant_id: str, plan: Sequence[TaskPlan], *, priority: int = 0,
               idempotency_key: str | None = None, kind: str = "render") -> RowMapping:
        frames = max((p.frame_end for p in plan), default=0)
        job, _created = self.store.submit(
            tenant_id, kind=kind, document={"doc": 1}, options={"format": "mp4"},
            assets={"a.png": "0" * 64}, frames_total=frames, fps=24, plan=plan,
            priority=priority, idempotency_key=idempotency_key)
        return job

    def render_job(self, tenant_id: str, renders: int = 2, frames_per_chunk: int = 10,
                   **kwargs: Any) -> RowMapping:
        return self.submit(tenant_id, render_plan(renders, frames_per_chunk), **kwargs)

    def snapshot_job(self, tenant_id: str, **kwargs: Any) -> RowMapping:
        return self.submit(tenant_id, [TaskPlan("snapshot", 0, 5, 6)], kind="snapshot",
                           **kwargs)

    def job(self, job_id: str) -> RowMapping:
        return self.store.get_job(None, job_id)

    def tasks(self, job_id: str) -> list[RowMapping]:
        return self.store.job_tasks(job_id)

    def task(self, task_id: str) -> RowMapping:
        with self.store.engine.connect() as conn:
            return conn.execute(sa.select(schema.tasks).where(
                schema.tasks.c.id == task_id)).mappings().one()

    def task_states(self, job_id: str) -> dict[str, str]:
        return {f"{r['kind']}{r['idx']}": r["state"] for r in self.tasks(job_id)}

    def claim(self, node_id: str) -> Claim:
        claim = self.store.claim(node_id)
        assert claim is not None, f"node {node_id} got nothing to do"
        return claim

    def finish(self, claim: Claim) -> RowMapping:
        return self.store.complete(claim.task_id, claim.lease_token, f"out/{claim.task_id}")

    def run_all(self, node_id: str, limit: int = 1000) -> list[Claim]:
        """Claim and complete until nothing is left for this node."""
        done = []
        for _ in range(limit):
            claim = self.store.claim(node_id)
            if claim is None:
                return done
            self.finish(claim)
            done.append(claim)
        raise AssertionError("the queue never ran dry")


def counts(rows: Mapping[str, int]) -> dict[str, int]:
    return {k: v for k, v in rows.items() if v}


class AssemblyStalled(AssertionError):
    """Tasks wait for dependencies that all succeeded: they will never run."""

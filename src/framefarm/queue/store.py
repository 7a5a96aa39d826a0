"""The job queue and everything the service keeps: one :class:`Store` on SQLAlchemy Core,
with two implementations that differ only where the databases do.

- :class:`SqliteStore` — every transaction starts with ``BEGIN IMMEDIATE`` (one writer at
  a time, WAL so readers are not blocked).
- :class:`PostgresStore` — the claim locks one candidate row with ``FOR UPDATE SKIP
  LOCKED``, so concurrent claimers never wait for each other nor get the same task.

Every method takes the time from the injected clock. Tenants only ever reach rows of their
own: lookups take the tenant id and return None (-> 404) for anything else.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from framefarm.db import schema as t
from framefarm.queue import states
from framefarm.queue.clock import Clock, SystemClock
from framefarm.queue.states import JobState, TaskState


class QueueError(Exception):
    """A queue operation was refused."""


class StaleLease(QueueError):
    """The lease token is not the task's current one: the task was requeued, finished or
    cancelled since. The node must drop its work (HTTP 409)."""


class TooManyJobs(QueueError):
    """The tenant already has as many unfinished jobs as it may (HTTP 429)."""


class NotFound(QueueError):
    """No such row for this tenant (HTTP 404)."""


class Conflict(QueueError):
    """The request conflicts with the row's state (HTTP 409)."""


_T = TypeVar("_T")


def _retry_deadlocks(method: Callable[..., _T]) -> Callable[..., _T]:
    """Run a queue operation again when PostgreSQL aborted it as a deadlock victim: a
    claim locks a task then its job, a cancel the job then its tasks; rarely, the two
    meet. The retry sees the other's committed result."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> _T:
        for attempt in range(5):
            try:
                return method(*args, **kwargs)
            except sa.exc.DBAPIError as exc:
                code = getattr(exc.orig, "sqlstate", None)
                if code not in ("40P01", "40001") or attempt == 4:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    return wrapper


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class QueueSettings:
    lease_seconds: float = 30.0
    max_attempts: int = 3
    retry_backoff_seconds: float = 2.0
    node_block_failures: int = 2
    max_concurrent_jobs: int = 50
    node_offline_seconds: float = 60.0


@dataclasses.dataclass(frozen=True)
class ExportMeta:
    """What an export records about its file."""

    storage_key: str
    size: int
    duration: float
    width: int
    height: int
    codec: str
    fmt: str
    keep_days: float


@dataclasses.dataclass(frozen=True)
class TaskPlan:
    kind: str
    idx: int
    frame_start: int = 0
    frame_end: int = 0
    waiting: bool = False


@dataclasses.dataclass(frozen=True)
class Claim:
    task_id: str
    job_id: str
    tenant_id: str
    kind: str
    idx: int
    frame_start: int
    frame_end: int
    lease_token: str
    lease_expires_at: dt.datetime


def plan_render(frames_total: int, fps: int, nodes: int, min_chunk_seconds: float,
                max_chunks: int = 64) -> list[TaskPlan]:
    """Chunks of at least ``min_chunk_seconds``, about one per node (two when there are
    few, so a slow node does not hold the job up), plus the audio and assemble tasks."""
    longest = max(1, frames_total // max(1, round(min_chunk_seconds * fps)))
    count = max(1, min(longest, max_chunks, max(1, nodes) * (2 if nodes <= 4 else 1)))
    base, extra = divmod(frames_total, count)
    plans, start = [], 0
    for i in range(count):
        end = start + base + (1 if i < extra else 0)
        plans.append(TaskPlan("render", i, start, end))
        start = end
    plans.append(TaskPlan("audio", count, 0, frames_total))
    plans.append(TaskPlan("assemble", count + 1, 0, frames_total, waiting=True))
    return plans


class Store:
    """Shared logic; subclasses set up the engine and choose the claim query."""

    def __init__(self, engine: Engine, clock: Clock | None = None,
                 settings: QueueSettings | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self.settings = settings or QueueSettings()

    # -- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def now(self) -> dt.datetime:
        return self.clock.now()

    def create_schema(self) -> None:
        t.metadata.create_all(self.engine)

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()

    # -- tenants and keys ---------------------------------------------------------------------

    def create_tenant(self, name: str, *, admin: bool = False,
                      max_concurrent_jobs: int | None = None) -> tuple[str, str]:
        """A new tenant and its first API key (returned once, stored hashed)."""
        tenant_id = new_id("ten")
        with self.tx() as conn:
            if conn.execute(sa.select(t.tenants.c.id).where(t.tenants.c.name == name)).first():
                raise Conflict(f"a tenant named {name!r} exists")
            conn.execute(t.tenants.insert().values(
                id=tenant_id, name=name, max_concurrent_jobs=max_concurrent_jobs,
                created_at=self.now()))
            key = self._insert_key(conn, tenant_id, admin)
        return tenant_id, key

    def create_key(self, tenant_id: str, *, admin: bool = False) -> str:
        with self.tx() as conn:
            if not conn.execute(sa.select(t.tenants.c.id).where(
                    t.tenants.c.id == tenant_id)).first():
                raise NotFound(f"no tenant {tenant_id}")
            return self._insert_key(conn, tenant_id, admin)

    def _insert_key(self, conn: Connection, tenant_id: str, admin: bool) -> str:
        key = "ff_" + secrets.token_urlsafe(32)
        conn.execute(t.api_keys.insert().values(
            id=new_id("key"), tenant_id=tenant_id, key_hash=hash_secret(key), admin=admin,
            created_at=self.now()))
        return key

    def authenticate(self, key: str) -> tuple[str, bool] | None:
        """(tenant id, is admin) for a valid API key."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.api_keys.c.tenant_id, t.api_keys.c.admin).where(
                t.api_keys.c.key_hash == hash_secret(key), t.api_keys.c.revoked_at.is_(None),
            )).first()
        return (row.tenant_id, bool(row.admin)) if row else None

    def list_tenants(self) -> list[RowMapping]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(t.tenants).order_by(t.tenants.c.created_at))
                        .mappings())

    def count_tenants(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.tenants))
                       .scalar_one())

    # -- projects, assets, templates ----------------------------------------------------------

    def create_project(self, tenant_id: str, name: str) -> RowMapping:
        now = self.now()
        project_id = new_id("prj")
        with self.tx() as conn:
            conn.execute(t.projects.insert().values(
                id=project_id, tenant_id=tenant_id, name=name, document=None, created_at=now,
                updated_at=now))
        return self.get_project(tenant_id, project_id)

    def get_project(self, tenant_id: str, project_id: str) -> RowMapping:
        with self.engine.connect() as conn:
            query = sa.select(t.projects).where(t.projects.c.id == project_id,
                                                t.projects.c.tenant_id == tenant_id)
            row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"no project {project_id}")
        return row

    def list_projects(self, tenant_id: str) -> list[RowMapping]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(t.projects).where(
                t.projects.c.tenant_id == tenant_id).order_by(t.projects.c.created_at)).mappings())

    def put_document(self, tenant_id: str, project_id: str, document: Any) -> None:
        self.get_project(tenant_id, project_id)
        with self.tx() as conn:
            conn.execute(t.projects.update().where(t.projects.c.id == project_id).values(
                document=document, updated_at=self.now()))

    def add_asset(self, tenant_id: str, project_id: str, name: str, sha256: str,
                  size: int) -> None:
        self.get_project(tenant_id, project_id)
        with self.tx() as conn:
            conn.execute(t.assets.delete().where(t.assets.c.project_id == project_id,
                                                 t.assets.c.name == name))
            conn.execute(t.assets.insert().values(project_id=project_id, name=name,
                                                  sha256=sha256, size=size,
                                                  created_at=self.now()))

    def list_assets(self, tenant_id: str, project_id: str) -> list[RowMapping]:
        self.get_project(tenant_id, project_id)
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(t.assets).where(
                t.assets.c.project_id == project_id).order_by(t.assets.c.name)).mappings())

    def delete_asset(self, tenant_id: str, project_id: str, name: str) -> None:
        self.get_project(tenant_id, project_id)
        with self.tx() as conn:
            gone = conn.execute(t.assets.delete().where(
                t.assets.c.project_id == project_id, t.assets.c.name == name)).rowcount
        if not gone:
            raise NotFound(f"no asset {name!r} in project {project_id}")

    def sha_in_use(self, sha256: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(t.assets.c.name).where(
                t.assets.c.sha256 == sha256).limit(1)).first() is not None

    def create_template(self, tenant_id: str, name: str, document: Any,
                        project_id: str | None) -> RowMapping:
        template_id = new_id("tpl")
        with self.tx() as conn:
            conn.execute(t.templates.insert().values(
                id=template_id, tenant_id=tenant_id, name=name, document=document,
                project_id=project_id, created_at=self.now()))
        return self.get_template(tenant_id, template_id)

    def get_template(self, tenant_id: str, template_id: str) -> RowMapping:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.templates).where(
                t.templates.c.id == template_id,
                t.templates.c.tenant_id == tenant_id)).mappings().first()
        if row is None:
            raise NotFound(f"no template {template_id}")
        return row

    def list_templates(self, tenant_id: str) -> list[RowMapping]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(t.templates).where(
                t.templates.c.tenant_id == tenant_id).order_by(t.templates.c.created_at))
                .mappings())

    # -- jobs ---------------------------------------------------------------------------------

    def submit(
        self, tenant_id: str, *, kind: str, document: Any, options: Mapping[str, Any],
        assets: Mapping[str, str], frames_total: int, fps: int, plan: Sequence[TaskPlan],
        priority: int = 0, project_id: str | None = None, idempotency_key: str | None = None,
        notify_url: str | None = None, attempt: int = 1, retry_of: str | None = None,
    ) -> tuple[RowMapping, bool]:
        """Queue a job and its tasks. Returns (job, created): with a known idempotency key
        the existing job comes back and nothing is queued."""
        if not plan:
            raise ValueError("a job needs at least one task")
        now = self.now()
        job_id = new_id("job")
        with self.tx() as conn:
            if idempotency_key:
                existing = conn.execute(sa.select(t.jobs.c.id).where(
                    t.jobs.c.tenant_id == tenant_id,
                    t.jobs.c.idempotency_key == idempotency_key)).first()
                if existing:
                    return self._job(conn, tenant_id, existing.id), False
            limit = conn.execute(sa.select(t.tenants.c.max_concurrent_jobs).where(
                t.tenants.c.id == tenant_id)).scalar()
            if limit is None:
                limit = self.settings.max_concurrent_jobs
            active = conn.execute(sa.select(sa.func.count()).select_from(t.jobs).where(
                t.jobs.c.tenant_id == tenant_id,
                t.jobs.c.state.in_([JobState.QUEUED, JobState.RUNNING]))).scalar_one()
            if active >= limit:
                raise TooManyJobs(f"the tenant has {active} unfinished jobs; the limit is {limit}")
            conn.execute(t.jobs.insert().values(
                id=job_id, tenant_id=tenant_id, kind=kind, state=JobState.QUEUED,
                step="queued", priority=priority, project_id=project_id, document=document,
                options=dict(options), assets=dict(assets), frames_total=frames_total, fps=fps,
                attempt=attempt, retry_of=retry_of, idempotency_key=idempotency_key,
                notify_url=notify_url, created_at=now, updated_at=now))
            conn.execute(t.tasks.insert(), [
                dict(id=new_id("tsk"), job_id=job_id, tenant_id=tenant_id, kind=p.kind,
                     idx=p.idx, frame_start=p.frame_start, frame_end=p.frame_end,
                     state=TaskState.WAITING if p.waiting else TaskState.QUEUED,
                     priority=priority, job_created_at=now, failures=0, requeues=0,
                     not_before=now, frames_done=0)
                for p in plan
            ])
            self._log(conn, job_id, "info", f"queued: {len(plan)} tasks, {frames_total} frames")
            return self._job(conn, tenant_id, job_id), True

    def _job(self, conn: Connection, tenant_id: str | None, job_id: str) -> RowMapping:
        query = sa.select(t.jobs).where(t.jobs.c.id == job_id)
        if tenant_id is not None:
            query = query.where(t.jobs.c.tenant_id == tenant_id)
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"no job {job_id}")
        return row

    def get_job(self, tenant_id: str | None, job_id: str) -> RowMapping:
        """A job; ``tenant_id`` None is for nodes and admins."""
        with self.engine.connect() as conn:
            return self._job(conn, tenant_id, job_id)

    def job_update_times(self, job_ids: Sequence[str]) -> dict[str, dt.datetime]:
        """When each of these jobs last changed (one query for many watchers)."""
        found: dict[str, dt.datetime] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(job_ids), 500):
                batch = list(job_ids[start:start + 500])
                found.update((row.id, row.updated_at) for row in conn.execute(
                    sa.select(t.jobs.c.id, t.jobs.c.updated_at).where(t.jobs.c.id.in_(batch))))
        return found

    def job_tasks(self, job_id: str) -> list[RowMapping]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(t.tasks).where(t.tasks.c.job_id == job_id)
                                     .order_by(t.tasks.c.idx)).mappings())

    def summary(self, job: RowMapping) -> states.Summary:
        tasks = [states.TaskView(r.kind, r.state, r.frame_start, r.frame_end, r.frames_done)
                 for r in self.job_tasks(job["id"])]
        return states.summarise(tasks, cancelled=job["state"] == JobState.CANCELLED,
                                started_at=job["started_at"], now=self.now())

    def list_jobs(self, tenant_id: str, *, state: str | None = None, limit: int = 50,
                  before: str | None = None) -> list[RowMapping]:
        """Newest first; ``before`` is the last id of the previous page."""
        query = sa.select(t.jobs).where(t.jobs.c.tenant_id == tenant_id)
        if state:
            query = query.where(t.jobs.c.state == state)
        with self.engine.connect() as conn:
            if before:
                anchor = self._job(conn, tenant_id, before)
                query = query.where(sa.or_(
                    t.jobs.c.created_at < anchor["created_at"],
                    sa.and_(t.jobs.c.created_at == anchor["created_at"], t.jobs.c.id < before)))
            query = query.order_by(t.jobs.c.created_at.desc(), t.jobs.c.id.desc()).limit(limit)
            return list(conn.execute(query).mappings())

    @_retry_deadlocks
    def cancel(self, tenant_id: str | None, job_id: str) -> RowMapping:
        """Queued tasks stop at once; running ones are told at their next report."""
        with self.tx() as conn:
            self._job(conn, tenant_id, job_id)  # 404 for other tenants, before locking
            self._lock_job(conn, job_id)
            job = self._job(conn, tenant_id, job_id)
            if job["state"] in states.FINISHED_JOB:
                raise Conflict(f"job {job_id} already {job['state']}")
            now = self.now()
            conn.execute(t.tasks.update().where(
                t.tasks.c.job_id == job_id, t.tasks.c.state.in_(states.UNFINISHED_TASK),
            ).values(state=TaskState.CANCELLED, finished_at=now))
            conn.execute(t.jobs.update().where(t.jobs.c.id == job_id).values(
                state=JobState.CANCELLED, step="cancelled", finished_at=now, updated_at=now))
            self._log(conn, job_id, "info", "cancelled")
            return self._job(conn, tenant_id, job_id)

    def retry(self, tenant_id: str, job_id: str) -> RowMapping:
        """A new attempt of a failed or cancelled job, with the same document and options."""
        old = self.get_job(tenant_id, job_id)
        if old["state"] not in (JobState.FAILED, JobState.CANCELLED):
            raise Conflict(f"only failed or cancelled jobs can be retried; this one is "
                           f"{old['state']}")
        plan = [TaskPlan(r.kind, r.idx, r.frame_start, r.frame_end,
                         waiting=r.kind == "assemble") for r in self.job_tasks(job_id)]
        job, _ = self.submit(
            tenant_id, kind=old["kind"], document=old["document"], options=old["options"],
            assets=old["assets"], frames_total=old["frames_total"], fps=old["fps"], plan=plan,
            priority=old["priority"], project_id=old["project_id"],
            notify_url=old["notify_url"], attempt=old["attempt"] + 1, retry_of=job_id)
        return job

    # -- logs ---------------------------------------------------------------------------------

    def _log(self, conn: Connection, job_id: str, level: str, message: str,
             task_id: str | None = None, node_id: str | None = None) -> None:
        conn.execute(t.job_logs.insert().values(job_id=job_id, at=self.now(), level=level,
                                                message=message[:8000], task_id=task_id,
                                                node_id=node_id))

    def logs(self, tenant_id: str, job_id: str, level: str | None = None) -> list[RowMapping]:
        self.get_job(tenant_id, job_id)
        query = sa.select(t.job_logs).where(t.job_logs.c.job_id == job_id)
        order = ["debug", "info", "warning", "error"]
        if level in order:
            query = query.where(t.job_logs.c.level.in_(order[order.index(level):]))
        with self.engine.connect() as conn:
            return list(conn.execute(query.order_by(t.job_logs.c.id)).mappings())

    # -- nodes ----------------------------------------------------------------------------------

    def register_node(self, name: str, capabilities: Mapping[str, Any]) -> tuple[str, str]:
        node_id, secret = new_id("node"), secrets.token_urlsafe(32)
        with self.tx() as conn:
            conn.execute(t.nodes.insert().values(
                id=node_id, name=name[:200], secret_hash=hash_secret(secret),
                capabilities=dict(capabilities), draining=False, last_heartbeat=self.now(),
                tasks_done=0, tasks_failed=0, crashes=0, created_at=self.now()))
        return node_id, secret

    def authenticate_node(self, node_id: str, secret: str) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.nodes.c.secret_hash).where(
                t.nodes.c.id == node_id)).first()
        return row is not None and secrets.compare_digest(row.secret_hash, hash_secret(secret))

    def list_nodes(self) -> list[RowMapping]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(t.nodes).order_by(t.nodes.c.created_at))
                        .mappings())

    def get_node(self, node_id: str) -> RowMapping:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.nodes).where(t.nodes.c.id == node_id)).mappings().first()
        if row is None:
            raise NotFound(f"no node {node_id}")
        return row

    def node_status(self, node: RowMapping) -> str:
        beat = node["last_heartbeat"]
        if beat is None or (self.now() - beat).total_seconds() > self.settings.node_offline_seconds:
            return "offline"
        if node["draining"]:
            return "draining"
        return "busy" if node["current_task_id"] else "online"

    def set_draining(self, node_id: str, draining: bool) -> None:
        self.get_node(node_id)
        with self.tx() as conn:
            conn.execute(t.nodes.update().where(t.nodes.c.id == node_id).values(
                draining=draining))

    @_retry_deadlocks
    def release_node(self, node_id: str) -> int:
        """Requeue the node's running tasks now (an admin's answer to a stuck node)."""
        self.get_node(node_id)
        with self.tx() as conn:
            rows = conn.execute(sa.select(t.tasks.c.id, t.tasks.c.job_id).where(
                t.tasks.c.node_id == node_id, t.tasks.c.state == TaskState.RUNNING)).all()
            released = sum(self._requeue(conn, row.id, row.job_id, "released by an admin",
                                         node_id=node_id) for row in rows)
            conn.execute(t.nodes.update().where(t.nodes.c.id == node_id).values(
                current_task_id=None))
        return released

    def record_sample(self, node_id: str, *, load: float | None, memory_used: int | None,
                      task_id: str | None, frames_done: int | None,
                      keep: dt.timedelta = dt.timedelta(hours=24)) -> None:
        """One point of a node's health history; points older than ``keep`` are dropped."""
        now = self.now()
        with self.tx() as conn:
            conn.execute(t.node_samples.insert().values(
                node_id=node_id, at=now, load=load, memory_used=memory_used, task_id=task_id,
                frames_done=frames_done))
            conn.execute(t.node_samples.delete().where(t.node_samples.c.node_id == node_id,
                                                       t.node_samples.c.at < now - keep))

    def node_samples(self, node_id: str, limit: int = 200) -> list[RowMapping]:
        self.get_node(node_id)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.node_samples).where(
                t.node_samples.c.node_id == node_id).order_by(t.node_samples.c.id.desc())
                .limit(limit)).mappings()
            return list(reversed(list(rows)))

    def node_crashes(self, node_id: str, limit: int = 50) -> list[RowMapping]:
        self.get_node(node_id)
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(t.node_crashes).where(
                t.node_crashes.c.node_id == node_id).order_by(t.node_crashes.c.id.desc())
                .limit(limit)).mappings())

    def forget_node(self, node_id: str) -> None:
        """Requeue the node's tasks and remove it with its history (it must register
        again to come back)."""
        self.release_node(node_id)
        with self.tx() as conn:
            for table in (t.node_samples, t.node_crashes):
                conn.execute(table.delete().where(table.c.node_id == node_id))
            conn.execute(t.nodes.delete().where(t.nodes.c.id == node_id))

    def node_heartbeat(self, node_id: str, capabilities: Mapping[str, Any] | None = None) -> str:
        """Record that the node is alive; returns 'drain' or 'continue'."""
        with self.tx() as conn:
            values: dict[str, Any] = {"last_heartbeat": self.now()}
            if capabilities:
                values["capabilities"] = dict(capabilities)
            conn.execute(t.nodes.update().where(t.nodes.c.id == node_id).values(**values))
            draining = conn.execute(sa.select(t.nodes.c.draining).where(
                t.nodes.c.id == node_id)).scalar()
        return "drain" if draining else "continue"

    # -- claiming and leases ------------------------------------------------------------------

    def _candidates(self, node_id: str, now: dt.datetime) -> sa.Select[Any]:
        """Runnable tasks for this node in claim order: priority, then fairness between
        tenants (fewest running tasks first), then age, then chunk index; a task this node
        just failed goes last, and jobs that blocked this node are skipped."""
        # Running tasks per tenant, counted once per claim (not once per candidate row).
        running_tasks = t.tasks.alias("running_tasks")
        running = (
            sa.select(running_tasks.c.tenant_id, sa.func.count().label("n"))
            .where(running_tasks.c.state == TaskState.RUNNING)
            .group_by(running_tasks.c.tenant_id)
            .subquery("running")
        )
        blocked = sa.select(t.node_blocks.c.job_id).where(
            t.node_blocks.c.job_id == t.tasks.c.job_id, t.node_blocks.c.node_id == node_id,
            t.node_blocks.c.blocked.is_(True)).exists()
        return (
            sa.select(t.tasks.c.id, t.tasks.c.job_id)
            .select_from(t.tasks.outerjoin(running, running.c.tenant_id == t.tasks.c.tenant_id))
            .where(t.tasks.c.state == TaskState.QUEUED, t.tasks.c.not_before <= now, ~blocked)
            .order_by(t.tasks.c.priority.desc(), sa.func.coalesce(running.c.n, 0).asc(),
                      sa.case((t.tasks.c.last_failed_node == node_id, 1), else_=0),
                      t.tasks.c.job_created_at.asc(), t.tasks.c.idx.asc())
            .limit(1)
        )

    def _lock_candidate(self, conn: Connection, node_id: str,
                        now: dt.datetime) -> Any | None:
        return conn.execute(self._candidates(node_id, now)).first()

    @_retry_deadlocks
    def claim(self, node_id: str) -> Claim | None:
        """Hand this node one runnable task with a fresh lease, or None: nothing to do (or
        the node is draining)."""
        now = self.now()
        self.requeue_expired()
        with self.tx() as conn:
            node = conn.execute(sa.select(t.nodes.c.draining).where(
                t.nodes.c.id == node_id)).first()
            if node is None or node.draining:
                return None
            row = self._lock_candidate(conn, node_id, now)
            if row is None:
                conn.execute(t.nodes.update().where(t.nodes.c.id == node_id).values(
                    last_heartbeat=now, current_task_id=None))
                return None
            token = secrets.token_hex(16)
            expires = now + dt.timedelta(seconds=self.settings.lease_seconds)
            conn.execute(t.tasks.update().where(t.tasks.c.id == row.id).values(
                state=TaskState.RUNNING, node_id=node_id, lease_token=token,
                lease_expires_at=expires, started_at=now, frames_done=0))
            conn.execute(t.nodes.update().where(t.nodes.c.id == node_id).values(
                last_heartbeat=now, current_task_id=row.id))
            task = conn.execute(sa.select(t.tasks).where(t.tasks.c.id == row.id)).mappings().one()
            self._log(conn, row.job_id, "info",
                      f"{task['kind']} {task['idx']} [{task['frame_start']}, "
                      f"{task['frame_end']}) claimed", row.id, node_id)
            self._refresh_job(conn, row.job_id)
        return Claim(task["id"], task["job_id"], task["tenant_id"], task["kind"], task["idx"],
                     task["frame_start"], task["frame_end"], token, expires)

    def _lock_job(self, conn: Connection, job_id: str) -> None:
        """Serialise changes to one job's tasks. Without it, on PostgreSQL two nodes
        completing the last two chunks at once each see the other's chunk unfinished and
        neither releases the assemble task. (SQLite's BEGIN IMMEDIATE already serialises.)"""
        conn.execute(sa.select(t.jobs.c.id).where(t.jobs.c.id == job_id).with_for_update())

    def _leased(self, conn: Connection, task_id: str, token: str,
                lock: bool = False) -> RowMapping:
        """The task, if ``token`` is its lease. With ``lock``, its job is locked first and
        the task read after, so what the caller checks cannot change before it writes."""
        if lock:
            job_id = conn.execute(sa.select(t.tasks.c.job_id).where(
                t.tasks.c.id == task_id)).scalar()
            if job_id is not None:
                self._lock_job(conn, job_id)
        row = conn.execute(sa.select(t.tasks).where(t.tasks.c.id == task_id)).mappings().first()
        if row is None or row["lease_token"] is None or not secrets.compare_digest(
                row["lease_token"], token):
            raise StaleLease(f"task {task_id}: this lease is no longer valid")
        return row

    @_retry_deadlocks
    def heartbeat(self, task_id: str, token: str, frames_done: int | None = None,
                  preview_key: str | None = None) -> str:
        """Extend a lease (and record progress); returns 'continue' or 'cancel'."""
        now = self.now()
        with self.tx() as conn:
            task = self._leased(conn, task_id, token)
            if task["state"] == TaskState.CANCELLED:
                return "cancel"
            if task["state"] != TaskState.RUNNING:
                raise StaleLease(f"task {task_id} is {task['state']}")
            values: dict[str, Any] = {
                "lease_expires_at": now + dt.timedelta(seconds=self.settings.lease_seconds)}
            if frames_done is not None:
                values["frames_done"] = max(0, min(frames_done,
                                                   task["frame_end"] - task["frame_start"]))
            conn.execute(t.tasks.update().where(t.tasks.c.id == task_id).values(**values))
            conn.execute(t.nodes.update().where(t.nodes.c.id == task["node_id"]).values(
                last_heartbeat=now))
            job_values: dict[str, Any] = {"updated_at": now}
            if preview_key:
                job_values["preview_key"] = preview_key
            conn.execute(t.jobs.update().where(t.jobs.c.id == task["job_id"]).values(**job_values))
        return "continue"

    @_retry_deadlocks
    def complete(self, task_id: str, token: str, output_key: str | None,
                 export: ExportMeta | None = None) -> RowMapping:
        """Mark a leased task done; unblocks the assemble task when its inputs are all done.
        An assemble task's ``export`` is recorded in the same transaction, so a job is never
        seen succeeded without its export. Returns the job row after the change."""
        now = self.now()
        with self.tx() as conn:
            task = self._leased(conn, task_id, token, lock=True)
            if task["state"] != TaskState.RUNNING:
                raise StaleLease(f"task {task_id} is {task['state']}")
            conn.execute(t.tasks.update().where(t.tasks.c.id == task_id).values(
                state=TaskState.SUCCEEDED, output_key=output_key, finished_at=now,
                lease_token=None, lease_expires_at=None,
                frames_done=task["frame_end"] - task["frame_start"]))
            conn.execute(t.nodes.update().where(t.nodes.c.id == task["node_id"]).values(
                tasks_done=t.nodes.c.tasks_done + 1, current_task_id=None, last_heartbeat=now))
            job_id = task["job_id"]
            if task["kind"] in ("assemble", "snapshot"):
                conn.execute(t.jobs.update().where(t.jobs.c.id == job_id).values(
                    result_key=output_key))
            if export is not None and task["kind"] == "assemble":
                self._insert_export(conn, task["tenant_id"], job_id, export)
            pending = conn.execute(sa.select(sa.func.count()).select_from(t.tasks).where(
                t.tasks.c.job_id == job_id, t.tasks.c.kind.in_(["render", "audio"]),
                t.tasks.c.state != TaskState.SUCCEEDED)).scalar_one()
            if pending == 0:
                conn.execute(t.tasks.update().where(
                    t.tasks.c.job_id == job_id, t.tasks.c.state == TaskState.WAITING,
                ).values(state=TaskState.QUEUED, not_before=now))
            self._log(conn, job_id, "info", f"{task['kind']} {task['idx']} done", task_id,
                      task["node_id"])
            self._refresh_job(conn, job_id)
            return self._job(conn, None, job_id)

    @_retry_deadlocks
    def fail(self, task_id: str, token: str, error: str, *, permanent: bool = False,
             step: str | None = None) -> RowMapping:
        """A node reports a failure. Invalid input (``permanent``) fails the job at once;
        otherwise the task is retried later, preferably elsewhere, until it has failed
        ``max_attempts`` times. A node failing one job repeatedly is blocked from it."""
        now = self.now()
        s = self.settings
        with self.tx() as conn:
            task = self._leased(conn, task_id, token, lock=True)
            if task["state"] != TaskState.RUNNING:
                raise StaleLease(f"task {task_id} is {task['state']}")
            job_id, node_id = task["job_id"], task["node_id"]
            failures = task["failures"] + 1
            conn.execute(t.nodes.update().where(t.nodes.c.id == node_id).values(
                tasks_failed=t.nodes.c.tasks_failed + 1, current_task_id=None,
                last_error=error[-4000:]))
            conn.execute(t.node_crashes.insert().values(
                node_id=node_id, at=now, kind="failure", task_id=task_id, job_id=job_id,
                error=error[-4000:]))
            self._count_node_failure(conn, job_id, node_id)
            if permanent or failures >= s.max_attempts:
                conn.execute(t.tasks.update().where(t.tasks.c.id == task_id).values(
                    state=TaskState.FAILED, failures=failures, error=error, finished_at=now,
                    lease_token=None, lease_expires_at=None))
                conn.execute(t.tasks.update().where(
                    t.tasks.c.job_id == job_id, t.tasks.c.state.in_(states.UNFINISHED_TASK),
                ).values(state=TaskState.CANCELLED, finished_at=now))
                conn.execute(t.jobs.update().where(t.jobs.c.id == job_id).values(
                    error=error, failed_step=step or task["kind"]))
                self._log(conn, job_id, "error", f"{task['kind']} {task['idx']} failed"
                          f"{'' if permanent else f' {failures} times'}: {error}", task_id,
                          node_id)
            else:
                delay = s.retry_backoff_seconds * 2 ** (failures - 1)
                conn.execute(t.tasks.update().where(t.tasks.c.id == task_id).values(
                    state=TaskState.QUEUED, failures=failures, error=error,
                    not_before=now + dt.timedelta(seconds=delay), last_failed_node=node_id,
                    node_id=None, lease_token=None, lease_expires_at=None, frames_done=0))
                self._log(conn, job_id, "warning", f"{task['kind']} {task['idx']} failed "
                          f"(attempt {failures}), retrying in {delay:g}s: {error}", task_id,
                          node_id)
            self._refresh_job(conn, job_id)
            return self._job(conn, None, job_id)

    def _count_node_failure(self, conn: Connection, job_id: str, node_id: str) -> None:
        row = conn.execute(sa.select(t.node_blocks.c.failures).where(
            t.node_blocks.c.job_id == job_id, t.node_blocks.c.node_id == node_id)).first()
        failures = (row.failures if row else 0) + 1
        blocked = failures >= self.settings.node_block_failures
        if row:
            conn.execute(t.node_blocks.update().where(
                t.node_blocks.c.job_id == job_id, t.node_blocks.c.node_id == node_id,
            ).values(failures=failures, blocked=blocked))
        else:
            conn.execute(t.node_blocks.insert().values(job_id=job_id, node_id=node_id,
                                                       failures=failures, blocked=blocked))
        if blocked:
            self._log(conn, job_id, "warning", f"node {node_id} blocked for this job after "
                      f"{failures} failures", node_id=node_id)

    @_retry_deadlocks
    def requeue_expired(self) -> int:
        """Requeue running tasks whose lease expired; this spends no retry."""
        now = self.now()
        with self.tx() as conn:
            rows = conn.execute(sa.select(t.tasks.c.id, t.tasks.c.job_id, t.tasks.c.node_id)
                                .where(t.tasks.c.state == TaskState.RUNNING,
                                       t.tasks.c.lease_expires_at < now)).all()
            requeued = 0
            for row in rows:
                # Task (under its job's lock) first, then the node: the order complete() uses.
                if not self._requeue(conn, row.id, row.job_id, "lease expired",
                                     expired_before=now):
                    continue  # finished, requeued or re-leased since the SELECT
                requeued += 1
                conn.execute(t.nodes.update().where(t.nodes.c.id == row.node_id).values(
                    crashes=t.nodes.c.crashes + 1, current_task_id=None))
                conn.execute(t.node_crashes.insert().values(
                    node_id=row.node_id, at=now, kind="lease_expired", task_id=row.id,
                    job_id=row.job_id, error="no heartbeat before the lease expired"))
            # Cancelled tasks whose node went quiet need no more answers.
            conn.execute(t.tasks.update().where(
                t.tasks.c.state == TaskState.CANCELLED, t.tasks.c.lease_expires_at < now,
            ).values(lease_token=None, lease_expires_at=None))
        return requeued

    def _requeue(self, conn: Connection, task_id: str, job_id: str, why: str, *,
                 expired_before: dt.datetime | None = None,
                 node_id: str | None = None) -> bool:
        """Requeue the task if it is still what the caller saw: running (on ``node_id``,
        with a lease expired before ``expired_before``). False if it changed meanwhile."""
        self._lock_job(conn, job_id)
        query = t.tasks.update().where(t.tasks.c.id == task_id,
                                       t.tasks.c.state == TaskState.RUNNING)
        if expired_before is not None:
            query = query.where(t.tasks.c.lease_expires_at < expired_before)
        if node_id is not None:
            query = query.where(t.tasks.c.node_id == node_id)
        previous = conn.execute(sa.select(t.tasks.c.node_id).where(
            t.tasks.c.id == task_id)).scalar()
        changed = conn.execute(query.values(
            state=TaskState.QUEUED, node_id=None, last_failed_node=previous,
            lease_token=None, lease_expires_at=None,
            frames_done=0, requeues=t.tasks.c.requeues + 1, not_before=self.now())).rowcount
        if not changed:
            return False
        self._log(conn, job_id, "warning", f"task requeued: {why}", task_id)
        self._refresh_job(conn, job_id)
        return True

    def _refresh_job(self, conn: Connection, job_id: str) -> None:
        """Write the job's derived state, step and times after a task changed."""
        job = self._job(conn, None, job_id)
        rows = conn.execute(sa.select(t.tasks).where(t.tasks.c.job_id == job_id)).mappings()
        tasks = [states.TaskView(r["kind"], r["state"], r["frame_start"], r["frame_end"],
                                 r["frames_done"]) for r in rows]
        now = self.now()
        summary = states.summarise(tasks, cancelled=job["state"] == JobState.CANCELLED,
                                   started_at=job["started_at"], now=now)
        values: dict[str, Any] = {"state": summary.state, "step": summary.step,
                                  "updated_at": now}
        if summary.state != JobState.QUEUED and job["started_at"] is None:
            values["started_at"] = now
        if summary.state in states.FINISHED_JOB and job["finished_at"] is None:
            values["finished_at"] = now
            self._log(conn, job_id, "info", f"job {summary.state}")
        conn.execute(t.jobs.update().where(t.jobs.c.id == job_id).values(**values))

    def task_for_node(self, task_id: str, token: str) -> RowMapping:
        """The task a node holds a lease on (checked), for downloading its inputs."""
        with self.engine.connect() as conn:
            return self._leased(conn, task_id, token)

    def task_outputs(self, job_id: str) -> list[RowMapping]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(t.tasks).where(
                t.tasks.c.job_id == job_id, t.tasks.c.state == TaskState.SUCCEEDED)
                .order_by(t.tasks.c.idx)).mappings())

    def queue_overview(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.tasks.c.state, sa.func.count()).group_by(
                t.tasks.c.state)).all()
        return {row[0]: int(row[1]) for row in rows}

    # -- exports ----------------------------------------------------------------------------

    def create_export(self, job_id: str, *, storage_key: str, size: int, duration: float,
                      width: int, height: int, codec: str, fmt: str,
                      keep_days: float) -> RowMapping:
        job = self.get_job(None, job_id)
        meta = ExportMeta(storage_key, size, duration, width, height, codec, fmt, keep_days)
        with self.tx() as conn:
            export_id = self._insert_export(conn, job["tenant_id"], job_id, meta)
        return self.get_export(None, export_id)

    def _insert_export(self, conn: Connection, tenant_id: str, job_id: str,
                       meta: ExportMeta) -> str:
        now = self.now()
        export_id = new_id("exp")
        conn.execute(t.exports.insert().values(
            id=export_id, tenant_id=tenant_id, job_id=job_id, storage_key=meta.storage_key,
            size=meta.size, duration=meta.duration, width=meta.width, height=meta.height,
            codec=meta.codec, format=meta.fmt, created_at=now,
            expires_at=now + dt.timedelta(days=meta.keep_days)))
        return export_id

    def get_export(self, tenant_id: str | None, export_id: str) -> RowMapping:
        query = sa.select(t.exports).where(t.exports.c.id == export_id)
        if tenant_id is not None:
            query = query.where(t.exports.c.tenant_id == tenant_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"no export {export_id}")
        return row

    def export_for_job(self, job_id: str) -> RowMapping | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(t.exports).where(t.exports.c.job_id == job_id)
                                ).mappings().first()

    def list_exports(self, tenant_id: str) -> list[RowMapping]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(t.exports).where(
                t.exports.c.tenant_id == tenant_id).order_by(t.exports.c.created_at.desc()))
                .mappings())

    def delete_export(self, tenant_id: str | None, export_id: str) -> RowMapping:
        row = self.get_export(tenant_id, export_id)
        with self.tx() as conn:
            conn.execute(t.exports.delete().where(t.exports.c.id == export_id))
        return row

    def extend_export(self, tenant_id: str, export_id: str, days: float) -> RowMapping:
        row = self.get_export(tenant_id, export_id)
        with self.tx() as conn:
            conn.execute(t.exports.update().where(t.exports.c.id == export_id).values(
                expires_at=max(row["expires_at"], self.now()) + dt.timedelta(days=days)))
        return self.get_export(tenant_id, export_id)

    def expired_exports(self) -> list[RowMapping]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(t.exports).where(
                t.exports.c.expires_at < self.now())).mappings())


def _sqlite_engine(url: str) -> Engine:
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Writers take the write lock up front, so two claimers can never read the same
        # queued task; readers begin deferred and, in WAL mode, never wait for a writer.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")

    return engine


class SqliteStore(Store):
    """SQLite (WAL): ``serve`` with nothing configured."""

    def __init__(self, url: str, clock: Clock | None = None,
                 settings: QueueSettings | None = None) -> None:
        super().__init__(_sqlite_engine(url), clock, settings)

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.info["write"] = True  # BEGIN IMMEDIATE (see _sqlite_engine)
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info.pop("write", None)


class PostgresStore(Store):
    """PostgreSQL: many API processes and nodes at once."""

    def __init__(self, url: str, clock: Clock | None = None,
                 settings: QueueSettings | None = None) -> None:
        super().__init__(sa.create_engine(url, pool_size=10, max_overflow=20,
                                          pool_pre_ping=True), clock, settings)

    def _lock_candidate(self, conn: Connection, node_id: str,
                        now: dt.datetime) -> Any | None:
        # SKIP LOCKED: a row another claimer holds is passed over, not waited for.
        query = self._candidates(node_id, now).with_for_update(skip_locked=True, of=t.tasks)
        return conn.execute(query).first()


def open_store(url: str, clock: Clock | None = None,
               settings: QueueSettings | None = None) -> Store:
    if url.startswith("sqlite"):
        return SqliteStore(url, clock, settings)
    if url.startswith("postgresql"):
        return PostgresStore(url, clock, settings)
    raise ValueError(f"unsupported database URL {url.split(':', 1)[0]!r}: use sqlite:/// or "
                     "postgresql+psycopg://")

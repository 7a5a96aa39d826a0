"""The queue tests' view of the service's data layer: :class:`QueueStore` puts the queue's
lifecycle (claim, complete, fail...) and the application's services (accounts, projects,
exports, nodes) behind one object on one database, so each queue test reads as the
scenario it checks; and a small "farm" of tenants, nodes and jobs. Time passes only on
the test's :class:`ManualClock`.

Every method runs the production code (``framefarm.application.queue``, ``framefarm.repos``,
``framefarm.application``); nothing here decides a state or writes SQL of its own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from framefarm import chunks
from framefarm.application import queue as lifecycle
from framefarm.application.accounts import Accounts
from framefarm.application.context import Context
from framefarm.application.exports import Exports
from framefarm.application.farm import Farm as NodeFarm
from framefarm.application.metrics import Counters
from framefarm.application.projects import Projects
from framefarm.application.queue import Queue, QueueSettings, TaskPlan
from framefarm.clock import ManualClock
from framefarm.db.database import Database, open_database
from framefarm.protocol import MediaInfo
from framefarm.queue.states import Summary, TaskKind
from framefarm.records import Export, Job, LogLine, Node, Task
from framefarm.repos import exports, jobs, nodes, projects
from framefarm.repos.exports import ExportMeta
from framefarm.settings import Settings
from framefarm.storage.local import LocalStorage


@dataclasses.dataclass(frozen=True)
class Claim:
    """What a claim handed a node, as the queue tests look at it."""

    task_id: str
    job_id: str
    tenant_id: str
    kind: str
    idx: int
    frame_start: int
    frame_end: int
    lease_token: str
    lease_expires_at: dt.datetime

    @classmethod
    def of(cls, task: Task | None) -> Claim | None:
        if task is None:
            return None
        assert task.lease_token is not None and task.lease_expires_at is not None
        return cls(task.id, task.job_id, task.tenant_id, task.kind, task.idx, task.frame_start,
                   task.frame_end, task.lease_token, task.lease_expires_at)


def open_store(url: str, clock: ManualClock | None = None,
               settings: QueueSettings | None = None,
               storage_dir: Path | None = None) -> QueueStore:
    return QueueStore(open_database(url, clock), settings or QueueSettings(), storage_dir)


class QueueStore:
    def __init__(self, db: Database, settings: QueueSettings,
                 storage_dir: Path | None = None) -> None:
        self.db = db
        self.queue = Queue(db, settings)
        root = storage_dir or Path("framefarm-data")
        self.ctx = Context(settings=Settings(data_dir=root), db=db, queue=self.queue,
                           storage=LocalStorage(root / "storage"), secret_key=b"k",
                           enrolment_token="t", counters=Counters())
        self.accounts = Accounts(db)
        self.projects = Projects(self.ctx)
        self.farm = NodeFarm(self.ctx)
        self.exports = Exports(self.ctx)

    @property
    def engine(self) -> Any:
        return self.db.engine

    @property
    def settings(self) -> QueueSettings:
        return self.queue.settings

    def now(self) -> dt.datetime:
        return self.db.now()

    def close(self) -> None:
        self.db.close()

    # -- the lifecycle ------------------------------------------------------------------------

    def submit(self, tenant_id: str, **kwargs: Any) -> tuple[Job, bool]:
        return self.queue.submit(tenant_id, **kwargs)

    def claim(self, node_id: str) -> Claim | None:
        return Claim.of(self.queue.claim(node_id))

    def heartbeat(self, task_id: str, token: str, frames_done: int | None = None,
                  preview_key: str | None = None) -> str:
        return self.queue.heartbeat(task_id, token, frames_done, preview_key)

    def complete(self, task_id: str, token: str, output_key: str | None,
                 export: ExportMeta | None = None) -> Job:
        return self.queue.complete(task_id, token, output_key, export)

    def fail(self, task_id: str, token: str, error: str, **kwargs: Any) -> Job:
        return self.queue.fail(task_id, token, error, **kwargs)

    def cancel(self, tenant_id: str | None, job_id: str) -> Job:
        return self.queue.cancel(tenant_id, job_id)

    def retry(self, tenant_id: str, job_id: str) -> Job:
        return self.queue.retry(tenant_id, job_id)

    def requeue_expired(self) -> int:
        return self.queue.requeue_expired()

    def release_node(self, node_id: str) -> int:
        return self.queue.release_node(node_id)

    def task_for_node(self, task_id: str, token: str) -> Task:
        return self.queue.leased(task_id, token)

    # -- reading jobs -------------------------------------------------------------------------

    def get_job(self, tenant_id: str | None, job_id: str) -> Job:
        with self.db.read() as conn:
            return jobs.get(conn, job_id, tenant_id)

    def job_tasks(self, job_id: str) -> list[Task]:
        with self.db.read() as conn:
            return jobs.tasks(conn, job_id)

    def summary(self, job: Job) -> Summary:
        return self.queue.summary(job, self.job_tasks(job.id))

    def list_jobs(self, tenant_id: str, **kwargs: Any) -> list[Job]:
        with self.db.read() as conn:
            return jobs.list_for(conn, tenant_id, **kwargs)

    def logs(self, tenant_id: str, job_id: str, level: str | None = None) -> list[LogLine]:
        with self.db.read() as conn:
            jobs.get(conn, job_id, tenant_id)
            return jobs.logs(conn, job_id, level)

    def task_outputs(self, job_id: str) -> list[Task]:
        with self.db.read() as conn:
            return jobs.outputs(conn, job_id)

    def queue_overview(self) -> dict[str, int]:
        return self.farm.queue_overview()

    # -- tenants, projects, nodes, exports ------------------------------------------------------

    def create_tenant(self, name: str, **kwargs: Any) -> tuple[str, str]:
        return self.accounts.create_tenant(name, **kwargs)

    def authenticate(self, key: str) -> tuple[str, bool] | None:
        found = self.accounts.authenticate(key)
        return (found.tenant_id, found.admin) if found else None

    def register_node(self, name: str, capabilities: Mapping[str, Any]) -> tuple[str, str]:
        with self.db.tx() as conn:
            return nodes.register(conn, name, capabilities, now=self.now())

    def authenticate_node(self, node_id: str, secret: str) -> bool:
        return self.farm.authenticate(node_id, secret)

    def get_node(self, node_id: str) -> Node:
        return self.farm.node(node_id)

    def node_status(self, node: Node) -> str:
        return self.farm.status(node)

    def set_draining(self, node_id: str, draining: bool) -> None:
        self.farm.set_draining(node_id, draining)

    def node_heartbeat(self, node_id: str) -> str:
        return self.farm.node_heartbeat(node_id, None)

    def create_project(self, tenant_id: str, name: str) -> Any:
        return self.projects.create(tenant_id, name)

    def get_project(self, tenant_id: str, project_id: str) -> Any:
        return self.projects.get(tenant_id, project_id)[0]

    def list_projects(self, tenant_id: str) -> list[Any]:
        return self.projects.all(tenant_id)

    def put_document(self, tenant_id: str, project_id: str, document: Any) -> None:
        with self.db.tx() as conn:
            projects.put_document(conn, tenant_id, project_id, document, now=self.now())

    def add_asset(self, tenant_id: str, project_id: str, name: str, sha256: str,
                  size: int) -> None:
        with self.db.tx() as conn:
            projects.put_asset(conn, tenant_id, project_id, name, sha256, size, now=self.now())

    def list_assets(self, tenant_id: str, project_id: str) -> list[Any]:
        return self.projects.assets(tenant_id, project_id)

    def create_template(self, tenant_id: str, name: str, document: Any,
                        project_id: str | None) -> Any:
        with self.db.tx() as conn:
            return projects.create_template(conn, tenant_id, name, document, project_id,
                                            now=self.now())

    def get_template(self, tenant_id: str, template_id: str) -> Any:
        return self.projects.template(tenant_id, template_id)

    def list_templates(self, tenant_id: str) -> list[Any]:
        return self.projects.templates(tenant_id)

    def create_export(self, job_id: str, *, storage_key: str, size: int, duration: float,
                      width: int, height: int, codec: str, fmt: str,
                      keep_days: float) -> Export:
        job = self.get_job(None, job_id)
        media = MediaInfo(size=size, duration=duration, width=width, height=height,
                          codec=codec, format=fmt)
        meta = ExportMeta(storage_key, media, keep_days)
        with self.db.tx() as conn:
            export_id = exports.insert(conn, job.tenant_id, job_id, meta, now=self.now())
        return self.exports.get(None, export_id)

    def get_export(self, tenant_id: str | None, export_id: str) -> Export:
        return self.exports.get(tenant_id, export_id)

    def export_for_job(self, job_id: str) -> Export | None:
        with self.db.read() as conn:
            return exports.for_jobs(conn, [job_id]).get(job_id)

    def list_exports(self, tenant_id: str) -> list[Export]:
        return self.exports.all(tenant_id)

    def delete_export(self, tenant_id: str | None, export_id: str) -> Export:
        with self.db.tx() as conn:
            row = exports.get(conn, export_id, tenant_id)
            exports.delete(conn, export_id)
        return row

    def extend_export(self, tenant_id: str, export_id: str, days: float) -> Export:
        return self.exports.extend(tenant_id, export_id, days)

    def expired_exports(self) -> list[Export]:
        with self.db.read() as conn:
            return exports.expired(conn, self.now())


def render_plan(renders: int, frames_per_chunk: int = 10, audio: bool = True) -> list[TaskPlan]:
    total = renders * frames_per_chunk
    plan = [TaskPlan(TaskKind.RENDER, i, i * frames_per_chunk, (i + 1) * frames_per_chunk)
            for i in range(renders)]
    if audio:
        plan.append(TaskPlan(TaskKind.AUDIO, renders, 0, total))
    plan.append(TaskPlan(TaskKind.ASSEMBLE, len(plan), 0, total, waiting=True))
    return plan


class Farm:
    """Tenants, nodes and jobs on one store, with the test's manual clock."""

    def __init__(self, store: QueueStore, clock: ManualClock) -> None:
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
               idempotency_key: str | None = None, kind: str = "render") -> Job:
        frames = max((p.frame_end for p in plan), default=0)
        job, _created = self.store.submit(
            tenant_id, kind=kind, document={"doc": 1}, options={"format": "mp4"},
            assets={"a.png": "0" * 64}, frames_total=frames, fps=24, plan=plan,
            priority=priority, idempotency_key=idempotency_key)
        return job

    def render_job(self, tenant_id: str, renders: int = 2, frames_per_chunk: int = 10,
                   **kwargs: Any) -> Job:
        return self.submit(tenant_id, render_plan(renders, frames_per_chunk), **kwargs)

    def snapshot_job(self, tenant_id: str, **kwargs: Any) -> Job:
        return self.submit(tenant_id, [TaskPlan(TaskKind.SNAPSHOT, 0, 5, 6)], kind="snapshot",
                           **kwargs)

    def job(self, job_id: str) -> Job:
        return self.store.get_job(None, job_id)

    def tasks(self, job_id: str) -> list[Task]:
        return self.store.job_tasks(job_id)

    def task(self, task_id: str) -> Task:
        with self.store.db.read() as conn:
            found = jobs.get_task(conn, task_id)
        assert found is not None, task_id
        return found

    def task_states(self, job_id: str) -> dict[str, str]:
        return {f"{r.kind}{r.idx}": r.state for r in self.tasks(job_id)}

    def claim(self, node_id: str) -> Claim:
        claim = self.store.claim(node_id)
        assert claim is not None, f"node {node_id} got nothing to do"
        return claim

    def finish(self, claim: Claim) -> Job:
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


def plan_render(frames_total: int, fps: int, *, nodes: int,
                min_chunk_seconds: float) -> list[TaskPlan]:
    """The task plan the service makes for a render of ``frames_total`` frames."""
    return lifecycle.render_plan(chunks.plan(frames_total, fps, nodes=nodes,
                                             min_chunk_seconds=min_chunk_seconds),
                                 frames_total)

"""Renders and snapshots: what a tenant submits (validated by the engine itself, with the
real assets), how it is split into tasks, and how it is shown while it runs."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from framefarm import chunks, engine, errors, webhooks
from framefarm.application import code_templates, usage
from framefarm.application.context import Context, Download, blob_key, download
from framefarm.application.farm import node_status, tidy_parts
from framefarm.application.projects import Projects, asset_name
from framefarm.application.queue import TaskPlan, render_plan
from framefarm.document import templates
from framefarm.document.timeline import Timeline
from framefarm.limits import Limits
from framefarm.queue import states
from framefarm.queue.errors import FeatureOff, NotFound
from framefarm.queue.states import TaskKind
from framefarm.records import Delivery, Export, Job, JobUsage, LogLine
from framefarm.repos import claims, exports, jobs, ledger, nodes
from framefarm.repos import projects as project_rows
from framefarm.repos import usage as usage_rows
from framefarm.repos import webhooks as hooks
from framefarm.speech import resolve as speech

RENDER_OPTIONS = ("quality", "size", "fps", "format")


@dataclasses.dataclass(frozen=True)
class JobView:
    """A job as callers see it: the row, its progress, its export."""

    job: Job
    summary: states.Summary
    export: Export | None
    usage: JobUsage | None = None  # its credits reserved, charged, refunded


@dataclasses.dataclass(frozen=True)
class Page:
    """One page of jobs, and whether another one follows."""

    items: list[JobView]
    has_more: bool

    @property
    def next(self) -> str | None:
        """What to pass as ``before`` for the next page (None: there is none)."""
        return self.items[-1].job.id if self.has_more and self.items else None


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A submission checked and planned: the job's columns (as ``Queue.submit`` takes
    them), its task plan, and the timeline it was validated as."""

    columns: dict[str, Any]
    plan: list[TaskPlan]
    timeline: Timeline | None  # None: a code template, known only once a node prepared it


@dataclasses.dataclass(frozen=True)
class SnapshotRequest:
    document: dict[str, Any]
    assets: Mapping[str, str]
    project_id: str | None
    frame: int
    fps: int
    limits: dict[str, Any]
    cache_key: str
    image_format: str
    engine: str = "framefarm"


def snapshot_key(document: Mapping[str, Any], assets: Mapping[str, str], frame: int,
                 image_format: str) -> str:
    """What a frame depends on, hashed: the filled document, the asset contents, the frame."""
    digest = hashlib.sha256()
    digest.update(json.dumps(document, sort_keys=True, separators=(",", ":")).encode())
    digest.update(json.dumps(dict(sorted(assets.items()))).encode())
    digest.update(f"{frame}:{image_format}".encode())
    return f"snapshots/{digest.hexdigest()}.{image_format}"


def materialise(ctx: Context, assets: Mapping[str, str], folder: Path) -> None:
    """Lay the job's assets out under their names (hard links to the blobs when the
    filesystem allows, copies otherwise)."""
    for name, sha in assets.items():
        target = folder / asset_name(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        source = ctx.storage.local_path(blob_key(sha))
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)


@dataclasses.dataclass
class Renders:
    ctx: Context
    projects: Projects

    # -- submitting ---------------------------------------------------------------------------

    @functools.cached_property
    def limits(self) -> Limits:
        """The document limits (FRAMEFARM_LIMIT_*), read once like every other setting."""
        return Limits()

    @functools.cached_property
    def _no_assets(self) -> Path:
        """An empty folder: where a document without assets is loaded (nothing is ever
        written into it), instead of making and removing one per submission."""
        folder = self.ctx.work_dir / "no-assets"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _validate(self, document: Mapping[str, Any], assets: Mapping[str, str],
                  options: Mapping[str, Any], limits: Limits) -> Timeline:
        """Check the document exactly as a node will load it, with its real assets."""
        if code_templates.engine_of(document) != "framefarm":
            raise errors.DocumentError(
                f"a {code_templates.engine_of(document)} code template is rendered by a node "
                "that has its engine: submit it as a render (POST /v1/renders); snapshots "
                "and timelines are for JSON documents")
        overrides = {k: options[k] for k in RENDER_OPTIONS if options.get(k) is not None}
        if not assets:
            return engine.load_timeline(document, base_dir=self._no_assets, limits=limits,
                                        **overrides)
        folder = self.ctx.work_dir / f"validate-{os.getpid()}-{time.monotonic_ns()}"
        folder.mkdir(parents=True)
        try:
            materialise(self.ctx, assets, folder)
            return engine.load_timeline(document, base_dir=folder, limits=limits, **overrides)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def resolve_source(
        self, tenant_id: str, *, document: Mapping[str, Any] | None, project_id: str | None,
        template_id: str | None, data: Mapping[str, Any] | None,
    ) -> tuple[dict[str, Any], str | None]:
        """The filled document of a submission and the project whose assets it uses."""
        if document is None and project_id is None and template_id is None:
            raise errors.DocumentError("give one of 'document', 'project_id' or 'template_id'")
        if template_id is not None:
            template = self.projects.template(tenant_id, template_id)
            raw, project_id = template.document, project_id or template.project_id
        elif document is not None:
            raw = document
        else:
            assert project_id is not None
            project, _ = self.projects.get(tenant_id, project_id)
            raw = project.document
            if raw is None:
                raise errors.DocumentError(f"project {project_id} has no document yet; PUT "
                                           "one first")
        if not isinstance(raw, dict):
            raise errors.DocumentError("the document must be a JSON object")
        filled = templates.resolve(raw, data)
        for key in ("variables", "blocks"):
            filled.pop(key, None)
        return filled, project_id

    def prepare(
        self, tenant_id: str, *, document: Mapping[str, Any] | None = None,
        project_id: str | None = None, template_id: str | None = None,
        data: Mapping[str, Any] | None = None, options: Mapping[str, Any] | None = None,
        assets: Mapping[str, str] | None = None, online_nodes: int | None = None,
    ) -> Prepared:
        """Everything a submission checks and plans, short of queueing it: the filled
        document validated as a node will load it (with the real ``assets``, read from
        the project when not given), and its task plan (chunked for ``online_nodes``,
        counted when not given). A batch prepares each row with the same assets and
        node count."""
        filled, project_id = self.resolve_source(tenant_id, document=document,
                                                 project_id=project_id,
                                                 template_id=template_id, data=data)
        options = {k: v for k, v in (options or {}).items() if v is not None}
        if assets is None:
            assets = self.projects.asset_map(tenant_id, project_id)
        limits = self.limits
        if code_templates.engine_of(filled) != "framefarm":
            return self._prepare_code(tenant_id, filled, project_id, assets, options)
        tl = self._validate(filled, assets, options, limits)
        assets = speech.bundle(tl, assets, self.ctx.storage, blob_key)  # nodes get its audio
        if tl.output.format == "png":
            plan = [TaskPlan(TaskKind.SNAPSHOT, 0, 0, 1)]
            kind = "snapshot"
        else:
            if online_nodes is None:
                online_nodes = self.online_nodes()
            plan = render_plan(chunks.plan(tl.total_frames, tl.fps, nodes=online_nodes,
                                           min_chunk_seconds=self.ctx.settings.min_chunk_seconds,
                                           max_chunks=tl.project.limits.max_chunks,
                                           beside=1),  # the audio mix
                               tl.total_frames)
            kind = "render"
        # The output's size prices the job's credits (with its frames and fps) and is
        # checked against the plan when the job is queued (usage.reserve).
        columns = dict(tenant_id=tenant_id, kind=kind, document=filled, options=options,
                       assets=dict(assets), limits=limits.model_dump(),
                       frames_total=tl.total_frames, fps=tl.fps, project_id=project_id,
                       estimate=usage.estimate(tl.width, tl.height))
        return Prepared(columns, plan, tl)

    def _prepare_code(self, tenant_id: str, filled: dict[str, Any], project_id: str | None,
                      assets: Mapping[str, str], options: dict[str, Any]) -> Prepared:
        """A code template's submission: checked as far as the server can, planned as its
        prepare task, and refused when no node could ever take it."""
        spec = self._code_template(tenant_id, filled, assets, options)
        columns = dict(tenant_id=tenant_id, kind="render", engine=spec.engine,
                       document=spec.model_dump(), options=options, assets=dict(assets),
                       limits=self.limits.model_dump(), frames_total=0, fps=0,
                       project_id=project_id)
        return Prepared(columns, code_templates.plan(), None)

    def _code_template(self, tenant_id: str, filled: dict[str, Any],
                       assets: Mapping[str, str], options: Mapping[str, Any]
                       ) -> code_templates.CodeRender:
        """A code template's request checked, for a tenant whose plan allows them, on a
        farm with a node that runs its engine (or set to wait for one)."""
        spec = code_templates.check(filled, assets, options)
        with self.ctx.db.read() as conn:
            allowed = usage.Plan.load(ledger.account(conn, tenant_id).plan).code_templates
        if not allowed:
            raise FeatureOff(
                "code templates are off for this tenant: they run the tenant's code on the "
                "render nodes, so an admin turns them on (framefarm admin plan TENANT "
                "--code-templates, or PUT /v1/admin/tenants/{id}/plan with "
                '"code_templates": true)')
        if (self.ctx.settings.unserved_engines == "refuse"
                and self.farm_nodes_with(spec.engine) == 0):
            raise errors.DocumentError(
                f"no render node of this farm runs {spec.engine} renders (a node needs "
                "Node.js, npm and Chromium, and reports the engine when it registers); "
                "set FRAMEFARM_UNSERVED_ENGINES=wait to queue such renders until one does")
        return spec

    def farm_nodes_with(self, engine: str) -> int:
        """Registered nodes (online or not) that reported ``engine``."""
        with self.ctx.db.read() as conn:
            return sum(engine in claims.node_engines(n.capabilities)
                       for n in nodes.list_all(conn))

    def online_nodes(self) -> int:
        """Render nodes online or busy now: what chunk plans are made for."""
        with self.ctx.db.read() as conn:
            return sum(node_status(self.ctx, n) in ("online", "busy")
                       for n in nodes.list_all(conn))

    def submit(
        self, tenant_id: str, *, document: Mapping[str, Any] | None = None,
        project_id: str | None = None, template_id: str | None = None,
        data: Mapping[str, Any] | None = None, options: Mapping[str, Any] | None = None,
        priority: int = 0, idempotency_key: str | None = None, notify_url: str | None = None,
    ) -> tuple[JobView, bool]:
        if notify_url:
            self.check_notify_url(notify_url)
        prepared = self.prepare(tenant_id, document=document, project_id=project_id,
                                template_id=template_id, data=data, options=options)
        job, created = self.ctx.queue.submit(
            **prepared.columns, plan=prepared.plan, priority=priority,
            idempotency_key=idempotency_key, notify_url=notify_url)
        return self.view(job), created

    def check_notify_url(self, notify_url: str) -> None:
        try:
            webhooks.check_url(notify_url,
                               allow_private=self.ctx.settings.webhook_allow_private)
        except webhooks.UnsafeTarget as exc:
            raise errors.DocumentError(f"notify_url: {exc}") from None

    def timeline(
        self, tenant_id: str, *, document: Mapping[str, Any] | None, project_id: str | None,
        template_id: str | None, data: Mapping[str, Any] | None,
        options: Mapping[str, Any] | None = None,
    ) -> Timeline:
        """The filled document's timeline exactly as a render of it would see it (the
        check a submission makes, with the real assets), without queueing anything."""
        filled, project_id = self.resolve_source(tenant_id, document=document,
                                                 project_id=project_id,
                                                 template_id=template_id, data=data)
        assets = self.projects.asset_map(tenant_id, project_id)
        return self._validate(filled, assets, dict(options or {}), self.limits)

    # -- snapshots ----------------------------------------------------------------------------

    def prepare_snapshot(
        self, tenant_id: str, *, document: Mapping[str, Any] | None, project_id: str | None,
        template_id: str | None, data: Mapping[str, Any] | None, frame: int | None,
        at: float | None, scene: int | None, image_format: str,
    ) -> SnapshotRequest:
        """Validate a snapshot request and work out its frame and cache key."""
        filled, project_id = self.resolve_source(tenant_id, document=document,
                                                 project_id=project_id,
                                                 template_id=template_id, data=data)
        assets = self.projects.asset_map(tenant_id, project_id)
        if code_templates.engine_of(filled) != "framefarm":
            return self._code_snapshot(tenant_id, filled, project_id, assets, frame=frame,
                                       at=at, scene=scene, image_format=image_format)
        limits = self.limits
        tl = self._validate(filled, assets, {}, limits)
        assets = speech.bundle(tl, assets, self.ctx.storage, blob_key)  # nodes get its audio
        try:
            chosen = tl.select_frame(frame=frame, at=at, scene=scene)
        except errors.FrameSelectionError as exc:
            raise exc.labelled(exc.field) from None
        key = snapshot_key(filled, assets, chosen, image_format)
        return SnapshotRequest(filled, assets, project_id, chosen, tl.fps, limits.model_dump(),
                               key, image_format)

    def _code_snapshot(self, tenant_id: str, filled: dict[str, Any], project_id: str | None,
                       assets: Mapping[str, str], *, frame: int | None, at: float | None,
                       scene: int | None, image_format: str) -> SnapshotRequest:
        """A frame of a code template: by its number (the composition's rate and scenes
        are the project's code, known once a node has prepared it)."""
        if at is not None or scene is not None:
            field = "at" if at is not None else "scene"
            raise errors.DocumentError(
                f"{field}: a code template's snapshot names its frame (\"frame\": N); "
                "its rate and length are known only once a node has prepared the project")
        spec = self._code_template(tenant_id, filled, assets, {})
        document = spec.model_dump()
        chosen = frame or 0
        return SnapshotRequest(document, assets, project_id, chosen, 0,
                               self.limits.model_dump(),
                               snapshot_key(document, assets, chosen, image_format),
                               image_format, engine=spec.engine)

    def queue_snapshot(self, tenant_id: str, request: SnapshotRequest) -> Job:
        job, _ = self.ctx.queue.submit(
            tenant_id, kind="snapshot", document=request.document,
            options={"snapshot_format": request.image_format, "cache_key": request.cache_key},
            assets=request.assets, limits=request.limits, frames_total=1, fps=request.fps,
            plan=[TaskPlan(TaskKind.SNAPSHOT, 0, request.frame, request.frame + 1)],
            priority=10, project_id=request.project_id, engine=request.engine)
        return job

    def cached(self, key: str) -> bool:
        return self.ctx.storage.exists(key)

    def snapshot_file(self, key: str, image_format: str) -> Download:
        media = {"png": "image/png", "jpeg": "image/jpeg"}.get(image_format, "image/png")
        return download(self.ctx, key, media)

    # -- reading ------------------------------------------------------------------------------

    def job(self, tenant_id: str | None, job_id: str) -> Job:
        with self.ctx.db.read() as conn:
            return jobs.get(conn, job_id, tenant_id)

    def view(self, job: Job) -> JobView:
        """The job's view as it is now (read again, in two statements)."""
        return self.get(None, job.id)

    def views(self, rows: Sequence[Job]) -> list[JobView]:
        """Jobs with their progress and exports, in three queries whatever their number."""
        with self.ctx.db.read() as conn:
            return self._views(conn, rows)

    def _views(self, conn: Connection, rows: Sequence[Job]) -> list[JobView]:
        ids = [job.id for job in rows]
        tasks = jobs.tasks_of(conn, ids)
        found = exports.for_jobs(conn, ids)
        used = usage_rows.for_jobs(conn, ids)
        return [JobView(job, self.ctx.queue.summary(job, tasks[job.id]), found.get(job.id),
                        used.get(job.id))
                for job in rows]

    def _view(self, viewed: jobs.Viewed) -> JobView:
        job = viewed.job
        summary = states.summarise(viewed.tasks, cancelled=job.state == states.JobState.CANCELLED,
                                   failed=job.state == states.JobState.FAILED,
                                   started_at=job.started_at, now=self.ctx.now())
        return JobView(job, summary, viewed.export, viewed.usage)

    def get(self, tenant_id: str | None, job_id: str) -> JobView:
        """One job's view, read in two statements (the answer of most job routes, of every
        live event and webhook)."""
        with self.ctx.db.read() as conn:
            return self._view(jobs.viewed(conn, job_id, tenant_id))

    async def view_for_key(self, key: str, job_id: str) -> JobView | None:
        """The job's view for the caller of API key ``key``, from the event loop: the key
        checked with the job, then its tasks read (db/direct.py), no thread-pool trip.
        None: an unknown or revoked key; NotFound: not that tenant's job (or none)."""
        found = await jobs.keyed(self.ctx.db.direct, key, job_id)
        if found.caller is None:
            return None
        if found.viewed is None:
            raise NotFound(f"no job {job_id}")
        return self._view(found.viewed)

    def page(self, tenant_id: str, *, state: str | None = None, limit: int = 50,
             before: str | None = None, project_id: str | None = None) -> Page:
        """Up to ``limit`` jobs, newest first, after ``before``; only the project's with
        ``project_id`` (NotFound for another tenant's project). One row more is read to
        know whether another page exists; a fixed number of queries whatever the limit."""
        with self.ctx.db.read() as conn:
            if project_id is not None:
                project_rows.get(conn, tenant_id, project_id)
            rows = jobs.list_for(conn, tenant_id, state=state, limit=limit + 1, before=before,
                                 project_id=project_id)
            return Page(self._views(conn, rows[:limit]), has_more=len(rows) > limit)

    def logs(self, tenant_id: str, job_id: str, level: str | None = None) -> list[LogLine]:
        with self.ctx.db.read() as conn:
            jobs.get(conn, job_id, tenant_id)
            return jobs.logs(conn, job_id, level)

    def preview(self, tenant_id: str, job_id: str) -> Download | None:
        job = self.job(tenant_id, job_id)
        return download(self.ctx, job.preview_key, "image/jpeg") if job.preview_key else None

    def deliveries(self, tenant_id: str, job_id: str) -> list[Delivery]:
        with self.ctx.db.read() as conn:
            jobs.get(conn, job_id, tenant_id)
            return hooks.deliveries(conn, job_id)

    # -- changing -----------------------------------------------------------------------------

    def cancel(self, tenant_id: str, job_id: str) -> JobView:
        job = self.ctx.queue.cancel(tenant_id, job_id)
        tidy_parts(self.ctx, job)
        return self.view(job)

    def retry(self, tenant_id: str, job_id: str) -> JobView:
        return self.view(self.ctx.queue.retry(tenant_id, job_id))


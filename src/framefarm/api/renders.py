"""Renders, snapshots and webhook subscriptions (tenant API keys). Another tenant's rows
answer 404, never 403."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response, Security
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from framefarm import webhooks
from framefarm.api import deps, models
from framefarm.api.deps import API_KEY, AppDep, Credentials, TenantDep, file_responses, send
from framefarm.api.errors import TENANT_RESPONSES, ApiError
from framefarm.api.events import JobWatcher
from framefarm.application import Application, views
from framefarm.application.renders import JobView, SnapshotRequest
from framefarm.queue.states import FINISHED_JOB, JobState

router = APIRouter(prefix="/v1", responses=TENANT_RESPONSES)


class WebhookIn(models.Body):
    url: str = Field(max_length=2000)
    events: list[webhooks.Event] = Field(default_factory=lambda: list(webhooks.EVENTS),
                                         min_length=1)


def job_json(app: Application, view: JobView) -> dict[str, Any]:
    return views.job(view, app.settings.public_url)


# -- renders ---------------------------------------------------------------------------------


@router.post("/renders", status_code=202, response_model=models.Job,
             responses={200: {"model": models.Job,
                              "description": "The job this idempotency key made before."}})
def submit_render(
    body: models.RenderIn, caller: TenantDep, app: AppDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """Queue a render of an inline document, a project's document, or a template + data."""
    view, created = app.renders.submit(
        caller.tenant_id, document=body.document, project_id=body.project_id,
        template_id=body.template_id, data=body.data,
        options=body.options.model_dump(exclude_none=True), priority=body.priority,
        idempotency_key=body.idempotency_key or idempotency_key, notify_url=body.notify_url)
    # Encoded once, as GET's answer (below): the model documents it.
    return JSONResponse(job_json(app, view), status_code=202 if created else 200)


@router.get("/renders", response_model=models.JobPage)
def list_renders(
    caller: TenantDep, app: AppDep,
    state: Annotated[JobState | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(description="``next`` of the previous page")] = None,
) -> dict[str, Any]:
    """The tenant's renders and snapshots, newest first; ``has_more`` says whether another
    page follows (``next`` is then the ``before`` to ask it with)."""
    found = app.renders.page(caller.tenant_id, state=state, limit=limit, before=before)
    return views.page(found, app.settings.public_url)


async def _keyed_job(request: Request, job_id: str) -> dict[str, Any]:
    """The job's answer for the request's key: the key with the job, then its tasks, read
    from the event loop (the most polled route: no thread-pool trip)."""
    app = await deps.application(request)
    view = await app.renders.view_for_key(deps.bearer(request), job_id)
    if view is None:
        raise deps.unknown_key()
    return job_json(app, view)


# These two answer with their JSON encoded once: FastAPI's path (validate against the
# response model, then encode) costs more than the read. The models document the answers,
# which are exactly the models' (api/models.py; test_api.py compares them).
_PROGRESS = ("id", "state", "step", "percent", "eta_seconds", "frames")


@router.get("/renders/{job_id}", response_model=models.Job)
async def get_render(job_id: str, request: Request,
                     scheme: Annotated[Credentials, Security(API_KEY)] = None) -> Response:
    return JSONResponse(await _keyed_job(request, job_id))


@router.get("/renders/{job_id}/progress", response_model=models.JobProgress)
async def render_progress(job_id: str, request: Request,
                          scheme: Annotated[Credentials, Security(API_KEY)] = None
                          ) -> Response:
    view = await _keyed_job(request, job_id)
    return JSONResponse({k: view[k] for k in _PROGRESS})


@router.post("/renders/{job_id}/cancel", response_model=models.Job)
def cancel_render(job_id: str, caller: TenantDep, app: AppDep) -> dict[str, Any]:
    return job_json(app, app.renders.cancel(caller.tenant_id, job_id))


@router.post("/renders/{job_id}/retry", status_code=202, response_model=models.Job)
def retry_render(job_id: str, caller: TenantDep, app: AppDep) -> dict[str, Any]:
    return job_json(app, app.renders.retry(caller.tenant_id, job_id))


@router.get("/renders/{job_id}/logs", response_model=list[models.LogLine])
def render_logs(
    job_id: str, caller: TenantDep, app: AppDep,
    level: Annotated[Literal["debug", "info", "warning", "error"] | None, Query()] = None,
) -> list[dict[str, Any]]:
    return [{"at": views.iso(r.at), "level": r.level, "message": r.message,
             "task_id": r.task_id, "node_id": r.node_id}
            for r in app.renders.logs(caller.tenant_id, job_id, level)]


@router.get("/renders/{job_id}/preview", responses=file_responses("image/jpeg"))
def render_preview(job_id: str, caller: TenantDep, app: AppDep) -> Response:
    found = app.renders.preview(caller.tenant_id, job_id)
    if found is None:
        raise ApiError(404, "not_found", "no preview frame yet")
    return send(found)


@router.get("/renders/{job_id}/deliveries")
def render_deliveries(job_id: str, caller: TenantDep, app: AppDep) -> list[dict[str, Any]]:
    """The webhook calls made for this render: target, attempts, last status, state."""
    return [{"id": d.id, "url": d.url, "event": d.event, "state": d.state,
             "attempts": d.attempts, "last_status": d.last_status,
             "last_error": d.last_error, "next_attempt_at": views.iso(d.next_attempt_at),
             "delivered_at": views.iso(d.delivered_at)}
            for d in app.renders.deliveries(caller.tenant_id, job_id)]


# -- webhooks --------------------------------------------------------------------------------


@router.post("/webhooks", status_code=201)
def create_webhook(body: WebhookIn, caller: TenantDep, app: AppDep) -> dict[str, Any]:
    """Subscribe a URL to this tenant's render events; the answer holds its signing secret."""
    row = app.webhooks.subscribe(caller.tenant_id, body.url, list(body.events))
    return {"id": row.id, "url": row.url, "events": row.events, "secret": row.secret}


@router.get("/webhooks")
def list_webhooks(caller: TenantDep, app: AppDep) -> dict[str, Any]:
    """Subscriptions, and the secret that signs calls to renders' notify_url."""
    return {"notify_url_secret": app.webhooks.tenant_secret(caller.tenant_id),
            "webhooks": [{"id": r.id, "url": r.url, "events": r.events,
                          "created_at": views.iso(r.created_at)}
                         for r in app.webhooks.subscriptions(caller.tenant_id)]}


@router.delete("/webhooks/{hook_id}", status_code=204)
def delete_webhook(hook_id: str, caller: TenantDep, app: AppDep) -> Response:
    app.webhooks.unsubscribe(caller.tenant_id, hook_id)
    return Response(status_code=204)


# -- snapshots -------------------------------------------------------------------------------


_QUEUED: dict[int | str, Any] = {202: {
    "description": "Not rendered within ``wait``: the snapshot job's id.",
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["job_id"],
        "properties": {"job_id": {"type": "string"}}}}}}}


@router.post("/snapshots", response_model=None,
             responses={**file_responses("image/png", "image/jpeg"), **_QUEUED})
async def snapshot(body: models.SnapshotIn, caller: TenantDep, app: AppDep,
                   request: Request) -> Response:
    """One frame as PNG or JPEG. Frames already rendered come from the cache at once;
    others are rendered by a node (waiting up to ``wait`` seconds, else 202 with a job)."""
    if sum(x is not None for x in (body.frame, body.at, body.scene)) > 1:
        raise ApiError(422, "invalid_request", "give only one of frame, at, scene")
    asked: SnapshotRequest = await run_in_threadpool(
        app.renders.prepare_snapshot, caller.tenant_id, document=body.document,
        project_id=body.project_id, template_id=body.template_id, data=body.data,
        frame=body.frame, at=body.at, scene=body.scene, image_format=body.format)
    headers = {"X-Frame": str(asked.frame)}
    if await run_in_threadpool(app.renders.cached, asked.cache_key):
        headers["X-Cache"] = "hit"
        response = send(app.renders.snapshot_file(asked.cache_key, body.format))
        response.headers.update(headers)
        return response
    job = await run_in_threadpool(app.renders.queue_snapshot, caller.tenant_id, asked)
    # Woken by the job's changes, as live events are, rather than reading it every few
    # milliseconds; read at once first (the node may have finished already), and at least
    # once a second (a change announced while the database connection was lost).
    watcher: JobWatcher = request.app.state.watcher
    changed = watcher.subscribe(job.id)
    deadline = time.monotonic() + body.wait
    try:
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(left, 1.0))
            changed.clear()
            row = await run_in_threadpool(app.renders.job, caller.tenant_id, job.id)
            if row.state not in FINISHED_JOB:
                continue
            if row.state != JobState.SUCCEEDED:
                raise ApiError(422 if row.failed_step else 500, "snapshot_failed",
                               row.error or f"snapshot {row.state}")
            headers.update({"X-Cache": "miss", "X-Job": job.id})
            response = send(app.renders.snapshot_file(asked.cache_key, body.format))
            response.headers.update(headers)
            return response
    finally:
        watcher.unsubscribe(job.id, changed)
    return Response(status_code=202, media_type="application/json",
                    content=f'{{"job_id": "{job.id}"}}', headers=headers)


@router.get("/snapshots/{job_id}", responses={
    **file_responses("image/png", "image/jpeg"), 202: {"description": "Still rendering."}})
def snapshot_result(job_id: str, caller: TenantDep, app: AppDep) -> Response:
    """The image of a snapshot job, once it succeeded (202 while it runs)."""
    job = app.renders.job(caller.tenant_id, job_id)
    if job.kind != "snapshot":
        raise ApiError(404, "not_found", f"{job_id} is not a snapshot")
    if job.state != JobState.SUCCEEDED:
        if job.state in FINISHED_JOB:
            raise ApiError(422, "snapshot_failed", job.error or job.state)
        return Response(status_code=202)
    return send(app.renders.snapshot_file(job.options["cache_key"],
                                          job.options.get("snapshot_format", "png")))

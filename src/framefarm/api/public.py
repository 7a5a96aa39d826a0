"""The public API (tenant API keys): projects and assets, renders, snapshots, exports,
templates. Another tenant's rows answer 404, never 403."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

import pydantic
from fastapi import APIRouter, File, Form, Header, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from framefarm import errors, webhooks
from framefarm.api import views
from framefarm.api.deps import ServiceDep, TenantDep
from framefarm.api.errors import ApiError
from framefarm.api.service import Service, SnapshotRequest, asset_name, blob_key
from framefarm.document import loader, models
from framefarm.queue.states import FINISHED_JOB, JobState

router = APIRouter(prefix="/v1")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProjectIn(Body):
    name: str = Field(min_length=1, max_length=200)


class RenderOptions(Body):
    quality: models.Quality | None = None
    size: models.SizePreset | None = None
    fps: models.Fps | None = None
    format: Literal["mp4", "webm", "gif"] | None = None


class RenderIn(Body):
    document: dict[str, Any] | None = None
    project_id: str | None = None
    template_id: str | None = None
    data: dict[str, Any] | None = None
    options: RenderOptions = Field(default_factory=RenderOptions)
    priority: int = Field(0, ge=-100, le=100)
    notify_url: str | None = Field(None, max_length=2000)
    tell_me_when_done: bool = False
    idempotency_key: str | None = Field(None, max_length=200)


class SnapshotIn(Body):
    document: dict[str, Any] | None = None
    project_id: str | None = None
    template_id: str | None = None
    data: dict[str, Any] | None = None
    frame: int | None = Field(None, ge=0)
    at: float | None = Field(None, ge=0)
    scene: int | None = Field(None, ge=0)
    format: Literal["png", "jpeg"] = "png"
    wait: float = Field(30, ge=0, le=120, description="seconds to wait for the frame")


class TemplateIn(Body):
    name: str = Field(min_length=1, max_length=200)
    document: dict[str, Any]
    project_id: str | None = None


class TemplateRenderIn(Body):
    data: dict[str, Any] = Field(default_factory=dict)
    options: RenderOptions = Field(default_factory=RenderOptions)
    priority: int = Field(0, ge=-100, le=100)
    notify_url: str | None = None
    idempotency_key: str | None = None


class ExtendIn(Body):
    days: float = Field(gt=0, le=365)


# -- projects and assets ----------------------------------------------------------------------


@router.post("/projects", status_code=201)
def create_project(body: ProjectIn, caller: TenantDep, svc: ServiceDep) -> dict[str, Any]:
    row = svc.store.create_project(caller.tenant_id, body.name)
    return {"id": row["id"], "name": row["name"], "created_at": views.iso(row["created_at"])}


@router.get("/projects")
def list_projects(caller: TenantDep, svc: ServiceDep) -> list[dict[str, Any]]:
    return [{"id": r["id"], "name": r["name"], "created_at": views.iso(r["created_at"])}
            for r in svc.store.list_projects(caller.tenant_id)]


@router.get("/projects/{project_id}")
def get_project(project_id: str, caller: TenantDep, svc: ServiceDep) -> dict[str, Any]:
    row = svc.store.get_project(caller.tenant_id, project_id)
    return {"id": row["id"], "name": row["name"], "document": row["document"],
            "assets": [a["name"] for a in svc.store.list_assets(caller.tenant_id, project_id)],
            "updated_at": views.iso(row["updated_at"])}


@router.put("/projects/{project_id}/document")
def put_document(project_id: str, document: dict[str, Any], caller: TenantDep,
                 svc: ServiceDep) -> dict[str, Any]:
    """Store the project's document. Its structure is checked now (templates may stay
    unfilled); its assets are checked when it is rendered."""
    svc.store.get_project(caller.tenant_id, project_id)
    if not document.get("variables"):
        loader.validate(document)
    svc.store.put_document(caller.tenant_id, project_id, document)
    return {"id": project_id, "ok": True}


@router.post("/projects/{project_id}/assets", status_code=201)
def upload_assets(
    project_id: str, caller: TenantDep, svc: ServiceDep,
    files: Annotated[list[UploadFile], File(description="one or more files")],
    folder: Annotated[str | None, Form(description="a folder for all of them, e.g. "
                                       "'images'")] = None,
) -> list[dict[str, Any]]:
    """Upload files; each is stored once by its SHA-256 and named in the project by its
    (sanitised) file name, optionally inside ``folder``."""
    svc.store.get_project(caller.tenant_id, project_id)
    names = []
    for upload in files:  # every name is checked before anything is stored
        try:
            names.append(asset_name(f"{folder}/{upload.filename}" if folder
                                    else upload.filename or ""))
        except ValueError as exc:
            raise ApiError(422, "invalid_asset_name", str(exc)) from None
    stored = []
    for upload, name in zip(files, names, strict=True):
        staging = f"uploads/{time.monotonic_ns()}"
        size, sha = svc.storage.put_stream(staging, upload.file, svc.settings.max_upload_bytes)
        if svc.storage.exists(blob_key(sha)):
            svc.storage.delete(staging)
        else:
            svc.storage.rename(staging, blob_key(sha))
        svc.store.add_asset(caller.tenant_id, project_id, name, sha, size)
        stored.append({"name": name, "sha256": sha, "size": size})
    return stored


@router.get("/projects/{project_id}/assets")
def list_assets(project_id: str, caller: TenantDep, svc: ServiceDep) -> list[dict[str, Any]]:
    return [{"name": r["name"], "sha256": r["sha256"], "size": r["size"],
             "created_at": views.iso(r["created_at"])}
            for r in svc.store.list_assets(caller.tenant_id, project_id)]


@router.delete("/projects/{project_id}/assets/{name:path}", status_code=204)
def delete_asset(project_id: str, name: str, caller: TenantDep, svc: ServiceDep) -> Response:
    svc.store.delete_asset(caller.tenant_id, project_id, name)
    return Response(status_code=204)


# -- renders ---------------------------------------------------------------------------------


@router.post("/renders", status_code=202)
def submit_render(
    body: RenderIn, caller: TenantDep, svc: ServiceDep, response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    """Queue a render of an inline document, a project's document, or a template + data."""
    job, created = svc.submit(
        caller.tenant_id, document=body.document, project_id=body.project_id,
        template_id=body.template_id, data=body.data,
        options=body.options.model_dump(exclude_none=True), priority=body.priority,
        idempotency_key=body.idempotency_key or idempotency_key, notify_url=body.notify_url)
    if not created:
        response.status_code = 200
    return views.job(svc, job)


@router.get("/renders")
def list_renders(
    caller: TenantDep, svc: ServiceDep,
    state: Annotated[JobState | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(description="last id of the previous page")] = None,
) -> dict[str, Any]:
    rows = svc.store.list_jobs(caller.tenant_id, state=state, limit=limit, before=before)
    items = [views.job(svc, r) for r in rows]
    return {"items": items, "next": items[-1]["id"] if len(items) == limit else None}


@router.get("/renders/{job_id}")
def get_render(job_id: str, caller: TenantDep, svc: ServiceDep) -> dict[str, Any]:
    return views.job(svc, svc.store.get_job(caller.tenant_id, job_id))


@router.get("/renders/{job_id}/progress")
def render_progress(job_id: str, caller: TenantDep, svc: ServiceDep) -> dict[str, Any]:
    view = views.job(svc, svc.store.get_job(caller.tenant_id, job_id))
    return {k: view[k] for k in ("id", "state", "step", "percent", "eta_seconds", "frames")}


@router.post("/renders/{job_id}/cancel")
def cancel_render(job_id: str, caller: TenantDep, svc: ServiceDep) -> dict[str, Any]:
    job = svc.store.cancel(caller.tenant_id, job_id)
    svc.job_finished(job)
    return views.job(svc, job)


@router.post("/renders/{job_id}/retry", status_code=202)
def retry_render(job_id: str, caller: TenantDep, svc: ServiceDep) -> dict[str, Any]:
    return views.job(svc, svc.store.retry(caller.tenant_id, job_id))


@router.get("/renders/{job_id}/logs")
def render_logs(
    job_id: str, caller: TenantDep, svc: ServiceDep,
    level: Annotated[Literal["debug", "info", "warning", "error"] | None, Query()] = None,
) -> list[dict[str, Any]]:
    return [{"at": views.iso(r["at"]), "level": r["level"], "message": r["message"],
             "task_id": r["task_id"], "node_id": r["node_id"]}
            for r in svc.store.logs(caller.tenant_id, job_id, level)]


@router.get("/renders/{job_id}/preview")
def render_preview(job_id: str, caller: TenantDep, svc: ServiceDep) -> Response:
    job = svc.store.get_job(caller.tenant_id, job_id)
    if not job["preview_key"]:
        raise ApiError(404, "not_found", "no preview frame yet")
    return svc.send(job["preview_key"], "image/jpeg")


@router.get("/renders/{job_id}/deliveries")
def render_deliveries(job_id: str, caller: TenantDep, svc: ServiceDep) -> list[dict[str, Any]]:
    """The webhook calls made for this render: target, attempts, last status, state."""
    return [{"id": d["id"], "url": d["url"], "event": d["event"], "state": d["state"],
             "attempts": d["attempts"], "last_status": d["last_status"],
             "last_error": d["last_error"], "next_attempt_at": views.iso(d["next_attempt_at"]),
             "delivered_at": views.iso(d["delivered_at"])}
            for d in webhooks.deliveries(svc.store, caller.tenant_id, job_id)]


class WebhookIn(Body):
    url: str = Field(max_length=2000)
    events: list[webhooks.Event] = Field(default_factory=lambda: list(webhooks.EVENTS),
                                         min_length=1)


@router.post("/webhooks", status_code=201)
def create_webhook(body: WebhookIn, caller: TenantDep, svc: ServiceDep) -> dict[str, Any]:
    """Subscribe a URL to this tenant's render events; the answer holds its signing secret."""
    try:
        webhooks.check_url(body.url, allow_private=svc.settings.webhook_allow_private)
    except webhooks.UnsafeTarget as exc:
        raise ApiError(422, "unsafe_url", str(exc)) from None
    row = webhooks.subscribe(svc.store, caller.tenant_id, body.url, list(body.events))
    return {"id": row["id"], "url": row["url"], "events": row["events"],
            "secret": row["secret"]}


@router.get("/webhooks")
def list_webhooks(caller: TenantDep, svc: ServiceDep) -> dict[str, Any]:
    """Subscriptions, and the secret that signs calls to renders' notify_url."""
    return {"notify_url_secret": webhooks.tenant_secret(svc.store, caller.tenant_id),
            "webhooks": [{"id": r["id"], "url": r["url"], "events": r["events"],
                          "created_at": views.iso(r["created_at"])}
                         for r in webhooks.subscriptions(svc.store, caller.tenant_id)]}


@router.delete("/webhooks/{hook_id}", status_code=204)
def delete_webhook(hook_id: str, caller: TenantDep, svc: ServiceDep) -> Response:
    webhooks.unsubscribe(svc.store, caller.tenant_id, hook_id)
    return Response(status_code=204)


# -- snapshots -------------------------------------------------------------------------------

_MEDIA = {"png": "image/png", "jpeg": "image/jpeg"}


@router.post("/snapshots", response_model=None)
async def snapshot(body: SnapshotIn, caller: TenantDep, svc: ServiceDep) -> Response:
    """One frame as PNG or JPEG. Frames already rendered come from the cache at once;
    others are rendered by a node (waiting up to ``wait`` seconds, else 202 with a job)."""
    if sum(x is not None for x in (body.frame, body.at, body.scene)) > 1:
        raise ApiError(422, "invalid_request", "give only one of frame, at, scene")
    request: SnapshotRequest = await run_in_threadpool(
        svc.prepare_snapshot, caller.tenant_id, document=body.document,
        project_id=body.project_id, template_id=body.template_id, data=body.data,
        frame=body.frame, at=body.at, scene=body.scene, image_format=body.format)
    headers = {"X-Frame": str(request.frame)}
    if svc.storage.exists(request.cache_key):
        headers["X-Cache"] = "hit"
        response = svc.send(request.cache_key, _MEDIA[body.format])
        response.headers.update(headers)
        return response
    job = await run_in_threadpool(svc.queue_snapshot, caller.tenant_id, request)
    deadline = time.monotonic() + body.wait
    while time.monotonic() < deadline:
        row = await run_in_threadpool(svc.store.get_job, caller.tenant_id, job["id"])
        if row["state"] in FINISHED_JOB:
            if row["state"] != JobState.SUCCEEDED:
                raise ApiError(422 if row["failed_step"] else 500, "snapshot_failed",
                               row["error"] or f"snapshot {row['state']}")
            headers.update({"X-Cache": "miss", "X-Job": job["id"]})
            response = svc.send(request.cache_key, _MEDIA[body.format])
            response.headers.update(headers)
            return response
        await asyncio.sleep(0.05)
    return Response(status_code=202, media_type="application/json",
                    content=f'{{"job_id": "{job["id"]}"}}', headers=headers)


# -- exports ---------------------------------------------------------------------------------


@router.get("/exports")
def list_exports(caller: TenantDep, svc: ServiceDep) -> list[dict[str, Any]]:
    return [views.export_view(svc, r) for r in svc.store.list_exports(caller.tenant_id)]


@router.get("/exports/{export_id}")
def get_export(export_id: str, caller: TenantDep, svc: ServiceDep) -> dict[str, Any]:
    return views.export_view(svc, svc.store.get_export(caller.tenant_id, export_id))


@router.delete("/exports/{export_id}", status_code=204)
def delete_export(export_id: str, caller: TenantDep, svc: ServiceDep) -> Response:
    row = svc.store.delete_export(caller.tenant_id, export_id)
    svc.storage.delete(row["storage_key"])
    return Response(status_code=204)


@router.post("/exports/{export_id}/extend")
def extend_export(export_id: str, body: ExtendIn, caller: TenantDep,
                  svc: ServiceDep) -> dict[str, Any]:
    return views.export_view(svc, svc.store.extend_export(caller.tenant_id, export_id,
                                                          body.days))


@router.post("/exports/{export_id}/link")
def export_link(export_id: str, caller: TenantDep, svc: ServiceDep) -> dict[str, Any]:
    """A short-lived download link that needs no API key (for a browser or a customer)."""
    svc.store.get_export(caller.tenant_id, export_id)
    url, expires = svc.signed_url(export_id)
    return {"url": url, "expires_at": expires}


def _send(svc: Service, row: Any) -> Response:
    media = {"mp4": "video/mp4", "webm": "video/webm", "gif": "image/gif"}.get(
        row["format"], "application/octet-stream")
    return svc.send(row["storage_key"], media, f"{row['job_id']}.{row['format']}")


@router.get("/exports/{export_id}/file")
def export_file(export_id: str, caller: TenantDep, svc: ServiceDep) -> Response:
    """The video; Range requests are answered (206), so players can seek."""
    return _send(svc, svc.store.get_export(caller.tenant_id, export_id))


@router.get("/exports/{export_id}/download")
def export_download(export_id: str, svc: ServiceDep, request: Request,
                    expires: int = 0, sig: str = "") -> Response:
    if not svc.check_signature(export_id, expires, sig):
        raise ApiError(403, "link_expired", "this download link is invalid or has expired")
    return _send(svc, svc.store.get_export(None, export_id))


# -- templates -------------------------------------------------------------------------------


def _variables(document: dict[str, Any]) -> dict[str, Any]:
    declared = document.get("variables") or {}
    if not isinstance(declared, dict):
        raise errors.DocumentError("variables: expected an object of name -> definition")
    found, problems = {}, []
    for name, spec in declared.items():
        try:
            found[name] = models.Variable.model_validate(spec).model_dump()
        except pydantic.ValidationError as exc:
            problems += [loader.format_error({**e, "loc": ("variables", name, *e["loc"])})
                         for e in exc.errors()]
    if problems:
        raise errors.DocumentError("the template's variables are invalid", problems)
    return found


@router.post("/templates", status_code=201)
def create_template(body: TemplateIn, caller: TenantDep, svc: ServiceDep) -> dict[str, Any]:
    """Save a document with variables as a template (its blocks and variables are checked
    now)."""
    if body.project_id:
        svc.store.get_project(caller.tenant_id, body.project_id)
    _variables(body.document)
    row = svc.store.create_template(caller.tenant_id, body.name, body.document, body.project_id)
    return {"id": row["id"], "name": row["name"], "variables": _variables(row["document"])}


@router.get("/templates")
def list_templates(caller: TenantDep, svc: ServiceDep) -> list[dict[str, Any]]:
    return [{"id": r["id"], "name": r["name"], "variables": _variables(r["document"])}
            for r in svc.store.list_templates(caller.tenant_id)]


@router.get("/templates/{template_id}")
def get_template(template_id: str, caller: TenantDep, svc: ServiceDep) -> dict[str, Any]:
    row = svc.store.get_template(caller.tenant_id, template_id)
    scenes = row["document"].get("scenes") or []
    return {"id": row["id"], "name": row["name"], "project_id": row["project_id"],
            "variables": _variables(row["document"]), "scenes": len(scenes),
            "document": row["document"]}


@router.post("/templates/{template_id}/renders", status_code=202)
def render_template(template_id: str, body: TemplateRenderIn, caller: TenantDep,
                    svc: ServiceDep) -> dict[str, Any]:
    job, _ = svc.submit(caller.tenant_id, template_id=template_id, data=body.data,
                        options=body.options.model_dump(exclude_none=True),
                        priority=body.priority, idempotency_key=body.idempotency_key,
                        notify_url=body.notify_url)
    return views.job(svc, job)


@router.post("/templates/{template_id}/previews")
def template_previews(template_id: str, body: TemplateRenderIn, caller: TenantDep,
                      svc: ServiceDep) -> list[dict[str, Any]]:
    """A still of each scene's key frame, filled with ``data``: cached ones at once, the
    others queued as snapshot jobs (fetch them with GET /v1/snapshots/{job_id})."""
    row = svc.store.get_template(caller.tenant_id, template_id)
    out = []
    for scene in range(len(row["document"].get("scenes") or [])):
        request = svc.prepare_snapshot(caller.tenant_id, document=None, project_id=None,
                                       template_id=template_id, data=body.data, frame=None,
                                       at=None, scene=scene, image_format="jpeg")
        job_id = None
        if not svc.storage.exists(request.cache_key):
            job_id = svc.queue_snapshot(caller.tenant_id, request)["id"]
        out.append({"scene": scene, "frame": request.frame, "job_id": job_id,
                    "cached": job_id is None})
    return out


@router.get("/snapshots/{job_id}")
def snapshot_result(job_id: str, caller: TenantDep, svc: ServiceDep) -> Response:
    """The image of a snapshot job, once it succeeded (202 while it runs)."""
    job = svc.store.get_job(caller.tenant_id, job_id)
    if job["kind"] != "snapshot":
        raise ApiError(404, "not_found", f"{job_id} is not a snapshot")
    if job["state"] != JobState.SUCCEEDED:
        if job["state"] in FINISHED_JOB:
            raise ApiError(422, "snapshot_failed", job["error"] or job["state"])
        return Response(status_code=202)
    fmt = job["options"].get("snapshot_format", "png")
    return svc.send(job["options"]["cache_key"], _MEDIA.get(fmt, "image/png"))

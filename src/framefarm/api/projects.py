"""Projects, their assets and templates (tenant API keys). Another tenant's rows answer
404, never 403."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from framefarm.api.deps import AppDep, TenantDep
from framefarm.api.errors import TENANT_RESPONSES
from framefarm.api.renders import RenderOptions, job_json
from framefarm.application import views
from framefarm.application.projects import Upload, asset_name, template_variables

router = APIRouter(prefix="/v1", responses=TENANT_RESPONSES)


class Body(BaseModel):
    # Strict: JSON types as the schema says (no "1" for 1, no 0 for false).
    model_config = ConfigDict(extra="forbid", strict=True)


class ProjectIn(Body):
    name: str = Field(min_length=1, max_length=200)


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


# -- projects and assets ----------------------------------------------------------------------


@router.post("/projects", status_code=201)
def create_project(body: ProjectIn, caller: TenantDep, app: AppDep) -> dict[str, Any]:
    row = app.projects.create(caller.tenant_id, body.name)
    return {"id": row.id, "name": row.name, "created_at": views.iso(row.created_at)}


@router.get("/projects")
def list_projects(caller: TenantDep, app: AppDep) -> list[dict[str, Any]]:
    return [{"id": r.id, "name": r.name, "created_at": views.iso(r.created_at)}
            for r in app.projects.all(caller.tenant_id)]


@router.get("/projects/{project_id}")
def get_project(project_id: str, caller: TenantDep, app: AppDep) -> dict[str, Any]:
    row, assets = app.projects.get(caller.tenant_id, project_id)
    return {"id": row.id, "name": row.name, "document": row.document,
            "assets": [a.name for a in assets], "updated_at": views.iso(row.updated_at)}


@router.put("/projects/{project_id}/document")
def put_document(project_id: str, document: dict[str, Any], caller: TenantDep,
                 app: AppDep) -> dict[str, Any]:
    """Store the project's document. Its structure is checked now (templates may stay
    unfilled); its assets are checked when it is rendered."""
    app.projects.put_document(caller.tenant_id, project_id, document)
    return {"id": project_id, "ok": True}


@router.post("/projects/{project_id}/assets", status_code=201)
def upload_assets(
    project_id: str, caller: TenantDep, app: AppDep,
    files: Annotated[list[UploadFile], File(description="one or more files", min_length=1)],
    folder: Annotated[str | None, Form(description="a folder for all of them, e.g. "
                                       "'images'")] = None,
) -> list[dict[str, Any]]:
    """Upload files; each is stored once by its SHA-256 and named in the project by its
    (sanitised) file name, optionally inside ``folder``."""
    # Every name is checked before anything is stored.
    uploads = [Upload(asset_name(f"{folder}/{f.filename}" if folder else f.filename or ""),
                      f.file) for f in files]
    return [{"name": s.name, "sha256": s.sha256, "size": s.size}
            for s in app.projects.upload(caller.tenant_id, project_id, uploads)]


@router.get("/projects/{project_id}/assets")
def list_assets(project_id: str, caller: TenantDep, app: AppDep) -> list[dict[str, Any]]:
    return [{"name": r.name, "sha256": r.sha256, "size": r.size,
             "created_at": views.iso(r.created_at)}
            for r in app.projects.assets(caller.tenant_id, project_id)]


@router.delete("/projects/{project_id}/assets/{name:path}", status_code=204)
def delete_asset(project_id: str, name: str, caller: TenantDep, app: AppDep) -> Response:
    app.projects.delete_asset(caller.tenant_id, project_id, name)
    return Response(status_code=204)


# -- templates -------------------------------------------------------------------------------


@router.post("/templates", status_code=201)
def create_template(body: TemplateIn, caller: TenantDep, app: AppDep) -> dict[str, Any]:
    """Save a document with variables as a template (its variables are checked now)."""
    row = app.projects.create_template(caller.tenant_id, body.name, body.document,
                                       body.project_id)
    return {"id": row.id, "name": row.name, "variables": template_variables(row.document)}


@router.get("/templates")
def list_templates(caller: TenantDep, app: AppDep) -> list[dict[str, Any]]:
    return [{"id": r.id, "name": r.name, "variables": template_variables(r.document)}
            for r in app.projects.templates(caller.tenant_id)]


@router.get("/templates/{template_id}")
def get_template(template_id: str, caller: TenantDep, app: AppDep) -> dict[str, Any]:
    row = app.projects.template(caller.tenant_id, template_id)
    scenes = row.document.get("scenes") or []
    return {"id": row.id, "name": row.name, "project_id": row.project_id,
            "variables": template_variables(row.document), "scenes": len(scenes),
            "document": row.document}


@router.post("/templates/{template_id}/renders", status_code=202)
def render_template(template_id: str, body: TemplateRenderIn, caller: TenantDep,
                    app: AppDep) -> dict[str, Any]:
    view, _ = app.renders.submit(
        caller.tenant_id, template_id=template_id, data=body.data,
        options=body.options.model_dump(exclude_none=True), priority=body.priority,
        idempotency_key=body.idempotency_key, notify_url=body.notify_url)
    return job_json(app, view)


@router.post("/templates/{template_id}/previews")
def template_previews(template_id: str, body: TemplateRenderIn, caller: TenantDep,
                      app: AppDep) -> list[dict[str, Any]]:
    """A still of each scene's key frame, filled with ``data``: cached ones at once, the
    others queued as snapshot jobs (fetch them with GET /v1/snapshots/{job_id})."""
    row = app.projects.template(caller.tenant_id, template_id)
    out = []
    for scene in range(len(row.document.get("scenes") or [])):
        request = app.renders.prepare_snapshot(
            caller.tenant_id, document=None, project_id=None, template_id=template_id,
            data=body.data, frame=None, at=None, scene=scene, image_format="jpeg")
        job_id = None
        if not app.renders.cached(request.cache_key):
            job_id = app.renders.queue_snapshot(caller.tenant_id, request).id
        out.append({"scene": scene, "frame": request.frame, "job_id": job_id,
                    "cached": job_id is None})
    return out

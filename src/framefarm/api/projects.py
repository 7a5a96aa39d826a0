"""Projects, their assets and templates (tenant API keys). Another tenant's rows answer
404, never 403."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Response, UploadFile

from framefarm.api import models
from framefarm.api.deps import AppDep, TenantDep, file_responses, send
from framefarm.api.errors import TENANT_RESPONSES
from framefarm.api.renders import job_json
from framefarm.application import archives, views
from framefarm.application.projects import Upload, asset_name

router = APIRouter(prefix="/v1", responses=TENANT_RESPONSES)


# -- projects and assets ----------------------------------------------------------------------


@router.post("/projects", status_code=201, response_model=models.Project)
def create_project(body: models.ProjectIn, caller: TenantDep, app: AppDep) -> dict[str, Any]:
    return views.project(app.projects.create(caller.tenant_id, body.name))


@router.get("/projects", response_model=list[models.Project])
def list_projects(caller: TenantDep, app: AppDep) -> list[dict[str, Any]]:
    return [views.project(r) for r in app.projects.all(caller.tenant_id)]


@router.get("/projects/{project_id}", response_model=models.ProjectDetail)
def get_project(project_id: str, caller: TenantDep, app: AppDep) -> dict[str, Any]:
    return views.project_detail(*app.projects.get(caller.tenant_id, project_id))


@router.patch("/projects/{project_id}", response_model=models.Project)
def rename_project(project_id: str, body: models.ProjectIn, caller: TenantDep,
                   app: AppDep) -> dict[str, Any]:
    """Rename the project; the answer is the project as ``POST /v1/projects`` gives it."""
    return views.project(app.projects.rename(caller.tenant_id, project_id, body.name))


@router.delete("/projects/{project_id}", status_code=204)
def delete_project(project_id: str, caller: TenantDep, app: AppDep) -> Response:
    """Delete the project, its assets and its templates (409 while one of its renders is
    queued or running). Its finished renders and their exports stay; stored asset contents
    nothing else uses are deleted by the storage sweeper."""
    app.projects.delete(caller.tenant_id, project_id)
    return Response(status_code=204)


@router.put("/projects/{project_id}/document", response_model=models.DocumentStored)
def put_document(project_id: str, document: dict[str, Any], caller: TenantDep,
                 app: AppDep) -> dict[str, Any]:
    """Store the project's document. Its structure is checked now (templates may stay
    unfilled); its assets are checked when it is rendered."""
    app.projects.put_document(caller.tenant_id, project_id, document)
    return {"id": project_id, "ok": True}


@router.post("/projects/{project_id}/assets", status_code=201,
             response_model=list[models.UploadedAsset])
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


@router.post("/projects/{project_id}/archive", status_code=201,
             response_model=list[models.UploadedAsset])
def upload_archive(
    project_id: str, caller: TenantDep, app: AppDep,
    archive: Annotated[UploadFile, File(description="a ZIP or tar (.tar, .tar.gz, .tgz, "
                                        ".tar.bz2, .tar.xz) of the project's files")],
    folder: Annotated[str | None, Form(description="a folder for all of them")] = None,
) -> list[dict[str, Any]]:
    """Upload many files as one archive (a Remotion project's folder, say): each file is
    stored under its path in it, one enclosing folder taken as the root; node_modules,
    .git and hidden files are passed over; links, escaping paths, more than 5,000 files
    or 500 MiB unpacked are refused, naming the member, before anything is stored."""
    with archives.uploads(archive.file, folder=folder) as uploads:
        stored = app.projects.upload(caller.tenant_id, project_id, uploads)
    return [{"name": s.name, "sha256": s.sha256, "size": s.size} for s in stored]


@router.get("/projects/{project_id}/assets", response_model=list[models.Asset])
def list_assets(project_id: str, caller: TenantDep, app: AppDep) -> list[dict[str, Any]]:
    return [views.asset(r) for r in app.projects.assets(caller.tenant_id, project_id)]


@router.get("/projects/{project_id}/assets/{name:path}",
            responses=file_responses("*/*", ranges=True))
def get_asset(project_id: str, name: str, caller: TenantDep, app: AppDep) -> Response:
    """The asset's content, typed by its name (a redirect to a presigned URL on S3)."""
    return send(app.projects.asset_file(caller.tenant_id, project_id, name))


@router.delete("/projects/{project_id}/assets/{name:path}", status_code=204)
def delete_asset(project_id: str, name: str, caller: TenantDep, app: AppDep) -> Response:
    app.projects.delete_asset(caller.tenant_id, project_id, name)
    return Response(status_code=204)


@router.get("/projects/{project_id}/renders", response_model=models.JobPage)
def list_project_renders(
    project_id: str, caller: TenantDep, app: AppDep,
    state: Annotated[models.JobStateName | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(description="``next`` of the previous page")] = None,
) -> dict[str, Any]:
    """The project's renders and snapshots, newest first, as ``GET /v1/renders``."""
    found = app.renders.page(caller.tenant_id, state=state, limit=limit, before=before,
                             project_id=project_id)
    return views.page(found, app.settings.public_url)


@router.get("/projects/{project_id}/exports", response_model=list[models.Export])
def list_project_exports(project_id: str, caller: TenantDep,
                         app: AppDep) -> list[dict[str, Any]]:
    """The exports of the project's renders, newest first, as ``GET /v1/exports``."""
    return [views.export(r, app.settings.public_url)
            for r in app.projects.exports(caller.tenant_id, project_id)]


# -- templates -------------------------------------------------------------------------------


@router.post("/templates", status_code=201, response_model=models.TemplateSummary)
def create_template(body: models.TemplateIn, caller: TenantDep, app: AppDep) -> dict[str, Any]:
    """Save a document with variables as a template (its variables are checked now)."""
    row = app.projects.create_template(caller.tenant_id, body.name, body.document,
                                       body.project_id)
    return views.template_summary(row)


@router.get("/templates", response_model=list[models.TemplateSummary])
def list_templates(caller: TenantDep, app: AppDep) -> list[dict[str, Any]]:
    return [views.template_summary(r) for r in app.projects.templates(caller.tenant_id)]


@router.get("/templates/{template_id}", response_model=models.Template)
def get_template(template_id: str, caller: TenantDep, app: AppDep) -> dict[str, Any]:
    return views.template(app.projects.template(caller.tenant_id, template_id))


@router.put("/templates/{template_id}", response_model=models.Template)
def update_template(template_id: str, body: models.TemplateUpdate, caller: TenantDep,
                    app: AppDep) -> dict[str, Any]:
    """A new name and/or document (its variables are checked as at create); a field left
    out (or null) stays as it is. The answer is the template as ``GET /v1/templates/{id}``
    gives it."""
    return views.template(app.projects.update_template(
        caller.tenant_id, template_id, name=body.name, document=body.document))


@router.delete("/templates/{template_id}", status_code=204)
def delete_template(template_id: str, caller: TenantDep, app: AppDep) -> Response:
    """Delete the template; renders made from it stay."""
    app.projects.delete_template(caller.tenant_id, template_id)
    return Response(status_code=204)


@router.post("/templates/{template_id}/renders", status_code=202, response_model=models.Job)
def render_template(template_id: str, body: models.TemplateRenderIn, caller: TenantDep,
                    app: AppDep) -> dict[str, Any]:
    view, _ = app.renders.submit(
        caller.tenant_id, template_id=template_id, data=body.data,
        options=body.options.model_dump(exclude_none=True), priority=body.priority,
        idempotency_key=body.idempotency_key, notify_url=body.notify_url)
    return job_json(app, view)


@router.post("/templates/{template_id}/previews", response_model=list[models.ScenePreview])
def template_previews(template_id: str, body: models.TemplateRenderIn, caller: TenantDep,
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

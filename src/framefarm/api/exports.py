"""Exports: the finished videos (tenant API keys), and their signed download links (no
key: the signature is the permission)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from framefarm.api import models
from framefarm.api.deps import AppDep, TenantDep, file_responses, send
from framefarm.api.errors import TENANT_RESPONSES, ApiError
from framefarm.application import views

router = APIRouter(prefix="/v1", responses=TENANT_RESPONSES)


@router.get("/exports", response_model=list[models.Export])
def list_exports(caller: TenantDep, app: AppDep) -> list[dict[str, Any]]:
    return [views.export(r, app.settings.public_url)
            for r in app.exports.all(caller.tenant_id)]


@router.get("/exports/{export_id}", response_model=models.Export)
def get_export(export_id: str, caller: TenantDep, app: AppDep) -> dict[str, Any]:
    return views.export(app.exports.get(caller.tenant_id, export_id), app.settings.public_url)


@router.delete("/exports/{export_id}", status_code=204)
def delete_export(export_id: str, caller: TenantDep, app: AppDep) -> Response:
    app.exports.delete(caller.tenant_id, export_id)
    return Response(status_code=204)


@router.post("/exports/{export_id}/extend", response_model=models.Export)
def extend_export(export_id: str, body: models.ExtendIn, caller: TenantDep,
                  app: AppDep) -> dict[str, Any]:
    return views.export(app.exports.extend(caller.tenant_id, export_id, body.days),
                        app.settings.public_url)


@router.post("/exports/{export_id}/link", response_model=models.Link)
def export_link(export_id: str, caller: TenantDep, app: AppDep) -> dict[str, Any]:
    """A short-lived download link that needs no API key (for a browser or a customer)."""
    app.exports.get(caller.tenant_id, export_id)
    url, expires = app.exports.signed_url(export_id)
    return {"url": url, "expires_at": expires}


_VIDEO = file_responses("video/mp4", "video/webm", "image/gif", ranges=True)


@router.get("/exports/{export_id}/file", responses=_VIDEO)
def export_file(export_id: str, caller: TenantDep, app: AppDep) -> Response:
    """The video; Range requests are answered (206), so players can seek."""
    return send(app.exports.file(app.exports.get(caller.tenant_id, export_id)))


@router.get("/exports/{export_id}/download", responses=_VIDEO)
def export_download(export_id: str, app: AppDep, expires: int = 0, sig: str = "") -> Response:
    if not app.exports.check_signature(export_id, expires, sig):
        raise ApiError(403, "link_expired", "this download link is invalid or has expired")
    return send(app.exports.file(app.exports.get(None, export_id)))

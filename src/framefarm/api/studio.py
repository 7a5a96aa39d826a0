"""The studio's routes: the page at ``/``, its files under ``/studio/``, and the two
small reads only the studio needs (the document's JSON Schema for its editor, and a
document's timeline for the preview's scrubber and scene markers).

Every page and file is sent with a strict Content-Security-Policy (no inline script or
style, no eval) and the usual hardening headers. The studio keeps the API key in the
tab's ``sessionStorage`` and sends it as ``Authorization: Bearer``; it never appears in
a URL, so there is no cookie and nothing for a cross-site request to ride on (no CSRF).
"""

from __future__ import annotations

import hashlib
import mimetypes
import urllib.parse
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from framefarm import studio
from framefarm.api import models as api_models
from framefarm.api.deps import AppDep, TenantDep
from framefarm.api.errors import TENANT_RESPONSES, ApiError
from framefarm.application import Application
from framefarm.document import models

pages = APIRouter(include_in_schema=False)
# The studio's own reads: left out of /openapi.json (they serve this page, not API
# clients, and may change with it).
router = APIRouter(prefix="/v1/studio", tags=["studio"], responses=TENANT_RESPONSES,
                   include_in_schema=False)

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml",
          ".json": "application/json", ".txt": "text/plain; charset=utf-8"}


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def content_security_policy(app: Application) -> str:
    """Scripts and styles only from the studio's own files. Media may also come from the
    public URL (signed download links) and an S3 endpoint (their redirects)."""
    settings = app.settings
    extra = " ".join(sorted({o for o in (_origin(settings.public_url),
                                         _origin(settings.s3_public_endpoint_url
                                                 or settings.s3_endpoint_url)) if o}))
    return "; ".join([
        "default-src 'none'", "script-src 'self'", "style-src 'self'",
        f"img-src 'self' blob: data: {extra}".strip(), f"media-src 'self' blob: {extra}".strip(),
        "connect-src 'self'", "font-src 'self'", "manifest-src 'self'",
        "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
        "object-src 'none'"])


def security_headers(app: Application) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(app),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
        # Revalidated each time (cheap: ETag), so an upgrade is seen at once.
        "Cache-Control": "no-cache",
    }


def _file(app: Application, path: str, request: Request) -> Response:
    parts = [p for p in path.split("/") if p]
    if not parts or any(p in ("..", ".") or p.startswith(".") for p in parts):
        raise ApiError(404, "not_found", f"no studio file {path!r}")
    found = studio.static_root().joinpath(*parts)
    if not found.is_file():
        raise ApiError(404, "not_found", f"no studio file {path!r}")
    suffix = "." + parts[-1].rpartition(".")[2]
    media = _TYPES.get(suffix) or mimetypes.guess_type(parts[-1])[0] or "application/octet-stream"
    body = found.read_bytes()
    headers = {**security_headers(app), "ETag": f'"{hashlib.sha256(body).hexdigest()[:32]}"'}
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media, headers=headers)


@pages.get("/")
def index(app: AppDep, request: Request) -> Response:
    """The studio."""
    return _file(app, "index.html", request)


@pages.get("/studio/{path:path}")
def studio_file(path: str, app: AppDep, request: Request) -> Response:
    return _file(app, path, request)


@router.get("/schema")
def document_schema(_: TenantDep) -> dict[str, Any]:
    """The video document's JSON Schema (what ``framefarm schema`` prints), for editors."""
    return models.Document.model_json_schema(by_alias=True)


class TimelineIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    document: dict[str, Any] | None = None
    project_id: str | None = None
    template_id: str | None = None
    data: dict[str, Any] | None = None
    options: api_models.RenderOptions = Field(default_factory=api_models.RenderOptions)


@router.post("/timeline")
def timeline(body: TimelineIn, caller: TenantDep, app: AppDep) -> dict[str, Any]:
    """The filled document's timeline, exactly as a render would see it (with its real
    assets): fps, frames, duration, and each scene's first frame, length and key frame."""
    found = app.renders.timeline(
        caller.tenant_id, document=body.document, project_id=body.project_id,
        template_id=body.template_id, data=body.data,
        options=body.options.model_dump(exclude_none=True))
    return {"fps": found.fps, "frames": found.total_frames, "duration": found.duration,
            "width": found.width, "height": found.height,
            "scenes": [{"index": s.index, "start": s.start, "frames": s.frames,
                        "key_frame": found.key_frame(s.index)} for s in found.scenes]}

"""``create_app(settings)``: the FastAPI application around the application layer, and
its upkeep loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from framefarm import application
from framefarm.api import (
    accounts,
    admin,
    batches,
    errors,
    events,
    exports,
    internal,
    limits,
    metrics,
    projects,
    renders,
    studio,
    usage,
)
from framefarm.application import Application
from framefarm.settings import Settings

log = logging.getLogger("framefarm.api")
_SWEEP_EVERY = 300  # upkeep rounds between sweeps of expired exports


async def _upkeep(app: Application) -> None:
    """Requeue expired leases, send due webhooks, delete expired exports; forever."""
    interval = max(0.2, min(app.settings.lease_seconds / 3, 2.0))
    rounds = 0
    while True:
        # Shielded: when the server stops, the round in progress finishes (and gives its
        # database connection back) before the application is closed.
        round_ = asyncio.ensure_future(run_in_threadpool(app.upkeep,
                                                         sweep=rounds % _SWEEP_EVERY == 0))
        try:
            await asyncio.shield(round_)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await round_
            raise
        except Exception:  # keep the loop alive; the log has the details
            log.exception("upkeep failed")
        rounds += 1
        await asyncio.sleep(interval)


def create_app(settings: Settings, app: Application | None = None) -> FastAPI:
    found = app or application.build(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await found.ctx.db.direct.open()  # the event loop's own reads (db/direct.py)
        task = asyncio.create_task(_upkeep(found))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await found.ctx.db.direct.close()

    api = FastAPI(title="framefarm", version="0.1.0", lifespan=lifespan,
                  description="Render declarative video documents on a farm of nodes.")
    api.state.application = found
    api.state.watcher = events.JobWatcher(found.on_job_change)
    # Body limits sit inside the metrics middleware (so refusals are counted) and inside
    # CORS (so a browser can read a 413).
    api.add_middleware(limits.BodyLimit, max_upload_bytes=settings.max_upload_bytes,
                       max_upload_files=settings.max_upload_files,
                       max_batch_bytes=settings.batch_max_bytes)
    metrics.install(api, found)
    errors.install(api)
    if settings.cors_origins:
        api.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["*"], allow_headers=["*"])

    @api.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz", tags=["health"], responses={
        503: {"description": "Not ready: a check is failing (the same body names it)."}})
    def readyz() -> JSONResponse:
        checks = found.readiness()
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    for router in (accounts.router, projects.router, renders.router, exports.router,
                   admin.router, usage.router, usage.admin_router, studio.router):
        api.include_router(router)
    api.include_router(batches.router)
    api.include_router(studio.pages)  # the studio: the page at / and its files
    # Their modules are the live-events and node-protocol owners'; their error answers are
    # documented here.
    api.include_router(events.router, responses=errors.TENANT_RESPONSES)
    api.include_router(internal.router, responses=errors.NODE_RESPONSES)
    _describe_websocket(api)
    return api


WEBSOCKET_PATH = "/v1/renders/{job_id}/ws"
_WEBSOCKET_DOC: dict[str, Any] = {
    "summary": "Live events of a render over a WebSocket",
    "description": (
        "A WebSocket (not an HTTP operation; OpenAPI has no word for one): connect with "
        "`GET` and `Upgrade: websocket`. Authenticate with `Authorization: Bearer <API "
        "key>` or, from a browser, with a first message `{\"token\": \"<API key>\"}` "
        "within 5 s (a key in the URL would end up in logs). The server sends the same JSON "
        "events as `GET /v1/renders/{job_id}/events` (`state`, `progress`, `preview`, "
        "`done`), then closes after `done`. It closes with 4401 for a missing or unknown "
        "key and 4404 for another tenant's or no such render."),
    "parameters": [
        {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}},
    ],
    "x-websocket": {
        "messages": {"type": "object", "required": ["event"], "properties": {
            "event": {"enum": ["state", "progress", "preview", "done"]}}},
        "close_codes": {"1000": "the render finished", "4401": "unknown or missing API key",
                        "4404": "no such render"},
        "security": [{"ApiKey": []}],
    },
}


_STORED_FILE = {
    "200": {"description": "The file.", "content": {"application/octet-stream": {}}},
    "307": {"description": "A redirect to a presigned storage URL (S3 storage)."}}
# Answers of node-protocol routes that their decorators (api/internal.py) do not declare.
_NODE_ANSWERS: dict[tuple[str, str], dict[str, Any]] = {
    ("/internal/tasks/claim", "post"): {"204": {"description": "No task for this node now."}},
    ("/internal/tasks/{task_id}/blobs/{sha256}", "get"): _STORED_FILE,
    ("/internal/tasks/{task_id}/inputs/{idx}", "get"): _STORED_FILE,
}


def _describe_websocket(api: FastAPI) -> None:
    """Add the WebSocket route (which FastAPI leaves out) to ``/openapi.json``, as a path
    with no HTTP operation, so clients and tools see it but none calls it as HTTP; and the
    node routes' answers that their decorators leave out."""
    generate = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            paths = generate()["paths"]
            paths[WEBSOCKET_PATH] = _WEBSOCKET_DOC
            for (path, method), answers in _NODE_ANSWERS.items():
                operation = paths.get(path, {}).get(method)
                if operation is not None:
                    for status, answer in answers.items():
                        operation["responses"].setdefault(status, answer)
        assert api.openapi_schema is not None
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]

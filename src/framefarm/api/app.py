"""``create_app(settings)``: the FastAPI application around the application layer, and
its upkeep loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from framefarm import application
from framefarm.api import admin, errors, events, exports, internal, metrics, projects, renders
from framefarm.application import Application
from framefarm.settings import Settings

log = logging.getLogger("framefarm.api")
_MAX_JSON = 10 * 1024**2  # a request that is not an upload
_SWEEP_EVERY = 300  # upkeep rounds between sweeps of expired exports


async def _upkeep(app: Application) -> None:
    """Requeue expired leases, send due webhooks, delete expired exports; forever."""
    interval = max(0.2, min(app.settings.lease_seconds / 3, 2.0))
    rounds = 0
    with httpx.Client(timeout=10.0, follow_redirects=False) as client:
        while True:
            try:
                await run_in_threadpool(app.upkeep, client, sweep=rounds % _SWEEP_EVERY == 0)
            except Exception:  # keep the loop alive; the log has the details
                log.exception("upkeep failed")
            rounds += 1
            await asyncio.sleep(interval)


def create_app(settings: Settings, app: Application | None = None) -> FastAPI:
    found = app or application.build(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_upkeep(found))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    api = FastAPI(title="framefarm", version="0.1.0", lifespan=lifespan,
                  description="Render declarative video documents on a farm of nodes.")
    api.state.application = found
    api.state.watcher = events.JobWatcher(found.renders.update_times)
    metrics.install(api, found)
    errors.install(api)
    if settings.cors_origins:
        api.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["*"], allow_headers=["*"])

    @api.middleware("http")
    async def limit_bodies(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        uploading = request.url.path.endswith(("/assets", "/output"))
        limit = found.settings.max_upload_bytes * 20 if uploading else _MAX_JSON
        if length and length.isdigit() and int(length) > limit:
            return JSONResponse(errors.body("too_large", f"request body over {limit} bytes"),
                                status_code=413)
        return await call_next(request)

    @api.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        for name, check in (("database", found.ctx.db.ping),
                            ("storage", found.ctx.storage.check_writable)):
            try:
                check()
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"failing: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    for router in (projects.router, renders.router, exports.router, events.router,
                   admin.router, internal.router):
        api.include_router(router)
    return api

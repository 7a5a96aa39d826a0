"""``create_app(settings)``: the FastAPI application, its service and its upkeep loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from framefarm import webhooks
from framefarm.api import admin, errors, events, internal, metrics, public, views
from framefarm.api.service import Service
from framefarm.queue import store as queue
from framefarm.queue.clock import Clock
from framefarm.settings import Settings
from framefarm.storage.local import LocalStorage, Storage
from framefarm.storage.s3 import S3Storage

log = logging.getLogger("framefarm.api")
_MAX_JSON = 10 * 1024**2  # a request that is not an upload


def stored_secret(settings_value: str | None, path: Path) -> str:
    """A secret from the settings, else one generated once and kept in the data dir."""
    if settings_value:
        return settings_value
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(value)
    return value


def queue_settings(settings: Settings) -> queue.QueueSettings:
    return queue.QueueSettings(
        lease_seconds=settings.lease_seconds, max_attempts=settings.max_attempts,
        retry_backoff_seconds=settings.retry_backoff_seconds,
        node_block_failures=settings.node_block_failures,
        max_concurrent_jobs=settings.max_concurrent_jobs,
        node_offline_seconds=max(30.0, settings.heartbeat_seconds * 6))


def build_storage(settings: Settings) -> Storage:
    if settings.storage_backend == "s3":
        return S3Storage(
            settings.s3_bucket, cache_dir=settings.data_dir.resolve() / "s3-cache",
            endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key, prefix=settings.s3_prefix,
            public_endpoint_url=settings.s3_public_endpoint_url,
            part_size=settings.s3_part_mb * 1024**2,
            create_bucket=True)
    return LocalStorage(settings.storage_dir)


def build_service(settings: Settings, clock: Clock | None = None) -> Service:
    data = settings.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    store = queue.open_store(settings.db_url, clock, queue_settings(settings))
    return Service(
        settings=settings, store=store, storage=build_storage(settings),
        secret_key=stored_secret(settings.secret_key, data / "secret.key").encode(),
        enrolment_token=stored_secret(settings.enrolment_token, data / "enrolment.token"))


def webhook_payload(svc: Service, job_id: str) -> dict[str, Any]:
    """The body of a webhook call, built when it is sent so its link is fresh."""
    job = views.job(svc, svc.store.get_job(None, job_id))
    payload: dict[str, Any] = {"job": job}
    if job["export"]:
        url, expires = svc.signed_url(job["export"]["id"])
        payload.update(download_url=url, download_expires_at=expires)
    return payload


async def _upkeep(svc: Service, counters: metrics.Metrics) -> None:
    """Requeue expired leases, send due webhooks, delete expired exports; forever."""
    interval = max(0.2, min(svc.settings.lease_seconds / 3, 2.0))
    ticks = 0
    with httpx.Client(timeout=10.0, follow_redirects=False) as client:
        while True:
            try:
                requeued = await run_in_threadpool(svc.store.requeue_expired)
                counters.requeued.inc(requeued)
                await run_in_threadpool(
                    webhooks.deliver_due, svc.store, lambda job_id: webhook_payload(svc, job_id),
                    client, allow_private=svc.settings.webhook_allow_private)
                if ticks % 300 == 0:
                    await run_in_threadpool(svc.sweep_exports)
            except Exception:  # keep the loop alive; the log has the details
                log.exception("upkeep failed")
            ticks += 1
            await asyncio.sleep(interval)


def create_app(settings: Settings, service: Service | None = None) -> FastAPI:
    svc = service or build_service(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_upkeep(svc, app.state.metrics))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(title="framefarm", version="0.1.0", lifespan=lifespan,
                  description="Render declarative video documents on a farm of nodes.")
    app.state.service = svc
    app.state.watcher = events.JobWatcher(svc.store)
    app.state.metrics = metrics.install(app, svc)
    errors.install(app)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["*"], allow_headers=["*"])

    @app.middleware("http")
    async def limit_bodies(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        uploading = request.url.path.endswith(("/assets", "/output"))
        limit = svc.settings.max_upload_bytes * 20 if uploading else _MAX_JSON
        if length and length.isdigit() and int(length) > limit:
            return JSONResponse(errors.body("too_large", f"request body over {limit} bytes"),
                                status_code=413)
        return await call_next(request)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        for name, check in (("database", svc.store.ping),
                            ("storage", svc.storage.check_writable)):
            try:
                check()
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"failing: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    for router in (public.router, events.router, admin.router, internal.router):
        app.include_router(router)
    return app

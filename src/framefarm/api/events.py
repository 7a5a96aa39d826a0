"""Live events of a render: Server-Sent Events and a WebSocket, with the same payloads.

Events come from polling the job (twice a second): every API process can serve them, and
nothing is lost when one restarts. Kinds: ``state`` (state or step changed), ``progress``,
``preview`` (a new preview frame), ``done`` (finished; with the download link).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from framefarm.api import views
from framefarm.api.deps import ServiceDep, TenantDep
from framefarm.api.service import Service
from framefarm.queue import store as queue
from framefarm.queue.states import FINISHED_JOB

router = APIRouter(prefix="/v1")
POLL_SECONDS = 0.5


async def job_events(svc: Service, tenant_id: str, job_id: str) -> AsyncIterator[dict[str, Any]]:
    last: dict[str, Any] = {}
    while True:
        row = await run_in_threadpool(svc.store.get_job, tenant_id, job_id)
        view = await run_in_threadpool(views.job, svc, row)
        if (view["state"], view["step"]) != (last.get("state"), last.get("step")):
            yield {"event": "state", "state": view["state"], "step": view["step"]}
        if view["percent"] != last.get("percent") or view["frames"] != last.get("frames"):
            yield {"event": "progress", "percent": view["percent"], "frames": view["frames"],
                   "eta_seconds": view["eta_seconds"]}
        if view["preview_url"] and row["updated_at"] != last.get("updated_at"):
            yield {"event": "preview", "url": view["preview_url"]}
        last = {**view, "updated_at": row["updated_at"]}
        if row["state"] in FINISHED_JOB:
            done: dict[str, Any] = {"event": "done", "state": view["state"],
                                    "error": view["error"]}
            if view["export"]:
                url, expires = svc.signed_url(view["export"]["id"])
                done.update({"export": view["export"], "download_url": url,
                             "download_expires_at": expires})
            yield done
            return
        await asyncio.sleep(POLL_SECONDS)


@router.get("/renders/{job_id}/events")
async def events(job_id: str, caller: TenantDep, svc: ServiceDep) -> StreamingResponse:
    """Server-Sent Events until the job finishes."""
    await run_in_threadpool(svc.store.get_job, caller.tenant_id, job_id)  # 404 first

    async def stream() -> AsyncIterator[str]:
        async for event in job_events(svc, caller.tenant_id, job_id):
            yield f"event: {event['event']}\ndata: {json.dumps(event)}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


@router.websocket("/renders/{job_id}/ws")
async def websocket(job_id: str, ws: WebSocket, token: str | None = None) -> None:
    """The same events over a WebSocket; browsers pass the API key as ``?token=``."""
    svc: Service = ws.app.state.service
    key = token or ws.headers.get("authorization", "").removeprefix("Bearer ").strip()
    caller = await run_in_threadpool(svc.store.authenticate, key) if key else None
    if caller is None:
        await ws.close(code=4401, reason="unknown or missing API key")
        return
    try:
        await run_in_threadpool(svc.store.get_job, caller[0], job_id)
    except queue.NotFound:
        await ws.close(code=4404, reason="no such render")
        return
    await ws.accept()
    try:
        async for event in job_events(svc, caller[0], job_id):
            await ws.send_json(event)
        await ws.close()
    except WebSocketDisconnect:
        return

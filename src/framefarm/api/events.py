"""Live events of a render: Server-Sent Events and a WebSocket, with the same payloads.

Events come from the database, so every API process can serve them and nothing is lost
when one restarts. One :class:`JobWatcher` per process asks, twice a second and in one
query, when each watched job last changed; a stream reads its job again only then. So a
thousand people watching costs one small query per tick, not a thousand.

Kinds: ``state`` (state or step changed), ``progress``, ``preview`` (a new preview frame),
``done`` (finished; with the download link). SSE streams also get a comment line every
15 s without events, so proxies keep them open.

The WebSocket takes its API key in its first message, ``{"token": "<API key>"}``, or in
the Authorization header; not in the URL, where keys end up in access logs (``?token=`` is
still read, for older clients, and deprecated).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketState

from framefarm.api.deps import AppDep, TenantDep
from framefarm.application import Application, views
from framefarm.queue.errors import NotFound
from framefarm.queue.states import FINISHED_JOB

router = APIRouter(prefix="/v1")
log = logging.getLogger("framefarm.api")
POLL_SECONDS = 0.5
QUIET_SECONDS = 15.0  # a stream with no change re-reads its job (and SSE pings) this often
AUTH_SECONDS = 5.0  # a WebSocket must send its key this soon after the handshake


class JobWatcher:
    """Wakes the streams of jobs that changed (``jobs.updated_at``, which every task
    transition and heartbeat writes), polling once for all of them."""

    def __init__(self, update_times: Callable[[Sequence[str]], dict[str, dt.datetime]],
                 interval: float = POLL_SECONDS) -> None:
        self.update_times = update_times
        self.interval = interval
        self._streams: dict[str, set[asyncio.Event]] = {}
        self._seen: dict[str, dt.datetime] = {}
        self._poller: asyncio.Task[None] | None = None

    def subscribe(self, job_id: str) -> asyncio.Event:
        """An event set whenever the job may have changed (set at first)."""
        changed = asyncio.Event()
        changed.set()
        self._streams.setdefault(job_id, set()).add(changed)
        loop = asyncio.get_running_loop()
        if self._poller is None or self._poller.done() or self._poller.get_loop() is not loop:
            self._poller = loop.create_task(self._poll())
        return changed

    def unsubscribe(self, job_id: str, changed: asyncio.Event) -> None:
        streams = self._streams.get(job_id, set())
        streams.discard(changed)
        if not streams:
            self._streams.pop(job_id, None)
            self._seen.pop(job_id, None)

    @property
    def watched(self) -> int:
        return len(self._streams)

    async def _poll(self) -> None:
        while self._streams:
            await asyncio.sleep(self.interval)
            try:
                stamps = await run_in_threadpool(self.update_times, list(self._streams))
            except Exception:  # the database is away: the streams wait, then go on
                log.warning("live events: cannot read job changes", exc_info=True)
                continue
            for job_id, stamp in stamps.items():
                # A job whose last stream ended while the query ran is no longer watched:
                # remembering its stamp would keep an entry per such job for ever.
                streams = self._streams.get(job_id)
                if streams and self._seen.get(job_id) != stamp:
                    self._seen[job_id] = stamp
                    for changed in streams:
                        changed.set()


async def job_events(app: Application, watcher: JobWatcher, tenant_id: str,
                     job_id: str) -> AsyncIterator[dict[str, Any] | None]:
    """The job's events; None when nothing happened for QUIET_SECONDS (a keep-alive)."""
    changed = watcher.subscribe(job_id)
    try:
        last: dict[str, Any] = {}
        while True:
            try:
                await asyncio.wait_for(changed.wait(), QUIET_SECONDS)
            except TimeoutError:
                yield None
            changed.clear()
            for event in await _changes(app, tenant_id, job_id, last):
                yield event
                if event["event"] == "done":
                    return
    finally:
        watcher.unsubscribe(job_id, changed)


async def _changes(app: Application, tenant_id: str, job_id: str,
                   last: dict[str, Any]) -> list[dict[str, Any]]:
    """The events since ``last`` (the previous view, updated here)."""
    found_view = await run_in_threadpool(app.renders.get, tenant_id, job_id)
    row = found_view.job
    view = views.job(found_view, app.settings.public_url)
    found: list[dict[str, Any]] = []
    if (view["state"], view["step"]) != (last.get("state"), last.get("step")):
        found.append({"event": "state", "state": view["state"], "step": view["step"]})
    if view["percent"] != last.get("percent") or view["frames"] != last.get("frames"):
        found.append({"event": "progress", "percent": view["percent"],
                      "frames": view["frames"], "eta_seconds": view["eta_seconds"]})
    if view["preview_url"] and row.updated_at != last.get("updated_at"):
        found.append({"event": "preview", "url": view["preview_url"]})
    last.clear()
    last.update(view, updated_at=row.updated_at)
    if row.state in FINISHED_JOB:
        done: dict[str, Any] = {"event": "done", "state": view["state"], "error": view["error"]}
        if view["export"]:
            url, expires = app.exports.signed_url(view["export"]["id"])
            done.update({"export": view["export"], "download_url": url,
                         "download_expires_at": expires})
        found.append(done)
    return found


@router.get("/renders/{job_id}/events")
async def events(job_id: str, caller: TenantDep, app: AppDep,
                 request: Request) -> StreamingResponse:
    """Server-Sent Events until the job finishes."""
    await run_in_threadpool(app.renders.job, caller.tenant_id, job_id)  # 404 first
    watcher: JobWatcher = request.app.state.watcher

    async def stream() -> AsyncIterator[str]:
        async for event in job_events(app, watcher, caller.tenant_id, job_id):
            if event is None:
                yield ": still watching\n\n"
            else:
                yield f"event: {event['event']}\ndata: {json.dumps(event)}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


async def _socket_key(ws: WebSocket) -> str | None:
    """The API key of a WebSocket: the Authorization header (non-browser clients), else
    the first message, ``{"token": "<API key>"}``, within AUTH_SECONDS of the handshake
    (browsers cannot set headers, and a key in the URL would end up in logs). The socket
    is accepted before the first message can be read."""
    header = ws.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    await ws.accept()
    try:
        message = await asyncio.wait_for(ws.receive_text(), AUTH_SECONDS)
        found = json.loads(message).get("token")
    except (TimeoutError, ValueError, AttributeError, KeyError):
        return None
    return found if isinstance(found, str) and found else None


async def _refuse(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await ws.close(code=code, reason=reason)


@router.websocket("/renders/{job_id}/ws")
async def websocket(job_id: str, ws: WebSocket) -> None:
    """The same events over a WebSocket. Authenticate with the first message,
    ``{"token": "<API key>"}`` (browsers), or the Authorization header."""
    app: Application = ws.app.state.application
    try:
        key = await _socket_key(ws)
    except WebSocketDisconnect:
        return
    caller = await run_in_threadpool(app.accounts.authenticate, key) if key else None
    if caller is None:
        await _refuse(ws, 4401, "unknown, revoked or missing API key")
        return
    try:
        await run_in_threadpool(app.renders.job, caller.tenant_id, job_id)
    except NotFound:
        await _refuse(ws, 4404, "no such render")
        return
    if ws.client_state is WebSocketState.CONNECTING:
        await ws.accept()
    try:
        async for event in job_events(app, ws.app.state.watcher, caller.tenant_id, job_id):
            if event is not None:
                await ws.send_json(event)
        await ws.close()
    except WebSocketDisconnect:
        return

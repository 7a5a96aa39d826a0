"""Live events of a render: Server-Sent Events and a WebSocket, with the same payloads.

Events come from the database, so every API process can serve them and nothing is lost
when one restarts. A stream reads its job again when the database announces that the job
changed (PostgreSQL's LISTEN/NOTIFY reaches every API process; on SQLite, a signal from
the commit in this process) and, at the latest, every QUIET_SECONDS. While nothing
changes, no stream queries the database.

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
import json
import logging
from collections.abc import AsyncIterator, Callable
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
QUIET_SECONDS = 15.0  # a stream with no change re-reads its job (and SSE pings) this often
AUTH_SECONDS = 5.0  # a WebSocket must send its key this soon after the handshake


class JobWatcher:
    """Wakes the streams of a job when the database announces it changed. One
    subscription to the database per process, made when the first stream starts."""

    def __init__(self, subscribe: Callable[[Callable[[str | None], None]],
                                           Callable[[], None]]) -> None:
        self._subscribe = subscribe
        self._streams: dict[str, set[asyncio.Event]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def subscribe(self, job_id: str) -> asyncio.Event:
        """An event set whenever the job may have changed (set at first)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # the first stream (or a new event loop, in tests)
            self.close()
            self._loop = loop
            self._unsubscribe = self._subscribe(self._changed)
        changed = asyncio.Event()
        changed.set()
        self._streams.setdefault(job_id, set()).add(changed)
        return changed

    def unsubscribe(self, job_id: str, changed: asyncio.Event) -> None:
        streams = self._streams.get(job_id, set())
        streams.discard(changed)
        if not streams:
            self._streams.pop(job_id, None)

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._unsubscribe = self._loop = None

    @property
    def watched(self) -> int:
        return len(self._streams)

    def _changed(self, job_id: str | None) -> None:
        """From the database's thread: hand the change to the event loop."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(self._wake, job_id)

    def _wake(self, job_id: str | None) -> None:
        groups = list(self._streams.values()) if job_id is None else [
            self._streams.get(job_id, set())]
        for streams in groups:
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

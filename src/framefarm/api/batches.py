"""Batches (tenant API keys): one template rendered for many rows of data, from a JSON
body or a CSV upload; their row jobs, live counts (Server-Sent Events and a WebSocket),
cancel, retry, a manifest and a streamed ZIP of the videos. Another tenant's batches
answer 404, never 403."""

from __future__ import annotations

import asyncio
import codecs
import io
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

import pydantic
from fastapi import APIRouter, Header, Query, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketState

from framefarm.api import events, models
from framefarm.api.deps import AppDep, TenantDep
from framefarm.api.errors import TENANT_RESPONSES, ApiError
from framefarm.application import Application, views
from framefarm.application.batches import BadRows, BatchView, manifest_csv
from framefarm.batch.rows import TooManyRows
from framefarm.document import choices
from framefarm.queue.errors import NotFound

router = APIRouter(prefix="/v1", responses=TENANT_RESPONSES)
log = logging.getLogger("framefarm.api")
EVENT_SECONDS = 0.25  # a batch's stream reads it at most this often (changes coalesce)
_CSV_QUERY = ("mode", "quality", "size", "fps", "format", "priority", "notify_url")

# The body is read by the route (a CSV upload streams), so OpenAPI is told its two forms.
def _schema(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """A body model's JSON Schema inline, its nested models referred to in the OpenAPI
    components (RenderOptions is there: renders use it)."""
    found = model.model_json_schema(ref_template="#/components/schemas/{model}")
    found.pop("$defs", None)
    return found


_CREATE_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": _schema(models.BatchIn)},
    "text/csv": {"schema": {"type": "string", "description": (
        "A header naming the template's variables, then one row per line (UTF-8; quoted "
        "cells may hold commas and newlines; an empty cell takes the default).")}}}}}


# -- creating ---------------------------------------------------------------------------------


@router.post("/templates/{template_id}/batches", status_code=202, response_model=models.Batch,
             openapi_extra=_CREATE_BODY,
             responses={200: {"model": models.Batch,
                              "description": "The batch this idempotency key made before."}})
async def create_batch(
    template_id: str, request: Request, caller: TenantDep, app: AppDep, response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    mode: Annotated[Literal["skip", "refuse"] | None, Query(
        description="CSV uploads: skip (default) or refuse")] = None,
    quality: Annotated[choices.Quality | None, Query(description="CSV uploads")] = None,
    size: Annotated[choices.SizePreset | None, Query(description="CSV uploads")] = None,
    fps: Annotated[Literal["24", "25", "30", "50", "60"] | None,
                   Query(description="CSV uploads")] = None,
    format: Annotated[Literal["mp4", "webm", "gif"] | None,
                      Query(description="CSV uploads")] = None,
    priority: Annotated[int | None, Query(ge=-100, le=100, description="CSV uploads")] = None,
    notify_url: Annotated[str | None, Query(max_length=2000,
                                            description="CSV uploads")] = None,
) -> dict[str, Any]:
    """Render the template once per row: a JSON body (``rows``, ``mode``, ``options``...)
    or a CSV upload (``Content-Type: text/csv``, settings as query parameters). Every row
    is checked as its own render would be; bad rows are skipped and listed in ``skipped``
    (mode ``skip``) or refuse the whole batch with 422 (``refuse``)."""
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    queried = {name: value for name, value in (
        ("mode", mode), ("quality", quality), ("size", size), ("fps", fps),
        ("format", format), ("priority", priority), ("notify_url", notify_url))
        if value is not None}
    settings = app.settings
    call: Callable[[], tuple[BatchView, bool]]
    if content_type == "text/csv":
        text = await _csv_text(request, settings.batch_max_bytes)
        options = {k: queried.get(k) for k in ("quality", "size", "format")}
        options["fps"] = int(fps) if fps is not None else None

        def call() -> tuple[BatchView, bool]:
            return app.batches.create(
                caller.tenant_id, template_id, csv_lines=io.StringIO(text, newline=""),
                mode=mode or "skip", options=options, priority=priority or 0,
                idempotency_key=idempotency_key, notify_url=notify_url)
    elif content_type in ("", "application/json"):
        if queried:
            raise ApiError(422, "invalid_request", "with a JSON body, give "
                           f"{', '.join(sorted(queried))} in the body, not the query")
        body = _json_body(await request.body())

        def call() -> tuple[BatchView, bool]:
            return app.batches.create(
                caller.tenant_id, template_id, items=body.rows, mode=body.mode,
                options=body.options.model_dump(exclude_none=True), priority=body.priority,
                idempotency_key=body.idempotency_key or idempotency_key,
                notify_url=body.notify_url)
    else:
        raise ApiError(422, "invalid_request", f"send the rows as application/json or "
                       f"text/csv, not {content_type}")
    try:
        view, created = await run_in_threadpool(call)
    except TooManyRows as exc:
        raise ApiError(422, "too_many_rows", str(exc),
                       {"max_rows": settings.batch_max_rows}) from None
    except BadRows as exc:
        raise ApiError(422, "invalid_rows", exc.args[0],
                       [{"row": b.row, "field": b.field, "message": b.message}
                        for b in exc.rows]) from None
    if not created:
        response.status_code = 200
    return views.batch(view)


async def _csv_text(request: Request, limit: int) -> str:
    """The CSV body as text, counted while it streams: 413 past ``limit`` bytes, 422 if
    it is not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    parts: list[str] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "too_large", f"the CSV is over {limit} bytes",
                               {"limit": limit})
            parts.append(decoder.decode(chunk))
        parts.append(decoder.decode(b"", final=True))
    except UnicodeDecodeError as exc:
        raise ApiError(422, "invalid_csv", f"the CSV is not UTF-8 text (byte "
                       f"{size - len(exc.object) + exc.start} cannot be read)") from None
    return "".join(parts)


def _json_body(raw: bytes) -> models.BatchIn:
    try:
        return models.BatchIn.model_validate_json(raw or b"null")
    except pydantic.ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


# -- reading ----------------------------------------------------------------------------------


@router.get("/batches", response_model=models.BatchPage)
def list_batches(
    caller: TenantDep, app: AppDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(description="``next`` of the previous page")] = None,
) -> dict[str, Any]:
    """The tenant's batches, newest first; ``has_more`` says whether another page follows
    (``next`` is then the ``before`` to ask it with)."""
    found = app.batches.page(caller.tenant_id, limit=limit, before=before)
    return {"items": [views.batch(v) for v in found.items], "next": found.next,
            "has_more": found.has_more}


@router.get("/batches/{batch_id}", response_model=models.Batch)
def get_batch(batch_id: str, caller: TenantDep, app: AppDep) -> dict[str, Any]:
    return views.batch(app.batches.get(caller.tenant_id, batch_id))


@router.get("/batches/{batch_id}/jobs", response_model=models.BatchJobPage)
def batch_jobs(
    batch_id: str, caller: TenantDep, app: AppDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[int, Query(ge=0, le=10**9,
                                description="``next`` of the previous page (a row)")] = 0,
) -> dict[str, Any]:
    """Each row's current job (its newest attempt), by row number."""
    found, more = app.batches.jobs(caller.tenant_id, batch_id, after_row=after, limit=limit)
    items = [{**views.job(v, app.settings.public_url), "row": v.job.batch_row} for v in found]
    return {"items": items, "next": items[-1]["row"] if more and items else None,
            "has_more": more}


@router.get("/batches/{batch_id}/manifest", response_model=models.Manifest,
            responses={200: {"content": {"text/csv": {}}}})
def batch_manifest(
    batch_id: str, caller: TenantDep, app: AppDep,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """Every row given: its job, state, error, file name in the archive and a signed
    download link with its expiry (Unix time); skipped rows with their reason."""
    entries = app.batches.manifest(caller.tenant_id, batch_id)
    if format == "csv":
        return StreamingResponse(manifest_csv(entries), media_type="text/csv",
                                 headers=_attachment(f"{batch_id}-manifest.csv"))
    return {"batch_id": batch_id, "rows": [e.as_dict() for e in entries]}


@router.get("/batches/{batch_id}/archive",
            responses={200: {"description": "A ZIP of the videos and manifest.csv.",
                             "content": {"application/zip": {}}}})
def batch_archive(batch_id: str, caller: TenantDep, app: AppDep) -> StreamingResponse:
    """Every succeeded row's video (``row-00001.mp4``, ...) and ``manifest.csv`` in one
    ZIP, made while it streams."""
    return StreamingResponse(app.batches.archive(caller.tenant_id, batch_id),
                             media_type="application/zip",
                             headers=_attachment(f"{batch_id}.zip"))


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


# -- changing ---------------------------------------------------------------------------------


@router.post("/batches/{batch_id}/cancel", response_model=models.Batch)
def cancel_batch(batch_id: str, caller: TenantDep, app: AppDep) -> dict[str, Any]:
    """Cancel every unfinished row (409 if none is left)."""
    return views.batch(app.batches.cancel(caller.tenant_id, batch_id))


@router.post("/batches/{batch_id}/retry", status_code=202, response_model=models.Batch)
def retry_batch(batch_id: str, caller: TenantDep, app: AppDep) -> dict[str, Any]:
    """A new attempt of every row that failed or was cancelled (409 if there is none)."""
    return views.batch(app.batches.retry(caller.tenant_id, batch_id))


# -- live events ------------------------------------------------------------------------------


class BatchWatcher(events.JobWatcher):
    """The job watcher keyed by batch: a change to any job of a watched batch wakes that
    batch's streams. Each stream tells it the batch's job ids whenever it reads them."""

    def __init__(self, subscribe: Any) -> None:
        super().__init__(subscribe)
        self._batch_of: dict[str, str] = {}

    def watch_jobs(self, batch_id: str, job_ids: list[str]) -> None:
        for job_id in job_ids:
            self._batch_of[job_id] = batch_id

    def unsubscribe(self, job_id: str, changed: asyncio.Event) -> None:
        super().unsubscribe(job_id, changed)
        if job_id not in self._streams:  # its last stream ended
            self._batch_of = {j: b for j, b in self._batch_of.items() if b != job_id}

    def _wake(self, job_id: str | None) -> None:
        super()._wake(None if job_id is None else self._batch_of.get(job_id, ""))


def _watcher(state: Any, app: Application) -> BatchWatcher:
    found = getattr(state, "batch_watcher", None)
    if found is None:
        found = state.batch_watcher = BatchWatcher(app.on_job_change)
    return found


async def batch_events(app: Application, watcher: BatchWatcher, tenant_id: str,
                       batch_id: str) -> AsyncIterator[dict[str, Any] | None]:
    """``progress`` with the counts whenever a row changes (read at most every
    EVENT_SECONDS), then ``done`` when no row is left to finish; None after
    QUIET_SECONDS without a change (a keep-alive)."""
    changed = watcher.subscribe(batch_id)
    try:
        last: dict[str, Any] | None = None
        while True:
            try:
                await asyncio.wait_for(changed.wait(), events.QUIET_SECONDS)
            except TimeoutError:
                yield None
            changed.clear()
            # Read again each time: a retry adds jobs to the batch.
            ids = await run_in_threadpool(app.batches.job_ids, tenant_id, batch_id)
            watcher.watch_jobs(batch_id, ids)
            view = await run_in_threadpool(app.batches.get, tenant_id, batch_id)
            progress = views.batch_progress(view)
            if progress != last:
                yield {"event": "progress", **progress}
                last = progress
            if view.finished:
                yield {"event": "done", **progress}
                return
            await asyncio.sleep(EVENT_SECONDS)
    finally:
        watcher.unsubscribe(batch_id, changed)


@router.get("/batches/{batch_id}/events",
            responses={200: {"content": {"text/event-stream": {}}}})
async def batch_event_stream(batch_id: str, caller: TenantDep, app: AppDep,
                             request: Request) -> StreamingResponse:
    """Server-Sent Events until the batch finishes: ``progress`` (state, counts, percent)
    each time a row changes, at most a few a second; then ``done``."""
    await run_in_threadpool(app.batches.get, caller.tenant_id, batch_id)  # 404 first
    watcher = _watcher(request.app.state, app)

    async def stream() -> AsyncIterator[str]:
        async for event in batch_events(app, watcher, caller.tenant_id, batch_id):
            if event is None:
                yield ": still watching\n\n"
            else:
                yield f"event: {event['event']}\ndata: {json.dumps(event)}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


@router.websocket("/batches/{batch_id}/ws")
async def batch_websocket(batch_id: str, ws: WebSocket) -> None:
    """The same events over a WebSocket, authenticated as a render's
    (``/v1/renders/{id}/ws``): the Authorization header or a first message
    ``{"token": "<API key>"}``."""
    app: Application = ws.app.state.application
    try:
        key = await events._socket_key(ws)
    except WebSocketDisconnect:
        return
    caller = await run_in_threadpool(app.accounts.authenticate, key) if key else None
    if caller is None:
        await events._refuse(ws, 4401, "unknown, revoked or missing API key")
        return
    try:
        await run_in_threadpool(app.batches.get, caller.tenant_id, batch_id)
    except NotFound:
        await events._refuse(ws, 4404, "no such batch")
        return
    if ws.client_state is WebSocketState.CONNECTING:
        await ws.accept()
    try:
        async for event in batch_events(app, _watcher(ws.app.state, app), caller.tenant_id,
                                        batch_id):
            if event is not None:
                await ws.send_json(event)
        await ws.close()
    except WebSocketDisconnect:
        return



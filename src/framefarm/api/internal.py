"""The node protocol (``/internal``): register, heartbeat, claim, progress and preview,
inputs, upload, complete, fail. Every task write carries its lease token; a stale one is
answered 409 so a node presumed dead cannot overwrite a requeued task."""

from __future__ import annotations

import base64
import binascii
import io
import logging
import secrets
import tempfile
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from framefarm.api.deps import MetricsDep, NodeDep, ServiceDep
from framefarm.api.errors import ApiError
from framefarm.api.service import blob_key
from framefarm.queue.states import JobState
from framefarm.storage.local import InvalidUpload

log = logging.getLogger("framefarm.api")
router = APIRouter(prefix="/internal", include_in_schema=True, tags=["nodes"])
_MAX_PREVIEW = 256 * 1024
_URL_SECONDS = 3600  # presigned URLs for nodes: long enough for a big part
_MAX_OUTPUT = 8 * 1024**3  # a task's output


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterIn(Body):
    token: str
    name: str = Field(min_length=1, max_length=200)
    capabilities: dict[str, Any] = Field(default_factory=dict)


class NodeBeatIn(Body):
    capabilities: dict[str, Any] | None = None


class LeaseIn(Body):
    lease_token: str


class Sample(Body):
    load: float | None = Field(None, ge=0, description="1-minute load average")
    memory_used: int | None = Field(None, ge=0, description="bytes in use on the machine")


class TaskBeatIn(LeaseIn):
    frames_done: int | None = Field(None, ge=0)
    preview_jpeg: str | None = Field(None, description="base64 JPEG, at most 256 KiB")
    sample: Sample | None = None


class CompleteIn(LeaseIn):
    output_key: str | None = None


class UploadDoneIn(LeaseIn):
    output_key: str
    upload_id: str = Field(min_length=1, max_length=1024)
    etags: list[str] = Field(min_length=1, max_length=10_000,
                             description="each part's ETag, in order")
    size: int = Field(ge=1, le=_MAX_OUTPUT)


class FailIn(LeaseIn):
    error: str = Field(max_length=20000)
    permanent: bool = Field(False, description="the input is invalid: retrying cannot help")
    step: str | None = None


@router.post("/nodes/register")
def register(body: RegisterIn, svc: ServiceDep) -> dict[str, Any]:
    if not secrets.compare_digest(body.token, svc.enrolment_token):
        raise ApiError(401, "unauthorized", "wrong enrolment token")
    node_id, secret = svc.store.register_node(body.name, body.capabilities)
    return {"node_id": node_id, "secret": secret,
            "heartbeat_seconds": svc.settings.heartbeat_seconds,
            "lease_seconds": svc.settings.lease_seconds}


@router.post("/nodes/heartbeat")
def node_heartbeat(body: NodeBeatIn, node_id: NodeDep, svc: ServiceDep) -> dict[str, Any]:
    return {"command": svc.store.node_heartbeat(node_id, body.capabilities)}


@router.post("/nodes/drain")
def node_drain(node_id: NodeDep, svc: ServiceDep) -> dict[str, Any]:
    """The node is shutting down (SIGTERM): offer it no more work."""
    svc.store.set_draining(node_id, True)
    log.info("node draining itself", extra={"node_id": node_id})
    return {"ok": True}


@router.post("/tasks/claim", response_model=None)
def claim(node_id: NodeDep, svc: ServiceDep,
          counters: MetricsDep) -> Response | dict[str, Any]:
    """One task with its lease and everything needed to run it, or 204: nothing to do."""
    task = svc.store.claim(node_id)
    if task is None:
        return Response(status_code=204)
    counters.claimed.labels(task.kind).inc()
    log.info("claimed %s %s", task.kind, task.idx,
             extra={"job_id": task.job_id, "task_id": task.task_id, "node_id": node_id})
    job = svc.store.get_job(None, task.job_id)
    return {
        "task_id": task.task_id, "job_id": task.job_id, "kind": task.kind, "idx": task.idx,
        "frames": [task.frame_start, task.frame_end], "lease_token": task.lease_token,
        "lease_expires_at": task.lease_expires_at.isoformat(),
        "document": job["document"], "options": job["options"], "assets": job["assets"],
        "frames_total": job["frames_total"],
        # Presigned URLs when storage has them: the node fetches inputs straight from it.
        "asset_urls": {sha: svc.storage.presigned_get(blob_key(sha), _URL_SECONDS)
                       for sha in set(job["assets"].values())},
    }


@router.post("/tasks/{task_id}/heartbeat")
def task_heartbeat(task_id: str, body: TaskBeatIn, node_id: NodeDep,
                   svc: ServiceDep) -> dict[str, Any]:
    """Extend the lease, record progress and an optional preview frame; the answer says
    whether to go on ('continue') or stop ('cancel')."""
    preview_key = None
    if body.preview_jpeg:
        task = svc.store.task_for_node(task_id, body.lease_token)
        try:
            image = base64.b64decode(body.preview_jpeg, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(422, "invalid_preview", "preview_jpeg is not base64") from None
        if len(image) > _MAX_PREVIEW or not image.startswith(b"\xff\xd8"):
            raise ApiError(422, "invalid_preview", "preview_jpeg must be a JPEG under 256 KiB")
        preview_key = f"previews/{task['job_id']}.jpeg"
        svc.storage.put_stream(preview_key, io.BytesIO(image), _MAX_PREVIEW)
    command = svc.store.heartbeat(task_id, body.lease_token, body.frames_done, preview_key)
    if body.sample is not None:
        svc.store.record_sample(node_id, load=body.sample.load,
                                memory_used=body.sample.memory_used, task_id=task_id,
                                frames_done=body.frames_done)
    return {"command": command}


def _job_assets(svc: Any, task_id: str, token: str) -> tuple[Any, Any]:
    task = svc.store.task_for_node(task_id, token)
    return task, svc.store.get_job(None, task["job_id"])


@router.get("/tasks/{task_id}/blobs/{sha256}")
def blob(task_id: str, sha256: str, node_id: NodeDep, svc: ServiceDep,
         x_lease_token: Annotated[str, Header()]) -> Response:
    """An input file of the task's job (only those: a node cannot read other blobs)."""
    _, job = _job_assets(svc, task_id, x_lease_token)
    if sha256 not in set(job["assets"].values()):
        raise ApiError(404, "not_found", "not an input of this task")
    return svc.send(blob_key(sha256))


@router.get("/tasks/{task_id}/inputs")
def inputs(task_id: str, node_id: NodeDep, svc: ServiceDep,
           x_lease_token: Annotated[str, Header()]) -> list[dict[str, Any]]:
    """The finished parts and audio an assemble task joins, in order."""
    task, _ = _job_assets(svc, task_id, x_lease_token)
    return [{"idx": r["idx"], "kind": r["kind"], "frames": [r["frame_start"], r["frame_end"]],
             "url": svc.storage.presigned_get(r["output_key"], _URL_SECONDS)}
            for r in svc.store.task_outputs(task["job_id"]) if r["kind"] in ("render", "audio")]


@router.get("/tasks/{task_id}/inputs/{idx}")
def input_file(task_id: str, idx: int, node_id: NodeDep, svc: ServiceDep,
               x_lease_token: Annotated[str, Header()]) -> Response:
    task, _ = _job_assets(svc, task_id, x_lease_token)
    for row in svc.store.task_outputs(task["job_id"]):
        if row["idx"] == idx and row["output_key"]:
            return svc.send(row["output_key"])
    raise ApiError(404, "not_found", f"no finished input {idx}")


def _output_key(task: Any, lease_token: str, ext: str) -> str:
    """Unique to the lease, so a late upload from a node that lost its lease can never
    replace the file of the node that took over."""
    if task["state"] != "running":
        raise ApiError(409, "stale_lease", f"task is {task['state']}; keep nothing")
    return f"jobs/{task['job_id']}/{task['kind']}{task['idx']:04d}-{lease_token[:8]}.{ext}"


Extension = Literal["mp4", "webm", "m4a", "gif", "png", "jpeg"]


@router.post("/tasks/{task_id}/upload-url")
def upload_url(task_id: str, body: LeaseIn, ext: Extension, node_id: NodeDep,
               svc: ServiceDep,
               size: Annotated[int | None, Query(ge=0, le=_MAX_OUTPUT)] = None,
               ) -> dict[str, Any]:
    """Where to put the task's output of ``size`` bytes. With S3, straight to storage:
    ``multipart`` (a large file: PUT each part to its URL, then POST the ETags to
    /internal/tasks/{id}/upload-complete) or ``url`` (one PUT). With local storage, both
    are null: PUT the file to /internal/tasks/{id}/output."""
    task = svc.store.task_for_node(task_id, body.lease_token)
    key = _output_key(task, body.lease_token, ext)
    parts = svc.storage.presigned_multipart(key, size, _URL_SECONDS) if size else None
    if parts is not None:
        return {"output_key": key, "url": None, "multipart": {
            "upload_id": parts.upload_id, "part_size": parts.part_size, "urls": parts.urls}}
    return {"output_key": key, "url": svc.storage.presigned_put(key, _URL_SECONDS),
            "multipart": None}


@router.post("/tasks/{task_id}/upload-complete")
def upload_complete(task_id: str, body: UploadDoneIn, node_id: NodeDep,
                    svc: ServiceDep) -> dict[str, Any]:
    """Join the parts of a multipart upload; only then does the output exist."""
    task = svc.store.task_for_node(task_id, body.lease_token)
    ext = body.output_key.rpartition(".")[2]
    if body.output_key != _output_key(task, body.lease_token, ext):
        raise ApiError(422, "invalid_output", "output_key is not this lease's")
    try:
        svc.storage.complete_multipart(body.output_key, body.upload_id, body.etags, body.size)
    except InvalidUpload as exc:
        raise ApiError(422, "invalid_upload", str(exc)) from None
    return {"output_key": body.output_key, "size": body.size}


@router.put("/tasks/{task_id}/output")
async def upload_output(
    task_id: str, request: Request, node_id: NodeDep, svc: ServiceDep,
    x_lease_token: Annotated[str, Header()],
    ext: Extension,
) -> dict[str, Any]:
    """Store a task's output through the API (local storage)."""
    task = svc.store.task_for_node(task_id, x_lease_token)
    key = _output_key(task, x_lease_token, ext)
    size = 0
    limit = _MAX_OUTPUT
    svc.work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.SpooledTemporaryFile(max_size=16 * 1024**2,
                                       dir=str(svc.work_dir)) as staging:
        async for block in request.stream():
            size += len(block)
            if size > limit:
                raise ApiError(413, "too_large", "output larger than 8 GiB")
            staging.write(block)
        staging.seek(0)
        await run_in_threadpool(svc.storage.put_stream, key, staging, limit)
    return {"output_key": key, "size": size}


@router.post("/tasks/{task_id}/complete")
def complete(task_id: str, body: CompleteIn, node_id: NodeDep, svc: ServiceDep,
             counters: MetricsDep) -> dict[str, Any]:
    task = svc.store.task_for_node(task_id, body.lease_token)
    if body.output_key and not body.output_key.startswith(f"jobs/{task['job_id']}/"):
        raise ApiError(422, "invalid_output", "output_key is not this job's")
    if body.output_key and not svc.storage.exists(body.output_key):
        raise ApiError(422, "invalid_output", "output_key was not uploaded")
    # Whatever a finished job shows must exist before the job is seen finished.
    export = None
    if task["kind"] == "assemble" and body.output_key:
        export = svc.export_meta(body.output_key)
    if task["kind"] == "snapshot" and body.output_key:
        cache = svc.store.get_job(None, task["job_id"])["options"].get("cache_key")
        if cache:
            svc.storage.put_file(cache, svc.storage.local_path(body.output_key))
    job = svc.store.complete(task_id, body.lease_token, body.output_key, export)
    counters.completed.labels(task["kind"]).inc()
    if task["started_at"]:
        counters.render_seconds.labels(task["kind"]).observe(
            (svc.store.now() - task["started_at"]).total_seconds())
    if task["kind"] in ("render", "snapshot"):
        counters.frames.inc(task["frame_end"] - task["frame_start"])
    if job["state"] == JobState.SUCCEEDED and job["kind"] == "render":
        svc.job_finished(job)
    return {"ok": True, "job_state": job["state"]}


@router.post("/tasks/{task_id}/fail")
def fail(task_id: str, body: FailIn, node_id: NodeDep, svc: ServiceDep,
         counters: MetricsDep) -> dict[str, Any]:
    task = svc.store.task_for_node(task_id, body.lease_token)
    job = svc.store.fail(task_id, body.lease_token, body.error, permanent=body.permanent,
                         step=body.step)
    if job["state"] == JobState.FAILED:
        svc.job_finished(job)
    counters.failed.labels(task["kind"]).inc()
    return {"ok": True, "job_state": job["state"]}

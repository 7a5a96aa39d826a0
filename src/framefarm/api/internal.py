"""The node protocol (``/internal``), its bodies defined in :mod:`framefarm.protocol`:
register, heartbeat, claim, progress and preview, inputs, upload, complete, fail. Every
task write carries its lease token; a stale one is answered 409 so a node presumed dead
cannot overwrite a requeued task."""

from __future__ import annotations

import base64
import binascii
import logging
import tempfile
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from framefarm import protocol
from framefarm.api.deps import AppDep, NodeDep, send
from framefarm.api.errors import ApiError

log = logging.getLogger("framefarm.api")
router = APIRouter(prefix="/internal", include_in_schema=True, tags=["nodes"])
LeaseHeader = Annotated[str, Header(alias=protocol.LEASE_HEADER)]


@router.post("/nodes/register")
def register(body: protocol.RegisterRequest, app: AppDep) -> protocol.RegisterResponse:
    return app.farm.register(body.token, body.name, body.capabilities)


@router.post("/nodes/heartbeat")
def node_heartbeat(body: protocol.NodeHeartbeatRequest, node_id: NodeDep,
                   app: AppDep) -> protocol.NodeHeartbeatResponse:
    command = app.farm.node_heartbeat(node_id, body.capabilities)
    return protocol.NodeHeartbeatResponse(command=protocol.Command(command))


@router.post("/nodes/drain")
def node_drain(node_id: NodeDep, app: AppDep) -> protocol.DrainResponse:
    """The node is shutting down (SIGTERM): offer it no more work."""
    app.farm.set_draining(node_id, True)
    log.info("node draining itself", extra={"node_id": node_id})
    return protocol.DrainResponse(ok=True)


@router.post("/tasks/claim", response_model=None)
def claim(node_id: NodeDep, app: AppDep) -> Response | protocol.ClaimedTask:
    """One task with its lease and everything needed to run it, or 204: nothing to do."""
    task = app.farm.claim(node_id)
    if task is None:
        return Response(status_code=204)
    log.info("claimed %s %s", task.kind, task.idx,
             extra={"job_id": task.job_id, "task_id": task.task_id, "node_id": node_id})
    return task


@router.post("/tasks/{task_id}/heartbeat")
def task_heartbeat(task_id: str, body: protocol.TaskHeartbeatRequest, node_id: NodeDep,
                   app: AppDep) -> protocol.TaskHeartbeatResponse:
    """Extend the lease, record progress and an optional preview frame; the answer says
    whether to go on ('continue') or stop ('cancel')."""
    preview = None
    if body.preview_jpeg:
        try:
            preview = base64.b64decode(body.preview_jpeg, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(422, "invalid_preview", "preview_jpeg is not base64") from None
    command = app.farm.task_heartbeat(node_id, task_id, body.lease_token,
                                      frames_done=body.frames_done, preview=preview,
                                      sample=body.sample)
    return protocol.TaskHeartbeatResponse(command=protocol.Command(command))


@router.get("/tasks/{task_id}/blobs/{sha256}")
def blob(task_id: str, sha256: str, node_id: NodeDep, app: AppDep,
         lease: LeaseHeader) -> Response:
    """An input file of the task's job (only those: a node cannot read other blobs)."""
    return send(app.farm.blob(task_id, lease, sha256))


@router.get("/tasks/{task_id}/inputs")
def inputs(task_id: str, node_id: NodeDep, app: AppDep,
           lease: LeaseHeader) -> list[protocol.InputItem]:
    """The finished parts and audio an assemble task joins, in order."""
    return app.farm.inputs(task_id, lease)


@router.get("/tasks/{task_id}/inputs/{idx}")
def input_file(task_id: str, idx: int, node_id: NodeDep, app: AppDep,
               lease: LeaseHeader) -> Response:
    return send(app.farm.input_file(task_id, lease, idx))


@router.post("/tasks/{task_id}/upload-url")
def upload_url(task_id: str, body: protocol.UploadUrlRequest, ext: protocol.OutputExtension,
               node_id: NodeDep, app: AppDep,
               size: Annotated[int | None, Query(ge=0, le=protocol.MAX_OUTPUT_BYTES)] = None,
               ) -> protocol.UploadUrlResponse:
    """Where to put the task's output of ``size`` bytes. With S3, straight to storage:
    ``multipart`` (a large file: PUT each part to its URL, then POST the ETags to
    /internal/tasks/{id}/upload-complete) or ``url`` (one PUT). With local storage, both
    are null: PUT the file to /internal/tasks/{id}/output."""
    return app.farm.upload_target(task_id, body.lease_token, ext, size)


@router.post("/tasks/{task_id}/upload-complete")
def upload_complete(task_id: str, body: protocol.UploadCompleteRequest, node_id: NodeDep,
                    app: AppDep) -> protocol.UploadCompleteResponse:
    """Join the parts of a multipart upload; only then does the output exist."""
    app.farm.upload_complete(task_id, body)
    return protocol.UploadCompleteResponse(output_key=body.output_key, size=body.size)


@router.put("/tasks/{task_id}/output")
async def upload_output(task_id: str, request: Request, node_id: NodeDep, app: AppDep,
                        lease: LeaseHeader,
                        ext: protocol.OutputExtension) -> protocol.OutputUploaded:
    """Store a task's output through the API (local storage)."""
    key = await run_in_threadpool(app.farm.output_key, task_id, lease, ext)
    size = 0
    work = app.ctx.work_dir
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.SpooledTemporaryFile(max_size=16 * 1024**2, dir=str(work)) as staging:
        async for block in request.stream():
            size += len(block)
            if size > protocol.MAX_OUTPUT_BYTES:
                raise ApiError(413, "too_large", "output larger than 8 GiB")
            staging.write(block)
        staging.seek(0)
        await run_in_threadpool(app.farm.store_output, key, staging)
    return protocol.OutputUploaded(output_key=key, size=size)


@router.post("/tasks/{task_id}/complete")
def complete(task_id: str, body: protocol.CompleteRequest, node_id: NodeDep,
             app: AppDep) -> protocol.CompleteResponse:
    job = app.farm.complete(task_id, body.lease_token, body.output_key, body.media,
                            body.description, cpu_seconds=body.cpu_seconds)
    return protocol.CompleteResponse(ok=True, job_state=job.state)


@router.post("/tasks/{task_id}/fail")
def fail(task_id: str, body: protocol.FailRequest, node_id: NodeDep,
         app: AppDep) -> protocol.FailResponse:
    job = app.farm.fail(task_id, body.lease_token, body.error, permanent=body.permanent,
                        step=body.step, cpu_seconds=body.cpu_seconds)
    return protocol.FailResponse(ok=True, job_state=job.state)

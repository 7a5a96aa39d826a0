"""The render farm as the server sees it: nodes registering, claiming, reporting and
uploading (the node protocol's other side), and the admin's view of the nodes.

Completing a task is orchestrated here: the output checked, an assemble task's export
recorded from the node's own probe, a snapshot copied into the cache (server-side on S3),
the counters, the parts tidied once the job has finished.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import secrets
from collections.abc import Mapping
from typing import IO, Any

from framefarm import chunks, protocol
from framefarm.application import sharing
from framefarm.application.context import Context, Download, blob_key, download
from framefarm.application.queue import Planned, render_plan
from framefarm.engines import Description
from framefarm.engines.remotion.engine import output_size, scale_for
from framefarm.limits import Limits
from framefarm.queue.errors import NotFound, StaleLease
from framefarm.queue.states import JobState, TaskKind, TaskState
from framefarm.records import Crash, Job, Node, Sample, Task
from framefarm.repos import claims, jobs, nodes, tenants
from framefarm.repos.exports import ExportMeta
from framefarm.storage.local import InvalidUpload

URL_SECONDS = 3600  # presigned URLs for nodes: long enough for a big part
MAX_OUTPUT = 8 * 1024**3  # a task's output
MAX_PREVIEW = 256 * 1024
SAMPLES_KEPT = dt.timedelta(hours=24)


class Refused(ValueError):
    """A node's request that is well-formed but wrong (HTTP 422): ``code`` says what."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class WrongToken(PermissionError):
    """Not the enrolment token (HTTP 401)."""


def node_status(ctx: Context, node: Node) -> str:
    beat = node.last_heartbeat
    offline = ctx.queue.settings.node_offline_seconds
    if beat is None or (ctx.now() - beat).total_seconds() > offline:
        return "offline"
    if node.draining:
        return "draining"
    return "busy" if node.current_task_id else "online"


def _same(a: str, b: str) -> bool:
    # Bytes, so a token that is not ASCII is a wrong token, not a TypeError.
    return secrets.compare_digest(a.encode(), b.encode())


@dataclasses.dataclass
class Farm:
    ctx: Context

    # -- nodes ------------------------------------------------------------------------------

    def register(self, token: str, name: str,
                 capabilities: Mapping[str, Any]) -> protocol.RegisterResponse:
        if not _same(token, self.ctx.enrolment_token):
            raise WrongToken("wrong enrolment token")
        with self.ctx.db.tx() as conn:
            node_id, secret = nodes.register(conn, name, capabilities, now=self.ctx.now())
        return protocol.RegisterResponse(
            node_id=node_id, secret=secret,
            heartbeat_seconds=self.ctx.settings.heartbeat_seconds,
            lease_seconds=self.ctx.settings.lease_seconds)

    def authenticate(self, node_id: str, secret: str) -> bool:
        with self.ctx.db.read() as conn:
            return nodes.authenticate(conn, node_id, secret)

    def node_heartbeat(self, node_id: str, capabilities: Mapping[str, Any] | None) -> str:
        """Record that the node is alive; returns 'drain' or 'continue'."""
        values: dict[str, Any] = {"last_heartbeat": self.ctx.now()}
        if capabilities:
            values["capabilities"] = dict(capabilities)
        with self.ctx.db.tx() as conn:
            nodes.update(conn, node_id, **values)
            node = nodes.get(conn, node_id)
        return "drain" if node.draining else "continue"

    def set_draining(self, node_id: str, draining: bool) -> Node:
        with self.ctx.db.tx() as conn:
            nodes.get(conn, node_id)
            nodes.update(conn, node_id, draining=draining)
            return nodes.get(conn, node_id)

    # -- tasks ------------------------------------------------------------------------------

    def claim(self, node_id: str) -> protocol.ClaimedTask | None:
        """One task with its lease and everything needed to run it, or None."""
        task = self.ctx.queue.claim(node_id)
        if task is None:
            return None
        self.ctx.counters.claimed.labels(task.kind).inc()
        with self.ctx.db.read() as conn:
            job = jobs.get(conn, task.job_id)
        return _claimed(self.ctx, task, job)

    def task_heartbeat(self, node_id: str, task_id: str, token: str, *,
                       frames_done: int | None, preview: bytes | None,
                       sample: protocol.Sample | None) -> str:
        """Extend the lease, record progress, a preview frame and a health sample; the
        answer says whether to go on ('continue') or stop ('cancel')."""
        preview_key = None
        if preview is not None:
            task = self.ctx.queue.leased(task_id, token)
            if len(preview) > MAX_PREVIEW or not preview.startswith(b"\xff\xd8"):
                raise Refused("invalid_preview", "preview_jpeg must be a JPEG under 256 KiB")
            preview_key = f"previews/{task.job_id}.jpeg"
            self.ctx.storage.put_stream(preview_key, io.BytesIO(preview), MAX_PREVIEW)
        command = self.ctx.queue.heartbeat(task_id, token, frames_done, preview_key)
        if sample is not None:
            with self.ctx.db.tx() as conn:
                nodes.add_sample(conn, node_id, now=self.ctx.now(), load=sample.load,
                                 memory_used=sample.memory_used, task_id=task_id,
                                 frames_done=frames_done, keep=SAMPLES_KEPT)
        return command

    def _leased_job(self, task_id: str, token: str) -> tuple[Task, Job]:
        task = self.ctx.queue.leased(task_id, token)
        with self.ctx.db.read() as conn:
            return task, jobs.get(conn, task.job_id)

    def blob(self, task_id: str, token: str, sha256: str) -> Download:
        """An input file of the task's job (only those: a node cannot read other blobs)."""
        _, job = self._leased_job(task_id, token)
        if sha256 not in set(job.assets.values()):
            raise NotFound("not an input of this task")
        return download(self.ctx, blob_key(sha256))

    def inputs(self, task_id: str, token: str) -> list[protocol.InputItem]:
        """The finished parts and audio an assemble task joins, in order."""
        task = self.ctx.queue.leased(task_id, token)
        with self.ctx.db.read() as conn:
            done = jobs.outputs(conn, task.job_id)
        return [protocol.InputItem(
                    idx=r.idx, kind=TaskKind(r.kind), frames=(r.frame_start, r.frame_end),
                    url=self.ctx.storage.presigned_get(r.output_key, URL_SECONDS))
                for r in done
                if r.kind in (TaskKind.RENDER, TaskKind.AUDIO) and r.output_key]

    def input_file(self, task_id: str, token: str, idx: int) -> Download:
        task = self.ctx.queue.leased(task_id, token)
        with self.ctx.db.read() as conn:
            done = jobs.outputs(conn, task.job_id)
        for row in done:
            if row.idx == idx and row.output_key:
                return download(self.ctx, row.output_key)
        raise NotFound(f"no finished input {idx}")

    def output_key(self, task_id: str, token: str, ext: str) -> str:
        """Unique to the lease, so a late upload from a node that lost its lease can never
        replace the file of the node that took over."""
        task = self.ctx.queue.leased(task_id, token)
        if task.state != TaskState.RUNNING:
            raise StaleLease(f"task is {task.state}; keep nothing")
        return f"jobs/{task.job_id}/{task.kind}{task.idx:04d}-{token[:8]}.{ext}"

    def upload_target(self, task_id: str, token: str, ext: str,
                      size: int | None) -> protocol.UploadUrlResponse:
        """Where to put the task's output: straight to storage (one presigned PUT, or
        multipart for a large file) or, with local storage, through the API."""
        key = self.output_key(task_id, token, ext)
        storage = self.ctx.storage
        parts = storage.presigned_multipart(key, size, URL_SECONDS) if size else None
        if parts is not None:
            return protocol.UploadUrlResponse(output_key=key, url=None,
                                         multipart=protocol.Multipart(
                                             upload_id=parts.upload_id,
                                             part_size=parts.part_size, urls=parts.urls))
        return protocol.UploadUrlResponse(
            output_key=key, url=storage.presigned_put(key, URL_SECONDS), multipart=None)

    def upload_complete(self, task_id: str, body: protocol.UploadCompleteRequest) -> None:
        """Join the parts of a multipart upload; only then does the output exist."""
        ext = body.output_key.rpartition(".")[2]
        if body.output_key != self.output_key(task_id, body.lease_token, ext):
            raise Refused("invalid_output", "output_key is not this lease's")
        try:
            self.ctx.storage.complete_multipart(body.output_key, body.upload_id, body.etags,
                                                body.size)
        except InvalidUpload as exc:
            raise Refused("invalid_upload", str(exc)) from None

    def store_output(self, key: str, staged: IO[bytes]) -> None:
        self.ctx.storage.put_stream(key, staged, MAX_OUTPUT)

    def complete(self, task_id: str, token: str, output_key: str | None,
                 media: protocol.MediaInfo | None,
                 description: protocol.Description | None = None, *,
                 cpu_seconds: float | None = None) -> Job:
        task = self.ctx.queue.leased(task_id, token)
        storage = self.ctx.storage
        if output_key and not output_key.startswith(f"jobs/{task.job_id}/"):
            raise Refused("invalid_output", "output_key is not this job's")
        if output_key and not storage.exists(output_key):
            raise Refused("invalid_output", "output_key was not uploaded")
        # Whatever a finished job shows must exist before the job is seen finished.
        export = None
        if task.kind == TaskKind.ASSEMBLE and output_key:
            export = self._export_meta(output_key, media)
        if task.shared_key and output_key:  # kept for the rows that share it
            storage.copy(output_key, sharing.storage_key(task.tenant_id, task.shared_key,
                                                         output_key))
        if task.kind == TaskKind.SNAPSHOT and output_key:
            with self.ctx.db.read() as conn:
                cache = jobs.get(conn, task.job_id).options.get("cache_key")
            if cache:
                storage.copy(output_key, cache)
        planned = None
        if task.kind == TaskKind.PREPARE:
            if description is None:
                raise Refused("invalid_description", "a prepare task completes with the "
                              "description of what it prepared")
            with self.ctx.db.read() as conn:
                job = jobs.get(conn, task.job_id)
            planned = self._plan(task.engine, description,
                                 (job.limits or {}).get("max_chunks", Limits().max_chunks),
                                 job.options)
        job = self.ctx.queue.complete(task_id, token, output_key, export, planned,
                                      cpu_seconds=cpu_seconds)
        counters = self.ctx.counters
        counters.completed.labels(task.kind).inc()
        if task.started_at:
            counters.render_seconds.labels(task.kind).observe(
                (self.ctx.now() - task.started_at).total_seconds())
        if task.kind in (TaskKind.RENDER, TaskKind.SNAPSHOT):
            counters.frames.inc(task.frame_end - task.frame_start)
        if job.state == JobState.SUCCEEDED and job.kind == "render":
            tidy_parts(self.ctx, job)
        return job

    def _plan(self, engine: str, found: protocol.Description, max_chunks: int,
              options: Mapping[str, Any]) -> Planned:
        """The tasks of a prepared job: its frames in chunks for the nodes online that
        have its engine, and the assemble step. A code template's chunks bring their
        range's sound from their own pass over the frames, so there is no audio task
        (it would be a second pass over the whole composition)."""
        with self.ctx.db.read() as conn:
            able = sum(node_status(self.ctx, n) in ("online", "busy")
                       and engine in claims.node_engines(n.capabilities)
                       for n in nodes.list_all(conn))
        settings = self.ctx.settings
        # One chunk per node: each of a code template's chunks starts its own Chromium
        # and loads the bundle (about 3 s of a core), and brings its own sound, so the
        # nodes finish together without the smaller pieces a JSON document gets.
        ranges = chunks.plan(found.frames, found.fps, nodes=able,
                             min_chunk_seconds=settings.min_chunk_seconds,
                             max_chunks=max_chunks, per_node=1)
        composition = Description(id=found.id, width=found.width, height=found.height,
                                  fps=found.fps, frames=found.frames, default_props={},
                                  props={})
        size = output_size(composition, scale_for(options.get("size"), composition),
                           options.get("format", "mp4"))
        return Planned(render_plan(ranges, found.frames, audio_task=False), found.frames,
                       found.fps, found.model_dump(), size)

    def _export_meta(self, key: str, media: protocol.MediaInfo | None) -> ExportMeta:
        """The export's description: the node's own probe of the file it made, checked
        against the size storage has."""
        size = self.ctx.storage.size(key)
        if media is None:
            raise Refused("invalid_output", "an assemble task's completion carries 'media', "
                          "the node's probe of the video")
        if media.size != size:
            raise Refused("invalid_output", f"media.size {media.size} but {size} bytes were "
                          "uploaded")
        return ExportMeta(storage_key=key, media=media,
                          keep_days=self.ctx.settings.export_days)

    def fail(self, task_id: str, token: str, error: str, *, permanent: bool,
             step: str | None, cpu_seconds: float | None = None) -> Job:
        task = self.ctx.queue.leased(task_id, token)
        job = self.ctx.queue.fail(task_id, token, error, permanent=permanent, step=step,
                                  cpu_seconds=cpu_seconds)
        if job.state == JobState.FAILED:
            tidy_parts(self.ctx, job)
        self.ctx.counters.failed.labels(task.kind).inc()
        return job

    # -- the admin's view -------------------------------------------------------------------

    def nodes(self) -> list[Node]:
        with self.ctx.db.read() as conn:
            return nodes.list_all(conn)

    def node(self, node_id: str) -> Node:
        with self.ctx.db.read() as conn:
            return nodes.get(conn, node_id)

    def status(self, node: Node) -> str:
        return node_status(self.ctx, node)

    def release(self, node_id: str) -> int:
        """Requeue the node's running task now (for a stuck node)."""
        return self.ctx.queue.release_node(node_id)

    def forget(self, node_id: str) -> None:
        self.ctx.queue.forget_node(node_id)

    def health(self, node_id: str, limit: int) -> tuple[Node, list[Sample]]:
        with self.ctx.db.read() as conn:
            return nodes.get(conn, node_id), nodes.samples(conn, node_id, limit)

    def crashes(self, node_id: str) -> list[Crash]:
        with self.ctx.db.read() as conn:
            nodes.get(conn, node_id)
            return nodes.crashes(conn, node_id)

    def queue_overview(self) -> dict[str, int]:
        with self.ctx.db.read() as conn:
            return jobs.state_counts(conn)

    def unfinished_by_tenant(self) -> list[tuple[str, str, int, int | None]]:
        """Each tenant's queued and running renders: (id, name, count, its limit), in one
        read transaction (one count per tenant: an admin view of a farm's few tenants)."""
        with self.ctx.db.read() as conn:
            return [(t.id, t.name, jobs.count_unfinished(conn, t.id), t.max_concurrent_jobs)
                    for t in tenants.list_all(conn)]


def _claimed(ctx: Context, task: Task, job: Job) -> protocol.ClaimedTask:
    assert task.lease_token is not None and task.lease_expires_at is not None
    return protocol.ClaimedTask(
        task_id=task.id, job_id=task.job_id, kind=TaskKind(task.kind), idx=task.idx,
        frames=(task.frame_start, task.frame_end), lease_token=task.lease_token,
        lease_expires_at=task.lease_expires_at, document=job.document, options=job.options,
        assets=job.assets, limits=job.limits, frames_total=job.frames_total,
        engine=job.engine, fps=job.fps, owner=job.tenant_id,
        # Presigned URLs when storage has them: the node fetches inputs straight from it.
        asset_urls={sha: ctx.storage.presigned_get(blob_key(sha), URL_SECONDS)
                    for sha in set(job.assets.values())})



def tidy_parts(ctx: Context, job: Job) -> None:
    """Chunk parts and the audio mix are only needed until the export exists."""
    with ctx.db.read() as conn:
        done = jobs.outputs(conn, job.id)
    for task in done:
        if task.output_key and task.output_key != job.result_key \
                and not task.output_key.startswith(sharing.PREFIX):  # other rows' too
            ctx.storage.delete(task.output_key)

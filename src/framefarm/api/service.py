"""The service layer between the routes and the store: submitting renders (validated by the
engine itself), asset names, exports and signed links. Routes never touch SQL."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import re
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy.engine import RowMapping

from framefarm import engine, errors, webhooks
from framefarm.document import templates
from framefarm.document.timeline import Timeline
from framefarm.ffmpeg import probe
from framefarm.queue import store as queue
from framefarm.settings import Settings
from framefarm.storage.local import Storage

_NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,120}$")
RENDER_OPTIONS = ("quality", "size", "fps", "format")


def asset_name(raw: str) -> str:
    """A safe relative asset name: folders allowed, no '..', no absolute paths, no odd
    characters. Raises ApiError-friendly ValueError with the reason."""
    name = raw.replace("\\", "/").strip()
    if name.startswith("/"):
        raise ValueError(f"asset name {raw!r} is absolute; give a name relative to the project")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or len(parts) > 4:
        raise ValueError(f"asset name {raw!r} is empty or too deep")
    for part in parts:
        if part == ".." or not _NAME_PART.match(part):
            raise ValueError(f"asset name {raw!r}: use letters, digits, '.', '_' and '-' in "
                             "up to 4 folders; no '..'")
    return "/".join(parts)


def blob_key(sha256: str) -> str:
    return f"assets/{sha256}"


@dataclasses.dataclass(frozen=True)
class SnapshotRequest:
    document: dict[str, Any]
    assets: Mapping[str, str]
    project_id: str | None
    frame: int
    fps: int
    cache_key: str
    image_format: str


@dataclasses.dataclass
class Service:
    settings: Settings
    store: queue.Store
    storage: Storage
    secret_key: bytes
    enrolment_token: str

    @property
    def work_dir(self) -> Path:
        return self.settings.data_dir.resolve() / "work"

    # -- inputs -----------------------------------------------------------------------------

    def materialise(self, assets: Mapping[str, str], folder: Path) -> None:
        """Lay the job's assets out under their names (hard links to the blobs when the
        filesystem allows, copies otherwise)."""
        for name, sha in assets.items():
            target = folder / asset_name(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            source = self.storage.local_path(blob_key(sha))
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)

    def _project_assets(self, tenant_id: str, project_id: str | None) -> dict[str, str]:
        if project_id is None:
            return {}
        return {row["name"]: row["sha256"] for row in self.store.list_assets(tenant_id,
                                                                              project_id)}

    def _validate(self, document: Mapping[str, Any], assets: Mapping[str, str],
                  options: Mapping[str, Any]) -> Timeline:
        """Check the document exactly as a node will load it, with its real assets."""
        folder = self.work_dir / f"validate-{os.getpid()}-{time.monotonic_ns()}"
        folder.mkdir(parents=True)
        try:
            self.materialise(assets, folder)
            overrides = {k: options[k] for k in RENDER_OPTIONS if options.get(k) is not None}
            return engine.load_timeline(document, base_dir=folder, **overrides)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def resolve_source(
        self, tenant_id: str, *, document: Mapping[str, Any] | None, project_id: str | None,
        template_id: str | None, data: Mapping[str, Any] | None,
    ) -> tuple[dict[str, Any], str | None]:
        """The filled document of a submission and the project whose assets it uses."""
        given = sum(x is not None for x in (document, project_id, template_id))
        if given == 0 and document is None:
            raise errors.DocumentError("give one of 'document', 'project_id' or 'template_id'")
        if template_id is not None:
            template = self.store.get_template(tenant_id, template_id)
            raw, project_id = template["document"], project_id or template["project_id"]
        elif document is not None:
            raw = document
        else:
            assert project_id is not None
            raw = self.store.get_project(tenant_id, project_id)["document"]
            if raw is None:
                raise errors.DocumentError(f"project {project_id} has no document yet; PUT "
                                           "one first")
        if not isinstance(raw, dict):
            raise errors.DocumentError("the document must be a JSON object")
        filled = templates.resolve(raw, data)
        for key in ("variables", "blocks"):
            filled.pop(key, None)
        return filled, project_id

    def submit(
        self, tenant_id: str, *, document: Mapping[str, Any] | None = None,
        project_id: str | None = None, template_id: str | None = None,
        data: Mapping[str, Any] | None = None, options: Mapping[str, Any] | None = None,
        priority: int = 0, idempotency_key: str | None = None, notify_url: str | None = None,
    ) -> tuple[RowMapping, bool]:
        filled, project_id = self.resolve_source(tenant_id, document=document,
                                                 project_id=project_id,
                                                 template_id=template_id, data=data)
        options = {k: v for k, v in (options or {}).items() if v is not None}
        if notify_url:
            try:
                webhooks.check_url(notify_url,
                                   allow_private=self.settings.webhook_allow_private)
            except webhooks.UnsafeTarget as exc:
                raise errors.DocumentError(f"notify_url: {exc}") from None
        assets = self._project_assets(tenant_id, project_id)
        tl = self._validate(filled, assets, options)
        if tl.output.format == "png":
            plan = [queue.TaskPlan("snapshot", 0, 0, 1)]
            kind = "snapshot"
        else:
            nodes = sum(self.store.node_status(n) in ("online", "busy")
                        for n in self.store.list_nodes())
            plan = queue.plan_render(tl.total_frames, tl.fps, nodes,
                                     self.settings.min_chunk_seconds,
                                     tl.project.limits.max_chunks)
            kind = "render"
        return self.store.submit(
            tenant_id, kind=kind, document=filled, options=options, assets=assets,
            frames_total=tl.total_frames, fps=tl.fps, plan=plan, priority=priority,
            project_id=project_id, idempotency_key=idempotency_key, notify_url=notify_url)

    def prepare_snapshot(
        self, tenant_id: str, *, document: Mapping[str, Any] | None, project_id: str | None,
        template_id: str | None, data: Mapping[str, Any] | None, frame: int | None,
        at: float | None, scene: int | None, image_format: str,
    ) -> SnapshotRequest:
        """Validate a snapshot request and work out its frame and cache key."""
        filled, project_id = self.resolve_source(tenant_id, document=document,
                                                 project_id=project_id,
                                                 template_id=template_id, data=data)
        assets = self._project_assets(tenant_id, project_id)
        tl = self._validate(filled, assets, {})
        if scene is not None:
            frame = tl.key_frame(scene)
        elif at is not None:
            if not 0 <= at <= tl.duration:
                raise errors.DocumentError(f"at {at}: the video lasts {tl.duration:.2f} s")
            frame = min(round(at * tl.fps), tl.total_frames - 1)
        frame = frame or 0
        if not 0 <= frame < tl.total_frames:
            raise errors.DocumentError(f"frame {frame}: the video has frames 0-"
                                       f"{tl.total_frames - 1}")
        key = snapshot_key(filled, assets, frame, image_format)
        return SnapshotRequest(filled, assets, project_id, frame, tl.fps, key, image_format)

    def queue_snapshot(self, tenant_id: str, request: SnapshotRequest) -> RowMapping:
        job, _ = self.store.submit(
            tenant_id, kind="snapshot", document=request.document,
            options={"snapshot_format": request.image_format, "cache_key": request.cache_key},
            assets=request.assets, frames_total=1, fps=request.fps,
            plan=[queue.TaskPlan("snapshot", 0, request.frame, request.frame + 1)],
            priority=10, project_id=request.project_id)
        return job

    # -- exports and links ---------------------------------------------------------------------

    def export_meta(self, key: str) -> queue.ExportMeta:
        """Describe a finished video for its export row (probed before the job completes)."""
        path = self.storage.local_path(key)
        info = probe.probe(path)
        video = info.video
        return queue.ExportMeta(
            storage_key=key, size=path.stat().st_size,
            duration=video.duration if video else info.duration,
            width=video.width if video else 0, height=video.height if video else 0,
            codec=video.codec if video else "", fmt=path.suffix.lstrip("."),
            keep_days=self.settings.export_days)

    def send(self, key: str, media_type: str | None = None,
             filename: str | None = None) -> Response:
        """A stored object as a response: a redirect to a short-lived presigned URL when
        the storage has them (S3 answers Range requests itself), else the file."""
        url = self.storage.presigned_get(key, self.settings.signed_url_seconds, media_type,
                                         filename)
        if url is not None:
            return RedirectResponse(url, status_code=307)
        return FileResponse(self.storage.local_path(key), media_type=media_type,
                            filename=filename)

    def job_finished(self, job: RowMapping) -> None:
        """A job reached succeeded, failed or cancelled: tidy its parts, queue webhooks."""
        # Chunk parts and the audio mix are only needed until the export exists.
        for task in self.store.task_outputs(job["id"]):
            if task["output_key"] and task["output_key"] != job["result_key"]:
                self.storage.delete(task["output_key"])
        webhooks.enqueue(self.store, job)

    def sign(self, export_id: str, expires: int) -> str:
        message = f"{export_id}:{expires}".encode()
        return hmac.new(self.secret_key, message, hashlib.sha256).hexdigest()

    def signed_url(self, export_id: str, now: float | None = None) -> tuple[str, int]:
        expires = int((now or time.time()) + self.settings.signed_url_seconds)
        sig = self.sign(export_id, expires)
        base = self.settings.public_url.rstrip("/")
        return f"{base}/v1/exports/{export_id}/download?expires={expires}&sig={sig}", expires

    def check_signature(self, export_id: str, expires: int, sig: str,
                        now: float | None = None) -> bool:
        if expires < (now or time.time()):
            return False
        return hmac.compare_digest(self.sign(export_id, expires), sig)

    def sweep_exports(self) -> int:
        """Delete exports past their auto-delete date, with their files."""
        gone = 0
        for row in self.store.expired_exports():
            self.store.delete_export(None, row["id"])
            self.storage.delete(row["storage_key"])
            gone += 1
        return gone


def snapshot_key(document: Mapping[str, Any], assets: Mapping[str, str], frame: int,
                 image_format: str) -> str:
    """What a frame depends on, hashed: the filled document, the asset contents, the frame."""
    digest = hashlib.sha256()
    digest.update(json.dumps(document, sort_keys=True, separators=(",", ":")).encode())
    digest.update(json.dumps(dict(sorted(assets.items()))).encode())
    digest.update(f"{frame}:{image_format}".encode())
    return f"snapshots/{digest.hexdigest()}.{image_format}"

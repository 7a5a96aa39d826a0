"""Scaled mode end to end: the API on PostgreSQL with S3 storage (moto's S3 server on
loopback), render nodes that fetch inputs and send outputs straight to storage with
presigned URLs, large outputs in parts. The API never carries a video's bytes."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from framefarm import media as probe
from support.api import bearer, wait_job
from support.documents import FPS, output
from support.farm import Farm

pytestmark = [pytest.mark.ffmpeg, pytest.mark.parametrize("backend", ["postgresql"])]
MIB = 1024**2


def s3_farm(make_farm: Callable[..., Farm], endpoint: str) -> Farm:
    return make_farm(storage_backend="s3", s3_endpoint_url=endpoint,
                     s3_bucket=f"farm-{secrets.token_hex(6)}", s3_access_key_id="test",
                     s3_secret_access_key="test", s3_part_mb=5)


def noise_doc() -> dict[str, Any]:
    """A second of random pixels, lossless: parts of several MiB (multipart) from a tiny
    render."""
    return {"output": output(quality="lossless"), "scenes": [
        {"duration": 1.0, "layers": [{"type": "image", "src": "noise.png", "fit": "cover",
                     "motion": {"zoom": [1.0, 1.3], "pan": "left"}}]}]}


def test_a_render_moves_every_file_through_presigned_urls(
        make_farm: Callable[..., Farm], s3_endpoint: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    farm = s3_farm(make_farm, s3_endpoint)
    storage = farm.svc.ctx.storage
    multipart: list[tuple[str, int]] = []
    plan_upload = storage.presigned_multipart

    def recording(key: str, size: int, seconds: int) -> Any:
        upload = plan_upload(key, size, seconds)
        if upload is not None:
            multipart.append((key, size))
        return upload

    monkeypatch.setattr(storage, "presigned_multipart", recording)
    through_api: list[str] = []

    def note_file_routes(request: httpx.Request) -> None:
        """The node routes that carry a file's bytes through the API."""
        path = request.url.path
        if path.endswith("/output") or "/blobs/" in path or "/inputs/" in path:
            through_api.append(path)

    farm.client.event_hooks["request"].append(note_file_routes)

    key = farm.tenant("acme")
    c, auth = farm.client, bearer(key)
    rng = np.random.default_rng(7)
    noise = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)).save(noise)
    project = c.post("/v1/projects", json={"name": "s3"}, headers=auth).json()["id"]
    response = c.post(f"/v1/projects/{project}/assets", headers=auth,
                      files={"files": ("noise.png", noise.read_bytes(), "image/png")})
    assert response.status_code == 201, response.text
    response = c.put(f"/v1/projects/{project}/document", json=noise_doc(), headers=auth)
    assert response.status_code == 200, response.text

    farm.start_nodes(2)
    job = wait_job(c, key, farm.submit(key, {"project_id": project})["id"], timeout=120)
    assert job["state"] == "succeeded", job

    assert through_api == [], "node files went through the API instead of storage"
    # The chunk and the export are each several MiB: both went up in 5 MiB parts.
    kinds = sorted(k.rsplit("/", 1)[1].split("-")[0] for k, _ in multipart)
    assert kinds == ["assemble0002", "render0001"], multipart
    assert all(size > 5 * MIB for _, size in multipart)

    # The download is a redirect to storage; the file there is the whole video.
    response = c.get(f"/v1/exports/{job['export']['id']}/file", headers=auth,
                     follow_redirects=False)
    assert response.status_code == 307
    video = tmp_path / "out.mp4"
    stored = httpx.get(response.headers["location"])
    assert stored.headers["content-type"] == "video/mp4"
    assert stored.headers["content-disposition"] == f'attachment; filename="{job["id"]}.mp4"'
    video.write_bytes(stored.content)
    assert video.stat().st_size == job["export"]["size"]
    info = probe.probe(video, count_frames=True)
    assert info.video is not None and info.video.frames == FPS
    # Chunk parts and the audio mix are deleted once the export (the assembled file) exists.
    keys = [o["Key"] for o in storage.client.list_objects_v2(  # type: ignore[attr-defined]
        Bucket=storage.bucket).get("Contents", [])]  # type: ignore[attr-defined]
    left = [k.rsplit("/", 1)[1].split("-")[0] for k in keys if k.startswith(f"jobs/{job['id']}/")]
    assert left == ["assemble0002"], keys
    # The export's metadata came from the node's probe: the API never downloaded a video.
    assert _downloaded_by_the_api(storage, "jobs") == []


def _downloaded_by_the_api(storage: Any, prefix: str) -> list[str]:
    """Objects the API copied into its local cache (``S3Storage.local_path``)."""
    folder = Path(storage.cache_dir) / "objects" / prefix
    return sorted(str(p) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_a_snapshot_is_cached_by_a_copy_inside_storage(
        make_farm: Callable[..., Farm], s3_endpoint: str) -> None:
    farm = s3_farm(make_farm, s3_endpoint)
    key = farm.tenant("acme")
    farm.start_nodes(1)
    body = {"document": {"output": output(), "scenes": [
        {"duration": 1.0, "background": "#2050a0"}]}, "frame": 3}
    first = farm.client.post("/v1/snapshots", json=body, headers=bearer(key),
                             follow_redirects=False)
    assert first.status_code == 307 and first.headers["x-cache"] == "miss", first.text
    again = farm.client.post("/v1/snapshots", json=body, headers=bearer(key),
                             follow_redirects=False)
    assert again.status_code == 307 and again.headers["x-cache"] == "hit", again.text
    image = httpx.get(again.headers["location"])
    assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
    storage = farm.svc.ctx.storage
    assert _downloaded_by_the_api(storage, "jobs") == []
    assert _downloaded_by_the_api(storage, "snapshots") == []


def test_upload_complete_refuses_another_leases_key_and_bad_parts(
        make_farm: Callable[..., Farm], s3_endpoint: str) -> None:
    """The node protocol's multipart endpoints check what they are told."""
    farm = s3_farm(make_farm, s3_endpoint)
    key = farm.tenant("acme")
    farm.submit(key, {"document": {"output": output(), "scenes": [
        {"duration": 1.0, "background": "#000000"}]}})
    node = farm.agent("hand")
    task = node.client.post("/internal/tasks/claim", headers=node._headers()).json()
    lease, task_id = task["lease_token"], task["task_id"]
    plan = node.client.post(f"/internal/tasks/{task_id}/upload-url",
                            params={"ext": "mp4", "size": 6 * MIB},
                            json={"lease_token": lease}, headers=node._headers()).json()
    assert plan["url"] is None and len(plan["multipart"]["urls"]) == 2
    body = {"lease_token": lease, "output_key": plan["output_key"],
            "upload_id": plan["multipart"]["upload_id"], "size": 6 * MIB,
            "etags": ['"0123456789abcdef0123456789abcdef"'] * 2}
    url = f"/internal/tasks/{task_id}/upload-complete"
    other = {**body, "output_key": plan["output_key"].replace(lease[:8], "deadbeef")}
    response = node.client.post(url, json=other, headers=node._headers())
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"] == "output_key is not this lease's"
    response = node.client.post(url, json=body, headers=node._headers())
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_upload"
    small = node.client.post(f"/internal/tasks/{task_id}/upload-url",
                             params={"ext": "mp4", "size": MIB},
                             json={"lease_token": lease}, headers=node._headers()).json()
    assert small["multipart"] is None and "X-Amz-Signature=" in small["url"]

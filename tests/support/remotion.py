"""Remotion projects through the render service (tests/remotion): a tenant allowed code
templates, the example (or a changed copy of it) uploaded as a project, a render's body."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from framefarm.engines.remotion import project
from support.api import bearer
from support.farm import Farm
from support.media import decode_audio

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "remotion-card"
PROPS = {"title": "Made by two nodes", "items": [{"label": "Nodes", "value": 2}]}
# 1280x720 at 360p is 640x360; lossless, so the farm's chunks and a local render of the
# whole compare pixel for pixel.
OPTIONS = {"quality": "lossless", "size": "360p"}


def code_tenant(farm: Farm, name: str = "studio") -> str:
    """A tenant an admin let render code templates: its API key."""
    key = farm.tenant(name)
    tenant_id = farm.client.get("/v1/me", headers=bearer(key)).json()["tenant_id"]
    response = farm.client.put(f"/v1/admin/tenants/{tenant_id}/plan", headers=farm.admin,
                               json={"code_templates": True})
    assert response.status_code == 200, response.text
    return key


def upload_example(farm: Farm, key: str, *, folder: Path = EXAMPLE,
                   archive: bool = False) -> str:
    """A Remotion project's own files (package.json, the lockfile, src/, public/) as a
    project: uploaded folder by folder, or as one ZIP of its folder."""
    c, auth = farm.client, bearer(key)
    response = c.post("/v1/projects", json={"name": "card"}, headers=auth)
    assert response.status_code == 201, response.text
    project_id = str(response.json()["id"])
    names = project.files(folder)
    if archive:
        zipped = io.BytesIO()
        with zipfile.ZipFile(zipped, "w") as out:
            for name in names:
                out.write(folder / name, f"remotion-card/{name}")
        response = c.post(f"/v1/projects/{project_id}/archive", headers=auth,
                          files={"archive": ("card.zip", zipped.getvalue(), "application/zip")})
        assert response.status_code == 201, response.text
        return project_id
    by_folder: dict[str, list[Path]] = {}
    for name in names:
        by_folder.setdefault(str(name.parent), []).append(name)
    for sub, group in by_folder.items():
        files = [("files", (n.name, (folder / n).read_bytes(), "application/octet-stream"))
                 for n in group]
        response = c.post(f"/v1/projects/{project_id}/assets", files=files,
                          data={"folder": sub} if sub != "." else {}, headers=auth)
        assert response.status_code == 201, response.text
    return project_id


def render_body(project_id: str, **props: Any) -> dict[str, Any]:
    return {"project_id": project_id, "options": OPTIONS,
            "document": {"engine": "remotion", "composition": "Card",
                         "props": {**PROPS, **props}}}


def assert_sound_throughout(path: Path, frames: int, fps: int = 30) -> np.ndarray:
    """The video's sound is 48 kHz, as long as its frames (AAC priming aside), and the
    example's music plays in every frame's window but the first and last: no silent gap
    at a seam. Returns the samples (channels, samples)."""
    pcm, rate = decode_audio(path)
    assert rate == 48000
    assert abs(pcm.shape[1] / rate - frames / fps) < 0.03
    window = rate // fps
    usable = pcm[0, : (pcm.shape[1] // window) * window].reshape(-1, window)
    rms = np.sqrt((usable ** 2).mean(axis=1))
    assert (rms[1:-1] > 0.01).all(), rms
    return pcm

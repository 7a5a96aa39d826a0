"""Remotion projects through the render service (tests/remotion): a tenant allowed code
templates, the example (or a changed copy of it) uploaded as a project, a render's body."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from framefarm.engines.remotion import project
from support.api import bearer
from support.farm import Farm

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

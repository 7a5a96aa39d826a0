"""``framefarm.Client`` against a real ``framefarm serve`` with one local render node:
projects, streamed uploads, templates, submit, wait (event stream and polling), download,
and the API's refusals as exceptions with its codes."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import framefarm
from framefarm import client as ff
from framefarm import media as probe
from framefarm.api import models
from support.documents import small_output
from support.media import write_photo
from support.server import Server

pytestmark = pytest.mark.ffmpeg


def tiny_doc(seconds: float = 0.5, text: str = "hello") -> dict[str, Any]:
    return {"output": small_output(), "scenes": [{
        "duration": seconds, "background": "#203040",
        "layers": [{"type": "text", "text": text, "position": "center"}]}]}


def photo_doc(seconds: float = 0.5) -> dict[str, Any]:
    return {"output": small_output(), "scenes": [{
        "duration": seconds, "layers": [{"type": "image", "src": "media/photo.jpg"}]}]}


def test_importing_the_client_pulls_no_web_framework() -> None:
    code = ("import sys, framefarm.client\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('fastapi', 'starlette', 'uvicorn', 'sqlalchemy', 'numpy', 'cv2') "
            "or m.startswith(('framefarm.application', 'framefarm.repos', 'framefarm.db', "
            "'framefarm.api.app', 'framefarm.api.deps', 'framefarm.engine')))\n"
            "print(json.dumps(bad))\n").replace("import sys,", "import json, sys,")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert json.loads(done.stdout) == [], done.stdout
    assert framefarm.Client is ff.Client


def test_projects_assets_and_templates(server: Server, tenant_key: str, folder: Path) -> None:
    with framefarm.Client(server.url, tenant_key) as client:
        me = client.me()
        assert isinstance(me, models.Me) and me.admin is False and me.tenant.startswith("t")

        project = client.create_project("launch")
        assert isinstance(project, models.Project) and project.created_at.tzinfo is not None
        photo = write_photo(folder / "photo.jpg", "#c03030")
        stored = client.upload(project.id, {"media/photo.jpg": photo})
        assert [(s.name, s.size) for s in stored] == [("media/photo.jpg", photo.stat().st_size)]
        also = client.upload(project.id, [photo], folder="more")
        assert [s.name for s in also] == ["more/photo.jpg"] and also[0].sha256 == stored[0].sha256
        assert [a.name for a in client.assets(project.id)] == ["media/photo.jpg",
                                                               "more/photo.jpg"]
        copy = client.download_asset(project.id, "media/photo.jpg", folder / "copy.jpg")
        assert copy.read_bytes() == photo.read_bytes()
        client.delete_asset(project.id, "more/photo.jpg")

        assert client.rename_project(project.id, "renamed").name == "renamed"
        client.put_document(project.id, photo_doc())
        detail = client.project(project.id)
        assert (detail.name, detail.assets, detail.document) == (
            "renamed", ["media/photo.jpg"], photo_doc())
        assert [p.id for p in client.projects()] == [project.id]

        document = {**tiny_doc(text="{{title}}"), "variables": {"title": {"default": "x"}}}
        template = client.create_template("card", document, project_id=project.id)
        assert list(template.variables) == ["title"]
        changed = client.update_template(template.id, name="card 2")
        assert (changed.name, changed.document, changed.project_id) == (
            "card 2", document, project.id)
        assert [t.name for t in client.templates()] == ["card 2"]
        client.delete_template(template.id)
        assert client.templates() == []

        client.delete_project(project.id)
        with pytest.raises(ff.NotFound) as missing:
            client.project(project.id)
        assert (missing.value.status, missing.value.code) == (404, "not_found")
        assert project.id in missing.value.message


def test_refusals_are_exceptions_with_the_apis_code_and_message(
        server: Server, tenant_key: str) -> None:
    with framefarm.Client(server.url, tenant_key) as client:
        with pytest.raises(ff.Invalid) as invalid:
            client.submit({"output": small_output(), "scenes": [{"duration": -1}]})
        assert invalid.value.code == "invalid_document"
        assert any("scenes[0].duration" in p for p in invalid.value.details), invalid.value
        with pytest.raises(ff.Invalid) as bad_variable:
            client.create_template("t", {**tiny_doc(), "variables": {"x": {"type": "nope"}}})
        assert bad_variable.value.code == "invalid_document"
        with pytest.raises(ff.NotFound):
            client.render("job_nope")
        with pytest.raises(ff.Forbidden) as forbidden:
            client._request("GET", "/v1/admin/nodes")
        assert forbidden.value.code == "forbidden"
    with framefarm.Client(server.url, "ff_not_a_key") as stranger, \
            pytest.raises(ff.Unauthorized) as unauthorized:
        stranger.projects()
    assert unauthorized.value.code == "unauthorized" and unauthorized.value.message
    with framefarm.Client("http://127.0.0.1:9", tenant_key, timeout=5) as nowhere, \
            pytest.raises(ff.ServerUnreachable):
        nowhere.me()


@pytest.mark.parametrize("follow", ["events", "poll"])
def test_submit_wait_with_progress_and_download(server: Server, tenant_key: str, folder: Path,
                                                follow: ff.Follow) -> None:
    seen: list[models.JobProgress] = []
    with framefarm.Client(server.url, tenant_key) as client:
        project = client.create_project("p")
        client.upload(project.id, {"media/photo.jpg": write_photo(folder / "p.jpg", "#3050c0")})
        job = client.submit(photo_doc(1.0), project_id=project.id,
                            options={"quality": "draft"})
        assert job.state in ("queued", "running") and job.project_id == project.id
        done = client.wait(job.id, on_progress=seen.append, follow=follow, timeout=120)
        assert done.state == "succeeded" and done.export is not None, done
        target = client.download(done, folder / "out.mp4")
        page = client.renders(project_id=project.id)
        exports = client.exports(project_id=project.id)
        if follow == "poll":  # a render whose export was deleted since: no export, no hang
            client.delete_export(done.export.id)
            assert client.wait(job.id, follow=follow, poll_seconds=0.05).export is None

    assert seen and seen[-1].state == "succeeded" and seen[-1].percent == 100.0
    assert all(p.id == job.id for p in seen)
    percents = [p.percent for p in seen]
    assert percents == sorted(percents), percents
    assert all(a != b for a, b in itertools.pairwise(seen))  # changes only
    assert target.stat().st_size == done.export.size
    info = probe.probe(target, count_frames=True)
    assert info.video is not None and info.video.frames == done.frames.total == 30
    assert sorted(p.name for p in folder.iterdir()) == ["out.mp4", "p.jpg"]  # no part left
    assert [j.id for j in page.items] == [job.id] and page.has_more is False
    assert [e.id for e in exports] == [done.export.id]
    assert page.items[0].export == done.export


def test_pages_waiting_and_a_cancelled_render(server: Server, tenant_key: str,
                                              folder: Path) -> None:
    """With the only node drained, renders stay queued."""
    (node,) = server.nodes()
    server.set_draining(node, True)
    try:
        with framefarm.Client(server.url, tenant_key) as client:
            jobs = [client.submit(tiny_doc(0.2, text=str(i))) for i in range(4)]
            newest_first = [j.id for j in reversed(jobs)]
            first = client.renders(limit=3)
            assert [j.id for j in first.items] == newest_first[:3]
            assert first.has_more and first.next == newest_first[2]
            rest = client.renders(limit=3, before=first.next)
            assert ([j.id for j in rest.items], rest.has_more, rest.next) == (
                newest_first[3:], False, None)
            assert [j.id for j in client.all_renders(page_size=1)] == newest_first
            assert [j.id for j in client.all_renders(state="running")] == []
            for follow in ("events", "poll"):
                with pytest.raises(ff.WaitTimeout):
                    client.wait(jobs[0].id, timeout=0.3, follow=follow)  # type: ignore[arg-type]
            for job in jobs:
                assert client.cancel(job.id).state == "cancelled"
            with pytest.raises(ff.Conflict) as twice:
                client.cancel(jobs[0].id)
            assert twice.value.code == "conflict"
            cancelled = client.wait(jobs[0].id, timeout=30)
            assert cancelled.state == "cancelled" and cancelled.export is None
            with pytest.raises(ff.ClientError):
                client.download(cancelled, folder / "never.mp4")
            again = client.retry(jobs[0].id)
            assert (again.retry_of, again.attempt, again.state) == (jobs[0].id, 2, "queued")
            client.cancel(again.id)
            assert list(folder.iterdir()) == []
    finally:
        server.set_draining(node, False)

"""The render service through HTTP: the real app in-process (TestClient), real render nodes
(the Agent) in threads, on SQLite and PostgreSQL. Renders are 360p, draft, 1-4 s."""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from PIL import Image
from starlette.websockets import WebSocketDisconnect

from framefarm import media as probe
from framefarm.application import views
from support.api import assert_error, bearer, wait_job
from support.documents import FPS, long_doc, simple_doc, slideshow_doc
from support.farm import Farm
from support.polling import wait_for


def local(url: str) -> str:
    """A URL the service printed (public_url based), as a path for the TestClient."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def download(farm: Farm, key: str, export_id: str, target: Path) -> Path:
    response = farm.client.get(f"/v1/exports/{export_id}/file", headers=bearer(key))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    target.write_bytes(response.content)
    return target


def render(farm: Farm, key: str, body: dict[str, Any]) -> dict[str, Any]:
    """Submit and wait until it succeeded (nodes must be running)."""
    job = wait_job(farm.client, key, farm.submit(key, body)["id"])
    assert job["state"] == "succeeded", job
    return job


def parse_sse(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        if block.startswith(":"):
            continue  # a keep-alive comment
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        event = json.loads(lines["data"])
        assert event["event"] == lines["event"]
        events.append(event)
    return events


# -- the main flow -----------------------------------------------------------------------------


@pytest.mark.ffmpeg
def test_seed_002_smoke_flow(farm: Farm, media: Path, tmp_path: Path) -> None:
    """Project, multipart uploads, a document with auto durations, voice-overs and slides,
    a render on two nodes, the download: H.264 + AAC lasting exactly frames/fps."""
    c, key = farm.client, farm.tenant("acme")
    auth = bearer(key)
    project = farm.project_with_media(key, media)
    listed = c.get(f"/v1/projects/{project}/assets", headers=auth).json()
    assert [a["name"] for a in listed] == ["images/a.jpg", "images/b.jpg",
                                           "voiceovers/vo1.m4a", "voiceovers/vo2.m4a"]
    response = c.put(f"/v1/projects/{project}/document", json=slideshow_doc(), headers=auth)
    assert response.status_code == 200, response.text
    assert c.get(f"/v1/projects/{project}", headers=auth).json()["document"] == slideshow_doc()

    farm.start_nodes(2)
    job = farm.submit(key, {"project_id": project})
    assert job["state"] == "queued" and job["project_id"] == project
    job = wait_job(c, key, job["id"])
    assert job["state"] == "succeeded", job
    assert job["percent"] == 100 and job["step"] == "done"
    frames = job["frames"]["total"]
    assert job["frames"]["done"] == frames
    # Scenes last their voice-over plus 0.5 s: (1.5 + 0.5) + (1.0 + 0.5) = 3.5 s.
    assert abs(frames - 3.5 * FPS) <= 2, frames

    export = job["export"]
    assert export is not None and export["job_id"] == job["id"]
    assert (export["width"], export["height"], export["codec"]) == (640, 360, "h264")
    path = download(farm, key, export["id"], tmp_path / "out.mp4")
    assert path.stat().st_size == export["size"]
    info = probe.probe(path, count_frames=True)
    assert info.video is not None and info.audio is not None
    assert (info.video.codec, info.audio.codec) == ("h264", "aac")
    assert (info.video.width, info.video.height) == (640, 360)
    assert info.video.frames == frames
    assert abs(info.video.duration - frames / FPS) <= 1 / FPS, info.video.duration
    assert abs(info.duration - frames / FPS) <= 1 / FPS, info.duration

    # A node sends a preview with a heartbeat if the render lasts that long; either way
    # the preview route says which it is.
    preview = c.get(f"/v1/renders/{job['id']}/preview", headers=auth)
    if job["preview_url"]:
        assert preview.status_code == 200 and preview.content[:2] == b"\xff\xd8"
    else:
        assert_error(preview, 404, "not_found")
    listed_exports = c.get("/v1/exports", headers=auth).json()
    assert [e["id"] for e in listed_exports] == [export["id"]]
    logs = c.get(f"/v1/renders/{job['id']}/logs", headers=auth).json()
    assert any("claimed" in line["message"] for line in logs)
    assert logs[-1]["message"] == "job succeeded"


@pytest.mark.ffmpeg
def test_live_events_over_sse_and_websocket(farm: Farm) -> None:
    """Submitted before any node runs, so the stream sees the whole life of the job."""
    c, key = farm.client, farm.tenant("acme")
    job = farm.submit(key, {"document": simple_doc(2.0)})
    received: dict[str, Any] = {}

    def listen() -> None:
        response = c.get(f"/v1/renders/{job['id']}/events", headers=bearer(key))
        received["status"] = response.status_code
        received["type"] = response.headers["content-type"]
        received["text"] = response.text

    listener = threading.Thread(target=listen)
    listener.start()
    farm.start_nodes(2)
    listener.join(timeout=60)
    assert not listener.is_alive(), "the event stream did not end"
    assert received["status"] == 200 and received["type"].startswith("text/event-stream")
    events = parse_sse(received["text"])

    kinds = [e["event"] for e in events]
    assert kinds[0] == "state" and kinds[-1] == "done" and kinds.count("done") == 1, kinds
    order = ["queued", "running", "succeeded"]
    states = [e["state"] for e in events if e["event"] == "state"]
    assert states[0] in ("queued", "running") and states[-1] == "succeeded", states
    assert [order.index(s) for s in states] == sorted(order.index(s) for s in states), states
    percents = [e["percent"] for e in events if e["event"] == "progress"]
    assert percents == sorted(percents) and percents[-1] == 100.0, percents
    done = events[-1]
    assert done["state"] == "succeeded" and done["error"] is None
    assert done["export"]["job_id"] == job["id"]
    response = c.get(local(done["download_url"]))  # signed: no key needed
    assert response.status_code == 200 and response.content[4:8] == b"ftyp"

    with c.websocket_connect(f"/v1/renders/{job['id']}/ws") as ws:
        ws.send_json({"token": key})  # the key goes in the first message, not the URL
        socket_events = []
        while not socket_events or socket_events[-1]["event"] != "done":
            socket_events.append(ws.receive_json())
    final = socket_events[-1]
    assert {k: final[k] for k in ("state", "error", "export")} == \
        {k: done[k] for k in ("state", "error", "export")}
    assert "download_url" in final

    # The WebSocket needs a key, a key in the URL is not one, and another tenant's job is
    # not found.
    url = f"/v1/renders/{job['id']}/ws"
    for first, code in (({"token": "ff_wrong"}, 4401), ({"hello": 1}, 4401),
                        ({"token": farm.tenant("other")}, 4404)):
        with pytest.raises(WebSocketDisconnect) as closed, c.websocket_connect(url) as ws:
            ws.send_json(first)
            ws.receive_json()
        assert closed.value.code == code, first
    with pytest.raises(WebSocketDisconnect) as closed, \
            c.websocket_connect(f"{url}?token={key}") as ws:
        ws.send_json({})
        ws.receive_json()
    assert closed.value.code == 4401


# -- cancel and retry --------------------------------------------------------------------------


@pytest.mark.ffmpeg
def test_cancel_a_running_render(make_farm: Any) -> None:
    """A 40 s render in one chunk on one node: cancelled once frames are coming, the node
    hears it at its next heartbeat, stops FFmpeg, and nothing it says later counts."""
    farm: Farm = make_farm(min_chunk_seconds=60)
    c, key = farm.client, farm.tenant("acme")
    (node,) = farm.start_nodes(1)
    job = farm.submit(key, {"document": long_doc(40)})
    wait_job(c, key, job["id"], timeout=30,
             until=lambda j: j["state"] == "running" and j["frames"]["done"] > 0)
    task = next(t for t in node.started if t.kind == "render")
    started = time.monotonic()
    response = c.post(f"/v1/renders/{job['id']}/cancel", headers=bearer(key))
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "cancelled"

    # The render stops mid-way (RenderCancelled): at the next heartbeat (0.2 s), FFmpeg
    # stopped at once, long before its 1200 frames (about 10 s of work) are done.
    assert node.wait_ended(task.task_id, timeout=15) == "RenderCancelled"
    assert time.monotonic() - started < 5
    job = c.get(f"/v1/renders/{job['id']}", headers=bearer(key)).json()
    assert job["state"] == "cancelled" and job["export"] is None
    assert job["frames"]["done"] < job["frames"]["total"]
    assert c.get("/v1/exports", headers=bearer(key)).json() == []

    # Late reports with the old lease are refused.
    lease = {"lease_token": task.lease_token}
    late = c.post(f"/internal/tasks/{task.task_id}/complete", json=lease,
                  headers=node._headers())
    assert_error(late, 409, "stale_lease")
    late = c.post(f"/internal/tasks/{task.task_id}/fail",
                  json={**lease, "error": "too late"}, headers=node._headers())
    assert_error(late, 409, "stale_lease")
    beat = c.post(f"/internal/tasks/{task.task_id}/heartbeat", json=lease,
                  headers=node._headers())
    assert beat.status_code == 200 and beat.json() == {"command": "cancel"}
    assert c.get(f"/v1/renders/{job['id']}", headers=bearer(key)).json()["state"] == "cancelled"
    # A finished job cannot be cancelled again.
    assert_error(c.post(f"/v1/renders/{job['id']}/cancel", headers=bearer(key)), 409, "conflict")


def test_late_upload_after_cancel_is_refused(farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    node = farm.agent("manual")
    job = farm.submit(key, {"document": simple_doc(1.0)})
    claimed = c.post("/internal/tasks/claim", headers=node._headers()).json()
    assert c.post(f"/v1/renders/{job['id']}/cancel", headers=bearer(key)).status_code == 200
    response = c.put(f"/internal/tasks/{claimed['task_id']}/output", params={"ext": "mp4"},
                     content=b"\x00" * 64,
                     headers=node._headers(claimed["lease_token"]))
    assert_error(response, 409, "stale_lease")
    response = c.post(f"/internal/tasks/{claimed['task_id']}/upload-url", params={"ext": "mp4"},
                      json={"lease_token": claimed["lease_token"]}, headers=node._headers())
    assert_error(response, 409, "stale_lease")
    assert not (farm.settings.storage_dir / "jobs").exists()


@pytest.mark.ffmpeg
def test_retry_a_cancelled_render(farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    auth = bearer(key)
    job = farm.submit(key, {"document": simple_doc(1.0)})
    assert_error(c.post(f"/v1/renders/{job['id']}/retry", headers=auth), 409, "conflict")
    assert c.post(f"/v1/renders/{job['id']}/cancel", headers=auth).json()["state"] == \
        "cancelled"

    response = c.post(f"/v1/renders/{job['id']}/retry", headers=auth)
    assert response.status_code == 202, response.text
    again = response.json()
    assert again["id"] != job["id"]
    assert (again["attempt"], again["retry_of"], again["state"]) == (2, job["id"], "queued")
    farm.start_nodes(2)
    done = wait_job(c, key, again["id"])
    assert done["state"] == "succeeded" and done["export"] is not None
    assert done["frames"]["total"] == job["frames"]["total"] == FPS
    assert c.get(f"/v1/renders/{job['id']}", headers=auth).json()["state"] == "cancelled"
    # Only failed or cancelled jobs are retried.
    assert_error(c.post(f"/v1/renders/{again['id']}/retry", headers=auth), 409, "conflict")


# -- exports -----------------------------------------------------------------------------------


@pytest.mark.ffmpeg
def test_export_ranges_and_signed_links(farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    auth = bearer(key)
    farm.start_nodes(2)
    export = render(farm, key, {"document": simple_doc(1.0)})["export"]
    whole = c.get(f"/v1/exports/{export['id']}/file", headers=auth)
    assert whole.status_code == 200 and len(whole.content) == export["size"]
    assert whole.headers.get("accept-ranges") == "bytes"

    part = c.get(f"/v1/exports/{export['id']}/file",
                 headers={**auth, "Range": "bytes=0-99"})
    assert part.status_code == 206, part.text
    assert part.content == whole.content[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{export['size']}"
    tail = c.get(f"/v1/exports/{export['id']}/file",
                 headers={**auth, "Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == whole.content[-10:]

    link = c.post(f"/v1/exports/{export['id']}/link", headers=auth)
    assert link.status_code == 200, link.text
    url = local(link.json()["url"])
    assert link.json()["expires_at"] > time.time()
    signed = c.get(url)  # no API key
    assert signed.status_code == 200 and signed.content == whole.content
    ranged = c.get(url, headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.content == whole.content[100:200]

    path, _, query = url.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    flipped = params["sig"][:-1] + ("0" if params["sig"][-1] != "0" else "1")
    for bad in (f"{path}?expires={params['expires']}&sig={flipped}",
                f"{path}?expires={int(params['expires']) + 1}&sig={params['sig']}",
                f"{path}?expires={params['expires']}",
                path):
        assert_error(c.get(bad), 403, "link_expired")
    # Expired: a link made 10 000 s ago (its lifetime is 900 s).
    old, _ = farm.svc.exports.signed_url(export["id"], now=time.time() - 10_000)
    assert_error(c.get(local(old)), 403, "link_expired")
    # A valid signature for one export does not open another.
    other = render(farm, key, {"document": simple_doc(1.0, text="other")})["export"]
    assert_error(c.get(url.replace(export["id"], other["id"])), 403, "link_expired")

    # Extend and delete.
    extended = c.post(f"/v1/exports/{export['id']}/extend", json={"days": 3}, headers=auth)
    assert extended.status_code == 200 and extended.json()["expires_at"] > export["expires_at"]
    assert c.delete(f"/v1/exports/{export['id']}", headers=auth).status_code == 204
    assert_error(c.get(f"/v1/exports/{export['id']}", headers=auth), 404, "not_found")
    assert_error(c.get(url), 404, "not_found")


# -- tenants -----------------------------------------------------------------------------------


@pytest.mark.ffmpeg
def test_tenants_never_see_each_other(farm: Farm, media: Path) -> None:
    c = farm.client
    key_a, key_b = farm.tenant("a"), farm.tenant("b")
    a, b = bearer(key_a), bearer(key_b)
    project = farm.project_with_media(key_a, media)
    template = c.post("/v1/templates", headers=a, json={
        "name": "t", "document": {**simple_doc(1.0, text="{{title}}"),
                                  "variables": {"title": {"default": "x"}}}}).json()["id"]
    farm.start_nodes(2)
    job = render(farm, key_a, {"document": simple_doc(1.0)})
    export = job["export"]["id"]
    image = c.post("/v1/snapshots", headers=a, json={"document": simple_doc(1.0)})
    snap_job = image.headers["x-job"]

    not_found = [
        ("GET", f"/v1/projects/{project}", None),
        ("GET", f"/v1/projects/{project}/assets", None),
        ("PUT", f"/v1/projects/{project}/document", simple_doc()),
        ("DELETE", f"/v1/projects/{project}/assets/images/a.jpg", None),
        ("GET", f"/v1/renders/{job['id']}", None),
        ("GET", f"/v1/renders/{job['id']}/progress", None),
        ("GET", f"/v1/renders/{job['id']}/logs", None),
        ("GET", f"/v1/renders/{job['id']}/events", None),
        ("GET", f"/v1/renders/{job['id']}/preview", None),
        ("POST", f"/v1/renders/{job['id']}/cancel", None),
        ("POST", f"/v1/renders/{job['id']}/retry", None),
        ("GET", f"/v1/exports/{export}", None),
        ("GET", f"/v1/exports/{export}/file", None),
        ("POST", f"/v1/exports/{export}/link", None),
        ("POST", f"/v1/exports/{export}/extend", {"days": 1}),
        ("DELETE", f"/v1/exports/{export}", None),
        ("GET", f"/v1/templates/{template}", None),
        ("POST", f"/v1/templates/{template}/renders", {"data": {}}),
        ("POST", f"/v1/templates/{template}/previews", {"data": {}}),
        ("GET", f"/v1/snapshots/{snap_job}", None),
        ("POST", "/v1/renders", {"project_id": project}),
        ("POST", "/v1/renders", {"template_id": template}),
        ("POST", "/v1/renders", {"document": simple_doc(), "project_id": project}),
        ("POST", "/v1/snapshots", {"project_id": project, "document": simple_doc()}),
        ("POST", "/v1/templates", {"name": "x", "document": simple_doc(),
                                   "project_id": project}),
    ]
    for method, url, body in not_found:
        response = c.request(method, url, json=body, headers=b)
        assert_error(response, 404, "not_found")
    upload = c.post(f"/v1/projects/{project}/assets", headers=b,
                    files={"files": ("x.png", b"\x89PNG", "image/png")})
    assert_error(upload, 404, "not_found")
    for listing in ("/v1/projects", "/v1/templates", "/v1/exports"):
        assert c.get(listing, headers=b).json() == []
    assert c.get("/v1/renders", headers=b).json()["items"] == []

    # A's things are all still there and still A's.
    assert c.get(f"/v1/exports/{export}/file", headers=a).status_code == 200
    assert len(c.get(f"/v1/projects/{project}/assets", headers=a).json()) == 4
    assert c.get(f"/v1/renders/{job['id']}", headers=a).json()["state"] == "succeeded"


# -- hostile and malformed input ---------------------------------------------------------------


def test_authentication_and_authorisation(farm: Farm) -> None:
    c = farm.client
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"},
                    {"Authorization": "Bearer ff_not_a_key"}):
        assert_error(c.get("/v1/renders", headers=headers), 401, "unauthorized")
    key = farm.tenant("acme")
    assert_error(c.get("/v1/admin/nodes", headers=bearer(key)), 403, "forbidden")
    assert_error(c.post("/v1/admin/tenants", json={"name": "x"}, headers=bearer(key)), 403)
    # Node endpoints take a node secret, not an API key, and a wrong enrolment token fails.
    assert_error(c.post("/internal/tasks/claim", headers=bearer(key)), 401, "unauthorized")
    assert_error(c.post("/internal/nodes/register",
                        json={"token": "wrong", "name": "n"}), 401, "unauthorized")


def test_malformed_requests(farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    auth = bearer(key)
    bad_json = c.post("/v1/renders", content=b'{"document": {', headers={
        **auth, "content-type": "application/json"})
    assert_error(bad_json, 422, "invalid_request")
    error = assert_error(c.post("/v1/projects", json={"name": "p", "colour": "red"},
                                headers=auth), 422, "invalid_request")
    assert any(d["path"].endswith("colour") for d in error["details"]), error
    assert_error(c.post("/v1/projects", json=["p"], headers=auth), 422, "invalid_request")
    assert_error(c.post("/v1/renders", json={"document": simple_doc(), "priority": 1000},
                        headers=auth), 422, "invalid_request")
    assert_error(c.post("/v1/renders", json={}, headers=auth), 422, "invalid_document")
    assert_error(c.get("/v1/nowhere", headers=auth), 404)
    assert_error(c.patch("/v1/renders", headers=auth), 405)
    assert_error(c.get("/v1/renders/job_nope", headers=auth), 404, "not_found")
    assert_error(c.get("/v1/renders?state=bogus", headers=auth), 422, "invalid_request")
    huge = c.post("/v1/renders", content=b"{}", headers={
        **auth, "content-type": "application/json", "content-length": str(11 * 1024**2)})
    assert_error(huge, 413, "too_large")


def test_an_invalid_document_names_json_paths(farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    document = {"output": {"size": "360p"},
                "scenes": [{"duration": 2, "layers": [{"type": "text", "txt": "hi"}]},
                           {"duration": -1, "transition": {"type": "spin"}}],
                "extra": True}
    error = assert_error(c.post("/v1/renders", json={"document": document},
                                headers=bearer(key)), 422, "invalid_document")
    paths = " ".join(error["details"])
    for path in ("scenes[0].layers[0].txt", "scenes[1].duration", "scenes[1].transition.type",
                 "extra"):
        assert path in paths, error["details"]
    error = assert_error(c.post("/v1/renders", json={"document": {
        "output": {"fps": 31}, "scenes": [{}]}}, headers=bearer(key)), 422, "invalid_document")
    assert "output.fps" in " ".join(error["details"])
    # The same checks when a project's document is stored.
    project = c.post("/v1/projects", json={"name": "p"}, headers=bearer(key)).json()["id"]
    error = assert_error(c.put(f"/v1/projects/{project}/document", json=document,
                               headers=bearer(key)), 422, "invalid_document")
    assert "scenes[1].duration" in " ".join(error["details"])
    # A document whose asset is missing fails when submitted, not on a node.
    missing = {"output": {"size": "360p"}, "scenes": [
        {"layers": [{"type": "image", "src": "images/none.jpg"}]}]}
    error = assert_error(c.post("/v1/renders", json={"document": missing},
                                headers=bearer(key)), 422, "invalid_document")
    assert "none.jpg" in error["message"] + " ".join(error["details"])
    assert c.get("/v1/renders", headers=bearer(key)).json()["items"] == []


def test_hostile_asset_names_are_refused(farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    project = c.post("/v1/projects", json={"name": "p"}, headers=bearer(key)).json()["id"]
    url = f"/v1/projects/{project}/assets"
    before = sorted(p.name for p in farm.settings.storage_dir.rglob("*"))
    for filename, folder in (("../evil.png", None), ("images/../../evil.png", None),
                             ("..", None), (".hidden", None), ("a b.png", None),
                             ("a/b/c/d/e.png", None), ("ok.png", "../up"),
                             ("ok.png", "/abs/olute/../.."), ("", None)):
        data = {"folder": folder} if folder is not None else None
        response = c.post(url, headers=bearer(key), data=data,
                          files={"files": (filename, b"not really a png", "image/png")})
        assert response.status_code == 422, (filename, folder, response.text)
        assert_error(response, 422)
        if filename:
            assert response.json()["error"]["code"] == "invalid_asset_name", filename
    assert c.get(url, headers=bearer(key)).json() == []
    assert sorted(p.name for p in farm.settings.storage_dir.rglob("*")) == before
    # Deleting by a traversal path finds nothing.
    assert_error(c.delete(f"{url}/..%2F..%2Fsecret.key", headers=bearer(key)), 404)
    assert (farm.tmp / "secret.key").is_file()


def test_absolute_asset_names_are_refused(farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    project = c.post("/v1/projects", json={"name": "p"}, headers=bearer(key)).json()["id"]
    response = c.post(f"/v1/projects/{project}/assets", headers=bearer(key),
                      files={"files": ("/etc/passwd", b"root:x:0:0", "text/plain")})
    assert_error(response, 422, "invalid_asset_name")
    assert c.get(f"/v1/projects/{project}/assets", headers=bearer(key)).json() == []


def test_a_refused_upload_stores_nothing(farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    project = c.post("/v1/projects", json={"name": "p"}, headers=bearer(key)).json()["id"]
    response = c.post(f"/v1/projects/{project}/assets", headers=bearer(key), files=[
        ("files", ("good.png", b"fine", "image/png")),
        ("files", ("../evil.png", b"evil", "image/png"))])
    assert_error(response, 422, "invalid_asset_name")
    assert c.get(f"/v1/projects/{project}/assets", headers=bearer(key)).json() == []


def test_oversized_uploads_are_refused(make_farm: Any) -> None:
    farm: Farm = make_farm(max_upload_bytes=1000)
    c, key = farm.client, farm.tenant("acme")
    project = c.post("/v1/projects", json={"name": "p"}, headers=bearer(key)).json()["id"]
    url = f"/v1/projects/{project}/assets"
    ok = c.post(url, headers=bearer(key), files={"files": ("small.bin", b"x" * 1000)})
    assert ok.status_code == 201, ok.text
    assert_error(c.post(url, headers=bearer(key), files={"files": ("big.bin", b"x" * 1001)}),
                 413, "too_large")
    # Past 20 uploads' worth the body is refused before it is read.
    assert_error(c.post(url, headers=bearer(key), files={"files": ("huge.bin", b"x" * 25_000)}),
                 413, "too_large")
    names = [a["name"] for a in c.get(url, headers=bearer(key)).json()]
    assert names == ["small.bin"]
    leftovers = [p for p in farm.settings.storage_dir.rglob("*")
                 if p.is_file() and "assets" not in p.parts]
    assert leftovers == []


def test_template_data_is_checked(farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    document = {**simple_doc(1.0, text="{{title}}"),
                "variables": {"title": {"type": "text", "required": True}}}
    template = c.post("/v1/templates", json={"name": "t", "document": document},
                      headers=bearer(key))
    assert template.status_code == 201, template.text
    url = f"/v1/templates/{template.json()['id']}/renders"
    error = assert_error(c.post(url, json={"data": {}}, headers=bearer(key)), 422,
                         "invalid_document")
    assert any("variables.title" in d for d in error["details"]), error
    assert_error(c.post(url, json={"data": {"title": "x"}, "extra": 1}, headers=bearer(key)),
                 422, "invalid_request")
    # Inline documents with variables are filled the same way.
    error = assert_error(c.post("/v1/renders", json={"document": document},
                                headers=bearer(key)), 422, "invalid_document")
    assert "title" in " ".join(error["details"])


def test_a_template_with_a_bad_variable_is_a_422(farm: Farm) -> None:
    client = TestClient(farm.app, raise_server_exceptions=False)
    document = {**simple_doc(1.0, text="{{title}}"), "variables": {"title": {"type": "colour"}}}
    response = client.post("/v1/templates", json={"name": "bad", "document": document},
                           headers=bearer(farm.tenant("acme")))
    error = assert_error(response, 422, "invalid_document")
    assert "variables.title.type" in " ".join(error["details"])


def test_too_many_concurrent_jobs(farm: Farm) -> None:
    c = farm.client
    created = c.post("/v1/admin/tenants", json={"name": "small", "max_concurrent_jobs": 1},
                     headers=farm.admin)
    assert created.status_code == 201, created.text
    key = created.json()["api_key"]
    first = farm.submit(key, {"document": simple_doc()})
    assert_error(c.post("/v1/renders", json={"document": simple_doc()}, headers=bearer(key)),
                 429, "too_many_jobs")
    # Finished jobs do not count; other tenants are not limited by it.
    farm.submit(farm.tenant("other"), {"document": simple_doc()})
    c.post(f"/v1/renders/{first['id']}/cancel", headers=bearer(key))
    farm.submit(key, {"document": simple_doc()})
    # An idempotent resubmission returns the existing job, even at the limit.
    again = c.post("/v1/renders", json={"document": simple_doc(), "idempotency_key": "k1"},
                   headers=bearer(farm.tenant("third")))
    assert again.status_code == 202
    same = c.post("/v1/renders", json={"document": simple_doc(), "idempotency_key": "k1"},
                  headers=bearer(farm.tenant("fourth")))
    assert same.json()["id"] != again.json()["id"]  # keys are per tenant


# -- snapshots and templates -------------------------------------------------------------------


@pytest.mark.ffmpeg
def test_snapshots_are_rendered_then_cached(farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    farm.start_nodes(1)
    body = {"document": simple_doc(2.0), "frame": 10}
    first = c.post("/v1/snapshots", json=body, headers=bearer(key))
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/png"
    assert first.headers["x-cache"] == "miss" and first.headers["x-frame"] == "10"
    image = Image.open(io.BytesIO(first.content))
    assert image.format == "PNG" and image.size == (640, 360)

    started = time.monotonic()
    second = c.post("/v1/snapshots", json=body, headers=bearer(key))
    elapsed = time.monotonic() - started
    assert second.status_code == 200 and second.headers["x-cache"] == "hit"
    assert second.content == first.content
    assert elapsed < 1.0, elapsed

    at = c.post("/v1/snapshots", json={"document": simple_doc(2.0), "at": 1.5,
                                       "format": "jpeg"}, headers=bearer(key))
    assert at.status_code == 200 and at.headers["x-frame"] == "45"
    assert Image.open(io.BytesIO(at.content)).format == "JPEG"
    assert_error(c.post("/v1/snapshots", json={"document": simple_doc(2.0), "frame": 60},
                        headers=bearer(key)), 422, "invalid_document")
    assert_error(c.post("/v1/snapshots", json={"document": simple_doc(2.0), "frame": 1,
                                               "at": 0.5}, headers=bearer(key)), 422)


@pytest.mark.ffmpeg
def test_templates_render_and_preview(farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    auth = bearer(key)
    document = {
        "output": {"size": "360p", "fps": FPS, "quality": "draft"},
        "variables": {"title": {"type": "text", "required": True, "description": "heading"},
                      "accent": {"type": "color", "default": "#ff5a00"}},
        "blocks": {"Card": {"background": "{{accent}}", "layers": [
            {"type": "text", "text": "{{props.heading}}", "position": "center"}]}},
        "scenes": [{"block": "Card", "props": {"heading": "{{title}}"}, "duration": 1},
                   {"block": "Card", "props": {"heading": "the end"}, "duration": 1}],
    }
    created = c.post("/v1/templates", json={"name": "promo", "document": document},
                     headers=auth)
    assert created.status_code == 201, created.text
    template = created.json()
    assert template["variables"]["title"]["required"] is True
    shown = c.get(f"/v1/templates/{template['id']}", headers=auth).json()
    assert shown["variables"] == template["variables"]
    assert shown["variables"]["accent"]["default"] == "#ff5a00"
    assert shown["scenes"] == 2
    assert [t["id"] for t in c.get("/v1/templates", headers=auth).json()] == [template["id"]]

    farm.start_nodes(2)
    job = c.post(f"/v1/templates/{template['id']}/renders",
                 json={"data": {"title": "Hello", "accent": "#2040a0"}}, headers=auth)
    assert job.status_code == 202, job.text
    done = wait_job(c, key, job.json()["id"])
    assert done["state"] == "succeeded" and done["frames"]["total"] == 2 * FPS

    previews = c.post(f"/v1/templates/{template['id']}/previews",
                      json={"data": {"title": "Hello"}}, headers=auth)
    assert previews.status_code == 200, previews.text
    entries = previews.json()
    assert [e["scene"] for e in entries] == [0, 1]
    assert entries[0]["frame"] < FPS <= entries[1]["frame"] < 2 * FPS
    for entry in entries:
        assert entry["job_id"] and entry["cached"] is False

        def fetched(job_id: str = entry["job_id"]) -> Any:
            response = c.get(f"/v1/snapshots/{job_id}", headers=auth)
            return response if response.status_code == 200 else None

        image = wait_for(fetched, timeout=30, what="a preview")
        assert image.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(image.content)).size == (640, 360)
    again = c.post(f"/v1/templates/{template['id']}/previews",
                   json={"data": {"title": "Hello"}}, headers=auth).json()
    assert [e["cached"] for e in again] == [True, True]
    assert_error(c.post(f"/v1/templates/{template['id']}/previews", json={"data": {}},
                        headers=auth), 422, "invalid_document")


# -- admin -------------------------------------------------------------------------------------


@pytest.mark.ffmpeg
def test_admin_nodes_drain_and_release(farm: Farm) -> None:
    c, key = farm.client, farm.tenant("acme")
    node = farm.agent("manual")
    nodes = c.get("/v1/admin/nodes", headers=farm.admin).json()
    assert [(n["id"], n["name"], n["status"]) for n in nodes] == \
        [(node.node_id, "manual", "online")]
    capabilities = nodes[0]["capabilities"]
    assert capabilities["cores"] >= 1 and capabilities["ffmpeg"] not in ("", "unavailable")
    assert c.get(f"/v1/admin/nodes/{node.node_id}", headers=farm.admin).json()["id"] == \
        node.node_id
    assert_error(c.get("/v1/admin/nodes/node_nope", headers=farm.admin), 404)

    job = farm.submit(key, {"document": simple_doc(1.0)})
    drained = c.post(f"/v1/admin/nodes/{node.node_id}/drain", headers=farm.admin)
    assert drained.status_code == 200 and drained.json()["status"] == "draining"
    beat = c.post("/internal/nodes/heartbeat", json={}, headers=node._headers())
    assert beat.json() == {"command": "drain"}
    assert node.run_one() is False  # claims nothing
    assert c.get(f"/v1/renders/{job['id']}", headers=bearer(key)).json()["state"] == "queued"
    assert c.get("/v1/admin/queue", headers=farm.admin).json()["tasks"]["queued"] >= 1

    undrained = c.post(f"/v1/admin/nodes/{node.node_id}/undrain", headers=farm.admin)
    assert undrained.json()["status"] == "online"
    claim = c.post("/internal/tasks/claim", headers=node._headers())
    assert claim.status_code == 200, claim.text
    task = claim.json()
    listed = c.get(f"/v1/admin/nodes/{node.node_id}", headers=farm.admin).json()
    assert (listed["status"], listed["current_task_id"]) == ("busy", task["task_id"])

    released = c.post(f"/v1/admin/nodes/{node.node_id}/release", headers=farm.admin)
    assert released.status_code == 200 and released.json() == {"requeued": 1}
    stale = c.post(f"/internal/tasks/{task['task_id']}/heartbeat",
                   json={"lease_token": task["lease_token"]}, headers=node._headers())
    assert_error(stale, 409, "stale_lease")
    logs = c.get(f"/v1/renders/{job['id']}/logs", headers=bearer(key)).json()
    assert any("released by an admin" in line["message"] for line in logs)

    farm.start_nodes(1)  # the requeued task is claimable again
    assert wait_job(c, key, job["id"])["state"] == "succeeded"
    nodes = {n["name"]: n for n in c.get("/v1/admin/nodes", headers=farm.admin).json()}
    assert sum(n["tasks_done"] for n in nodes.values()) == 3  # render, audio, assemble

    tenants = c.get("/v1/admin/tenants", headers=farm.admin).json()
    assert {"admin", "acme"} <= {t["name"] for t in tenants}
    new_key = c.post(f"/v1/admin/tenants/{tenants[0]['id']}/keys", headers=farm.admin)
    assert new_key.status_code == 201
    assert c.get("/v1/renders", headers=bearer(new_key.json()["api_key"])).status_code == 200
    assert_error(c.post("/v1/admin/tenants", json={"name": "acme"}, headers=farm.admin), 409)


# -- health ------------------------------------------------------------------------------------


def test_health_readiness_and_openapi(farm: Farm) -> None:
    c = farm.client
    assert c.get("/healthz").json() == {"status": "ok"}
    ready = c.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"database": "ok", "migrations": "ok",
                                                      "storage": "ok"}}
    spec = c.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for path in ("/v1/renders", "/v1/renders/{job_id}", "/v1/exports/{export_id}/file",
                 "/v1/templates", "/v1/snapshots", "/v1/admin/nodes", "/internal/tasks/claim"):
        assert path in paths, path
    assert c.get("/docs").status_code == 200
    metrics = c.get("/metrics")
    assert metrics.status_code == 200 and "framefarm_http_request_seconds" in metrics.text


# -- races between API requests ----


@pytest.mark.ffmpeg
def test_a_succeeded_render_has_its_export(make_farm: Any) -> None:
    farm: Farm = make_farm()
    key = farm.tenant("acme")
    seen: list[dict[str, Any]] = []
    queue = farm.svc.ctx.queue
    complete = queue.complete

    def spy(*args: Any, **kwargs: Any) -> Any:
        """What any reader gets the moment a completion commits."""
        job = complete(*args, **kwargs)
        seen.append(views.job(farm.svc.renders.get(None, job.id), farm.settings.public_url))
        return job

    queue.complete = spy  # type: ignore[method-assign]
    farm.start_nodes(1)
    render(farm, key, {"document": simple_doc(1.0)})
    assert any(v["state"] == "succeeded" for v in seen)
    assert [v["id"] for v in seen if v["state"] == "succeeded" and v["export"] is None] == []


def test_concurrent_completions_unblock_the_assemble_task(make_farm: Any) -> None:
    """The render and the audio task of one job complete at the same moment (both
    transactions reach their 'is anything still pending?' count before either commits):
    the assemble task must still be queued."""
    farm: Farm = make_farm()
    c, key = farm.client, farm.tenant("acme")
    nodes = [farm.agent("n1"), farm.agent("n2")]
    job = farm.submit(key, {"document": simple_doc(1.0)})
    claimed = [c.post("/internal/tasks/claim", headers=n._headers()).json() for n in nodes]
    assert sorted(t["kind"] for t in claimed) == ["audio", "render"]

    barrier = threading.Barrier(2)

    def meet(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        """Hold each completion at its count until the other one gets there too. When
        completions are serialised (a lock on the job row) the other one never can: after
        a moment the first goes on alone, and the second finds the barrier broken."""
        if "count(" in statement.lower() and "tasks.kind IN" in statement:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=2)

    answers: list[int] = []

    def complete(node: Any, task: dict[str, Any]) -> None:
        response = c.post(f"/internal/tasks/{task['task_id']}/complete",
                          json={"lease_token": task["lease_token"]}, headers=node._headers())
        answers.append(response.status_code)

    # SQLite's BEGIN IMMEDIATE lets one transaction in at a time: nothing to interleave.
    engine = farm.svc.ctx.db.engine
    if farm.backend == "postgresql":
        sa.event.listen(engine, "before_cursor_execute", meet)
    try:
        threads = [threading.Thread(target=complete, args=pair)
                   for pair in zip(nodes, claimed, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        if sa.event.contains(engine, "before_cursor_execute", meet):
            sa.event.remove(engine, "before_cursor_execute", meet)
    assert answers == [200, 200]
    tasks = c.get("/v1/admin/queue", headers=farm.admin).json()["tasks"]
    assert tasks == {"succeeded": 2, "queued": 1}, tasks
    nxt = c.post("/internal/tasks/claim", headers=nodes[0]._headers())
    assert nxt.status_code == 200 and nxt.json()["kind"] == "assemble"
    assert c.get(f"/v1/renders/{job['id']}", headers=bearer(key)).json()["step"] == "assemble"


@pytest.mark.ffmpeg
def test_a_succeeded_snapshot_has_its_image(make_farm: Any) -> None:
    farm: Farm = make_farm()
    key = farm.tenant("acme")
    missing: list[str] = []
    put_file = farm.svc.ctx.storage.put_file

    def spy(target: str, source: Path) -> Any:
        """What any reader finds just before the image is stored under its cache key."""
        if target.startswith("snapshots/"):
            caller = farm.svc.accounts.authenticate(key)
            assert caller is not None
            for view in farm.svc.renders.page(caller.tenant_id).items:
                if view.job.state == "succeeded" and not farm.svc.ctx.storage.exists(target):
                    missing.append(view.job.id)
        return put_file(target, source)

    farm.svc.ctx.storage.put_file = spy  # type: ignore[method-assign]
    farm.start_nodes(1)
    response = farm.client.post("/v1/snapshots", json={"document": simple_doc(1.0)},
                                headers=bearer(key))
    assert response.status_code in (200, 503), response.text
    assert missing == []


def test_listing_renders_runs_a_fixed_number_of_queries(farm: Farm) -> None:
    """GET /v1/renders costs the same SQL for 3 jobs as for 30, not two statements a row."""
    key = farm.tenant("lister")
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    def listing_cost(expected: int) -> int:
        engine = farm.svc.ctx.db.engine
        statements.clear()
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            response = farm.client.get("/v1/renders?limit=50", headers=bearer(key))
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        assert response.status_code == 200, response.text
        assert len(response.json()["items"]) == expected
        return len(statements)

    for _ in range(3):
        farm.submit(key, {"document": simple_doc(0.2)})
    few = listing_cost(3)
    for _ in range(27):
        farm.submit(key, {"document": simple_doc(0.2)})
    many = listing_cost(30)
    assert many == few, (few, many)
    assert few <= 8, f"{few} statements to list renders"  # key, jobs, tasks, exports

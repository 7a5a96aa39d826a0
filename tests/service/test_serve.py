"""Acceptance: ``framefarm serve`` and ``framefarm worker`` as real processes on real
sockets — a render end to end, a render node killed mid-task, the server killed mid-job.

Every process is started in its own process group and killed (with its children) by the
``processes`` fixture, whatever happens to the test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from framefarm import media as probe
from support.api import bearer, wait_job
from support.documents import FPS, long_doc, simple_doc
from support.server import Server

pytestmark = pytest.mark.ffmpeg


def check_video(server: Server, job: dict[str, Any], target: Path) -> None:
    """Download the export and check it has exactly the job's frames."""
    info = probe.probe(server.download(job, target), count_frames=True)
    assert info.video is not None and info.video.codec == "h264"
    assert (info.video.width, info.video.height) == (640, 360)
    frames = job["frames"]["total"]
    assert info.video.frames == frames
    assert abs(info.video.duration - frames / FPS) <= 1 / FPS


def test_serve_renders_an_inline_document(servers: Callable[..., Server],
                                          tmp_path: Path) -> None:
    server = servers(tmp_path / "data", workers=2).start()
    key = server.key
    job_id = server.submit(simple_doc(2.0, text="served"))
    job = wait_job(server.http, key, job_id, timeout=90)
    assert job["state"] == "succeeded", job
    assert job["frames"]["total"] == 2 * FPS
    check_video(server, job, tmp_path / "out.mp4")
    nodes = server.http.get("/v1/admin/nodes", headers=bearer(key)).json()
    assert sorted(n["name"] for n in nodes) == ["local-0", "local-1"]
    # Signed links point at the server's own address and work without a key.
    link = server.http.post(f"/v1/exports/{job['export']['id']}/link", headers=bearer(key))
    assert link.json()["url"].startswith(server.url)
    assert httpx.get(link.json()["url"], timeout=30).status_code == 200


def crash_settings() -> dict[str, Any]:
    """Short leases so a dead node is noticed within seconds; one chunk per render."""
    return {"lease_seconds": 3, "heartbeat_seconds": 0.5, "min_chunk_seconds": 30}


def test_a_killed_render_node_loses_nothing(servers: Callable[..., Server],
                                            tmp_path: Path) -> None:
    """SIGKILL the only node mid-render: its lease expires, the task is requeued without
    spending a retry, another node renders it, and the video has every frame."""
    server = servers(tmp_path / "data", workers=0, **crash_settings()).start()
    key = server.key
    first = server.worker("first")
    # Enough work per frame that the node is still rendering when it is seen rendering,
    # even on a loaded machine (with 8 shapes, a full suite once saw the chunk finished).
    job_id = server.submit(long_doc(8, shapes=16))
    running = server.wait_rendering(job_id)
    assert running["frames"]["done"] < running["frames"]["total"] == 8 * FPS
    first.kill()

    server.worker("second")
    job = wait_job(server.http, key, job_id, timeout=90)
    assert job["state"] == "succeeded", (job, first.tail())
    assert job["attempt"] == 1 and job["frames"] == {"done": 240, "total": 240}
    check_video(server, job, tmp_path / "out.mp4")
    logs = server.http.get(f"/v1/renders/{job_id}/logs", headers=bearer(key)).json()
    messages = [line["message"] for line in logs]
    assert any("requeued: lease expired" in m for m in messages), messages
    assert not any("failed" in m for m in messages), messages  # no retry was spent
    nodes = {n["name"]: n for n in server.http.get("/v1/admin/nodes",
                                                    headers=bearer(key)).json()}
    # first had mixed the audio (claimed first) before the chunk it died in.
    assert nodes["first"]["crashes"] == 1 and nodes["first"]["tasks_done"] == 1
    assert nodes["second"]["tasks_done"] == 2  # the chunk again, the assemble


def test_a_restarted_server_finishes_the_job_once(servers: Callable[..., Server],
                                                  tmp_path: Path) -> None:
    """SIGKILL ``serve`` mid-job and start it again on the same data dir: the node keeps
    rendering, reconnects, and the job ends with one export."""
    data = tmp_path / "data"
    server = servers(data, workers=0, lease_seconds=10, heartbeat_seconds=0.5,
                     min_chunk_seconds=30).start()
    key = server.key
    server.worker("node")
    job_id = server.submit(long_doc(8, shapes=8))
    server.wait_rendering(job_id)
    assert server.proc is not None
    server.proc.kill()

    server.start()  # same port, same data dir
    assert server.proc is not None
    assert not any("shown once" in line for line in server.proc.lines)  # no second admin
    job = wait_job(server.http, key, job_id, timeout=90)
    assert job["state"] == "succeeded", job
    check_video(server, job, tmp_path / "out.mp4")
    exports = server.http.get("/v1/exports", headers=bearer(key)).json()
    assert [e["id"] for e in exports] == [job["export"]["id"]]
    renders = server.http.get("/v1/renders", headers=bearer(key)).json()["items"]
    assert [r["id"] for r in renders] == [job_id]
    logs = server.http.get(f"/v1/renders/{job_id}/logs", headers=bearer(key)).json()
    done = [line["message"] for line in logs if line["message"].endswith(" done")]
    assert sorted(done) == ["assemble 2 done", "audio 0 done", "render 1 done"], done
    outputs = [p for p in (data / "storage" / "jobs" / job_id).iterdir()
               if p.name.startswith("assemble")]
    assert len(outputs) == 1, outputs

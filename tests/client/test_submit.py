"""``framefarm submit`` end to end: a real ``framefarm serve``, the command as a
subprocess, the video it downloads."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from framefarm import media as probe
from support.api import bearer
from support.documents import small_output, write_doc
from support.media import write_fake_ffmpeg, write_photo, write_tone
from support.server import Server, clean_env

pytestmark = pytest.mark.ffmpeg


def story(folder: Path) -> Path:
    """A template with an image, a voice-over (the scene lasts it plus 0.5 s) and a title
    from its data, its media under media/ and a ./ path."""
    media = folder / "media"
    media.mkdir()
    write_photo(media / "photo.jpg", "#c03030")
    write_tone(media / "vo.m4a", 1.0, 400)
    (folder / "data.json").write_text(json.dumps({"title": "Ada"}))
    return write_doc(folder, {
        "output": small_output(), "variables": {"title": {"type": "text", "required": True}},
        "scenes": [{"duration": "auto", "auto": {"padding": 0.5, "min": 1.0, "max": 5.0},
                    "voiceover": {"src": "./media/vo.m4a"},
                    "layers": [{"type": "image", "src": "media/photo.jpg"},
                               {"type": "text", "text": "Hello {{title}}"}]}]}, "story.json")


def submit(server: Server, key: str, *args: str | Path,
           timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = clean_env(API_KEY=key)
    argv = [sys.executable, "-m", "framefarm", "submit", *map(str, args), "--server", server.url]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_submit_uploads_renders_and_downloads(server: Server, tenant_key: str,
                                              tmp_path: Path) -> None:
    source, out = tmp_path / "doc", tmp_path / "out"
    source.mkdir()
    out.mkdir()
    doc = story(source)
    done = submit(server, tenant_key, doc, "--data", source / "data.json", "-o", out / "s.mp4")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 asset(s) uploaded, 0 already there" in done.stderr, done.stderr
    assert "wrote" in done.stdout and "s.mp4" in done.stdout, done.stdout
    assert "frames" in done.stderr  # the progress bar
    assert listing(out) == ["s.mp4"]
    info = probe.probe(out / "s.mp4", count_frames=True)
    assert info.video is not None and info.audio is not None
    assert (info.video.width, info.video.height) == (160, 90)
    assert info.video.frames == 45  # (1.0 s of voice + 0.5 s) at 30 fps

    # The project it made holds the document and both assets under the document's names.
    http, auth = server.http, bearer(tenant_key)
    (project,) = http.get("/v1/projects", headers=auth).json()
    assert project["name"] == "story"
    assets = http.get(f"/v1/projects/{project['id']}/assets", headers=auth).json()
    assert [a["name"] for a in assets] == ["media/photo.jpg", "media/vo.m4a"]
    assert http.get(f"/v1/projects/{project['id']}/assets/media/photo.jpg",
                    headers=auth).content == (source / "media/photo.jpg").read_bytes()

    # Again into the same project with one asset changed: only that one is uploaded.
    write_photo(source / "media/photo.jpg", "#30c030")
    again = submit(server, tenant_key, doc, "--data", source / "data.json", "-o",
                   out / "s.mp4", "--project", project["id"], "--format", "webm",
                   "--quality", "low")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 asset(s) uploaded, 1 already there" in again.stderr, again.stderr
    after = {a["name"]: a for a in http.get(f"/v1/projects/{project['id']}/assets",
                                            headers=auth).json()}
    assert after["media/vo.m4a"] == assets[1]  # not uploaded again
    assert after["media/photo.jpg"]["sha256"] != assets[0]["sha256"]
    assert probe.probe(out / "s.mp4").video.codec == "vp9"  # type: ignore[union-attr]
    assert listing(out) == ["s.mp4"]


def test_an_invalid_document_exits_2_before_anything_is_sent(
        server: Server, tenant_key: str, tmp_path: Path) -> None:
    doc = write_doc(tmp_path, {"output": small_output(), "scenes": [
        {"duration": 1, "layers": [{"type": "image", "src": "missing.jpg"}]}]})
    done = submit(server, tenant_key, doc, "-o", tmp_path / "x.mp4")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "invalid" in done.stderr and "missing.jpg" in done.stderr, done.stderr
    assert server.http.get("/v1/projects", headers=bearer(tenant_key)).json() == []
    # Missing template data is invalid too.
    templated = write_doc(tmp_path, {"output": small_output(),
                                     "variables": {"t": {"required": True}},
                                     "scenes": [{"duration": 1, "layers": [
                                         {"type": "text", "text": "{{t}}"}]}]}, "t.json")
    assert submit(server, tenant_key, templated, "-o", tmp_path / "x.mp4").returncode == 2
    # So is an option the document does not take.
    plain = write_doc(tmp_path, {"output": small_output(), "scenes": [{"duration": 1}]}, "p.json")
    odd = submit(server, tenant_key, plain, "-o", tmp_path / "x.mp4", "--fps", "33")
    assert odd.returncode == 2 and "output.fps" in odd.stderr, odd.stderr
    assert server.http.get("/v1/projects", headers=bearer(tenant_key)).json() == []
    assert listing(tmp_path) == ["doc.json", "p.json", "t.json"]


def test_what_the_server_refuses_is_invalid_too(server: Server, tenant_key: str,
                                                tmp_path: Path) -> None:
    """An asset name the service does not take (a space): refused by the server, 422."""
    write_photo(tmp_path / "my photo.jpg", "#c03030")
    doc = write_doc(tmp_path, {"output": small_output(), "scenes": [
        {"duration": 0.5, "layers": [{"type": "image", "src": "my photo.jpg"}]}]})
    done = submit(server, tenant_key, doc, "-o", tmp_path / "x.mp4")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "my photo.jpg" in done.stderr, done.stderr
    assert "x.mp4" not in listing(tmp_path)


def test_a_wrong_key_or_no_server_exits_1(server: Server, tmp_path: Path) -> None:
    doc = write_doc(tmp_path, {"output": small_output(), "scenes": [{"duration": 0.5}]})
    wrong = submit(server, "ff_wrong", doc, "-o", tmp_path / "x.mp4")
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "unauthorized" in wrong.stderr, wrong.stderr
    env = clean_env(API_KEY="ff_x")
    nowhere = subprocess.run(
        [sys.executable, "-m", "framefarm", "submit", str(doc), "-o", str(tmp_path / "x.mp4"),
         "--server", "http://127.0.0.1:9"], env=env, capture_output=True, text=True,
        timeout=60, check=False)
    assert nowhere.returncode == 1, nowhere.stdout + nowhere.stderr
    assert "failed" in nowhere.stderr, nowhere.stderr
    assert listing(tmp_path) == ["doc.json"]


def test_a_failed_render_exits_1_and_writes_nothing(servers: Callable[..., Server],
                                                    tmp_path: Path) -> None:
    """A farm whose only node's FFmpeg always fails, one attempt per task."""
    broken = write_fake_ffmpeg(tmp_path / "broken-ffmpeg",
                               'echo "encoder exploded" >&2\nexit 1')
    farm = servers(tmp_path / "data", max_attempts=1, heartbeat_seconds=0.2).start()
    farm.worker("broken", FRAMEFARM_FFMPEG=str(broken))
    farm.wait_nodes("broken")
    made = farm.post("/v1/admin/tenants", json={"name": "acme"})
    key: Any = made.json()["api_key"]
    out = tmp_path / "out"
    out.mkdir()
    doc = write_doc(tmp_path, {"output": small_output(), "scenes": [{"duration": 0.5}]})
    done = submit(farm, key, doc, "-o", out / "x.mp4")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "failed" in done.stderr and "encoder exploded" in done.stderr, done.stderr
    assert listing(out) == []


def test_sigterm_cancels_the_remote_render_and_writes_nothing(server: Server, tenant_key: str,
                                                              tmp_path: Path) -> None:
    doc = write_doc(tmp_path, {"output": small_output(), "scenes": [
        {"duration": 300, "layers": [{"type": "text", "text": "long"}]}]})
    argv = [sys.executable, "-m", "framefarm", "submit", str(doc), "-o", str(tmp_path / "x.mp4"),
            "--server", server.url]
    proc = subprocess.Popen(argv, env=clean_env(API_KEY=tenant_key), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:  # until it says which render it follows
            lines.append(line)
            if line.startswith("render job_"):
                break
        job_id = lines[-1].split()[1]
        assert job_id.startswith("job_"), lines
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, "".join(lines) + rest
    assert "cancelled" in rest and "no output was written" in rest, rest
    job = server.http.get(f"/v1/renders/{job_id}", headers=bearer(tenant_key)).json()
    assert job["state"] == "cancelled", job
    assert listing(tmp_path) == ["doc.json"]

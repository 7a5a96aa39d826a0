"""Every job reaches a terminal state on a one-node farm (``framefarm serve --workers 0``
and one ``framefarm worker``): an input that fails the same way every time is a
permanent failure on the node, and a job whose every live node is blocked from it is
failed by the server's upkeep instead of staying ``running`` for ever."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFont

from support.documents import long_doc, output
from support.hostile import truncated_jpeg_bytes
from support.media import write_fake_ffmpeg
from support.server import Server

pytestmark = pytest.mark.ffmpeg


def raised(action: Callable[[], Any]) -> BaseException:
    try:
        action()
    except Exception as exc:
        return exc
    raise AssertionError("nothing was raised")


def test_input_decoding_errors_are_permanent_and_others_are_not(tmp_path: Path) -> None:
    """The exceptions the engine lets through for bad inputs today, made for real."""
    from framefarm.worker.failures import is_permanent

    jpeg = tmp_path / "cut.jpg"
    jpeg.write_bytes(truncated_jpeg_bytes(keep=0.5))
    font = tmp_path / "bad.ttf"
    font.write_bytes(b"this is not a font" * 100)
    not_an_image = tmp_path / "x.png"
    not_an_image.write_bytes(b"garbage" * 100)

    def load_jpeg() -> None:
        with Image.open(jpeg) as img:
            img.load()

    for exc in (raised(load_jpeg), raised(lambda: ImageFont.truetype(str(font), 20)),
                raised(lambda: Image.open(not_an_image))):
        assert is_permanent(exc), repr(exc)
    import av

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\xff" * 4000)
    assert is_permanent(raised(lambda: av.open(str(clip))))

    # Not the input: the machine, the network, the encoder, a timeout.
    assert not is_permanent(raised(lambda: open(tmp_path / "missing")))  # noqa: SIM115
    assert not is_permanent(OSError(28, "No space left on device"))
    assert not is_permanent(ConnectionError("reset"))
    from framefarm import errors

    assert not is_permanent(errors.FfmpegError("FFmpeg exited with code 1"))
    assert not is_permanent(errors.RenderTimeout("too slow"))
    assert is_permanent(errors.AssetError("a.png: not an image"))


def one_node_farm(servers: Callable[..., Server], tmp_path: Path, **env: str) -> Server:
    server = servers(tmp_path / "data", lease_seconds=6, heartbeat_seconds=0.5,
                     min_chunk_seconds=60, node_block_failures=2, max_attempts=3,
                     retry_backoff_seconds=0.2).start()
    server.worker("only", **env)
    server.wait_nodes("only")
    return server


def test_a_truncated_jpeg_on_a_one_node_farm_fails_the_job_at_once(
        servers: Callable[..., Server], tmp_path: Path) -> None:
    """The node cannot decode the image: a permanent failure, the job fails on its first
    failure with the decoder's message (or, if validation learns to read the pixels, the
    submit is refused up front); either way it never hangs."""
    server = one_node_farm(servers, tmp_path)
    project = server.post("/v1/projects", json={"name": "bad-input"})
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    upload = server.post(f"/v1/projects/{project_id}/assets",
                         files={"files": ("cut.jpg", truncated_jpeg_bytes(keep=0.5),
                                          "image/jpeg")})
    assert upload.status_code == 201, upload.text
    document = {"output": output(), "scenes": [
        {"duration": 1.0, "layers": [{"type": "image", "src": "cut.jpg"}]}]}
    submitted = server.post("/v1/renders", json={"project_id": project_id,
                                                  "document": document})
    if submitted.status_code == 422:  # caught up front: terminal as well
        assert "cut.jpg" in submitted.text, submitted.text
        return
    assert submitted.status_code == 202, submitted.text
    started = time.monotonic()
    job = server.wait_job(submitted.json()["id"], timeout=60)
    assert job["state"] == "failed", job
    assert time.monotonic() - started < 60
    assert "truncated" in (job["error"] or ""), job
    messages = server.messages(job["id"])
    assert not any("blocked" in m for m in messages), messages  # no retry needed
    assert not any("retrying" in m for m in messages), messages


def test_a_one_node_farm_whose_node_is_blocked_fails_the_job_within_a_minute(
        servers: Callable[..., Server], tmp_path: Path) -> None:
    """The node's FFmpeg exits 1 every time (a failure that is retryable by kind): two
    failures block the only node, the task is queued with nobody to take it, and the
    upkeep fails the job saying so."""
    broken = write_fake_ffmpeg(tmp_path / "broken-ffmpeg",
                               'echo "fault-test: encoder exploded" >&2\nexit 1')
    server = one_node_farm(servers, tmp_path, FRAMEFARM_FFMPEG=str(broken))
    job_id = server.submit(long_doc(2, shapes=2))
    started = time.monotonic()
    job = server.wait_job(job_id, timeout=60)
    elapsed = time.monotonic() - started
    assert job["state"] == "failed", job
    assert elapsed < 60, elapsed
    node = server.nodes()["only"]
    error = job["error"] or ""
    assert "no render node may take this task" in error, job
    assert f"only ({node['id']}) blocked after 2 failures" in error, error
    assert job["failed_step"] in ("render", "audio"), job
    messages = server.messages(job_id)
    assert any("blocked for this job" in m for m in messages), messages

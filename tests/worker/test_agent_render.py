"""The render node running the real engine on a tiny document (10 frames, 64x64) against
the fake API: a chunk is rendered and uploaded, the assemble task joins it and reports the
export it probed, and the job's limits are the ones the document is checked against."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from framefarm import media, protocol
from framefarm.worker.agent import Agent
from support.fake_api import FakeApi, claimed

pytestmark = pytest.mark.ffmpeg

DOC: dict[str, Any] = {
    "output": {"width": 64, "height": 64, "fps": 25, "quality": "draft"},
    "scenes": [{"duration": 0.4, "background": "#1e3a5f", "layers": [
        {"type": "shape", "shape": "circle", "x": 8, "y": 8, "width": 24, "height": 24,
         "fill": "#ff5a00"}]}],
}


def test_render_then_assemble_reports_the_probed_export(
        api: FakeApi, make_agent: Callable[..., Agent], tmp_path: Any) -> None:
    agent = make_agent()
    api.tasks.append(claimed("render", document=DOC))
    agent.run_one()
    assert not api.calls("/fail"), api.calls("/fail")[0].json()
    ((key, part),) = api.stored.items()
    assert key.endswith(".mp4") and api.calls("/upload-url")[0].params["ext"] == "mp4"
    chunk = tmp_path / "part.mp4"
    chunk.write_bytes(part)
    info = media.probe(chunk, count_frames=True)
    assert info.video is not None and info.video.frames == 10

    api.inputs = [protocol.InputItem(idx=0, kind=protocol.TaskKind.RENDER, frames=(0, 10))]
    api.input_files = {0: part}
    api.tasks.append(claimed("assemble", task_id="task-2", document=DOC))
    agent.run_one()
    assert not api.calls("/fail"), api.calls("/fail")[0].json()
    assert api.calls("/task-2/inputs/0"), "the part was fetched through the API"
    body = api.calls("/task-2/complete")[0].json()
    final = api.stored[body["output_key"]]
    described = protocol.MediaInfo.model_validate(body["media"])
    assert (described.width, described.height, described.codec, described.format) == (
        64, 64, "h264", "mp4")
    assert described.size == len(final)
    assert described.duration == pytest.approx(0.4, abs=0.05)


def test_the_jobs_limits_are_the_ones_the_document_is_checked_against(
        api: FakeApi, make_agent: Callable[..., Agent]) -> None:
    api.tasks.append(claimed("render", document=DOC, limits={"max_width": 32}))
    make_agent().run_one()
    assert api.stored == {}
    body = api.calls("/fail")[0].json()
    assert body["permanent"] is True and body["step"] == "render"
    assert "limit" in body["error"] and "32" in body["error"]

"""``framefarm batch`` on this machine: every row's video is the row rendered alone, frame
for frame, though the intro and outro were rendered once for all rows; a stopped batch
resumes; rows that do not fit are reported and skipped."""

from __future__ import annotations

import csv
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from framefarm import engine, errors, formats
from framefarm.batch import local, shared
from framefarm.cli import app
from support.media import video_frames, write_solid_png
from support.polling import wait_for

pytestmark = pytest.mark.ffmpeg

FPS = 30
ROWS = [{"name": "Ann", "photo": "red.png"}, {"name": "Bob", "photo": "blue.png"},
        {"name": "Cy", "photo": "red.png"}]


def moving_scene(seconds: float, title: str, colour: str) -> dict[str, Any]:
    """Every frame differs from the next (a circle crosses the frame)."""
    return {"duration": seconds, "background": colour, "layers": [
        {"type": "shape", "shape": "circle", "x": 0, "y": 40, "width": 60, "height": 60,
         "fill": "#ff5a00", "keyframes": {"x": [{"time": 0, "value": 0},
                                                {"time": seconds, "value": 260}]}},
        {"type": "text", "text": title, "position": "bottom",
         "animation": {"in": "fade", "duration": 0.3}}]}


def batch_template(quality: str = "low") -> dict[str, Any]:
    """A shared 2 s intro and 2 s outro, and a per-row middle second (a name and a photo),
    dissolving into each other (8 frames each time): 134 frames."""
    dissolve = {"transition": {"type": "dissolve", "duration": 0.25}}
    middle = moving_scene(1.0, "Hello {{name}}", "#402030")
    middle["layers"].insert(0, {"type": "image", "src": "{{photo}}", "fit": "cover",
                                "motion": {"zoom": [1.0, 1.2], "pan": "left"},
                                "opacity": 0.5})
    return {
        "output": {"width": 320, "height": 180, "fps": FPS, "quality": quality},
        "variables": {"name": {"type": "text", "required": True},
                      "photo": {"type": "image", "default": "red.png"}},
        "scenes": [{**moving_scene(2.0, "Welcome", "#203040"), **dissolve},
                   {**middle, **dissolve}, moving_scene(2.0, "Thank you", "#103020")],
    }


def write_batch(folder: Path, rows: list[dict[str, Any]], quality: str = "low") -> tuple[
        Path, Path]:
    write_solid_png(folder / "red.png", (320, 180), "#c03030")
    write_solid_png(folder / "blue.png", (320, 180), "#3030c0")
    template = folder / "template.json"
    template.write_text(json.dumps(batch_template(quality)), encoding="utf-8")
    rows_file = folder / "rows.json"
    rows_file.write_text(json.dumps(rows), encoding="utf-8")
    return template, rows_file


def assert_same_frames(a: Path, b: Path) -> int:
    count = 0
    for i, (x, y) in enumerate(itertools.zip_longest(video_frames(a), video_frames(b))):
        assert x is not None and y is not None, f"frame counts differ at frame {i}"
        if not np.array_equal(x, y):
            diff = int(np.abs(x.astype(int) - y.astype(int)).max())
            raise AssertionError(f"frame {i} differs (max difference {diff})")
        count += 1
    return count


def manifest(folder: Path) -> list[dict[str, str]]:
    with (folder / "manifest.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_every_row_equals_its_solo_render_lossless(tmp_path: Path) -> None:
    """Lossless: decoded pixels do not depend on where the parts begin and end, so a row
    must equal the row rendered alone in one piece."""
    template, rows_file = write_batch(tmp_path, ROWS, quality="lossless")
    out = tmp_path / "out"
    result = local.run(template, rows_file, out, jobs=2)
    assert [o.state for o in result.outcomes] == [local.RENDERED] * 3
    # The intro up to the dissolve and the outro after it: shared, rendered once.
    assert [(s.start, s.end, s.shared) for s in result.plan.segments] == [
        (0, 52, True), (52, 82, False), (82, 134, True)]
    assert result.parts_rendered == 2
    assert len(list((out / ".parts").iterdir())) == 2
    for number, row in enumerate(ROWS, start=1):
        solo = tmp_path / f"solo-{number}.mp4"
        engine.render(template, solo, data=row, chunks=1)
        video = out / local.row_file(number)
        assert assert_same_frames(video, solo) == 134
        info = engine.verify(video, frames=134, fps=FPS)
        assert info.audio is not None  # each row has its own mix, as a solo render does
    # The rows do differ where their data shows, and only there.
    with pytest.raises(AssertionError, match="frame 52 differs"):
        assert_same_frames(out / local.row_file(1), out / local.row_file(2))
    assert sorted(p.name for p in out.iterdir()) == [
        ".parts", "manifest.csv", "row-00001.mp4", "row-00002.mp4", "row-00003.mp4"]


def test_a_lossy_row_is_bit_identical_to_a_solo_render_with_the_same_parts(
        tmp_path: Path) -> None:
    """With a lossy quality the encoder's choices for a frame depend on its neighbours in
    the same part (motion prediction, rate control, lookahead) and on where each part's
    keyframe falls, so the same pixels cut into other parts decode to slightly different
    pixels. A lossy row can therefore only be compared with a solo render cut at the same
    boundaries, with the same encoder threads: then every part is the same bytes."""
    template, rows_file = write_batch(tmp_path, ROWS[:2])
    out = tmp_path / "out"
    jobs = 1
    result = local.run(template, rows_file, out, jobs=jobs)
    assert result.plan.shared_frames == 104
    fmt = formats.get("mp4")
    for number, row in enumerate(ROWS[:2], start=1):
        tl = engine.load_timeline(template, data=row, format="mp4")
        assert tl.output.quality == "low"
        parts = []
        for i, seg in enumerate(result.plan.for_row(tl.total_frames)):
            part = tmp_path / f"solo-{number}-{i}.{fmt.part_suffix}"
            engine.render_part(tl, (seg.start, seg.end), part,
                               threads=local.part_threads(jobs))
            if seg.shared:
                kept = shared.part_path(out / ".parts", seg, fmt.part_suffix)
                assert part.read_bytes() == kept.read_bytes(), f"shared part {i} differs"
            parts.append((part, seg.frames))
        solo = tmp_path / f"solo-{number}.mp4"
        engine.assemble_parts(parts, None, solo, fmt="mp4", fps=FPS, workdir=tmp_path)
        assert assert_same_frames(out / local.row_file(number), solo) == 134


def test_a_stopped_batch_resumes_with_the_finished_rows_kept(tmp_path: Path) -> None:
    template, rows_file = write_batch(tmp_path, ROWS)
    out = tmp_path / "out"
    stop = threading.Event()

    def stop_after_first_row(p: local.BatchProgress) -> None:
        if p.done >= 1:
            stop.set()

    with pytest.raises(errors.RenderCancelled):
        local.run(template, rows_file, out, jobs=1, on_progress=stop_after_first_row,
                  cancel=stop)
    assert [(r["row"], r["state"]) for r in manifest(out)] == [
        ("1", "rendered"), ("2", "pending"), ("3", "pending")]
    # Nothing half-written: the one video is complete, no scratch is left.
    assert sorted(p.name for p in out.iterdir()) == [".parts", "manifest.csv",
                                                     "row-00001.mp4"]
    engine.verify(out / "row-00001.mp4", frames=134, fps=FPS)
    first = (out / "row-00001.mp4").stat().st_mtime_ns

    again = local.run(template, rows_file, out, jobs=2)
    assert [o.state for o in again.outcomes] == [local.KEPT, local.RENDERED, local.RENDERED]
    assert (again.parts_rendered, again.parts_reused) == (0, 2)
    assert (out / "row-00001.mp4").stat().st_mtime_ns == first

    # A damaged video (cut short) is not complete: it is rendered again.
    whole = (out / "row-00002.mp4").read_bytes()
    (out / "row-00002.mp4").write_bytes(whole[: len(whole) // 2])
    third = local.run(template, rows_file, out)
    assert [o.state for o in third.outcomes] == [local.KEPT, local.RENDERED, local.KEPT]
    engine.verify(out / "row-00002.mp4", frames=134, fps=FPS)


def test_a_killed_batch_leaves_only_complete_videos(tmp_path: Path) -> None:
    template, rows_file = write_batch(tmp_path, ROWS * 2)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "framefarm", "batch", str(template), str(rows_file),
               "-o", str(out), "--jobs", "1", "-q"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (out / "row-00001.mp4").exists() or proc.poll() is not None,
                 timeout=120, what="the first row's video")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    for video in out.glob("row-*.mp4"):
        engine.verify(video, frames=134, fps=FPS)  # whatever exists is whole
    finished = {p.name for p in out.glob("row-*.mp4")}
    rerun = CliRunner().invoke(app, command[3:])
    assert rerun.exit_code == 0, rerun.output
    states = {r["file"]: r["state"] for r in manifest(out)}
    assert len(states) == 6
    assert all(states[name] == "kept" for name in finished)
    assert all(state in ("kept", "rendered") for state in states.values())
    assert not list(out.glob(".work-*"))  # the killed run's scratch is cleared


def test_bad_rows_are_reported_by_row_and_field_and_skipped(tmp_path: Path) -> None:
    rows = [{"name": "Ann"}, {"photo": "red.png"}, {"name": "Dee", "photo": "missing.png"},
            {"name": "Eve", "shoe": 42}]
    template, rows_file = write_batch(tmp_path, rows)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["batch", str(template), str(rows_file), "-o", str(out),
                                      "-q"])
    assert result.exit_code == 2, result.output
    assert "row 2, name: required" in result.output
    assert "row 3" in result.output and "missing.png" in result.output
    assert "row 4, shoe: not a variable of the template" in result.output
    assert "1 rendered" in result.output and "3 failed" in result.output
    found = manifest(out)
    assert [(r["row"], r["file"], r["state"]) for r in found] == [
        ("1", "row-00001.mp4", "rendered"), ("2", "", "failed"), ("3", "", "failed"),
        ("4", "", "failed")]
    assert "missing.png" in found[2]["error"]
    assert sorted(p.name for p in out.glob("row-*")) == ["row-00001.mp4"]


def test_no_share_renders_each_row_whole_and_a_bad_rows_file_is_refused(
        tmp_path: Path) -> None:
    template, rows_file = write_batch(tmp_path, ROWS[:2], quality="lossless")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["batch", str(template), str(rows_file), "-o", str(out),
                                      "--no-share", "-q"])
    assert result.exit_code == 0, result.output
    assert "no frames shared" in result.output
    assert list((out / ".parts").iterdir()) == []
    solo = tmp_path / "solo.mp4"
    engine.render(template, solo, data=ROWS[1], chunks=1)
    assert assert_same_frames(out / "row-00002.mp4", solo) == 134

    rows_text = tmp_path / "rows.txt"
    rows_text.write_text("name\nAnn\n", encoding="utf-8")
    refused = CliRunner().invoke(app, ["batch", str(template), str(rows_text), "-o",
                                       str(tmp_path / "other")])
    assert refused.exit_code == 2
    assert "rows are read from a .csv or .json file" in refused.output
    assert not (tmp_path / "other").exists()

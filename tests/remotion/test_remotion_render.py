"""The Remotion engine renders the example for real: compositions listed, a range whole
and in 3 chunks identical frame for frame, audio as long as the video, props that change
the picture, a snapshot, and cancel stopping Node.js, Chromium and FFmpeg."""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framefarm import errors, media
from framefarm.engines import Settings, Source
from framefarm.engines.remotion import RemotionEngine, local, project
from support.media import decode_audio, decode_video
from support.polling import wait_for
from support.remotion import assert_sound_throughout

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "remotion-card"

pytestmark = pytest.mark.ffmpeg

# A quarter of 1280x720, lossless, 31 frames from frame 6: chunks of 11, 10 and 10 frames
# meet at the odd frames 17 and 27, both inside the list's entrance animation.
SCALE = 0.25
FRAMES = (6, 37)


def test_compositions_are_listed_with_their_defaults(remotion: RemotionEngine) -> None:
    [card] = remotion.compositions(EXAMPLE)
    assert (card.id, card.width, card.height, card.fps, card.frames) == ("Card", 1280, 720,
                                                                         30, 120)
    assert card.has_schema is True
    assert card.default_props["title"] == "Rendered on the farm"
    assert [i["label"] for i in card.default_props["items"]] == ["Chunks", "Frames", "Seams"]


def test_prepare_is_cached_by_content_hash(prepared: project.Prepared,
                                           remotion_cache: Path) -> None:
    again = project.prepare(EXAMPLE, remotion_cache)
    assert again.content_hash == prepared.content_hash == project.content_hash(EXAMPLE)
    assert again.timings == {"install": 0.0, "bundle": 0.0}  # nothing was redone
    assert (again.bundle / "index.html").is_file()


@pytest.fixture(scope="module")
def renders(remotion: RemotionEngine, remotion_cache: Path,
            tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("remotion-renders")
    made = {}
    for chunks in (1, 3):
        out = folder / f"card-{chunks}.mp4"
        result = local.render(EXAMPLE, out, composition="Card", quality="lossless",
                              scale=SCALE, frames=FRAMES, chunks=chunks, cache=remotion_cache)
        assert (result.frames, result.width, result.height) == (31, 320, 180)
        made[chunks] = out
    return made


def test_three_chunks_equal_the_whole_frame_for_frame(renders: dict[int, Path]) -> None:
    whole, chunked = decode_video(renders[1]), decode_video(renders[3])
    assert whole.shape == chunked.shape == (31, 180, 320, 3)
    # The frames move (the comparison below is not of a still picture)...
    assert not np.array_equal(whole[10], whole[11])
    assert not np.array_equal(whole[0], whole[-1])
    # ...and every one, on both sides of each seam, is the same bit for bit.
    for n in range(len(whole)):
        assert np.array_equal(whole[n], chunked[n]), f"frame {FRAMES[0] + n} differs"


def test_audio_is_continuous_and_as_long_as_the_video(renders: dict[int, Path]) -> None:
    for path in renders.values():
        info = media.probe(path, count_frames=True)
        assert info.video is not None and info.video.frames == 31
        assert_sound_throughout(path, 31)


def test_props_change_the_picture_and_a_snapshot_is_that_frame(
        remotion: RemotionEngine, remotion_cache: Path, renders: dict[int, Path],
        tmp_path: Path) -> None:
    default = tmp_path / "default.png"
    n = local.snapshot(EXAMPLE, default, composition="Card", frame=FRAMES[0] + 12,
                       scale=SCALE, cache=remotion_cache)
    assert n == 18
    with Image.open(default) as image:
        assert image.size == (320, 180)
        still = np.asarray(image.convert("RGB"), dtype=np.int16)
    # The snapshot is the render's frame (up to the lossless video's Y'CbCr rounding).
    frame = decode_video(renders[1])[12].astype(np.int16)
    assert np.abs(still - frame).mean() < 2.0
    assert np.abs(still - decode_video(renders[1])[2].astype(np.int16)).mean() > 2.0

    other = tmp_path / "other.png"
    remotion.snapshot(Source(EXAMPLE, "Card", {"title": "Other", "accent": "#00ff00",
                                               "items": []}),
                      18, other, Settings(scale=SCALE))
    with Image.open(other) as image:
        changed = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert np.abs(changed - still).mean() > 5.0


def _marked(mark: str) -> list[int]:
    """Processes whose environment holds ``mark`` (Node.js and the Chromium it started)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if mark.encode() in handle.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def test_cancel_stops_node_chromium_and_ffmpeg(remotion: RemotionEngine, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    mark = f"FRAMEFARM_TEST_MARK=cancel-{uuid.uuid4().hex}"
    name, value = mark.split("=", 1)
    monkeypatch.setenv(name, value)
    cancel = threading.Event()
    seen: list[list[int]] = []

    def first_frames(done: int) -> None:
        if done == 2 and not cancel.is_set():
            seen.append(_marked(mark))  # Node.js and Chromium, while they render
            cancel.set()

    out = tmp_path / "part.mp4"
    with pytest.raises(errors.RenderCancelled):
        remotion.render_range(Source(EXAMPLE, "Card"), (0, 120), out,
                              Settings(quality="lossless", scale=SCALE, threads=1),
                              on_frames=first_frames, cancel=cancel)
    assert seen and len(seen[0]) >= 2, seen  # node and at least one Chromium process
    wait_for(lambda: not _marked(mark), timeout=15, what="Node.js and Chromium to exit")


def test_a_composition_without_sound_gets_silence_as_long_as_the_range(
        remotion: RemotionEngine, tmp_path: Path) -> None:
    out = tmp_path / "audio.m4a"
    remotion.render_audio(Source(EXAMPLE, "Card", {"music": None}), out,
                          Settings(format="mp4", quality="low"), frames=(0, 45))
    pcm, rate = decode_audio(out)
    assert abs(pcm.shape[1] / rate - 1.5) < 0.03
    assert np.abs(pcm).max() < 1e-3

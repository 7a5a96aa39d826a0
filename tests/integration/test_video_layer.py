"""Video layers: the right source frame for each output frame, trimmed and looped, with sound.

The clip (see conftest) has 60 frames at 30 fps, frame ``i`` solid grey ``4 * i``, and a
330 Hz tone for its 2 s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from framefarm import engine
from framefarm.compositor.frame import Compositor
from framefarm.compositor.video import VideoReader
from support.media import (
    Stage,
    counter_index,
    decode_audio,
    decode_video,
    window_rms,
    write_counter_clip,
    write_wav,
)

pytestmark = pytest.mark.ffmpeg

FPS = 30


def document(layer: dict[str, Any], duration: float = 2.0, **audio: Any) -> dict[str, Any]:
    return {
        "output": {"width": 64, "height": 64, "fps": FPS, "quality": "lossless"},
        "audio": {"normalize": False, **audio},
        "scenes": [{"duration": duration, "background": "#ff0000",
                    "layers": [{"type": "video", "src": "counter.mp4", **layer}]}],
    }


def shown(doc: dict[str, Any], base: Path, frames: range | None = None) -> list[int]:
    """The clip frame each output frame shows (-1 where the red background shows)."""
    tl = engine.load_timeline(doc, base_dir=base)
    out = []
    with Compositor(tl) as compositor:
        for n in frames or range(tl.total_frames):
            pixel = compositor.render(n)[32, 32]
            red = pixel[0] > 200 and pixel[1] < 50
            out.append(-1 if red else counter_index(pixel))
    return out


@pytest.fixture
def project(stage: Stage) -> Path:
    return stage("counter.mp4")


def test_the_clip_is_what_the_tests_think(project: Path) -> None:
    frames = decode_video(project / "counter.mp4")
    assert frames.shape[0] == 60
    assert [counter_index(f[10, 10]) for f in frames] == list(range(60))


def test_untrimmed_clip_plays_then_holds_its_last_frame(project: Path) -> None:
    got = shown(document({}, duration=2.5), project)
    assert got == list(range(60)) + [59] * 15


def test_trim_start(project: Path) -> None:
    got = shown(document({"trim_start": 0.2}, duration=1.5), project)
    assert got == list(range(6, 51))


def test_layer_start_and_trim(project: Path) -> None:
    got = shown(document({"start": 0.5, "trim_start": 0.1, "trim_end": 0.8}), project)
    # hidden for 15 frames, then 3, 4, ... up to 23 (the trimmed clip's 21 frames), then
    # held on its end
    assert got[:15] == [-1] * 15
    assert got[15:36] == list(range(3, 24))
    assert len(set(got[36:])) == 1
    assert got[36] in (23, 24)


def test_chunk_starting_mid_clip_picks_the_same_frames(project: Path) -> None:
    doc = document({"trim_start": 0.2}, duration=1.5)
    whole = shown(doc, project)
    for start in (7, 20, 33):
        assert shown(doc, project, range(start, 45)) == whole[start:], start


def test_trimmed_clip_in_the_encoded_output_with_its_sound(project: Path) -> None:
    doc = document({"trim_start": 0.5, "trim_end": 1.5, "start": 0.5}, duration=2.0)
    out = project / "out.mp4"
    engine.render(doc, out, base_dir=project)
    frames = decode_video(out)
    assert frames.shape[0] == 60
    got = [counter_index(f[32, 32]) if f[32, 32, 0] < 200 else -1 for f in frames]
    assert got[:15] == [-1] * 15
    assert got[15:45] == list(range(15, 45))
    pcm, rate = decode_audio(out)
    rms = window_rms(pcm.mean(axis=0), rate // 10)  # 100 ms windows
    assert len(rms) == 20
    # Sound exactly while the trimmed clip plays (0.5 .. 1.5 s), silence around it.
    assert np.all(rms[:4] < 0.01)
    assert np.all(rms[6:14] > 0.2)
    assert np.all(rms[16:] < 0.01)


def test_muted_clip_has_no_sound(project: Path) -> None:
    out = project / "muted.mp4"
    engine.render(document({"muted": True}, duration=1.0), out, base_dir=project)
    pcm, _ = decode_audio(out)
    assert np.abs(pcm).max() < 1e-3


def test_clip_volume(project: Path) -> None:
    loud, quiet = project / "loud.mp4", project / "quiet.mp4"
    engine.render(document({}, duration=1.0), loud, base_dir=project)
    engine.render(document({"volume": 0.25}, duration=1.0), quiet, base_dir=project)
    a = window_rms(decode_audio(loud)[0].mean(axis=0), 4800)[2:8].mean()
    b = window_rms(decode_audio(quiet)[0].mean(axis=0), 4800)[2:8].mean()
    assert b / a == pytest.approx(0.25, rel=0.05)


# -- loops (engine bugs: see the reasons) ------------------------------------------------------


def test_reader_can_go_back_to_the_start(project: Path) -> None:
    reader = VideoReader(project / "counter.mp4")
    try:
        assert counter_index(reader.frame_at(1.5)[0, 0]) == 45
        assert counter_index(reader.frame_at(0.2)[0, 0]) == 6
    finally:
        reader.close()


def test_plain_loop(project: Path) -> None:
    got = shown(document({"loop": True}, duration=3.0), project)
    assert got == list(range(60)) + list(range(30))


def test_trimmed_loop_repeats_exactly_the_trimmed_frames(project: Path) -> None:
    got = shown(document({"trim_start": 0.7, "trim_end": 1.1, "loop": True}), project)
    period = list(range(21, 33))  # 12 frames
    assert got == (period * 5)[:60]


def test_trimmed_loop_sound_repeats_the_trimmed_part(stage: Stage) -> None:
    folder = stage()
    # Sound only between 0.5 and 0.9 s of the clip: a loop of exactly that part is a
    # continuous tone.
    write_wav(folder / "gated.wav", 2.0, freq=440, amplitude=0.5, gate=(0.5, 0.9))
    write_counter_clip(folder / "counter.mov", audio=folder / "gated.wav")
    doc = document({"src": "counter.mov", "trim_start": 0.5, "trim_end": 0.9, "loop": True})
    out = folder / "out.mp4"
    engine.render(doc, out, base_dir=folder)
    pcm, rate = decode_audio(out)
    rms = window_rms(pcm.mean(axis=0), rate // 10)
    assert np.all(rms[:19] > 0.1), np.round(rms, 3).tolist()

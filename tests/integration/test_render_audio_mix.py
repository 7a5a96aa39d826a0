"""The audio mix: the same samples every time, whole or chunked; loudness on target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from framefarm import engine
from support.media import decode_audio, write_wav

pytestmark = pytest.mark.ffmpeg


def ducked_document() -> dict[str, Any]:
    """Two voice-overs over a looped, ducked music bed (the last voice ends at 2.6 s of 4)."""
    return {
        "output": {"width": 160, "height": 90, "fps": 25, "quality": "low"},
        "music": {"src": "music.wav", "volume": 0.6, "fade_in": 0.5, "fade_out": 1},
        "scenes": [
            {"duration": 2, "voiceover": {"src": "vo1.wav", "delay": 0.2}},
            {"duration": 2, "voiceover": {"src": "vo2.wav"}},
        ],
    }


@pytest.fixture
def ducked(tmp_path: Path) -> Path:
    write_wav(tmp_path / "music.wav", 1.5, freq=220, amplitude=0.4, channels=2)
    write_wav(tmp_path / "vo1.wav", 1.2, freq=660, amplitude=0.5)
    write_wav(tmp_path / "vo2.wav", 0.6, freq=550, amplitude=0.5)
    return tmp_path


def mixed(folder: Path, doc: dict[str, Any], name: str) -> np.ndarray:
    tl = engine.load_timeline(doc, base_dir=folder)
    out = folder / name
    engine.render_audio(tl, out)
    return decode_audio(out)[0]


def test_a_ducked_mix_is_the_same_every_time(ducked: Path) -> None:
    first = mixed(ducked, ducked_document(), "a1.m4a")
    for i in range(3):
        again = mixed(ducked, ducked_document(), f"a{i + 2}.m4a")
        assert again.shape == first.shape
        assert np.array_equal(again, first), (
            f"run {i + 2} differs by up to {np.abs(again - first).max():.4f}")


def test_a_chunked_render_has_the_whole_render_s_sound(ducked: Path) -> None:
    whole = ducked / "whole.mp4"
    engine.render(ducked_document(), whole, base_dir=ducked, chunks=1)
    chunked = ducked / "chunked.mp4"
    engine.render(ducked_document(), chunked, base_dir=ducked, chunks=3)
    a, b = decode_audio(whole)[0], decode_audio(chunked)[0]
    assert a.shape == b.shape
    assert np.array_equal(a, b), f"differs by up to {np.abs(a - b).max():.4f}"

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support.media import (
    Stage,
    write_counter_clip,
    write_grid_png,
    write_ring_png,
    write_sine_m4a,
    write_wav,
)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Media generated once per session; tests copy what they need next to their document
    (assets must be inside the document's folder)."""
    folder = tmp_path_factory.mktemp("media")
    write_sine_m4a(folder / "tone.m4a", 3, freq=440)
    write_wav(folder / "voice.wav", 1.0, freq=660, amplitude=0.5)
    write_ring_png(folder / "ring.png")
    write_grid_png(folder / "grid.png")
    write_wav(folder / "clip_audio.wav", 2.0, freq=330, amplitude=0.5)
    write_counter_clip(folder / "counter.mp4", audio=folder / "clip_audio.wav")
    return folder


@pytest.fixture
def stage(media_dir: Path, tmp_path: Path) -> Stage:
    """``stage("ring.png", ...)`` copies session media into this test's folder."""

    def copy(*names: str) -> Path:
        for name in names:
            shutil.copy2(media_dir / name, tmp_path / name)
        return tmp_path

    return copy



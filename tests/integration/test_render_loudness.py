"""Loudness of the output: any mix, dense or sparse, lands within 1 LU of its target with
a true peak at or under -1 dBTP, measured on the rendered file (after AAC)."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from framefarm import engine
from framefarm.compiler import audio
from framefarm.ffmpeg import runner
from support.documents import small_output, write_doc

pytestmark = pytest.mark.ffmpeg
RATE = 48000


def write_beeps(path: Path, seconds: float, *, every: float, length: float,
                amplitude: float) -> Path:
    """Short 1 kHz beeps in silence (the sparse case), or a steady tone when ``every`` ==
    ``length``."""
    t = np.arange(round(seconds * RATE)) / RATE
    signal = np.sin(2 * np.pi * 1000 * t) * amplitude * ((t % every) < length)
    pcm = np.repeat((signal * 32767).astype("<i2")[:, None], 2, axis=1)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())
    return path


def measured(path: Path) -> audio.Loudness:
    done = subprocess.run([runner.ffmpeg_binary(), "-hide_banner", "-nostdin", "-i", str(path),
                           "-af", "ebur128=peak=true:framelog=quiet", "-f", "null", "-"],
                          capture_output=True, text=True, check=True, timeout=120)
    return audio.parse_loudness(done.stderr)


@pytest.mark.parametrize(("every", "length", "amplitude"), [
    (2.0, 0.04, 0.9),   # sparse: beeps of 40 ms every 2 s, mostly silence
    (1.0, 1.0, 0.05),   # dense and quiet: a steady tone far under the target
    (1.0, 1.0, 0.95),   # dense and loud: a steady tone near full scale
], ids=["sparse", "dense-quiet", "dense-loud"])
def test_any_mix_lands_on_its_target_under_the_peak_ceiling(
        tmp_path: Path, every: float, length: float, amplitude: float) -> None:
    write_beeps(tmp_path / "sound.wav", 12.0, every=every, length=length, amplitude=amplitude)
    doc = write_doc(tmp_path, {"output": small_output(), "music": {"src": "sound.wav"},
                               "scenes": [{"duration": 12, "background": "#101010"}]})
    out = tmp_path / "out.mp4"
    engine.render(doc, out)
    found = measured(out)
    assert abs(found.integrated - -16.0) <= 1.0, found
    assert found.true_peak <= -1.0, found


def test_the_measurement_reads_ffmpegs_summary() -> None:
    summary = """[Parsed_ebur128_0 @ 0x1] Summary:

  Integrated loudness:
    I:         -23.4 LUFS
    Threshold: -33.5 LUFS

  True peak:
    Peak:       -3.2 dBFS"""
    assert audio.parse_loudness(summary) == audio.Loudness(-23.4, -3.2)
    with pytest.raises(ValueError):
        audio.parse_loudness("no summary here")

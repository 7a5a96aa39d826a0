"""Pixels and sound of encoded output, decoded again with PyAV."""

from __future__ import annotations

import numpy as np
import pytest

from framefarm import engine
from support.media import Stage, decode_audio, decode_video, write_wav

pytestmark = pytest.mark.ffmpeg

TOLERANCE = 12  # RGB -> Y'CbCr 4:2:0 -> RGB


def close(pixel: np.ndarray, rgb: tuple[int, int, int], tol: int = TOLERANCE) -> bool:
    return bool(np.abs(pixel.astype(int) - rgb).max() <= tol)


@pytest.fixture(scope="module")
def dissolve_video(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    folder = tmp_path_factory.mktemp("dissolve")
    doc = {
        "output": {"width": 320, "height": 180, "fps": 30, "quality": "high"},
        "scenes": [
            {"duration": 1, "background": "#c83214",
             "transition": {"type": "dissolve", "duration": 0.5},
             "layers": [{"type": "shape", "fill": "#1e90ff", "x": 40, "y": 40, "width": 100,
                         "height": 80}]},
            {"duration": 1, "background": "#14b450"},
        ],
    }
    engine.render(doc, folder / "out.mp4", base_dir=folder)
    return decode_video(folder / "out.mp4")


def test_frame_count(dissolve_video: np.ndarray) -> None:
    assert dissolve_video.shape == (45, 180, 320, 3)  # 30 + 30 - 15


def test_shape_colour_where_it_should_be(dissolve_video: np.ndarray) -> None:
    frame = dissolve_video[5]
    assert close(frame[80, 90], (0x1E, 0x90, 0xFF))  # inside the box
    assert close(frame[45, 45], (0x1E, 0x90, 0xFF))  # near its top-left corner, inside
    assert close(frame[30, 90], (0xC8, 0x32, 0x14))  # above it
    assert close(frame[150, 250], (0xC8, 0x32, 0x14))  # elsewhere
    assert close(frame[80, 150], (0xC8, 0x32, 0x14))  # right of it


def test_dissolve_middle_frame_is_a_blend(dissolve_video: np.ndarray) -> None:
    # Transition frames 15..29; frame 22 has progress 0.5.
    a, b = np.array([0xC8, 0x32, 0x14]), np.array([0x14, 0xB4, 0x50])
    middle = dissolve_video[22]
    assert close(middle[150, 250], tuple((a + b) // 2))
    box = np.array([0x1E, 0x90, 0xFF])
    assert close(middle[80, 90], tuple((box + b) // 2))
    # Before and after, each scene alone.
    assert close(dissolve_video[14][150, 250], tuple(a))
    assert close(dissolve_video[30][80, 90], tuple(b))
    # The blend moves monotonically from a to b through the transition.
    reds = [int(dissolve_video[n][150, 250, 0]) for n in range(14, 31)]
    assert reds == sorted(reds, reverse=True)
    assert reds[0] - reds[-1] > 150


def _band(pcm: np.ndarray, rate: int, start: float, end: float, freq: float) -> float:
    """Amplitude of ``freq`` in [start, end) seconds of a mono signal."""
    part = pcm[int(start * rate):int(end * rate)]
    window = np.hanning(len(part))
    spectrum = np.abs(np.fft.rfft(part * window))
    freqs = np.fft.rfftfreq(len(part), 1 / rate)
    k = int(np.argmin(np.abs(freqs - freq)))
    return float(spectrum[k - 2:k + 3].max() / window.sum() * 2)


def test_voiceovers_are_placed_and_music_ducks_under_them(stage: Stage) -> None:
    folder = stage()
    write_wav(folder / "music.wav", 4.0, channels=2, freq=220, amplitude=0.4)
    write_wav(folder / "voice.wav", 1.0, freq=1000, amplitude=0.5)
    doc = {
        "output": {"width": 160, "height": 90, "fps": 25, "quality": "high"},
        "audio": {"normalize": False},
        "music": {"src": "music.wav", "volume": 1, "fade_out": 0, "duck_ratio": 20},
        "scenes": [
            {"duration": 2},
            {"duration": 2, "voiceover": {"src": "voice.wav", "delay": 0.5}},
        ],
    }
    engine.render(doc, folder / "out.mp4", base_dir=folder)
    pcm, rate = decode_audio(folder / "out.mp4")
    mono = pcm.mean(axis=0)
    assert abs(len(mono) / rate - 4.0) <= 0.05
    # The voice plays from 2.5 s to 3.5 s, and only then (mono: FFmpeg's upmix to stereo
    # puts the centre channel at -3 dB on each side).
    assert _band(mono, rate, 2.6, 3.4, 1000) == pytest.approx(0.5 * np.sqrt(0.5), rel=0.1)
    assert _band(mono, rate, 0.5, 2.3, 1000) < 0.01
    assert _band(mono, rate, 3.7, 3.95, 1000) < 0.01
    # The music is there throughout, and clearly lower while the voice speaks.
    alone = _band(mono, rate, 0.5, 2.3, 220)
    ducked = _band(mono, rate, 2.9, 3.4, 220)
    assert alone == pytest.approx(0.4, rel=0.1)
    assert ducked < alone * 0.6

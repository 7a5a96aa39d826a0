"""Shared helpers for the tests: generated media, decoding, pixel measurements.

Every media file a test uses is made here, in a temporary folder: still images with
Pillow, sounds with the standard library's ``wave`` (no FFmpeg needed), and video clips
with the FFmpeg binary framefarm itself uses.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import wave
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw

from framefarm.ffmpeg import runner

RATE = 48000
T = TypeVar("T")
Stage = Callable[..., Path]  # the ``stage`` fixture: copies session media next to a document
IN_CI = os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str) -> None:
    """Skip locally; under CI=true a missing capability is a failure, not a skip."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this must not be skipped)")
    pytest.skip(reason)


# -- documents -------------------------------------------------------------------------------


def write_doc(folder: Path, doc: Mapping[str, Any], name: str = "doc.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def small_output(**extra: Any) -> dict[str, Any]:
    """A tiny output block: 160x90, 30 fps, draft."""
    return {"width": 160, "height": 90, "fps": 30, "quality": "draft", **extra}


# -- generated media ---------------------------------------------------------------------------


def write_wav(
    path: Path,
    seconds: float,
    *,
    rate: int = RATE,
    channels: int = 1,
    freq: float = 440.0,
    amplitude: float = 0.3,
    gate: tuple[float, float] | None = None,
) -> Path:
    """A sine tone as 16-bit PCM WAV (stdlib only). ``gate=(a, b)``: silent outside [a, b)."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    signal = np.sin(2 * np.pi * freq * t) * amplitude
    if gate is not None:
        signal = np.where((t >= gate[0]) & (t < gate[1]), signal, 0.0)
    pcm = np.repeat((signal * 32767).astype("<i2")[:, None], channels, axis=1)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


def write_solid_png(path: Path, size: tuple[int, int], color: str | tuple[int, ...]) -> Path:
    Image.new("RGB", size, color).save(path)
    return path


def write_ring_png(path: Path, size: tuple[int, int] = (640, 360), radius: int = 80,
                   width: int = 6) -> Path:
    """A black ring centred on a white picture (for measuring Ken Burns zoom)."""
    w, h = size
    img = Image.new("RGB", size, "white")
    cx, cy = w / 2, h / 2
    ImageDraw.Draw(img).ellipse((cx - radius, cy - radius, cx + radius, cy + radius),
                                outline="black", width=width)
    img.save(path)
    return path


def write_grid_png(path: Path, size: tuple[int, int] = (640, 360), step: int = 40) -> Path:
    w, h = size
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    for x in range(0, w, step):
        draw.line([(x, 0), (x, h)], fill="black", width=3)
    for y in range(0, h, step):
        draw.line([(0, y), (w, y)], fill="black", width=3)
    draw.ellipse((w / 2 - 30, h / 2 - 30, w / 2 + 30, h / 2 + 30), fill="#d02020")
    img.save(path)
    return path


def ffmpeg(args: Iterable[str], stdin: bytes | None = None) -> None:
    """Run the FFmpeg framefarm uses, failing loudly (with its stderr) on error."""
    argv = [runner.ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", *args]
    if stdin is None:
        argv.insert(1, "-nostdin")
    proc = subprocess.run(argv, input=stdin, capture_output=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"ffmpeg {args} failed: {proc.stderr.decode(errors='replace')}")


def write_sine_m4a(path: Path, seconds: float, freq: int = 440) -> Path:
    ffmpeg(["-f", "lavfi", "-i", f"sine=frequency={freq}:duration={seconds}",
            "-c:a", "aac", "-b:a", "96k", str(path)])
    return path


COUNTER_STEP = 4  # grey level per frame of a counter clip


def write_counter_clip(
    path: Path, *, frames: int = 60, fps: int = 30, size: int = 64,
    audio: Path | None = None, gop: int = 10,
) -> Path:
    """A clip whose frame ``i`` is solid grey ``i * COUNTER_STEP`` (lossless H.264, so the
    frame shown can be read back from a pixel), optionally muxed with ``audio``."""
    assert (frames - 1) * COUNTER_STEP <= 255
    pixels = np.zeros((frames, size, size, 3), np.uint8)
    for i in range(frames):
        pixels[i] = i * COUNTER_STEP
    args = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size}x{size}",
            "-framerate", str(fps), "-i", "pipe:0"]
    if audio is not None:
        args += ["-i", str(audio)]
    args += ["-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", "-g", str(gop)]
    if audio is not None:
        args += ["-c:a", "pcm_s16le" if path.suffix == ".mov" else "aac", "-shortest"]
    ffmpeg([*args, str(path)], stdin=pixels.tobytes())
    return path


def counter_index(pixel: np.ndarray) -> int:
    """Which counter-clip frame a (grey) pixel shows."""
    return round(float(np.mean(pixel[:3])) / COUNTER_STEP)


# -- decoding ----------------------------------------------------------------------------------


def decode_video(path: Path) -> np.ndarray:
    """Every frame of the first video stream as RGB (frames, height, width, 3)."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.stack(frames)


def video_pts(path: Path) -> tuple[list[int], float]:
    """Presentation timestamps of the decoded frames, and the stream's time base."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = [int(f.pts) for f in container.decode(stream)]
        return pts, float(stream.time_base)


def decode_audio(path: Path) -> tuple[np.ndarray, int]:
    """All audio samples (channels, samples) as float, and the sample rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        chunks = [f.to_ndarray() for f in container.decode(stream)]
    pcm = np.concatenate(chunks, axis=1).astype(np.float64)
    return pcm, rate


def window_rms(signal: np.ndarray, window: int) -> np.ndarray:
    usable = signal[: (len(signal) // window) * window]
    return np.sqrt((usable.reshape(-1, window) ** 2).mean(axis=1))


# -- pixels ------------------------------------------------------------------------------------


def ink_mask(pixels: np.ndarray, threshold: int = 64) -> np.ndarray:
    grey = pixels.max(axis=2) if pixels.ndim == 3 else pixels
    return grey > threshold


def ink_bbox(pixels: np.ndarray, threshold: int = 64) -> tuple[int, int, int, int]:
    """(left, top, right, bottom), exclusive, of the pixels brighter than ``threshold``."""
    ys, xs = np.nonzero(ink_mask(pixels, threshold))
    if len(xs) == 0:
        raise AssertionError("no ink at all")
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def ring_radius(pixels: np.ndarray, centre: tuple[float, float]) -> float:
    """Darkness-weighted mean distance from ``centre`` (x, y): a ring's radius, to a small
    fraction of a pixel."""
    h, w = pixels.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    weight = 255.0 - pixels[:, :, :3].astype(np.float64).mean(axis=2)
    dist = np.hypot(xx + 0.5 - centre[0], yy + 0.5 - centre[1])
    return float((weight * dist).sum() / weight.sum())


def files_in(folder: Path) -> set[str]:
    """Names of everything in ``folder``, hidden entries included."""
    return {p.name for p in folder.iterdir()}


# -- polling and loopback ------------------------------------------------------------------------


def wait_for(check: Callable[[], T | None], *, timeout: float, interval: float = 0.05,
             what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy (a deadline, not a sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

"""Generated media and decoding.

Every media file a test uses is made here, in a temporary folder: still images with Pillow,
sounds with the standard library's ``wave`` (no FFmpeg needed), and tones and video clips
with the FFmpeg binary framefarm itself uses. A stand-in FFmpeg (a shell script) is made
here too. Decoding reads a rendered file back with PyAV.
"""

from __future__ import annotations

import subprocess
import wave
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

from framefarm.ffmpeg import runner

RATE = 48000
Stage = Callable[..., Path]  # the ``stage`` fixture: copies session media next to a document


# -- stills --------------------------------------------------------------------------------------


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


def write_photo(path: Path, color: str, size: tuple[int, int] = (640, 360)) -> Path:
    """A still with some structure (a disc and stripes), so motion is visible."""
    img = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(img)
    w, h = size
    for x in range(0, w, 40):
        draw.line([(x, 0), (x, h)], fill="#202020", width=3)
    draw.ellipse((w / 2 - 80, h / 2 - 80, w / 2 + 80, h / 2 + 80), fill="white")
    img.save(path)
    return path


# -- sound ---------------------------------------------------------------------------------------


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


def ffmpeg(args: Iterable[str], stdin: bytes | None = None) -> None:
    """Run the FFmpeg framefarm uses, failing loudly (with its stderr) on error."""
    argv = [runner.ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", *args]
    if stdin is None:
        argv.insert(1, "-nostdin")
    proc = subprocess.run(argv, input=stdin, capture_output=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"ffmpeg {args} failed: {proc.stderr.decode(errors='replace')}")


def write_sine_m4a(path: Path, seconds: float, freq: int = 440, bitrate: str = "96k") -> Path:
    """An AAC sine tone (FFmpeg's ``lavfi`` ``sine`` source)."""
    ffmpeg(["-f", "lavfi", "-i", f"sine=frequency={freq}:duration={seconds}",
            "-c:a", "aac", "-b:a", bitrate, str(path)])
    return path


def write_tone(path: Path, seconds: float, freq: int) -> Path:
    """A voice-over stand-in: an AAC sine tone at 64 kb/s."""
    return write_sine_m4a(path, seconds, freq, bitrate="64k")


# -- video ---------------------------------------------------------------------------------------


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


# -- a stand-in FFmpeg ---------------------------------------------------------------------------


def write_fake_ffmpeg(path: Path, body: str) -> Path:
    """An executable standing in for FFmpeg. It answers ``-hide_banner -version`` like
    FFmpeg (the node asks at start-up) and runs ``body`` for anything else."""
    path.write_text(
        "#!/bin/sh\n"
        'if [ "$2" = "-version" ]; then echo "ffmpeg version fault-test"; exit 0; fi\n'
        f"{body}\n")
    path.chmod(0o755)
    return path


# -- decoding ------------------------------------------------------------------------------------


def video_frames(path: Path) -> Iterator[np.ndarray]:
    """The frames of the first video stream as RGB arrays, one at a time."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def decode_video(path: Path) -> np.ndarray:
    """Every frame of the first video stream as RGB (frames, height, width, 3)."""
    return np.stack(list(video_frames(path)))


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

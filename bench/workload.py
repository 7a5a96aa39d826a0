"""The standard benchmark workload: ten photos, voice-overs, music, and the documents.

Everything is generated deterministically (Pillow + NumPy for the photos, FFmpeg's lavfi
sources for the sound), so every machine benchmarks the same pixels and samples.

Two descriptions of the same slideshow are written:

* ``document.json``: the framefarm document;
* ``spec.json``: a plain description (paths, frame counts, zoom/pan, titles, encoder
  settings) that the MoviePy script and the naive FFmpeg graph are built from.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

PHOTO_SIZE = (1920, 1280)
PHOTOS = 10
TRANSITION = 0.5  # seconds of dissolve between scenes
VOICE_SCENES = (0, 3, 6)  # scenes with a voice-over
VOICE_SECONDS = (4.0, 3.5, 4.5)
MUSIC_SECONDS = 25.0  # shorter than the video on purpose: the bed loops
PANS = ("left", "right", "up", "down", "up-left", "down-right", "none", "right", "up-right",
        "down-left")
TITLES = ("Day 1 - Northern Ridge", "Morning at the Lake", "The Long Valley",
          "Above the Clouds", "Red Cliffs", "Quiet Harbour", "Pine Forest",
          "Evening Light", "The High Pass", "Homeward")
# Bump when the generated media change, so stale files are regenerated.
MEDIA_VERSION = 2


# -- photos ----------------------------------------------------------------------------------

def _smooth_noise(rng: np.random.Generator, n: int, octaves: int = 6) -> np.ndarray:
    """1-D fractal noise in [-1, 1] of length n (sum of random sines)."""
    x = np.linspace(0.0, 1.0, n)
    out = np.zeros(n)
    for k in range(octaves):
        freq = 2 ** k * rng.uniform(1.0, 2.0)
        out += np.sin(2 * math.pi * (freq * x + rng.uniform())) / (1.6 ** k)
    return out / np.abs(out).max()


def make_photo(path: Path, seed: int, size: tuple[int, int] = PHOTO_SIZE) -> None:
    """A landscape-like picture: sky gradient, sun glow, mountain ridges, water, grain."""
    w, h = size
    rng = np.random.default_rng(1000 + seed)
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
    top = rng.uniform([10, 30, 90], [80, 110, 200]).astype(np.float32)
    horizon = rng.uniform([170, 120, 90], [255, 210, 190]).astype(np.float32)
    img = top + (horizon - top) * (y ** 0.8)  # sky
    img = np.broadcast_to(img, (h, w, 3)).copy()
    # Sun with a soft glow.
    sx, sy = rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.4)
    d2 = ((x - sx) * (w / h)) ** 2 + (y - sy) ** 2
    img += np.float32(255) * np.exp(-d2 / 0.004) * 0.8 + np.float32(120) * np.exp(-d2 / 0.05)
    # Mountain ridges, far (hazy) to near (dark).
    horizon_y = rng.uniform(0.55, 0.7)
    for layer in range(3):
        base = horizon_y - 0.22 + 0.08 * layer
        ridge = base + (0.12 - 0.03 * layer) * _smooth_noise(rng, w)
        mask = (y[:, :, 0] > ridge[None, :].astype(np.float32))[:, :, None]
        shade = np.float32(0.75 - 0.22 * layer)
        tint = rng.uniform([40, 50, 40], [110, 120, 110]).astype(np.float32)
        colour = horizon * (0.5 - 0.15 * layer) * shade + tint * (0.5 + 0.2 * layer)
        depth = (y - ridge[None, :, None].astype(np.float32)).clip(0, 1)
        img = np.where(mask, colour * (1.0 - 0.6 * depth), img)
    # Water below the horizon: a darker, streaked reflection of the sky.
    water = y[:, :, 0] > horizon_y
    streaks = (0.85 + 0.15 * np.sin(y * 900.0 + x * 7.0)).astype(np.float32)
    reflected = (top * 0.6 + horizon * 0.3) * streaks
    img = np.where(water[:, :, None], reflected + (img - reflected) * 0.15, img)
    # A few dark shapes (trees / rocks) in the foreground.
    for _ in range(int(rng.integers(4, 9))):
        cx, cy = rng.uniform(0.0, 1.0), rng.uniform(horizon_y, 1.0)
        rx, ry = rng.uniform(0.01, 0.05), rng.uniform(0.03, 0.12)
        blob = (((x[:, :, 0] - cx) / rx) ** 2 + ((y[:, :, 0] - cy) / ry) ** 2) < 1.0
        img[blob] = img[blob] * 0.3 + rng.uniform(10, 40, 3).astype(np.float32)
    # Vignette and mild film grain (luma and a little chroma).
    img *= (1.0 - 0.25 * (((x - 0.5) * 2) ** 2 + ((y - 0.5) * 2) ** 2) / 2)
    img += rng.normal(0.0, 5.0, (h, w, 1)).astype(np.float32)
    img += rng.normal(0.0, 1.5, (h, w, 3)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)


# -- sound -----------------------------------------------------------------------------------

def _ffmpeg(ffmpeg: str, *args: str) -> None:
    subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", *args, "-y"],
                   check=True)


def make_voice(ffmpeg: str, path: Path, seconds: float, pitch: float) -> None:
    """A speech-like tone: a wobbling pitch with syllable-rate amplitude bursts."""
    expr = (f"0.35*sin(2*PI*({pitch}+25*sin(2*PI*3*t))*t)*(0.55+0.45*sin(2*PI*4.3*t))"
            f"*gt(sin(2*PI*1.1*t)+0.6\\,0)")
    _ffmpeg(ffmpeg, "-f", "lavfi", "-i", f"aevalsrc={expr}:s=48000:d={seconds}",
            "-ac", "1", "-c:a", "aac", "-b:a", "96k", str(path))


def make_music(ffmpeg: str, path: Path, seconds: float) -> None:
    """A slow chord with tremolo (stereo)."""
    chord = "+".join(f"0.12*sin(2*PI*{f}*t)" for f in (220.0, 277.18, 329.63, 440.0))
    left = f"({chord})*(0.7+0.3*sin(2*PI*0.5*t))"
    right = f"({chord})*(0.7+0.3*cos(2*PI*0.5*t))"
    _ffmpeg(ffmpeg, "-f", "lavfi", "-i", f"aevalsrc={left}|{right}:s=48000:d={seconds}",
            "-c:a", "aac", "-b:a", "160k", str(path))


def make_media(media: Path, ffmpeg: str) -> None:
    stamp = media / ".version"
    if stamp.exists() and stamp.read_text().strip() == str(MEDIA_VERSION) and all(
        (media / f"photo{i + 1:02d}.jpg").exists() for i in range(PHOTOS)
    ):
        return
    media.mkdir(parents=True, exist_ok=True)
    for i in range(PHOTOS):
        make_photo(media / f"photo{i + 1:02d}.jpg", i)
    for n, seconds in enumerate(VOICE_SECONDS):
        make_voice(ffmpeg, media / f"vo{n + 1:02d}.m4a", seconds, 140.0 + 35 * n)
    make_music(ffmpeg, media / "music.m4a", MUSIC_SECONDS)
    stamp.write_text(str(MEDIA_VERSION))


# -- the slideshow ---------------------------------------------------------------------------

def scene_frames(seconds: float, fps: int, scenes: int = PHOTOS) -> tuple[list[int], int]:
    """Frames per scene (differing by at most one) so that the video lasts exactly
    ``seconds`` once the transitions overlap neighbours; and the transition's frames."""
    overlap = round(TRANSITION * fps)
    total = round(seconds * fps) + (scenes - 1) * overlap
    base, extra = divmod(total, scenes)
    frames = [base + (1 if i < extra else 0) for i in range(scenes)]
    if min(frames) <= overlap:
        raise SystemExit(f"--seconds {seconds}: too short for {scenes} scenes with "
                         f"{TRANSITION}s transitions")
    return frames, overlap


def build(workdir: Path, *, seconds: float, size: str, width: int, height: int, fps: int,
          quality: str, ffmpeg: str, x264: dict[str, Any], font: Path) -> dict[str, Any]:
    """Write media, document.json and spec.json under ``workdir``; returns the spec."""
    media = workdir / "media"
    make_media(media, ffmpeg)
    frames, overlap = scene_frames(seconds, fps)
    text_size = round(72 * height / 1080)
    scenes_doc: list[dict[str, Any]] = []
    scenes_spec: list[dict[str, Any]] = []
    voices = dict(zip(VOICE_SCENES, range(len(VOICE_SCENES)), strict=True))
    start = 0
    for i, count in enumerate(frames):
        zoom = [1.0, 1.15] if i % 2 == 0 else [1.15, 1.0]
        photo = f"media/photo{i + 1:02d}.jpg"
        scene: dict[str, Any] = {
            "duration": count / fps,
            "layers": [
                {"type": "image", "src": photo, "fit": "cover",
                 "motion": {"zoom": zoom, "pan": PANS[i]}},
                {"type": "text", "text": TITLES[i], "position": "bottom",
                 "animation": {"in": "fade", "duration": 0.5},
                 "style": {"size": text_size, "weight": "bold",
                           "shadow": {"offset": [2, 2], "blur": 4}}},
            ],
        }
        vo = None
        if i in voices:
            vo = f"media/vo{voices[i] + 1:02d}.m4a"
            scene["voiceover"] = {"src": vo, "delay": 0.3}
        if i + 1 < len(frames):
            scene["transition"] = {"type": "dissolve", "duration": TRANSITION}
        scenes_doc.append(scene)
        scenes_spec.append({"photo": str(workdir / photo), "frames": count, "start": start,
                            "zoom": zoom, "pan": PANS[i], "title": TITLES[i],
                            "voiceover": str(workdir / vo) if vo else None,
                            "voice_delay": 0.3})
        start += count - overlap
    document = {
        "version": 1,
        "output": {"size": size, "fps": fps, "format": "mp4", "quality": quality},
        "music": {"src": "media/music.m4a", "volume": 0.4, "loop": True, "fade_out": 2,
                  "duck": True},
        "scenes": scenes_doc,
    }
    total_frames = round(seconds * fps)
    assert start + overlap == total_frames, (start, overlap, total_frames)
    spec = {
        "width": width, "height": height, "fps": fps, "seconds": seconds,
        "total_frames": total_frames, "transition_frames": overlap,
        "scenes": scenes_spec, "music": str(media / "music.m4a"), "music_volume": 0.4,
        "text_size": text_size, "font": str(font), "x264": x264,
    }
    (workdir / "document.json").write_text(json.dumps(document, indent=2))
    (workdir / "spec.json").write_text(json.dumps(spec, indent=2))
    return spec

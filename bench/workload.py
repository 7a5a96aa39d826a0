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
# Film grain (standard deviation of luma and of per-channel noise, in 8-bit steps) of the
# two kinds of photos: grain is what makes x264 work hardest.
GRAIN = {"grainy": (5.0, 1.5), "clean": (0.8, 0.0)}


# -- photos ----------------------------------------------------------------------------------

def _smooth_noise(rng: np.random.Generator, n: int, octaves: int = 6) -> np.ndarray:
    """1-D fractal noise in [-1, 1] of length n (sum of random sines)."""
    x = np.linspace(0.0, 1.0, n)
    out = np.zeros(n)
    for k in range(octaves):
        freq = 2 ** k * rng.uniform(1.0, 2.0)
        out += np.sin(2 * math.pi * (freq * x + rng.uniform())) / (1.6 ** k)
    return out / np.abs(out).max()


def make_photo(path: Path, seed: int, size: tuple[int, int] = PHOTO_SIZE,
               grain: str = "grainy") -> None:
    """A landscape-like picture: sky gradient, sun glow, mountain ridges, water, grain
    (``GRAIN``: "grainy", the standard workload, or "clean", nearly none)."""
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
    # Vignette and film grain (luma and a little chroma).
    img *= (1.0 - 0.25 * (((x - 0.5) * 2) ** 2 + ((y - 0.5) * 2) ** 2) / 2)
    luma_grain, colour_grain = GRAIN[grain]
    img += rng.normal(0.0, luma_grain, (h, w, 1)).astype(np.float32)
    if colour_grain:
        img += rng.normal(0.0, colour_grain, (h, w, 3)).astype(np.float32)
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


def make_media(media: Path, ffmpeg: str, photos: str = "grainy") -> None:
    stamp = media / ".version"
    version = str(MEDIA_VERSION) + ("" if photos == "grainy" else f"-{photos}")
    if stamp.exists() and stamp.read_text().strip() == version and all(
        (media / f"photo{i + 1:02d}.jpg").exists() for i in range(PHOTOS)
    ):
        return
    media.mkdir(parents=True, exist_ok=True)
    for i in range(PHOTOS):
        make_photo(media / f"photo{i + 1:02d}.jpg", i, grain=photos)
    for n, seconds in enumerate(VOICE_SECONDS):
        make_voice(ffmpeg, media / f"vo{n + 1:02d}.m4a", seconds, 140.0 + 35 * n)
    make_music(ffmpeg, media / "music.m4a", MUSIC_SECONDS)
    stamp.write_text(version)


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
          quality: str, ffmpeg: str, x264: dict[str, Any], font: Path,
          photos: str = "grainy") -> dict[str, Any]:
    """Write media, document.json and spec.json under ``workdir``; returns the spec."""
    media = workdir / "media"
    make_media(media, ffmpeg, photos)
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


# -- the same slideshow as one FFmpeg graph ----------------------------------------------

def _focus_expr(pan: str, q: str) -> tuple[str, str]:
    fx = fy = "0.5"
    if "left" in pan:
        fx = q
    elif "right" in pan:
        fx = f"(1-{q})"
    if "up" in pan:
        fy = q
    elif "down" in pan:
        fy = f"(1-{q})"
    return fx, fy


def graph_args(spec: dict[str, Any], output: Path, *, decode_once: bool = False) -> list[str]:
    """The whole slideshow as one FFmpeg filter graph (seed 002's approach): stills, zoompan
    for Ken Burns, drawtext titles, xfade chains, the same audio mix, the same x264.

    ``decode_once=False`` is the naive graph: each still is a ``-loop 1`` input, decoded
    again for every frame. ``decode_once=True`` decodes each still once and repeats the
    cropped picture with the ``loop`` filter (one frame, ``size=1``), which is what a
    careful hand-written graph does."""
    w, h, fps = spec["width"], spec["height"], spec["fps"]
    scenes = spec["scenes"]
    fade = spec["transition_frames"] / fps
    total = spec["total_frames"] / fps
    args = ["-hide_banner", "-nostdin", "-loglevel", "error"]
    graph: list[str] = []
    font = spec["font"].replace(":", r"\:")
    for i, sc in enumerate(scenes):
        n = sc["frames"]
        if decode_once:
            args += ["-i", sc["photo"]]
            # loop=N-1 repeats the one decoded frame: N frames in all, as zoompan wants.
            repeat = f",loop=loop={n - 1}:size=1:start=0"
        else:
            args += ["-loop", "1", "-framerate", str(fps), "-t", f"{n / fps:.6f}",
                     "-i", sc["photo"]]
            repeat = ""
        z0, z1 = sc["zoom"]
        q = f"(on/{n - 1})"
        fx, fy = _focus_expr(sc["pan"], q)
        title = sc["title"].replace("'", "")
        graph.append(
            f"[{i}:v]crop='min(iw,ih*{w}/{h})':'min(ih,iw*{h}/{w})'{repeat},"
            f"zoompan=z='{z0}+({z1 - z0})*{q}':x='(iw-iw/zoom)*{fx}':y='(ih-ih/zoom)*{fy}'"
            f":d=1:s={w}x{h}:fps={fps},"
            f"drawtext=fontfile='{font}':text='{title}':fontsize={spec['text_size']}"
            f":fontcolor=white:borderw=2:bordercolor=black:x=(w-text_w)/2"
            f":y=h*0.95-text_h:alpha='min(1,t/0.5)',setsar=1[v{i}]")
    last = "v0"
    for i, sc in enumerate(scenes[1:], start=1):
        graph.append(f"[{last}][v{i}]xfade=transition=fade:duration={fade:.6f}"
                     f":offset={sc['start'] / fps:.6f}[x{i}]")
        last = f"x{i}"
    graph.append(f"[{last}]scale=out_color_matrix={spec['x264']['matrix']}:out_range=tv,"
                 "format=yuv420p[vout]")
    # Audio: voices delayed into place, music looped and ducked under them, normalised.
    fmt = "aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo"
    voices = []
    index = len(scenes)
    for sc in scenes:
        if sc["voiceover"]:
            args += ["-i", sc["voiceover"]]
            delay = round((sc["start"] / fps + sc["voice_delay"]) * 1000)
            graph.append(f"[{index}:a]{fmt},adelay={delay}:all=1[vo{index}]")
            voices.append(f"[vo{index}]")
            index += 1
    args += ["-stream_loop", "-1", "-i", spec["music"]]
    graph.append(f"{''.join(voices)}amix=inputs={len(voices)}:normalize=0:duration=longest,"
                 "asplit=2[voice][key]")
    graph.append(f"[{index}:a]{fmt},atrim=duration={total:.6f},volume={spec['music_volume']},"
                 f"afade=t=out:st={total - 2:.6f}:d=2[bed]")
    graph.append("[bed][key]sidechaincompress=threshold=0.02:ratio=6:attack=20:release=400"
                 "[music]")
    samples = round(total * 48000)
    graph.append(f"[voice][music]amix=inputs=2:normalize=0:duration=longest,"
                 f"apad=whole_len={samples},atrim=end_sample={samples},"
                 "loudnorm=I=-16:TP=-1.5:LRA=11,aresample=48000[aout]")
    x264 = spec["x264"]
    args += ["-filter_complex", ";".join(graph), "-map", "[vout]", "-map", "[aout]",
             *x264["codec_args"], *x264["tags"], "-c:a", "aac",
             "-b:a", f"{x264['audio_kbps']}k", "-ar", "48000",
             "-frames:v", str(spec["total_frames"]), "-movflags", "+faststart",
             "-f", "mp4", "-y", str(output)]
    return args

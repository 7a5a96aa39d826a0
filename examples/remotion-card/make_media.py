"""Make the example's media: public/badge.png (Pillow) and public/music.mp3 (FFmpeg).

Generated, never downloaded. Run from anywhere: ``python examples/remotion-card/make_media.py``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
from PIL import Image, ImageDraw

PUBLIC = Path(__file__).resolve().parent / "public"


def badge(path: Path, size: int = 256) -> None:
    """A round badge: concentric rings in two colours, and a white check mark."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for i, colour in enumerate([(255, 196, 0), (255, 120, 40), (230, 60, 90), (120, 60, 200)]):
        inset = i * size // 10
        draw.ellipse((inset, inset, size - 1 - inset, size - 1 - inset), fill=colour + (255,))
    w = size // 14
    draw.line([(size * 0.32, size * 0.52), (size * 0.45, size * 0.66), (size * 0.70, size * 0.36)],
              fill=(255, 255, 255, 255), width=w, joint="curve")
    image.save(path, optimize=True)


def music(path: Path, seconds: float = 4.0) -> None:
    """A short arpeggio of sine tones (A minor), with a soft fade in and out."""
    notes = [220.0, 261.63, 329.63, 440.0]
    step = seconds / 8
    parts = [f"sin(2*PI*{notes[i % 4]}*t)*between(mod(t,{step * 4}),{i * step},{(i + 1) * step})"
             for i in range(4)]
    expr = "0.25*(" + "+".join(parts) + ")"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"aevalsrc=exprs='{expr}':s=44100:d={seconds}",
         "-af", f"afade=t=in:d=0.3,afade=t=out:st={seconds - 0.5}:d=0.5",
         "-ac", "2", "-c:a", "libmp3lame", "-b:a", "96k", str(path)],
        check=True)


if __name__ == "__main__":
    PUBLIC.mkdir(exist_ok=True)
    badge(PUBLIC / "badge.png")
    music(PUBLIC / "music.mp3")
    print(f"wrote {PUBLIC / 'badge.png'} and {PUBLIC / 'music.mp3'}")

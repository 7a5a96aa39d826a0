#!/usr/bin/env python3
"""Generate the media that the example documents in ``examples/`` use.

Everything is synthesised from fixed seeds, so two runs give the same pictures and sounds:

- ``photo01.jpg`` .. ``photo10.jpg``: 1920x1280 landscape-like pictures (sky, sun or moon,
  layered hills and mountains, trees, houses, water, grain);
- ``logo.png``: a 400x400 badge with the letters "ff" on a transparent background;
- ``vo01.m4a`` .. ``vo05.m4a``: 2.5-5 s of speech-like voice-over (AAC, mono, 48 kHz);
- ``music.m4a``: 20 s of a gentle chord progression (AAC, stereo, 48 kHz);
- ``clip.mp4``: 8 s of 1280x720 30 fps H.264 video with AAC sound;
- ``captions.srt`` and ``captions.vtt``: four cues of a short dialogue.

Files that already exist are skipped, so calling this again is cheap; ``--force`` remakes
them. Only the standard library, NumPy, Pillow and imageio-ffmpeg are needed; FFmpeg is
``$FRAMEFARM_FFMPEG`` or the one imageio-ffmpeg ships.

    python scripts/make_example_media.py [--out DIR] [--force]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "examples" / "media"
FONT = ROOT / "src" / "framefarm" / "fonts" / "Inter-Bold.otf"

W, H = 1920, 1280  # photos
SR = 48000  # audio sample rate

Color = tuple[float, float, float]
Draw = ImageDraw.ImageDraw


def ffmpeg_exe() -> str:
    exe = os.environ.get("FRAMEFARM_FFMPEG")
    if exe:
        return exe
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def run_ffmpeg(args: list[str], stdin: bytes | None = None) -> None:
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args]
    if stdin is not None:
        cmd.remove("-nostdin")
    proc = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {message}")


def _tmp(path: Path) -> Path:
    """A sibling temporary name with the same suffix (FFmpeg picks the muxer from it)."""
    return path.with_name(f".{path.stem}.tmp{path.suffix}")


# =========================================================================================
# Photos
# =========================================================================================


def hexc(value: str) -> Color:
    value = value.lstrip("#")
    return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


def noise1d(rng: np.random.Generator, octaves: int = 5, base: int = 3,
            persistence: float = 0.5) -> np.ndarray:
    """Smooth fractal noise in about [-1, 1], one value per image column."""
    x = np.linspace(0.0, 1.0, W)
    out = np.zeros(W)
    amp, total = 1.0, 0.0
    for octave in range(octaves):
        k = base * 2**octave
        points = rng.uniform(-1, 1, k + 1)
        pos = x * k
        i = np.minimum(pos.astype(int), k - 1)
        f = (1 - np.cos((pos - i) * np.pi)) / 2
        out += amp * (points[i] * (1 - f) + points[i + 1] * f)
        total += amp
        amp *= persistence
    return out / total


def mountains(rng: np.random.Generator, base: float, amp: float, sharp: float = 1.0,
              octaves: int = 7) -> np.ndarray:
    """Ridge line (y per column) of a mountain range: ridged noise, peaks pointing up."""
    n = noise1d(rng, octaves=octaves, base=3, persistence=0.52)
    ridged = 1 - np.abs(n) ** 0.8 * 1.6
    smooth = noise1d(rng, octaves=3, base=2)
    return base - amp * (0.55 * ridged * sharp + 0.45 * smooth)


def hills(rng: np.random.Generator, base: float, amp: float, octaves: int = 4,
          bumps: int = 2) -> np.ndarray:
    return base - amp * noise1d(rng, octaves=octaves, base=bumps, persistence=0.45)


@functools.cache
def _grid() -> tuple[np.ndarray, np.ndarray]:
    ys = np.arange(H, dtype=np.float32)[:, None]
    xs = np.arange(W, dtype=np.float32)[None, :]
    return ys, xs


LOW = 4  # skies are smooth: they are computed at a quarter of the size and scaled up


@functools.cache
def _vignette() -> np.ndarray:
    ys, xs = _grid()
    r2 = ((xs - W / 2) / (W / 2)) ** 2 + ((ys - H / 2) / (H / 2)) ** 2
    return (1.0 - 0.22 * np.clip(r2 - 0.25, 0, None))[:, :, None].astype(np.float32)


GRAIN_PAD = 64


@functools.cache
def _grain() -> np.ndarray:
    """One field of film grain, shared by all pictures at different offsets."""
    rng = np.random.default_rng(99)
    return rng.standard_normal((H + GRAIN_PAD, W + GRAIN_PAD, 1), dtype=np.float32)


class Canvas:
    """A float RGB picture painted back to front."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self._img = np.zeros((H, W, 3), np.float32)
        self._low: np.ndarray | None = None
        self._disks: list[tuple[float, float, float]] = []

    @property
    def img(self) -> np.ndarray:
        if self._low is not None:  # scale a pending low-resolution sky up first
            channels = [np.asarray(Image.fromarray(np.ascontiguousarray(self._low[:, :, c]), "F")
                                   .resize((W, H), Image.BILINEAR)) for c in range(3)]
            self._img = np.stack(channels, axis=2).astype(np.float32)
            self._low = None
        return self._img

    # -- backgrounds ------------------------------------------------------------------------

    def sky(self, stops: list[tuple[float, str]]) -> None:
        h, w = H // LOW, W // LOW
        pos = (np.arange(h) + 0.5) / h
        where = [s[0] for s in stops]
        cols = [hexc(s[1]) for s in stops]
        low = np.empty((h, w, 3), np.float32)
        for c in range(3):
            low[:, :, c] = np.interp(pos, where, [col[c] for col in cols])[:, None]
        self._low = low

    def stars(self, count: int, max_y: float) -> None:
        rng = self.rng
        xs = rng.integers(0, W - 1, count)
        ys = (rng.random(count) ** 1.6 * max_y).astype(int)
        bright = rng.uniform(90, 255, count) * (1 - ys / max_y * 0.7)
        keep = np.ones(count, bool)
        for cx, cy, r in self._disks:
            keep &= (xs - cx) ** 2 + (ys - cy) ** 2 > (r * 1.3) ** 2
        xs, ys, bright = xs[keep], ys[keep], bright[keep]
        img = self.img
        for dx, dy, k in ((0, 0, 1.0), (1, 0, 0.45), (0, 1, 0.45), (1, 1, 0.25)):
            big = bright > 200 if (dx or dy) else np.ones(len(xs), bool)
            patch = img[ys[big] + dy, xs[big] + dx]
            img[ys[big] + dy, xs[big] + dx] = np.maximum(patch, (bright[big] * k)[:, None])

    def sun(self, cx: float, cy: float, r: float, color: str, glow: str,
            glow_r: float, strength: float, craters: int = 0) -> None:
        gc = np.array(hexc(glow), np.float32) / 255
        if self._low is not None:
            target, k = self._low, LOW
        else:
            target, k = self.img, 1
        h, w = target.shape[:2]
        ys = (np.arange(h, dtype=np.float32)[:, None] + 0.5) * k
        xs = (np.arange(w, dtype=np.float32)[None, :] + 0.5) * k
        d = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2)
        g = np.exp(-((d / glow_r) ** 2)) * strength + np.exp(-d / (glow_r * 2.5)) * strength * 0.35
        target[:] = 255 - (255 - target) * (1 - g[:, :, None] * gc)
        # the disk, at full resolution, only around it
        img = self.img
        x0, x1 = max(0, int(cx - r - 2)), min(W, int(cx + r + 3))
        y0, y1 = max(0, int(cy - r - 2)), min(H, int(cy + r + 3))
        if x1 <= x0 or y1 <= y0:
            return
        yy = np.arange(y0, y1, dtype=np.float32)[:, None]
        xx = np.arange(x0, x1, dtype=np.float32)[None, :]
        region = img[y0:y1, x0:x1]
        dd = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        a = np.clip(r - dd + 0.5, 0, 1)[:, :, None]
        region += (np.array(hexc(color), np.float32) - region) * a
        for _ in range(craters):
            ang, rad = self.rng.uniform(0, 2 * math.pi), self.rng.uniform(0, r * 0.6)
            cr = self.rng.uniform(r * 0.08, r * 0.22)
            ccx, ccy = cx + math.cos(ang) * rad, cy + math.sin(ang) * rad
            c_d = np.sqrt((xx - ccx) ** 2 + (yy - ccy) ** 2)
            region *= 1 - (np.clip((cr - c_d) / 4, 0, 1) * 0.06)[:, :, None]
        self._disks.append((cx, cy, r))

    def clouds(self, clusters: int, y_range: tuple[float, float], color: str, opacity: float,
               stretch: float = 1.0, size: float = 1.0, shade: str | None = None) -> None:
        k = 4
        mask = Image.new("L", (W // k, H // k), 0)
        d = ImageDraw.Draw(mask)
        rng = self.rng
        for _ in range(clusters):
            cx = rng.uniform(-50, W + 50) / k
            cy = rng.uniform(*y_range) / k
            for _ in range(int(rng.integers(4, 9))):
                rx = rng.uniform(40, 110) * stretch * size / k
                ry = rng.uniform(18, 45) * size / k
                ox = rng.uniform(-120, 120) * stretch * size / k
                oy = rng.uniform(-20, 12) * size / k
                d.ellipse((cx + ox - rx, cy + oy - ry, cx + ox + rx, cy + oy + ry), fill=255)
        mask = mask.filter(ImageFilter.GaussianBlur(4 * size)).resize((W, H), Image.BILINEAR)
        box = mask.getbbox()
        if not box:
            return
        y0, y1 = box[1], box[3]
        a = np.asarray(mask, np.float32)[y0:y1, :, None] * (opacity / 255)
        col = np.array(hexc(color), np.float32)
        if shade:
            # darker undersides: where there is cloud above, there is shade
            above = np.asarray(mask, np.float32)[max(0, y0 - 18):y1 - 18, :, None] / 255
            above = np.pad(above, ((a.shape[0] - above.shape[0], 0), (0, 0), (0, 0)))
            col = col + (np.array(hexc(shade), np.float32) - col) * np.clip(above, 0, 1) * 0.9
        region = self.img[y0:y1]
        region += (col - region) * a

    def fog(self, y: float, height: float, color: str, alpha: float) -> None:
        y0, y1 = max(0, int(y - 2.5 * height)), min(H, int(y + 2.5 * height) + 1)
        ys = np.arange(y0, y1, dtype=np.float32)
        a = (np.exp(-(((ys - y) / height) ** 2)) * alpha)[:, None, None]
        region = self.img[y0:y1]
        region += (np.array(hexc(color), np.float32) - region) * a

    # -- landforms --------------------------------------------------------------------------

    def layer(self, ridge: np.ndarray, top: str, bottom: str, shade: float = 0.0,
              shade_depth: float = 260.0, snow: tuple[float, str] | None = None,
              strata: float = 0.0, facets: bool = False) -> None:
        """Fill below ``ridge`` with a vertical gradient.

        ``shade`` lights slopes that face the left (the light comes from the upper left).
        Smooth land is lit by its slope: right under the ridge by its fine slope, deeper
        down by ever smoother versions of it. With ``facets`` (rock), each peak casts a
        cone downwards whose left face is lit and right face is in shade.
        """
        img = self.img
        ridge = ridge.astype(np.float32)
        y0 = max(0, int(ridge.min()) - 1)
        if y0 >= H:
            return
        edge = min(H, int(ridge.max()) + 2)  # below this the layer covers everything
        ye = edge  # rows that need per-pixel work
        if shade:
            ye = min(H, edge + int(2.5 * shade_depth))
        if strata:
            ye = H
        if snow:
            ye = max(ye, min(H, int(snow[0] + 50)))
        ys = np.arange(y0, H, dtype=np.float32)[:, None]
        c0, c1 = np.array(hexc(top), np.float32), np.array(hexc(bottom), np.float32)
        base = c0 + (c1 - c0) * np.clip((ys - y0) / (H - y0), 0, 1)[:, :, None]  # (rows, 1, 3)
        if ye < H:
            img[ye:] = base[ye - y0:]
        ys = ys[: ye - y0]
        col = base[: ye - y0]
        below = ys - ridge[None, :]
        light = None
        if shade and facets:
            depth = np.maximum(below, 0)
            light = (self._facets(ridge, y0, len(ys)) * np.exp(-depth / shade_depth))[:, :, None]
            col = col * (1 + shade * light)
        elif shade:
            levels = []
            for win in (5, 21, 71, 221):
                smooth = np.convolve(np.pad(ridge, win // 2, mode="edge"), np.ones(win) / win,
                                     mode="valid")
                g = np.gradient(smooth)
                levels.append(np.tanh(-g / (np.std(g) + 1e-6)))
            flat = np.concatenate(levels).astype(np.float32)
            depth = np.maximum(below, 0)
            pos = np.minimum(np.log2(1 + depth / 10) * 0.5, len(levels) - 1.001)
            i = pos.astype(np.int32)
            f = pos - i.astype(np.float32)
            idx = i * W + np.arange(W, dtype=np.int32)[None, :]
            lit = flat[idx] * (1 - f) + flat[idx + W] * f
            light = (lit * np.exp(-depth / shade_depth))[:, :, None]
            col = col * (1 + shade * light)
        if strata:
            wobble = (14 * noise1d(self.rng, octaves=4, base=4)).astype(np.float32)
            yw = ys + wobble[None, :]
            bands = np.sin(yw * 0.09) + 0.5 * np.sin(yw * 0.031)
            col = col * (1 + strata * bands[:, :, None])
        if snow:
            line, colour = snow
            snow_y = (line + 40 * noise1d(self.rng, octaves=4, base=6)
                      + 22 * noise1d(self.rng, octaves=3, base=60)).astype(np.float32)
            n = max(0, min(len(ys), int(snow_y.max()) + 8 - y0))  # rows that can have snow
            s = np.clip((snow_y[None, :] - ys[:n]) / 6, 0, 1)[:, :, None]
            sc = np.array(hexc(colour), np.float32)
            if light is not None:
                sc = sc * (1 + 0.5 * shade * light[:n])
            col = np.array(np.broadcast_to(col, (len(ys), W, 3)))
            col[:n] += (sc - col[:n]) * s
        # per-pixel rows: blend along the ridge line, plain copy where fully covered
        region = img[y0:ye]
        k = edge - y0
        a = np.clip(below[:k] + 0.5, 0, 1)[:, :, None]
        region[:k] += (np.broadcast_to(col[:k], region[:k].shape) - region[:k]) * a
        if ye > edge:
            region[k:] = col[k:]

    def _facets(self, ridge: np.ndarray, y0: int, rows: int) -> np.ndarray:
        """About +1 on faces lit from the left, -1 on faces in shade (worked out at 1/4 size).

        Each peak casts a cone downwards, split by a spur line running down from it: the
        part left of the spur faces the light. Higher peaks are painted last, over lower ones.
        """
        q = 4
        rq = ridge.reshape(-1, q).min(axis=1) / q
        wq, hq = W // q, -(-rows // q)
        yq = (y0 / q + np.arange(hq, dtype=np.float32))[:, None]
        side = np.zeros((hq, wq), np.float32)
        reach = 9
        padded = np.pad(rq, reach, mode="edge")
        window = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1).min(axis=1)
        peaks = np.flatnonzero(rq <= window)
        for i in peaks[np.argsort(-rq[peaks])]:
            k = self.rng.uniform(0.7, 1.1)  # steepness of the cone's sides
            skew = self.rng.uniform(-0.35, 0.35)  # the spur's lean
            lit, dark = self.rng.uniform(0.6, 1.0), -self.rng.uniform(0.6, 1.0)
            r0 = max(0, int(rq[i] - y0 / q))
            if r0 >= hq:
                continue
            half = int((hq - r0) / k) + 1
            c0, c1 = max(0, i - half), min(wq, i + half + 1)
            xs = np.arange(c0, c1, dtype=np.float32)[None, :]
            depth = yq[r0:] - rq[i]
            inside = (np.abs(xs - i) * k <= depth) & (depth >= 0)
            value = np.where(xs - i < depth * skew, np.float32(lit), np.float32(dark))
            region = side[r0:, c0:c1]
            region[inside] = value[inside]
        full = Image.fromarray(side, "F").resize((W, hq * q), Image.BILINEAR)
        return np.asarray(full, np.float32)[:rows]

    def stamp(self, paint: Callable[[Draw], None], color: str, alpha: float = 1.0) -> None:
        """Composite a silhouette painted (white on black) by ``paint``."""
        mask = Image.new("L", (W, H), 0)
        paint(ImageDraw.Draw(mask))
        box = mask.getbbox()
        if not box:
            return
        x0, y0, x1, y1 = box
        a = np.asarray(mask.crop(box), np.float32)[:, :, None] / 255 * alpha
        region = self.img[y0:y1, x0:x1]
        region += (np.array(hexc(color), np.float32) - region) * a

    def paint_mask(self, mask: Image.Image, color: str, alpha: float = 1.0) -> None:
        box = mask.getbbox()
        if not box:
            return
        x0, y0, x1, y1 = box
        a = np.asarray(mask.crop(box), np.float32)[:, :, None] / 255 * alpha
        region = self.img[y0:y1, x0:x1]
        region += (np.array(hexc(color), np.float32) - region) * a

    def water(self, y: int, tint: str, tint_amount: float, ripple: float = 3.0,
              glint_x: float | None = None, glint: str = "#fff2cc", darken: float = 0.85) -> None:
        rows = np.arange(y, H)
        src = np.clip(2 * y - rows - 1, 0, H - 1)
        dist = (rows - y).astype(np.float32)  # float32 throughout: big arrays stay cheap
        dx = (np.sin(rows * 0.9) * 0.6 + np.sin(rows * 0.23 + 1.3) * 0.4) * ripple * (1 + dist / 80)
        cols = (np.arange(W)[None, :] + dx[:, None]).astype(int) % W
        refl = self.img[src[:, None], cols] * darken
        tc = np.array(hexc(tint), np.float32)
        t = (tint_amount + (1 - tint_amount) * 0.25 * dist / max(1, H - y))[:, None, None]
        t = t.astype(np.float32)
        out = refl + (tc - refl) * t
        # thin bright ripple lines
        lines = (np.sin(rows * 1.7 + np.sin(rows * 0.11) * 3) > 0.93).astype(np.float32)
        streak = (noise1d(self.rng, octaves=6, base=20) > 0.15).astype(np.float32)
        out += (lines[:, None] * streak[None, :] * 18)[:, :, None]
        if glint_x is not None:
            width = 30 + dist * 0.9
            xs = np.arange(W, dtype=np.float32)[None, :]
            band = np.exp(-(((xs - glint_x) / width[:, None]) ** 2))
            sparkle = self.rng.random((len(rows), W), dtype=np.float32) ** 6
            gl = (band * (0.35 + sparkle) * (np.sin(rows * 2.1) > -0.2)[:, None])
            gc = np.array(hexc(glint), np.float32)
            out += (gc - out) * np.clip(gl, 0, 1)[:, :, None] * 0.8
        self.img[y:] = out

    # -- finish -----------------------------------------------------------------------------

    def finish(self, path: Path, grain: float = 4.0, blur: float = 0.8) -> None:
        img = self.img
        np.clip(img, 0, 255, out=img)
        pic = Image.fromarray(img.astype(np.uint8), "RGB").filter(ImageFilter.GaussianBlur(blur))
        arr = np.asarray(pic, np.float32) * _vignette()
        dy, dx = (int(v) for v in self.rng.integers(0, GRAIN_PAD, 2))
        arr += _grain()[dy:dy + H, dx:dx + W] * grain
        np.clip(arr, 0, 255, out=arr)
        tmp = _tmp(path)
        Image.fromarray(arr.astype(np.uint8), "RGB").save(tmp, "JPEG", quality=90)
        os.replace(tmp, path)


# -- objects (painted into masks) ---------------------------------------------------------------


def pine(d: Draw, x: float, base: float, h: float) -> None:
    d.rectangle((x - h * 0.03, base - h * 0.15, x + h * 0.03, base + 4), fill=255)
    tiers = 4
    for i in range(tiers):
        top = base - h + i * h * 0.2
        bottom = base - h * 0.1 - (tiers - 1 - i) * h * 0.16
        half = h * (0.12 + 0.07 * i)
        d.polygon([(x, top), (x - half, bottom), (x + half, bottom)], fill=255)


def round_tree(d: Draw, x: float, base: float, h: float, rng: np.random.Generator) -> None:
    d.rectangle((x - h * 0.035, base - h * 0.5, x + h * 0.035, base + 4), fill=255)
    r = h * 0.27
    cy = base - h * 0.68
    d.ellipse((x - r, cy - r, x + r, cy + r), fill=255)
    for _ in range(3):
        ox, oy = rng.uniform(-r, r) * 0.6, rng.uniform(-r, r * 0.3) * 0.6
        rr = r * rng.uniform(0.55, 0.8)
        d.ellipse((x + ox - rr, cy + oy - rr, x + ox + rr, cy + oy + rr), fill=255)


def palm(d: Draw, x: float, base: float, h: float, lean: float) -> None:
    pts = []
    for i in range(13):
        u = i / 12
        pts.append((x + lean * h * u * u, base - h * u))
    for i in range(len(pts) - 1):
        wdt = int(h * (0.05 - 0.025 * i / 12)) + 2
        d.line((pts[i], pts[i + 1]), fill=255, width=wdt)
    tx, ty = pts[-1]
    for k in range(9):
        ang = -math.pi / 2 + (k - 4) * 0.42 + lean * 0.3
        length = h * (0.55 if k in (0, 8) else 0.62)
        spine = []
        for j in range(11):
            u = j / 10
            droop = u * u * length * 0.55
            spine.append((tx + math.cos(ang) * length * u,
                          ty + math.sin(ang) * length * u * 0.7 + droop))
        bulge = [h * 0.035 * math.sin(math.pi * j / 10) for j in range(len(spine))]
        upper = [(px, py - b) for (px, py), b in zip(spine, bulge, strict=True)]
        lower = [(px, py + b) for (px, py), b in zip(spine, bulge, strict=True)]
        d.polygon(upper + lower[::-1], fill=255)


def cactus(d: Draw, x: float, base: float, h: float, rng: np.random.Generator) -> None:
    w = h * 0.16
    d.rounded_rectangle((x - w / 2, base - h, x + w / 2, base + 4), radius=w / 2, fill=255)
    for side in (-1, 1):
        if rng.random() < 0.85:
            ay = base - h * rng.uniform(0.35, 0.6)
            ax = x + side * w * 1.3
            d.rounded_rectangle((min(x, ax) - w * 0.35, ay - w * 0.35, max(x, ax) + w * 0.35,
                                 ay + w * 0.35), radius=w * 0.35, fill=255)
            top = ay - h * rng.uniform(0.2, 0.35)
            d.rounded_rectangle((ax - w * 0.35, top, ax + w * 0.35, ay + w * 0.3),
                                radius=w * 0.35, fill=255)


def bare_tree(d: Draw, x: float, y: float, length: float, angle: float, width: float,
              depth: int, rng: np.random.Generator) -> None:
    x2 = x + math.cos(angle) * length
    y2 = y + math.sin(angle) * length
    d.line((x, y, x2, y2), fill=255, width=max(1, int(width)))
    if depth == 0:
        return
    for _ in range(2 if depth > 2 else 3):
        bare_tree(d, x2, y2, length * rng.uniform(0.6, 0.78), angle + rng.uniform(-0.6, 0.6),
                  width * 0.68, depth - 1, rng)


def house(d: Draw, win: Draw | None, x: float, base: float, w: float, h: float,
          rng: np.random.Generator) -> None:
    d.rectangle((x, base - h, x + w, base + 6), fill=255)
    roof = [(x - w * 0.12, base - h), (x + w / 2, base - h - w * 0.45), (x + w * 1.12, base - h)]
    d.polygon(roof, fill=255)
    if win is not None:
        for i in range(int(rng.integers(1, 3))):
            wx = x + w * (0.2 + 0.45 * i)
            if rng.random() < 0.8:
                win.rectangle((wx, base - h * 0.7, wx + w * 0.18, base - h * 0.4), fill=255)


def buildings(d: Draw, win: Draw | None, base: float, rng: np.random.Generator,
              hmin: float, hmax: float, wmin: float, wmax: float, lit: float) -> None:
    x = -20.0
    while x < W + 20:
        w = rng.uniform(wmin, wmax)
        h = rng.uniform(hmin, hmax) * (1.4 if rng.random() < 0.12 else 1.0)
        d.rectangle((x, base - h, x + w - 4, base + 10), fill=255)
        if rng.random() < 0.25:  # antenna or stepped top
            d.rectangle((x + w * 0.3, base - h - h * 0.12, x + w * 0.6, base - h), fill=255)
        if win is not None:
            step_x, step_y = max(10.0, w / 6), 26.0
            yy = base - h + 16
            while yy < base - 20:
                xx = x + 8
                while xx < x + w - 16:
                    if rng.random() < lit:
                        win.rectangle((xx, yy, xx + step_x * 0.45, yy + 10), fill=255)
                    xx += step_x
                yy += step_y
        x += w + rng.uniform(-2, 12)


def pines(points: list[tuple[float, float]], low: float, high: float,
          rng: np.random.Generator) -> Callable[[Draw], None]:
    """A painter of pine trees of random heights at ``points``."""
    def paint(d: Draw) -> None:
        for x, y in points:
            pine(d, x, y, rng.uniform(low, high))
    return paint


def trees(points: list[tuple[float, float]], low: float, high: float,
          rng: np.random.Generator, share: float = 1.0) -> Callable[[Draw], None]:
    """A painter of round trees at a random ``share`` of ``points``."""
    def paint(d: Draw) -> None:
        for x, y in points:
            if rng.random() < share:
                round_tree(d, x, y, rng.uniform(low, high), rng)
    return paint


def along(ridge: np.ndarray, rng: np.random.Generator, count: int, x_range: tuple[float, float],
          sink: float = 6.0) -> list[tuple[float, float]]:
    xs = np.sort(rng.uniform(x_range[0], x_range[1], count))
    return [(float(x), float(ridge[int(np.clip(x, 0, W - 1))]) + sink) for x in xs]


# -- the ten pictures ------------------------------------------------------------------------


def photo_sunset_range(c: Canvas) -> None:
    rng = c.rng
    c.sky([(0, "#1f2356"), (0.3, "#7a3f7e"), (0.5, "#e0677a"), (0.62, "#f9a65a"),
           (0.7, "#ffd899"), (1, "#ffd899")])
    c.sun(1180, 760, 70, "#fff3d6", "#ffb070", 420, 0.9)
    c.clouds(7, (180, 520), "#f6a1a0", 0.55, stretch=3.0, size=0.7, shade="#8a4a78")
    c.layer(mountains(rng, 820, 330), "#b46a8c", "#9a5c84", shade=0.25, facets=True)
    c.layer(mountains(rng, 900, 260), "#7f4677", "#6a3b6b", shade=0.3, facets=True)
    c.fog(900, 60, "#f3a58a", 0.25)
    mid = hills(rng, 1000, 160)
    c.layer(mid, "#4d2b5c", "#3c2350", shade=0.2)
    front = hills(rng, 1130, 130, bumps=2)
    c.stamp(lambda d: [pine(d, x, y, rng.uniform(60, 110)) for x, y in along(mid, rng, 40, (0, W))],
            "#3a2048")
    c.layer(front, "#2a1738", "#1b0f27")
    c.stamp(lambda d: [pine(d, x, y, rng.uniform(120, 240))
                       for x, y in along(front, rng, 26, (0, W), 10)], "#1a0d24")


def photo_alpine_lake(c: Canvas) -> None:
    rng = c.rng
    c.sky([(0, "#2f6fc4"), (0.3, "#6aa9e6"), (0.55, "#cfe9f7"), (1, "#e8f5fb")])
    c.sun(360, 200, 50, "#ffffff", "#fff8e0", 260, 0.7)
    c.clouds(6, (120, 420), "#ffffff", 0.9, stretch=1.6, size=1.1, shade="#b9c9dc")
    c.layer(mountains(rng, 640, 430, sharp=1.3), "#8e9db3", "#6d7f98", shade=0.4,
            snow=(470, "#f4f8fc"), shade_depth=500, facets=True)
    c.fog(640, 40, "#dbe9f3", 0.35)
    forest = hills(rng, 740, 90, bumps=3)
    c.layer(forest, "#3f6552", "#2f5142")
    c.stamp(pines(along(forest, rng, 140, (0, W)), 40, 85, rng), "#2c4d3d")
    c.water(790, "#2a6f8c", 0.35, ripple=2.5)
    shore = hills(rng, 1150, 60, bumps=2) + np.clip(np.arange(W) - 500, 0, None) ** 1.6 * 0.06
    c.layer(shore, "#314b2e", "#1f3320")
    c.stamp(lambda d: [pine(d, x, y, rng.uniform(160, 300))
                       for x, y in along(shore, rng, 9, (0, W * 0.4), 12)], "#17301f")


def photo_moon_town(c: Canvas) -> None:
    rng = c.rng
    c.sky([(0, "#040818"), (0.4, "#0f1c45"), (0.75, "#2a3c75"), (1, "#2a3c75")])
    c.sun(1460, 260, 62, "#f3f0dc", "#7f9cff", 320, 0.45, craters=5)
    c.stars(650, 820)
    c.clouds(4, (300, 600), "#3a4d86", 0.45, stretch=2.5, size=0.8)
    c.layer(hills(rng, 860, 200, bumps=2), "#1d2b58", "#172248", shade=0.1)
    town = hills(rng, 960, 110, bumps=2)
    c.layer(town, "#141d40", "#101835")
    lights = Image.new("L", (W, H), 0)
    wd = ImageDraw.Draw(lights)
    spots = along(town, rng, 26, (150, 1700), 14)

    def houses(d: Draw) -> None:
        for x, y in spots:
            house(d, wd, x, y, rng.uniform(50, 90), rng.uniform(40, 70), rng)

    c.stamp(houses, "#0f1630")
    c.paint_mask(lights, "#ffcb6b")
    c.fog(1010, 50, "#2c3d72", 0.3)
    front = hills(rng, 1150, 120, bumps=3)
    c.layer(front, "#0a1028", "#060a1a")
    c.stamp(lambda d: [round_tree(d, x, y, rng.uniform(110, 220), rng)
                       for x, y in along(front, rng, 14, (0, W), 12)], "#070c20")


def photo_desert(c: Canvas) -> None:
    rng = c.rng
    c.sky([(0, "#4f8cc9"), (0.35, "#a9cbe3"), (0.55, "#f4dcb0"), (1, "#f7c98a")])
    c.sun(1480, 520, 85, "#fff8e6", "#ffd08a", 360, 0.7)
    xs = np.arange(W)
    mesa = np.interp(xs, [0, 330, 430, 470, 1080, 1130, 1260, 1520, 1580, 1690, 1740, 1900, W],
                     [770, 762, 700, 600, 592, 610, 740, 745, 676, 672, 740, 766, 770])
    mesa += 6 * noise1d(rng, octaves=6, base=24)
    c.layer(mesa, "#c98b62", "#b07252", shade=0.45, shade_depth=500, strata=0.05)
    c.fog(730, 30, "#f2d2a6", 0.5)
    dunes = ((800, 90, "#ecbc84", "#dfa56c"), (900, 130, "#e2a867", "#d08f52"),
             (1050, 150, "#d38f50", "#b9733c"))
    for base, amp, top, bottom in dunes:
        ridge = base - amp * (0.6 * np.sin(np.arange(W) / rng.uniform(180, 320) + rng.uniform(0, 6))
                              + 0.4 * noise1d(rng, octaves=3, base=2))
        c.layer(ridge, top, bottom, shade=0.6, shade_depth=120)
    front = hills(rng, 1200, 110, bumps=2)
    c.layer(front, "#c27c42", "#a76532", shade=0.5)
    c.stamp(lambda d: [cactus(d, x, y, rng.uniform(120, 260), rng)
                       for x, y in along(front, rng, 5, (100, W - 100), 14)], "#4f6233")


def photo_misty_forest(c: Canvas) -> None:
    rng = c.rng
    c.sky([(0, "#a7b9b7"), (0.5, "#dfe6df"), (1, "#eef0e8")])
    c.sun(980, 360, 80, "#fbf8ea", "#ffffff", 400, 0.5)
    tones = [("#a3b5ab", 0.55), ("#7d9488", 0.5), ("#5a7264", 0.45), ("#3a5345", 0.4),
             ("#1f3428", 0.0)]
    for i, (colour, mist) in enumerate(tones):
        ridge = hills(rng, 620 + i * 140, 90 + 20 * i, bumps=3)
        c.layer(ridge, colour, colour)
        size = 60 + i * 45
        c.stamp(pines(along(ridge, rng, 90 - i * 14, (0, W)), size * 0.7, size * 1.3, rng), colour)
        if mist:
            c.fog(700 + i * 140, 70, "#eef0e8", mist)


def photo_city_dusk(c: Canvas) -> None:
    rng = c.rng
    c.sky([(0, "#17234f"), (0.35, "#5a4a8c"), (0.6, "#e7837a"), (0.78, "#ffc27a"), (1, "#ffc27a")])
    c.sun(640, 930, 85, "#fff0c8", "#ff9a6a", 420, 0.8)
    c.stars(120, 350)
    c.clouds(5, (250, 600), "#f29a94", 0.5, stretch=3.2, size=0.6, shade="#6a4f8c")
    c.stamp(lambda d: buildings(d, None, 960, rng, 120, 300, 60, 130, 0.0), "#6d5b8f")
    win = Image.new("L", (W, H), 0)
    c.stamp(lambda d: buildings(d, ImageDraw.Draw(win), 1000, rng, 160, 460, 90, 190, 0.3),
            "#241c3c")
    c.paint_mask(win, "#ffd27a")
    c.water(1000, "#2a2248", 0.35, ripple=3.5, glint_x=640, glint="#ffcf9a")


def photo_autumn_valley(c: Canvas) -> None:
    rng = c.rng
    c.sky([(0, "#5f9fd8"), (0.45, "#b9d8ee"), (0.7, "#f3e3c9"), (1, "#f3e3c9")])
    c.sun(1620, 280, 48, "#ffffff", "#fff2d0", 240, 0.6)
    c.clouds(8, (100, 480), "#ffffff", 0.85, stretch=1.4, size=1.0, shade="#c4cfe0")
    c.layer(mountains(rng, 760, 260), "#8d9fb5", "#7f93aa", shade=0.3, facets=True)
    mid = hills(rng, 860, 140, bumps=2)
    c.layer(mid, "#b9874a", "#a4733c", shade=0.3)
    spots = along(mid, rng, 60, (0, W))
    for colour in ("#d5582e", "#e89a30", "#b8442d"):
        c.stamp(trees(spots, 45, 80, rng, share=0.4), colour)
    roofs = along(mid, rng, 5, (700, 1200), 4)
    c.stamp(lambda d: [house(d, None, x, y, 46, 30, rng) for x, y in roofs], "#f2ead8")
    front = hills(rng, 1120, 160, bumps=2)
    c.layer(front, "#8a5a2a", "#5d3b1c", shade=0.2)
    fspots = along(front, rng, 14, (0, W), 14)
    for colour in ("#c0431f", "#e0862a"):
        c.stamp(lambda d, s=fspots: [round_tree(d, x, y, rng.uniform(150, 260), rng)
                                     for x, y in s if rng.random() < 0.5], colour)


def photo_seaside(c: Canvas) -> None:
    rng = c.rng
    horizon = 640
    c.sky([(0, "#3f86c8"), (0.4, "#9fd0ee"), (0.5, "#d8eef7"), (1, "#d8eef7")])
    c.sun(1320, 260, 55, "#ffffff", "#fff6da", 280, 0.6)
    c.clouds(5, (80, 400), "#ffffff", 0.8, stretch=2.0, size=0.9, shade="#c2d3e3")
    c.layer(np.full(W, horizon) - 60 * np.clip(noise1d(rng, 4, 3), 0, None)
            * (np.abs(np.arange(W) - 1500) < 250), "#7c9bb5", "#7c9bb5")
    ys, _ = _grid()
    sea_t = np.clip((ys[horizon:] - horizon) / (H - horizon), 0, 1)[:, :, None]
    c0, c1 = np.array(hexc("#3a8fbf"), np.float32), np.array(hexc("#0d4a73"), np.float32)
    c.img[horizon:] = c0 + (c1 - c0) * sea_t
    c.water(horizon, "#1d6fa3", 0.9, ripple=1.0, glint_x=1320, glint="#ffffff", darken=1.0)
    c.fog(horizon, 14, "#e8f4fa", 0.5)
    xs = np.arange(W)
    cliff = np.interp(xs, [0, 420, 560, 600, 640, 700, 760, 820, W],
                      [520, 528, 540, 600, 680, 760, 900, 1300, 1500])
    cliff += 10 * noise1d(rng, octaves=6, base=16)
    c.layer(cliff, "#78a34f", "#5f8a3e")  # grass on top
    rock = np.where(xs < 560, cliff + 22 + 6 * noise1d(rng, 6, 30), cliff + 4)
    c.layer(rock, "#b39d7a", "#6b583f", shade=0.5, shade_depth=400, strata=0.06)
    c.stamp(lambda d: (d.rectangle((300, 330, 350, 540), fill=255),
                       d.polygon([(292, 330), (325, 290), (358, 330)], fill=255)), "#f4f2ea")
    c.stamp(lambda d: [d.rectangle((300, y, 350, y + 26), fill=255) for y in (380, 450)], "#d2433a")
    c.stamp(lambda d: d.rectangle((306, 300, 344, 330), fill=255), "#ffe08a")


def photo_winter(c: Canvas) -> None:
    rng = c.rng
    c.sky([(0, "#8fb0d8"), (0.4, "#c9d7ea"), (0.62, "#f6e1e0"), (1, "#f6e1e0")])
    c.sun(520, 690, 60, "#fff6e8", "#ffd9c8", 380, 0.8)
    c.layer(mountains(rng, 760, 280), "#d9e2ee", "#c3cfe0", shade=0.2, facets=True)
    for i, base in enumerate((880, 1000, 1140)):
        ridge = hills(rng, base, 110 + 30 * i, bumps=2)
        if i == 1:
            c.stamp(lambda d, r=ridge: [pine(d, x, y, rng.uniform(70, 130))
                                       for x, y in along(r, rng, 30, (0, W))], "#2f4b52")
        c.layer(ridge, "#f4f7fb", "#d4deeb", shade=0.12, shade_depth=120)
        if i == 2:
            c.stamp(lambda d, r=ridge: [bare_tree(d, x, y, rng.uniform(70, 110), -math.pi / 2
                                                  + rng.uniform(-0.1, 0.1), 12, 6, rng)
                                       for x, y in along(r, rng, 5, (100, W - 100), 8)], "#3b3340")


def photo_lagoon_dawn(c: Canvas) -> None:
    rng = c.rng
    horizon = 760
    c.sky([(0, "#3a2f7a"), (0.3, "#9a4f93"), (0.5, "#ff7e86"), (0.6, "#ffc59a"), (1, "#ffc59a")])
    c.sun(960, horizon, 110, "#fff4d8", "#ffb07a", 460, 0.9)
    c.clouds(6, (150, 560), "#ff9aa0", 0.6, stretch=3.0, size=0.6, shade="#6a3f86")
    island = np.full(W, float(horizon + 2))
    for cx, wdt, h in ((260, 240, 90), (1560, 320, 130), (1800, 200, 60)):
        bump = h * np.exp(-(((np.arange(W) - cx) / wdt) ** 2) * 2.5)
        island = np.minimum(island, horizon - bump + 8 * noise1d(rng, 6, 10) * (bump > 4))
    c.layer(island, "#5b3568", "#4a2a58")
    c.stamp(lambda d: [palm(d, x, y + 2, rng.uniform(40, 70), rng.uniform(-0.3, 0.3))
                       for x, y in along(island, rng, 5, (1420, 1700), 0)], "#4a2a58")
    c.water(horizon, "#6a3f7a", 0.3, ripple=2.0, glint_x=960, glint="#ffe2b0")
    beach = np.where(np.arange(W) > 1180,
                     1130 - 140 * (np.clip(np.arange(W) - 1180, 0, None) / 740) ** 1.5, 1400)
    c.layer(beach, "#2a1b36", "#1a1022")
    c.stamp(lambda d: (palm(d, 1500, 1110, 420, -0.45), palm(d, 1700, 1060, 520, -0.3),
                       palm(d, 1850, 1000, 360, -0.15)), "#1a1022")


PHOTOS: list[Callable[[Canvas], None]] = [
    photo_sunset_range, photo_alpine_lake, photo_moon_town, photo_desert, photo_misty_forest,
    photo_city_dusk, photo_autumn_valley, photo_seaside, photo_winter, photo_lagoon_dawn,
]


def make_photo(index: int, path: Path) -> None:
    canvas = Canvas(seed=1000 + index)
    PHOTOS[index](canvas)
    canvas.finish(path)


# =========================================================================================
# Logo
# =========================================================================================


def make_logo(path: Path) -> None:
    k, size = 3, 400
    big = size * k
    yy, xx = np.mgrid[0:big, 0:big].astype(np.float32) / big
    t = np.clip((xx + yy) / 2, 0, 1)[:, :, None]
    c0, c1 = np.array(hexc("#ff7a18"), np.float32), np.array(hexc("#e0245e"), np.float32)
    fill = c0 + (c1 - c0) * t
    # a soft highlight in the upper-left
    highlight = np.exp(-(((xx - 0.3) ** 2 + (yy - 0.25) ** 2) / 0.05)) * 0.22
    fill += (255 - fill) * highlight[:, :, None]
    rect = (20 * k, 16 * k, 380 * k, 376 * k)
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).rounded_rectangle(rect, radius=88 * k, fill=255)
    shadow = Image.new("L", (big, big), 0)
    ImageDraw.Draw(shadow).rounded_rectangle((rect[0], rect[1] + 8 * k, rect[2], rect[3] + 8 * k),
                                             radius=88 * k, fill=110)
    shadow = shadow.filter(ImageFilter.GaussianBlur(7 * k))
    rgba = np.zeros((big, big, 4), np.float32)
    m = np.asarray(mask, np.float32)[:, :, None] / 255
    s = np.asarray(shadow, np.float32)[:, :, None] / 255
    alpha = m + s * (1 - m)
    rgba[:, :, :3] = fill * m / np.maximum(alpha, 1e-6)  # shadow is black: colour only from fill
    rgba[:, :, 3:] = alpha * 255
    img = Image.fromarray(np.clip(rgba, 0, 255).astype(np.uint8), "RGBA")
    try:
        font = ImageFont.truetype(str(FONT), 250 * k)
    except OSError:
        font = ImageFont.load_default(size=250 * k)
    # each mark on its own layer, composited: drawing translucent ink straight onto RGBA
    # would replace the badge's pixels instead of blending over them
    ring = Image.new("RGBA", img.size, (0, 0, 0, 0))
    ImageDraw.Draw(ring).rounded_rectangle(
        (rect[0] + 14 * k, rect[1] + 14 * k, rect[2] - 14 * k, rect[3] - 14 * k),
        radius=74 * k, outline=(255, 255, 255, 120), width=5 * k)
    bbox = ImageDraw.Draw(ring).textbbox((0, 0), "ff", font=font)
    cx, cy = (rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2
    pos = (cx - (bbox[0] + bbox[2]) / 2, cy - (bbox[1] + bbox[3]) / 2)
    drop = Image.new("RGBA", img.size, (0, 0, 0, 0))
    ImageDraw.Draw(drop).text((pos[0] + 3 * k, pos[1] + 6 * k), "ff", font=font,
                              fill=(120, 20, 40, 110))
    letters = Image.new("RGBA", img.size, (0, 0, 0, 0))
    ImageDraw.Draw(letters).text(pos, "ff", font=font, fill=(255, 255, 255, 255))
    for layer in (ring, drop, letters):
        img = Image.alpha_composite(img, layer)
    tmp = _tmp(path)
    img.resize((size, size), Image.LANCZOS).save(tmp, "PNG", optimize=True)
    os.replace(tmp, path)


# =========================================================================================
# Sound
# =========================================================================================

VOWELS = {  # first three formants (Hz) of a few vowels
    "a": (750, 1150, 2450), "e": (500, 1850, 2500), "i": (300, 2250, 2950),
    "o": (550, 850, 2400), "u": (330, 900, 2250), "ae": (660, 1700, 2400),
    "er": (490, 1350, 1700),
}


def _raised(n: int) -> np.ndarray:
    return (1 - np.cos(np.linspace(0, np.pi, max(n, 1)))) / 2


def synth_voice(seed: int, duration: float, f0_base: float) -> np.ndarray:
    """Speech-like sound: a harmonic source shaped by moving vowel formants, with syllable
    envelopes, consonant noise, intonation and pauses between words and phrases."""
    rng = np.random.default_rng(seed)
    n = int(duration * SR)
    t = np.arange(n) / SR
    scale = 1.0 if f0_base < 160 else 1.16  # higher voices have higher formants
    # -- when the syllables are
    lead, tail = 0.15, 0.3
    sylls: list[tuple[float, float, str, float]] = []
    pos, words, phrase = lead, 0, int(rng.integers(3, 6))
    fitted = 0  # syllables that fit before the tail
    while True:
        p = pos
        word = []
        for _ in range(int(rng.choice([1, 1, 2, 2, 3]))):
            d = rng.uniform(0.11, 0.24)
            word.append((p, p + d, str(rng.choice(list(VOWELS))), rng.uniform(0.55, 1.0)))
            p += d + rng.uniform(0.0, 0.025)
        sylls += word
        if p > duration - tail:
            break
        fitted = len(sylls)
        words += 1
        pos = p + rng.uniform(0.05, 0.11)
        if words >= phrase:
            pos += rng.uniform(0.22, 0.4)
            words, phrase = 0, int(rng.integers(3, 6))
    # speak a little faster or slower so that the voice ends just before the tail
    room = duration - tail - lead
    options = [sylls, sylls[:fitted]] if fitted else [sylls]
    sylls = min(options, key=lambda ss: abs(math.log(room / (ss[-1][1] - lead))))
    k = room / (sylls[-1][1] - lead)
    sylls = [(lead + (a - lead) * k, lead + (b - lead) * k, v, lv) for a, b, v, lv in sylls]
    # -- the amplitude envelope and consonants
    env = np.zeros(n, np.float32)
    noise = np.zeros(n, np.float32)
    white = rng.standard_normal(n).astype(np.float32)
    hiss = np.diff(white, prepend=0)  # crude high-pass: fricative-like
    for a, b, _, level in sylls:
        i0, i1 = int(a * SR), int(b * SR)
        length = i1 - i0
        att, rel = int(0.03 * SR), int(0.06 * SR)
        shape = np.ones(length, np.float32)
        shape[:att] = _raised(att)[:length][: min(att, length)]
        shape[-rel:] = _raised(rel)[::-1][-min(rel, length):]
        shape *= 1 - 0.25 * np.linspace(0, 1, length)  # syllables fade a little
        env[i0:i1] = np.maximum(env[i0:i1], shape * level)
        kind = rng.random()
        if kind < 0.35:  # fricative before the vowel
            c_len = int(rng.uniform(0.05, 0.1) * SR)
            c0 = max(0, i0 - c_len // 2)
            seg = hiss[c0:c0 + c_len]
            burst = seg * np.sin(np.linspace(0, np.pi, c_len))[: len(seg)]
            noise[c0:c0 + c_len] += burst * 0.08 * level
        elif kind < 0.7:  # plosive burst
            c_len = int(0.018 * SR)
            c0 = max(0, i0 - c_len)
            seg = white[c0:c0 + c_len]
            decay = np.exp(-np.linspace(0, 5, c_len))[: len(seg)]
            noise[c0:c0 + c_len] += seg * decay * 0.18 * level
    # -- pitch: declining over phrases, raised on stressed syllables, a little vibrato
    f0 = np.full(n, f0_base, np.float64) * (1.12 - 0.22 * t / duration)
    for a, b, _, level in sylls:
        mid, width = (a + b) / 2, (b - a) / 2
        f0 *= 1 + 0.09 * (level - 0.55) * np.exp(-(((t - mid) / width) ** 2))
    f0 *= 1 + 0.012 * np.sin(2 * np.pi * 5.2 * t) + 0.01 * np.sin(2 * np.pi * 1.3 * t + 1)
    phase = np.cumsum(2 * np.pi * f0 / SR)
    # -- formants move smoothly from vowel to vowel (control rate 1 kHz)
    step = SR // 1000
    tc = t[::step]
    centres = [(a + b) / 2 for a, b, _, _ in sylls] or [duration / 2]
    formants = [np.interp(tc, centres, [VOWELS[v][k] * scale for _, _, v, _ in sylls] or [500])
                for k in range(3)]
    f0c = f0[::step]
    gains, widths = (1.0, 0.55, 0.25), (110, 140, 190)
    voice = np.zeros(n, np.float32)
    n_harm = int(4200 / f0_base)
    for k in range(1, n_harm + 1):
        fk = k * f0c
        peaks = zip(gains, formants, widths, strict=True)
        amp = sum(g * np.exp(-0.5 * ((fk - f) / w) ** 2) for g, f, w in peaks)
        amp = (amp + 0.04) / k**0.35
        amp_s = np.interp(t, tc, amp).astype(np.float32)
        voice += amp_s * np.sin((k * phase) % (2 * np.pi)).astype(np.float32)
    voice /= max(1e-6, float(np.abs(voice).max()))
    out = voice * env + noise + white * env * 0.006
    # a hint of room: two faint early reflections
    for delay, gain in ((0.013, 0.18), (0.029, 0.1)):
        d = int(delay * SR)
        out[d:] += out[:-d] * gain
    return (out / max(1e-6, float(np.abs(out).max())) * 0.7).astype(np.float32)


def _note_hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def synth_music(seed: int, duration: float = 20.0) -> np.ndarray:
    """A gentle I-vi-IV-V progression in C: pad, bass, arpeggio, soft shaker. Stereo."""
    rng = np.random.default_rng(seed)
    n = int(duration * SR)
    left = np.zeros(n, np.float32)
    right = np.zeros(n, np.float32)

    def add(start: float, length: float, freq: float, env: np.ndarray, partials: list[float],
            gain: float, pan: float, detune: float = 0.0) -> None:
        i0 = int(start * SR)
        m = min(len(env), n - i0)
        if m <= 0:
            return
        tt = np.arange(m, dtype=np.float32) / SR
        shaped = (env[:m] * gain / 2).astype(np.float32)

        def wave(f: float) -> np.ndarray:
            return sum(p * np.sin((2 * np.pi * f * (j + 1)) * tt + j)
                       for j, p in enumerate(partials) if p) * shaped

        mono = None if detune else wave(freq)
        for side, out, sign in ((1 - pan, left, -1), (1 + pan, right, 1)):
            w = mono if mono is not None else wave(freq * (1 + sign * detune))
            out[i0:i0 + m] += w * side

    chord_len, beat = 2.5, 0.625
    chords = [([60, 64, 67], 48), ([60, 64, 69], 45), ([60, 65, 69], 41), ([59, 62, 67], 43)] * 2
    for ci, (notes, root) in enumerate(chords):
        start = ci * chord_len
        # pad: slow attack, long release overlapping the next chord
        length = chord_len + 0.9
        m = int(length * SR)
        tt = np.arange(m) / SR
        env = np.minimum(1, tt / 0.45) * np.clip((length - tt) / 0.9, 0, 1) ** 1.5
        for note in notes:
            add(start, length, _note_hz(note), env, [1, 0.35, 0.12, 0.05], 0.075, 0.0,
                detune=0.0018)
        # bass: root on beats 1 and 3, octave on the "and" of 4
        for b_off, b_note, b_gain in ((0, root, 0.26), (2, root, 0.2), (3.5, root + 12, 0.12)):
            m = int(1.2 * SR)
            tt = np.arange(m) / SR
            env = np.minimum(1, tt / 0.008) * np.exp(-tt * 2.8)
            add(start + b_off * beat, 1.2, _note_hz(b_note), env, [1, 0.4, 0.1], b_gain, 0.0)
        # arpeggio from the second chord on, eighth notes, alternating sides
        if ci >= 1:
            pattern = [0, 1, 2, 1, 0, 2, 1, 2] if ci % 2 else [0, 2, 1, 2, 0, 1, 2, 1]
            for j, idx in enumerate(pattern):
                m = int(0.9 * SR)
                tt = np.arange(m) / SR
                env = np.minimum(1, tt / 0.005) * np.exp(-tt * 6.5)
                add(start + j * beat / 2, 0.9, _note_hz(notes[idx] + 12), env, [1, 0.0, 0.18, 0.06],
                    0.085 * (1.0 if j % 2 == 0 else 0.8), 0.45 if j % 2 else -0.45)
        # soft shaker on the off-beats from the third chord on
        if ci >= 2:
            for j in range(4):
                m = int(0.06 * SR)
                hit = np.diff(rng.standard_normal(m + 1)).astype(np.float32)
                env = np.exp(-np.arange(m) / SR * 70)
                i0 = int((start + j * beat + beat / 2) * SR)
                left[i0:i0 + m] += (hit * env * 0.018)[: n - i0]
                right[i0:i0 + m] += (hit * env * 0.022)[: n - i0]
    stereo = np.stack([left, right], axis=1)
    fade_in, fade_out = int(0.2 * SR), int(1.2 * SR)
    stereo[:fade_in] *= np.linspace(0, 1, fade_in)[:, None]
    stereo[-fade_out:] *= np.linspace(1, 0, fade_out)[:, None] ** 2
    return (stereo / max(1e-6, float(np.abs(stereo).max())) * 0.8).astype(np.float32)


def encode_audio(samples: np.ndarray, path: Path, bitrate: str) -> None:
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    tmp = _tmp(path)
    run_ffmpeg(["-f", "f32le", "-ar", str(SR), "-ac", str(channels), "-i", "pipe:0",
                "-c:a", "aac", "-b:a", bitrate, "-ar", str(SR), "-map_metadata", "-1",
                "-fflags", "+bitexact", "-flags:a", "+bitexact", "-movflags", "+faststart",
                str(tmp)], stdin=samples.astype("<f4").tobytes())
    os.replace(tmp, path)


VOICES = [  # (length in seconds, pitch in Hz)
    (3.2, 118.0), (4.1, 205.0), (2.7, 132.0), (4.8, 190.0), (3.6, 112.0),
]


def make_voice(index: int, path: Path) -> None:
    length, pitch = VOICES[index]
    encode_audio(synth_voice(2000 + index, length, pitch), path, "96k")


def make_music(path: Path) -> None:
    encode_audio(synth_music(3000), path, "160k")


# =========================================================================================
# Video and captions
# =========================================================================================


def make_clip(path: Path) -> None:
    tmp = _tmp(path)
    run_ffmpeg([
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=8",
        "-f", "lavfi", "-i", "sine=frequency=330:beep_factor=3:sample_rate=48000:duration=8",
        "-filter:a", "volume=0.35",
        "-c:v", "libx264", "-preset", "superfast", "-crf", "25", "-pix_fmt", "yuv420p",
        "-g", "30", "-c:a", "aac", "-b:a", "96k", "-ac", "2", "-shortest",
        "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
        "-flags:a", "+bitexact", "-movflags", "+faststart", str(tmp),
    ])
    os.replace(tmp, path)


CUES = [
    (0.3, 2.1, "Wait… did you just render\nthat whole video in Python?"),
    (2.3, 4.2, "Every frame. Text, video,\ncaptions, music — all of it."),
    (4.4, 6.2, "And splitting it across\nmachines gives the same pixels?"),
    (6.4, 7.9, "Down to the last one.\nFollow for part two!"),
]


def _stamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def make_srt(path: Path) -> None:
    blocks = [f"{i}\n{_stamp(a, ',')} --> {_stamp(b, ',')}\n{text}\n"
              for i, (a, b, text) in enumerate(CUES, 1)]
    path.write_text("\n".join(blocks), encoding="utf-8")


def make_vtt(path: Path) -> None:
    blocks = [f"{_stamp(a, '.')} --> {_stamp(b, '.')}\n{text}\n" for a, b, text in CUES]
    path.write_text("WEBVTT\n\n" + "\n".join(blocks), encoding="utf-8")


# =========================================================================================


def jobs() -> list[tuple[str, Callable[[Path], None]]]:
    out: list[tuple[str, Callable[[Path], None]]] = [("clip.mp4", make_clip)]
    out += [(f"vo{i + 1:02d}.m4a", functools.partial(make_voice, i)) for i in range(len(VOICES))]
    out.append(("music.m4a", make_music))
    out += [(f"photo{i + 1:02d}.jpg", functools.partial(make_photo, i)) for i in range(len(PHOTOS))]
    out += [("logo.png", make_logo), ("captions.srt", make_srt), ("captions.vtt", make_vtt)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"where to write the media (default: {DEFAULT_OUT})")
    parser.add_argument("--force", action="store_true", help="remake files that already exist")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    todo = [(name, fn) for name, fn in jobs() if args.force or not (out / name).exists()]
    if not todo:
        if not args.quiet:
            print(f"{out}: all {len(jobs())} files present (use --force to remake them)")
        return 0
    begin = time.perf_counter()
    failed = 0
    workers = max(2, os.cpu_count() or 2)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_timed, fn, out / name): name for name, fn in todo}
        for future in concurrent.futures.as_completed(futures):
            name = futures[future]
            try:
                took = future.result()
            except Exception as exc:  # report every failure, not just the first
                failed += 1
                _tmp(out / name).unlink(missing_ok=True)
                print(f"FAILED {name}: {exc}", file=sys.stderr)
                continue
            if not args.quiet:
                print(f"  {name:14s} {took:5.2f} s")
    if not args.quiet:
        print(f"{len(todo) - failed} file(s) written to {out} in "
              f"{time.perf_counter() - begin:.1f} s")
    return 1 if failed else 0


def _timed(fn: Callable[[Path], None], path: Path) -> float:
    t0 = time.perf_counter()
    fn(path)
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())

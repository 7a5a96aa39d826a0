"""Bitmaps and the one drawing operation: warp a bitmap onto the canvas and blend it.

Canvases are RGB ``uint8`` arrays (height, width, 3). A :class:`Bitmap` is RGB (opaque)
or RGBA with *premultiplied* alpha, so bilinear resampling of edges stays correct.
Every per-pixel operation is one OpenCV or NumPy call: Python only chooses them.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
import weakref
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from framefarm import errors, media

Array = npt.NDArray[np.uint8]
Matrix = npt.NDArray[np.float64]  # 2x3 affine, source pixel -> canvas pixel

# The compositor's fast paths: sprites trimmed to their visible pixels and blended with
# planes prepared once; no background fill under a still that covers the whole frame.
# False gives the plain path (whole sprites, planes made per draw, the background always
# filled), which must give the same pixels: tests/integration/test_pixel_paths.py
# compares the two.
FAST_PATHS = True


@dataclasses.dataclass(frozen=True)
class Bitmap:
    pixels: Array

    @property
    def opaque(self) -> bool:
        return bool(self.pixels.shape[2] == 3)

    @functools.cached_property
    def rgbx(self) -> Array:
        """An opaque bitmap with a fourth, unused channel, made on first use: OpenCV
        resamples four channels about three times as fast as three (SIMD), with the
        same RGB values."""
        return as_u8(cv2.cvtColor(self.pixels, cv2.COLOR_RGB2RGBA))

    @functools.cached_property
    def colour(self) -> Array:
        """A premultiplied bitmap's colour channels, contiguous (made once, not per draw)."""
        return np.ascontiguousarray(self.pixels[:, :, :3])

    @functools.cached_property
    def inverse(self) -> Array:
        """255 - alpha on three channels: what a full-opacity draw multiplies the canvas by."""
        return as_u8(cv2.merge([255 - self.pixels[:, :, 3]] * 3))

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def from_pil(image: Image.Image) -> Bitmap:
    """A Pillow image as a Bitmap; RGBA is premultiplied once here."""
    if image.mode == "RGBA":
        arr = np.asarray(image, dtype=np.uint8)
        if int(arr[:, :, 3].min()) == 255:
            return Bitmap(np.ascontiguousarray(arr[:, :, :3]))
        alpha = arr[:, :, 3:4].astype(np.uint16)
        rgb = (arr[:, :, :3].astype(np.uint16) * alpha + 127) // 255
        return Bitmap(np.concatenate([rgb.astype(np.uint8), arr[:, :, 3:4]], axis=2))
    return Bitmap(np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8)))


def trimmed(bitmap: Bitmap, offset: Matrix) -> tuple[Bitmap, Matrix]:
    """A sprite cut to its visible pixels (plus a transparent pixel each side, so bilinear
    edges sample the same zeros), with ``offset`` moved to match: the same pixels drawn,
    fewer blended. Text boxes are mostly transparent (a title spans 90% of the frame)."""
    if bitmap.opaque or not FAST_PATHS:
        return bitmap, offset
    rows = np.flatnonzero(bitmap.pixels[:, :, 3].any(axis=1))
    cols = np.flatnonzero(bitmap.pixels[:, :, 3].any(axis=0))
    if rows.size == 0:
        return Bitmap(np.zeros((1, 1, 4), np.uint8)), offset
    y0, y1 = max(0, int(rows[0]) - 1), min(bitmap.height, int(rows[-1]) + 2)
    x0, x1 = max(0, int(cols[0]) - 1), min(bitmap.width, int(cols[-1]) + 2)
    if (x0, y0, x1, y1) == (0, 0, bitmap.width, bitmap.height):
        return bitmap, offset
    cut = Bitmap(np.ascontiguousarray(bitmap.pixels[y0:y1, x0:x1]))
    return cut, compose(offset, affine(1, 1, x0, y0))


def load_image(path: Path, max_side: float | None = None) -> Bitmap:
    """Decode a still once (EXIF orientation applied), shrunk with area averaging so
    that its longer side is at most ``max_side``: later warps then never minify much.

    A big still is decoded straight to about the size needed (JPEG draft mode, else an
    integer box reduction right after decoding), so its full-size pixels are never
    converted or copied. Threads of one process (the chunks of a render) that ask for the
    same still at the same size share one decoded copy."""
    try:
        stamp = path.stat()
    except OSError as exc:
        raise errors.AssetError(f"{path.name}: cannot be read ({exc.strerror})") from exc
    key = (str(path), stamp.st_mtime_ns, stamp.st_size, round(max_side or 0.0))
    with _cache_lock:
        lock = _loading.setdefault(key, threading.Lock())
    with lock:  # a second thread waits for the first one's decode instead of repeating it
        found = _cache.get(key)
        if found is None:
            found = _decode(path, max_side)
            _cache[key] = found
    with _cache_lock:
        _loading.pop(key, None)
    return found


_cache: weakref.WeakValueDictionary[tuple[str, int, int, int], Bitmap] = (
    weakref.WeakValueDictionary())  # held only while some renderer uses it
_loading: dict[tuple[str, int, int, int], threading.Lock] = {}
_cache_lock = threading.Lock()


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "P", "PA", "La", "RGBa")


def _decode(path: Path, max_side: float | None) -> Bitmap:
    try:
        with media.open_still(path) as opened:
            longer = max(opened.size)
            if max_side and longer > max_side * 1.05:
                k = max_side / longer
                # JPEG: decode at 1/2, 1/4 or 1/8 scale, never below the size asked for.
                opened.draft("RGB" if opened.mode == "RGB" else None,
                             (math.ceil(opened.width * k), math.ceil(opened.height * k)))
                factor = int(max(opened.size) / max_side)
                source: Image.Image = opened
                if source.mode not in ("RGB", "RGBA", "L", "LA"):  # reduce() takes these
                    source = opened.convert("RGBA" if _has_alpha(opened) else "RGB")
                image = source.reduce(factor) if factor >= 2 else source.copy()
            else:
                image = opened.copy()
        upright = ImageOps.exif_transpose(image)
        rgba = _has_alpha(upright)
        bitmap = from_pil(upright.convert("RGBA" if rgba else "RGB"))
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise errors.AssetError(f"{path.name}: cannot be decoded as an image ({exc})") from exc
    if max_side and max(bitmap.width, bitmap.height) > max_side * 1.05:
        k = max_side / max(bitmap.width, bitmap.height)
        size = (max(1, round(bitmap.width * k)), max(1, round(bitmap.height * k)))
        bitmap = Bitmap(as_u8(cv2.resize(bitmap.pixels, size, interpolation=cv2.INTER_AREA)))
    return bitmap


def as_u8(pixels: object) -> Array:
    """OpenCV's type stubs describe results loosely; the images here are all uint8."""
    return pixels  # type: ignore[return-value]


def parse_color(value: str) -> tuple[int, int, int, int]:
    """'#rgb', '#rgba', '#rrggbb' or '#rrggbbaa' -> (r, g, b, a)."""
    h = value.lstrip("#")
    if len(h) in (3, 4):
        h = "".join(c * 2 for c in h)
    if len(h) == 6:
        h += "ff"
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), int(h[6:8], 16)


def affine(
    scale_x: float, scale_y: float, tx: float, ty: float
) -> Matrix:
    return np.array([[scale_x, 0.0, tx], [0.0, scale_y, ty]], dtype=np.float64)


def compose(outer: Matrix, inner: Matrix) -> Matrix:
    """outer ∘ inner for 2x3 affine matrices."""
    o = np.vstack([outer, [0.0, 0.0, 1.0]])
    i = np.vstack([inner, [0.0, 0.0, 1.0]])
    out: Matrix = (o @ i)[:2]
    return out


def _bounds(matrix: Matrix, width: int, height: int) -> tuple[float, float, float, float]:
    corners = np.array([[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]], float)
    pts = corners @ matrix.T
    return pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()


def draw(canvas: Array, bitmap: Bitmap, matrix: Matrix, opacity: float = 1.0) -> None:
    """Warp ``bitmap`` by ``matrix`` onto ``canvas`` (bilinear, sub-pixel) and blend it."""
    if opacity <= 0.0:
        return
    left, top, right, bottom = _bounds(matrix, bitmap.width, bitmap.height)
    x0, y0 = max(0, math.floor(left)), max(0, math.floor(top))
    x1 = min(canvas.shape[1], math.ceil(right))
    y1 = min(canvas.shape[0], math.ceil(bottom))
    if x1 <= x0 or y1 <= y0:
        return
    local = _centred(matrix)
    local[0, 2] -= x0
    local[1, 2] -= y0
    roi = canvas[y0:y1, x0:x1]
    size = (x1 - x0, y1 - y0)
    if _is_whole_pixel_shift(local):
        # Unscaled and on the pixel grid (most text): a slice, no resampling.
        dx, dy = round(float(-local[0, 2])), round(float(-local[1, 2]))
        window = (slice(dy, dy + size[1]), slice(dx, dx + size[0]))
        source = bitmap.pixels[window]
        if source.shape[:2] == roi.shape[:2]:
            if bitmap.opaque:
                if opacity >= 1.0:
                    roi[:] = source
                else:
                    cv2.addWeighted(source, opacity, roi, 1.0 - opacity, 0.0, dst=roi)
            elif opacity >= 1.0 and FAST_PATHS:  # the sprite's planes, made once
                kept = cv2.multiply(roi, bitmap.inverse[window], scale=1 / 255)
                cv2.add(kept, bitmap.colour[window], dst=roi)
            else:
                blend_premultiplied(roi, source, opacity)
            return
    if bitmap.opaque:
        # Axis-aligned: the ROI is exactly the bitmap's footprint, so replicating its edge
        # avoids a seam of background at fractional borders. Rotated: leave the canvas
        # outside the source untouched.
        upright = matrix[0, 1] == 0.0 and matrix[1, 0] == 0.0
        border = cv2.BORDER_REPLICATE if upright else cv2.BORDER_TRANSPARENT
        # Transparent borders keep what the destination holds: start from the canvas.
        warped = None if upright else cv2.cvtColor(roi, cv2.COLOR_RGB2RGBA)
        warped = cv2.warpAffine(bitmap.rgbx, local, size, dst=warped,
                                flags=cv2.INTER_LINEAR, borderMode=border)
        if opacity >= 1.0:
            cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB, dst=roi)
        else:
            patch = cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB)
            cv2.addWeighted(patch, opacity, roi, 1.0 - opacity, 0.0, dst=roi)
        return
    blend_premultiplied(roi, _warp(bitmap.pixels, local, size), opacity)


def _is_whole_pixel_shift(matrix: Matrix) -> bool:
    return bool(
        matrix[0, 0] == 1.0 and matrix[1, 1] == 1.0 and matrix[0, 1] == 0.0
        and matrix[1, 0] == 0.0 and matrix[0, 2] <= 0 and matrix[1, 2] <= 0
        and abs(matrix[0, 2] - round(matrix[0, 2])) < 1e-6
        and abs(matrix[1, 2] - round(matrix[1, 2])) < 1e-6
    )


def _centred(matrix: Matrix) -> Matrix:
    """The matrix maps continuous coordinates (pixel edges at integers); OpenCV samples at
    pixel centres, so shift by half a pixel on both sides."""
    local = matrix.copy()
    local[:, 2] += local[:, :2].sum(axis=1) * 0.5 - 0.5
    return local


def _warp(pixels: Array, local: Matrix, size: tuple[int, int]) -> Array:
    return as_u8(cv2.warpAffine(pixels, local, size, flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0)))


def warp_rgba(pixels: Array, matrix: Matrix, size: tuple[int, int]) -> Array:
    """Warp premultiplied RGBA into a new transparent image of ``size`` (width, height)."""
    return _warp(pixels, _centred(matrix), size)


def blend_premultiplied(roi: Array, patch: Array, opacity: float = 1.0) -> None:
    """roi = patch * opacity + roi * (1 - alpha * opacity), in place (saturating uint8)."""
    alpha = patch[:, :, 3]
    colour = patch[:, :, :3]
    if opacity < 1.0:
        alpha = as_u8(cv2.convertScaleAbs(alpha, alpha=opacity))
        colour = as_u8(cv2.convertScaleAbs(colour, alpha=opacity))
    inverse = cv2.merge([255 - alpha] * 3)
    kept = cv2.multiply(roi, inverse, scale=1 / 255)
    cv2.add(kept, np.ascontiguousarray(colour), dst=roi)


def fit_matrix(
    src_w: int, src_h: int, box: tuple[float, float, float, float], fit: str, zoom: float = 1.0,
    focus: tuple[float, float] = (0.5, 0.5),
) -> Matrix:
    """Map a source of src_w x src_h into ``box`` (x, y, w, h) by cover/contain/fill.

    ``zoom`` > 1 magnifies around a point; ``focus`` (0..1 each) says which part of the
    free room the view sits on, so moving it pans without ever showing an edge.
    """
    bx, by, bw, bh = box
    if fit == "fill":
        sx, sy = bw / src_w, bh / src_h
    else:
        pick = max if fit == "cover" else min
        sx = sy = pick(bw / src_w, bh / src_h)
    sx, sy = sx * zoom, sy * zoom
    shown_w, shown_h = src_w * sx, src_h * sy
    # Free room: how far the scaled source overhangs the box (negative when it is smaller,
    # in which case it is centred, as contain expects).
    room_x, room_y = shown_w - bw, shown_h - bh
    tx = bx - (room_x * focus[0] if room_x > 0 else room_x / 2)
    ty = by - (room_y * focus[1] if room_y > 0 else room_y / 2)
    return affine(sx, sy, tx, ty)

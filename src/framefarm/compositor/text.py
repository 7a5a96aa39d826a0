"""Text rasterised once with Pillow (libraqm shapes Arabic-script, Hebrew and Indic text).

The result is an RGBA sprite that the compositor only moves, scales and blends.
"""

from __future__ import annotations

import dataclasses
import functools
import unicodedata
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont, features

from framefarm import errors
from framefarm.compositor.bitmap import parse_color
from framefarm.document import models

_FONT_DIR = resources.files("framefarm") / "fonts"
BUNDLED: dict[str, dict[str, str]] = {
    "Inter": {"normal": "Inter-Regular.otf", "bold": "Inter-Bold.otf"},
    "Noto Sans Arabic": {"normal": "NotoSansArabic-Regular.ttf",
                         "bold": "NotoSansArabic-Bold.ttf"},
    "Noto Sans Hebrew": {"normal": "NotoSansHebrew-Regular.ttf",
                         "bold": "NotoSansHebrew-Bold.ttf"},
    "Noto Sans Devanagari": {"normal": "NotoSansDevanagari-Regular.ttf",
                             "bold": "NotoSansDevanagari-Bold.ttf"},
}
# Unicode ranges -> the bundled family that covers them, for font "auto".
_SCRIPTS = (
    ("Noto Sans Arabic", ((0x0600, 0x06FF), (0x0750, 0x077F), (0x08A0, 0x08FF),
                          (0xFB50, 0xFDFF), (0xFE70, 0xFEFF))),
    ("Noto Sans Hebrew", ((0x0590, 0x05FF), (0xFB1D, 0xFB4F))),
    ("Noto Sans Devanagari", ((0x0900, 0x097F), (0xA8E0, 0xA8FF))),
)


def script_family(text: str) -> str:
    """The bundled family for the first non-Latin script found in ``text``, else Inter."""
    for ch in text:
        code = ord(ch)
        for family, ranges in _SCRIPTS:
            if any(lo <= code <= hi for lo, hi in ranges):
                return family
    return "Inter"


def needs_complex_layout(text: str) -> bool:
    """Right-to-left or shaped scripts, which basic layout would render wrongly."""
    return any(unicodedata.bidirectional(ch) in _RTL_CLASSES for ch in text) or (
        script_family(text) == "Noto Sans Devanagari"
    )


_RTL_CLASSES = ("R", "AL")


def paragraph_direction(text: str, direction: str = "auto") -> str:
    """``ltr`` or ``rtl`` for a paragraph: as given, or for ``auto`` right-to-left when most
    of its strong characters (bidi classes R and AL against L) are of a right-to-left
    script. First-strong detection would lay out "Render ویدیو 4K" left to right."""
    if direction != "auto":
        return direction
    rtl = ltr = 0
    for ch in text:
        kind = unicodedata.bidirectional(ch)
        if kind in _RTL_CLASSES:
            rtl += 1
        elif kind == "L":
            ltr += 1
    return "rtl" if rtl > ltr else "ltr"


@functools.cache
def has_raqm() -> bool:
    return bool(features.check("raqm"))


class FontBook:
    """Font families: the bundled ones plus those a document declares by file."""

    def __init__(self, declared: Mapping[tuple[str, models.Weight], Path] | None = None) -> None:
        self._declared = dict(declared or {})

    def path(self, family: str, weight: str) -> str:
        keys: tuple[tuple[str, models.Weight], ...] = ((family, "bold"), (family, "normal"))
        for key in keys if weight == "bold" else keys[1:]:
            if key in self._declared:
                return str(self._declared[key])
        files = BUNDLED.get(family)
        if files is None:
            known = sorted({f for f, _ in self._declared} | set(BUNDLED))
            raise errors.DocumentError(
                f"font {family!r} is not bundled or declared in 'fonts' (known: "
                + ", ".join(known) + ")"
            )
        return str(_FONT_DIR / files.get(weight, files["normal"]))

    def font(self, family: str, weight: str, size: int) -> ImageFont.FreeTypeFont:
        return _load_font(self.path(family, weight), size)


@functools.lru_cache(maxsize=64)
def _load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    engine = ImageFont.Layout.RAQM if has_raqm() else ImageFont.Layout.BASIC
    return ImageFont.truetype(path, size, layout_engine=engine)


@dataclasses.dataclass(frozen=True)
class RenderedText:
    image: Image.Image  # RGBA, the box plus ``margin`` on every side
    margin: int
    box: tuple[int, int]  # the box the text was laid out in (width, height)


@dataclasses.dataclass(frozen=True)
class Line:
    text: str
    direction: str  # "ltr" or "rtl": its paragraph's


def _direction_arg(direction: str) -> str | None:
    # Only raqm takes a direction; basic layout (Latin-only text) is left to right anyway.
    return direction if has_raqm() else None


def wrap(text: str, font: ImageFont.FreeTypeFont, width: float,
         direction: str = "auto") -> list[Line]:
    """Greedy word wrap by measured width; a word longer than the box gets its own line.
    Every line keeps its paragraph's direction (``direction``, or detected per paragraph)."""
    lines: list[Line] = []
    for paragraph in text.split("\n"):
        way = paragraph_direction(paragraph, direction)
        words = paragraph.replace("\t", " ").split(" ")
        line = ""
        for word in words:
            candidate = f"{line} {word}" if line else word
            if not line or font.getlength(candidate, direction=_direction_arg(way)) <= width:
                line = candidate
            else:
                lines.append(Line(line, way))
                line = word
        lines.append(Line(line, way))
    return lines


def measure(text: str, style: models.TextStyle, fonts: FontBook, width: float) -> tuple[int, int]:
    """The height the wrapped text needs inside a box ``width`` wide."""
    font = _style_font(text, style, fonts)
    lines = wrap(text, font, width - 2 * _pad(style), style.direction)
    return int(width), round(len(lines) * style.size * style.line_height + 2 * _pad(style))


def _pad(style: models.TextStyle) -> float:
    return style.background.padding if style.background else 0.0


def check(text: str, style: models.TextStyle, fonts: FontBook) -> None:
    """Raise what :func:`render` would for the font or the shaping, without rendering."""
    _style_font(text, style, fonts)


def _style_font(text: str, style: models.TextStyle, fonts: FontBook) -> ImageFont.FreeTypeFont:
    family = script_family(text) if style.font == "auto" else style.font
    if needs_complex_layout(text) and not has_raqm():
        raise errors.RenderError(
            "this text needs libraqm for right-to-left or complex-script shaping, and Pillow "
            "cannot load it here (install the system's libfribidi, e.g. Debian's libfribidi0)"
        )
    return fonts.font(family, style.weight, max(1, round(style.size)))


def render(
    text: str, style: models.TextStyle, fonts: FontBook, box: tuple[int, int],
    highlight: models.TextHighlight | None = None,
) -> RenderedText:
    width, height = box
    font = _style_font(text, style, fonts)
    pad = _pad(style)
    lines = wrap(text, font, width - 2 * pad, style.direction)
    line_h = style.size * style.line_height
    block_h = line_h * len(lines)
    shadow = style.shadow
    ascent, descent = font.getmetrics()
    # Glyphs may reach past a tight line box (tall Arabic ascenders, descenders).
    overhang = max(0.0, ascent + descent - line_h) / 2
    margin = int(style.stroke_width + 2 + overhang + (
        max(abs(shadow.offset[0]), abs(shadow.offset[1])) + 2 * shadow.blur if shadow else 0))
    canvas_size = (width + 2 * margin, height + 2 * margin)

    top = {"top": pad, "middle": (height - block_h) / 2, "bottom": height - pad - block_h}[
        style.valign]
    placed: list[tuple[float, float, Line, float]] = []
    for i, line in enumerate(lines):
        line_w = font.getlength(line.text, direction=_direction_arg(line.direction))
        x = {"left": pad, "center": (width - line_w) / 2, "right": width - pad - line_w}[
            style.align]
        y = top + i * line_h + (line_h - (ascent + descent)) / 2
        placed.append((x + margin, y + margin, line, line_w))

    out = Image.new("RGBA", canvas_size, (0, 0, 0, 0))
    if style.background and lines:
        left = min(p[0] for p in placed) - pad
        right = max(p[0] + p[3] for p in placed) + pad
        ImageDraw.Draw(out).rounded_rectangle(
            (left, top + margin - pad, right, top + margin + block_h + pad),
            radius=style.background.radius, fill=parse_color(style.background.color))
    stroke = round(style.stroke_width)
    if shadow:
        layer = Image.new("RGBA", canvas_size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        colour = parse_color(shadow.color)
        for x, y, line, _ in placed:
            draw.text((x + shadow.offset[0], y + shadow.offset[1]), line.text, font=font,
                      fill=colour, stroke_width=stroke, stroke_fill=colour,
                      direction=_direction_arg(line.direction))
        if shadow.blur:
            layer = layer.filter(ImageFilter.GaussianBlur(shadow.blur / 2))
        out = Image.alpha_composite(out, layer)
    draw = ImageDraw.Draw(out)
    for x, y, line, _ in placed:
        draw.text((x, y), line.text, font=font, fill=parse_color(style.color),
                  stroke_width=stroke, stroke_fill=parse_color(style.stroke_color),
                  direction=_direction_arg(line.direction))
    if highlight is not None:
        _highlight(draw, placed, font, style, highlight)
    return RenderedText(out, margin, box)


def _highlight(draw: ImageDraw.ImageDraw, placed: list[tuple[float, float, Line, float]],
               font: ImageFont.FreeTypeFont, style: models.TextStyle,
               highlight: models.TextHighlight) -> None:
    """Draw characters ``highlight.start``..``end`` again, in the highlight colour, where
    they are in their line. Lines are the text's words joined by single spaces (see
    :func:`wrap`), so a character's line and place in it follow from the line lengths. In
    a right-to-left line the words before it are to its right (a line of mixed directions
    is placed as if it were all in its paragraph's direction)."""
    offset = 0
    for x, y, line, line_w in placed:
        first = max(highlight.start - offset, 0)
        last = min(highlight.end - offset, len(line.text))
        offset += len(line.text) + 1
        part = line.text[first:last].strip()
        if last <= first or not part:
            continue
        first += len(line.text[first:last]) - len(line.text[first:last].lstrip())
        way = _direction_arg(line.direction)
        before = font.getlength(line.text[:first], direction=way)
        if line.direction == "rtl":
            left = x + line_w - before - font.getlength(part, direction=way)
        else:
            left = x + before
        draw.text((left, y), part, font=font, fill=parse_color(highlight.color),
                  stroke_width=round(style.stroke_width),
                  stroke_fill=parse_color(style.stroke_color), direction=way)

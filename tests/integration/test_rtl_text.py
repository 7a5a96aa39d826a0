"""Right-to-left text is shaped (joined letters, right-to-left order) like Pillow+raqm does."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont, features

from framefarm import engine
from framefarm.compositor import text as ftext
from framefarm.compositor.frame import Compositor
from support.ci import skip_or_fail
from support.pixels import ink_bbox, ink_mask

pytestmark = pytest.mark.ffmpeg

PERSIAN = "سلام دنیا"  # "hello world"
ARABIC = "مرحبا بالعالم"
SIZE = 64
W, H = 800, 200


@pytest.fixture(autouse=True)
def _need_raqm() -> None:
    if not features.check("raqm"):
        skip_or_fail("Pillow cannot load libraqm here (install libfribidi), so right-to-left "
                     "text cannot be shaped")


def composited(text: str, folder: Path) -> np.ndarray:
    doc = {
        "output": {"width": W, "height": H, "fps": 30},
        "scenes": [{"duration": 1, "background": "#000000", "layers": [
            {"type": "text", "text": text, "style": {"size": SIZE, "color": "#ffffff"}}]}],
    }
    tl = engine.load_timeline(doc, base_dir=folder)
    with Compositor(tl) as compositor:
        return compositor.render(0)


def pillow(text: str, layout: ImageFont.Layout) -> np.ndarray:
    font_file = str(resources.files("framefarm") / "fonts" / "NotoSansArabic-Regular.ttf")
    font = ImageFont.truetype(font_file, SIZE, layout_engine=layout)
    image = Image.new("L", (W, H), 0)
    ImageDraw.Draw(image).text((40, 40), text, font=font, fill=255)
    return np.asarray(image)


def crop(pixels: np.ndarray) -> np.ndarray:
    left, top, right, bottom = ink_bbox(pixels)
    return ink_mask(pixels)[top:bottom, left:right]


@pytest.mark.parametrize("words", [PERSIAN, ARABIC])
def test_shaped_like_pillow_with_raqm(tmp_path: Path, words: str) -> None:
    assert ftext.script_family(words) == "Noto Sans Arabic"
    assert ftext.needs_complex_layout(words)
    ours = composited(words, tmp_path)
    reference = pillow(words, ImageFont.Layout.RAQM)
    basic = pillow(words, ImageFont.Layout.BASIC)

    ol, ot, or_, ob = ink_bbox(ours)
    rl, rt, rr, rb = ink_bbox(reference)
    bl, _, br, _ = ink_bbox(basic)
    # Same width as Pillow's shaped rendering, to a pixel or two (the height: see below).
    assert abs((or_ - ol) - (rr - rl)) <= 2
    assert (ob - ot) >= (rb - rt) - 4
    # Unshaped (isolated letters, left to right) is clearly different.
    assert abs((br - bl) - (rr - rl)) > 20
    # Same amount of ink (the compositor's text is RGB white, Pillow's is grey levels).
    ink_ours = ours[:, :, 0].astype(float).sum()
    assert ink_ours == pytest.approx(reference.astype(float).sum(), rel=0.03)
    assert abs(ink_ours - basic.astype(float).sum()) > 0.1 * ink_ours
    # The same glyph shapes in the same places: the two ink masks overlap almost fully.
    a, b = crop(ours), crop(reference)
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    a, b = a[:h, :w], b[:h, :w]
    iou = (a & b).sum() / (a | b).sum()
    assert iou > 0.8
    # And the text is centred in the frame.
    assert abs((ol + or_) / 2 - W / 2) <= 2


def test_mixed_direction_line_keeps_latin_intact(tmp_path: Path) -> None:
    words = "framefarm ۲۰۲۵ سلام"
    ours = composited(words, tmp_path)
    reference = pillow(words, ImageFont.Layout.RAQM)
    ol, _, or_, _ = ink_bbox(ours)
    rl, _, rr, _ = ink_bbox(reference)
    # Noto Sans Arabic carries the Latin letters too, so the widths agree.
    assert abs((or_ - ol) - (rr - rl)) <= 3


@pytest.mark.parametrize("words", [PERSIAN, ARABIC])
def test_descenders_are_not_clipped(tmp_path: Path, words: str) -> None:
    _, ot, _, ob = ink_bbox(composited(words, tmp_path))
    _, rt, _, rb = ink_bbox(pillow(words, ImageFont.Layout.RAQM))
    assert abs((ob - ot) - (rb - rt)) <= 1


# -- paragraph direction ----------------------------------------------------------------------

# A Persian sentence that starts with a Latin word: first-strong detection would lay it out
# left to right and split "4K" across the Persian words.
MIXED = "Render ویدیو 4K در ۲ دقیقه"
WIDE = 1280  # one line of MIXED at SIZE


def composited_with(words: str, folder: Path, **style: object) -> np.ndarray:
    doc = {
        "output": {"width": WIDE, "height": H, "fps": 30},
        "scenes": [{"duration": 1, "background": "#000000", "layers": [
            {"type": "text", "text": words,
             "style": {"size": SIZE, "color": "#ffffff", **style}}]}],
    }
    tl = engine.load_timeline(doc, base_dir=folder)
    with Compositor(tl) as compositor:
        return compositor.render(0)


def pillow_directed(words: str, direction: str) -> np.ndarray:
    """Pillow+raqm's own rendering of ``words`` laid out ``direction``, on a frame-sized
    canvas at the very (sub-pixel) position where the text layer centres it: a box 90 % of
    the frame wide from x = 5 %, one line 1.25 x SIZE tall centred vertically."""
    font_file = str(resources.files("framefarm") / "fonts" / "NotoSansArabic-Regular.ttf")
    font = ImageFont.truetype(font_file, SIZE, layout_engine=ImageFont.Layout.RAQM)
    box_w, line_h = WIDE * 0.9, round(SIZE * 1.25)
    ascent, descent = font.getmetrics()
    x = (WIDE - box_w) / 2 + (box_w - font.getlength(words, direction=direction)) / 2
    y = (H - line_h) / 2 + (line_h - (ascent + descent)) / 2
    image = Image.new("L", (WIDE, H), 0)
    ImageDraw.Draw(image).text((x, y), words, font=font, fill=255, direction=direction)
    return np.asarray(image)


def same_pixels(ours: np.ndarray, reference: np.ndarray) -> bool:
    """The frame's text is Pillow's mask, white on black, up to one level of rounding."""
    diff = np.abs(ours.astype(int) - reference.astype(int)[:, :, None])
    return bool(diff.max() <= 1 and ink_mask(ours).sum() > 1000)


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ink masks."""
    ma, mb = ink_mask(a), ink_mask(b)
    return float((ma & mb).sum() / (ma | mb).sum())


def test_paragraph_direction_is_detected_by_majority() -> None:
    assert ftext.paragraph_direction(MIXED) == "rtl"
    assert ftext.paragraph_direction("framefarm ۲۰۲۵ سلام") == "ltr"
    assert ftext.paragraph_direction("Hello world") == "ltr"
    assert ftext.paragraph_direction("שלום world") == "ltr"  # 4 R against 5 L
    assert ftext.paragraph_direction("2025") == "ltr"  # no strong characters at all
    assert ftext.paragraph_direction(MIXED, "ltr") == "ltr"
    assert ftext.paragraph_direction("Hello", "rtl") == "rtl"


@pytest.mark.parametrize("style", [{}, {"direction": "auto"}, {"direction": "rtl"}])
def test_mostly_persian_line_is_laid_out_right_to_left(
    tmp_path: Path, style: dict[str, str]
) -> None:
    ours = composited_with(MIXED, tmp_path, **style)
    rtl = pillow_directed(MIXED, "rtl")
    ltr = pillow_directed(MIXED, "ltr")
    assert overlap(rtl, ltr) < 0.5  # the two orders really differ
    # Our text layer draws exactly Pillow+raqm's right-to-left layout of the same string.
    assert same_pixels(ours, rtl)


def test_direction_ltr_forces_left_to_right(tmp_path: Path) -> None:
    ours = composited_with(MIXED, tmp_path, direction="ltr")
    assert same_pixels(ours, pillow_directed(MIXED, "ltr"))
    assert overlap(ours, pillow_directed(MIXED, "rtl")) < 0.5


def test_auto_keeps_a_mostly_latin_line_left_to_right(tmp_path: Path) -> None:
    words = "framefarm renders ویدیو"
    assert same_pixels(composited_with(words, tmp_path), pillow_directed(words, "ltr"))


def test_captions_take_the_direction_too(tmp_path: Path) -> None:
    (tmp_path / "subs.srt").write_text(f"1\n00:00:00,000 --> 00:00:01,000\n{MIXED}\n",
                                       encoding="utf-8")
    doc = {
        "output": {"width": WIDE, "height": H, "fps": 30},
        "scenes": [{"duration": 1, "background": "#000000", "layers": [
            {"type": "captions", "src": "subs.srt", "position": "center",
             "style": {"size": SIZE, "color": "#ffffff", "valign": "middle"}}]}],
    }
    tl = engine.load_timeline(doc, base_dir=tmp_path)
    with Compositor(tl) as compositor:
        ours = compositor.render(0)
    assert same_pixels(ours, pillow_directed(MIXED, "rtl"))

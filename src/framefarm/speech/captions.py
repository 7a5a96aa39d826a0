"""Captions from speech: cues timed by the measured phrases (or words), turned into
ordinary text layers (so they get the text renderer, right-to-left shaping included), and
written out as SRT or WebVTT."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from framefarm.document import models
from framefarm.document.loader import Cue
from framefarm.document.timeline import Timeline
from framefarm.speech.synth import Speech, Word

HOLD = 0.5  # seconds a cue stays after its last word when nothing follows it soon


def cues(speech: Speech, captions: models.SpokenCaptions, delay: float) -> list[Cue]:
    """The scene's cues (seconds from the scene's start): one per spoken phrase, or runs
    of at most ``max_words`` words; each shows until the next begins (or ``HOLD`` after its
    last word), inside the captions' ``start``..``end``."""
    groups: list[list[Word]] = []
    for phrase in speech.phrases:
        words = list(phrase.words)
        if captions.max_words is None or len(words) <= captions.max_words:
            groups.append(words)
            continue
        parts = math.ceil(len(words) / captions.max_words)
        size = math.ceil(len(words) / parts)
        groups += [words[k:k + size] for k in range(0, len(words), size)]
    found: list[Cue] = []
    for n, group in enumerate(groups):
        start = group[0].start + delay
        end = group[-1].end + delay + HOLD
        if n + 1 < len(groups):  # the next cue's words come after these
            end = min(end, groups[n + 1][0].start + delay)
        low = captions.start
        high = captions.end if captions.end is not None else math.inf
        start, end = max(start, low), min(end, high)
        if end > start:
            found.append(Cue(round(start, 4), round(end, 4), " ".join(w.text for w in group)))
    return found


_Span = tuple[float, float, tuple[int, int] | None]


def _word_spans(cue: Cue, speech: Speech, delay: float) -> list[_Span]:
    """(start, end, characters of the word in the cue's text) for each word spoken while
    the cue shows; the first from the cue's start, each until the next, the last to the
    cue's end."""
    words = [w for w in speech.words if cue.start - 1e-6 <= w.start + delay < cue.end]
    spans: list[_Span] = []
    at = 0
    for k, word in enumerate(words):
        begin = cue.start if k == 0 else word.start + delay
        end = cue.end if k + 1 == len(words) else words[k + 1].start + delay
        first = cue.text.find(word.text, at)
        if first < 0 or end <= begin:
            continue
        at = first + len(word.text)
        spans.append((begin, end, (first, at)))
    return spans


def layers(scene_cues: Sequence[Cue], speech: Speech, captions: models.SpokenCaptions,
           delay: float) -> list[models.TextLayer]:
    """Text layers showing the cues, styled like the captions; with a highlight, one layer
    per word spoken (the cue's text with that word in the highlight colour)."""
    common = captions.model_dump(
        by_alias=False, include={"x", "y", "width", "height", "position", "opacity", "scale",
                                 "rotation", "keyframes"})
    if captions.position is None and captions.y is None:
        common["position"] = "bottom"
    found: list[models.TextLayer] = []
    for cue in scene_cues:
        spans = _word_spans(cue, speech, delay) if captions.highlight else []
        for k, (begin, end, chars) in enumerate(spans or [(cue.start, cue.end, None)]):
            # One cue's animation plays once: in on its first layer, out on its last.
            animation = captions.animation.model_copy(update={
                "in_": captions.animation.in_ if k == 0 else "none",
                "out": captions.animation.out if k + 1 == len(spans) else "none"})
            highlight = None
            if chars is not None and captions.highlight is not None:
                highlight = models.TextHighlight(start=chars[0], end=chars[1],
                                                 color=captions.highlight.color)
            found.append(models.TextLayer.model_validate({
                **common, "type": "text", "text": cue.text, "start": begin, "end": end,
                "style": captions.style, "animation": animation, "highlight": highlight}))
    return found


def _stamp(seconds: float, separator: str) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


def timed(tl: Timeline, frames: tuple[int, int] | None = None) -> list[Cue]:
    """Every cue of the video in seconds from the start of ``frames`` (default: all),
    clipped to its scene and to the range."""
    first, last = frames or (0, tl.total_frames)
    found: list[Cue] = []
    for span in tl.scenes:
        begin = span.start / tl.fps
        for cue in tl.project.cues.get(span.index, ()):
            start = max(begin + cue.start, first / tl.fps)
            end = min(begin + cue.end, span.end / tl.fps, last / tl.fps)
            if end > start:
                found.append(Cue(start - first / tl.fps, end - first / tl.fps, cue.text))
    # During a transition the next scene's first cue may begin before the last one ends:
    # a file shows one cue at a time.
    found.sort(key=lambda c: c.start)
    return [Cue(c.start, min(c.end, after.start), c.text) if after.start > c.start else c
            for c, after in zip(found, [*found[1:], Cue(math.inf, math.inf, "")],
                                strict=True)]


def srt(found: Sequence[Cue]) -> str:
    blocks = [f"{n}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n{c.text}\n"
              for n, c in enumerate(found, 1)]
    return "\n".join(blocks)


def vtt(found: Sequence[Cue]) -> str:
    blocks = [f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n{c.text}\n" for c in found]
    return "WEBVTT\n\n" + "\n".join(blocks)


def write(tl: Timeline, path: Path, frames: tuple[int, int] | None = None) -> int:
    """Write the video's captions to ``path`` (SRT, or WebVTT for ``.vtt``); the cue count."""
    found = timed(tl, frames)
    body = vtt(found) if path.suffix.lower() == ".vtt" else srt(found)
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_text(body, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(found)

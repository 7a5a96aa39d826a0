"""Which voice speaks a text when the document names none: by the text's script."""

from __future__ import annotations

import unicodedata

# Unicode blocks of the scripts with their own voice (the same blocks the bundled fonts
# are chosen by).
_SCRIPTS: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = (
    ("arabic", ((0x0600, 0x06FF), (0x0750, 0x077F), (0x08A0, 0x08FF), (0xFB50, 0xFDFF),
                (0xFE70, 0xFEFF))),
    ("hebrew", ((0x0590, 0x05FF), (0xFB1D, 0xFB4F))),
    ("devanagari", ((0x0900, 0x097F), (0xA8E0, 0xA8FF))),
)

# espeak-ng's voices for them (`espeak-ng --voices`): Arabic-script text is spoken as
# Arabic, Devanagari as Hindi. Cached speech is keyed by synth.FORMAT, not by this table:
# change FORMAT when it changes.
ESPEAK = {"latin": "en-us", "arabic": "ar", "hebrew": "he", "devanagari": "hi"}


def script(text: str) -> str:
    """``arabic``, ``hebrew`` or ``devanagari`` when most of the letters of ``text`` are of
    that script, else ``latin`` (any other script: the provider's default voice)."""
    counts: dict[str, int] = {}
    for ch in text:
        if not unicodedata.category(ch).startswith("L"):
            continue
        code = ord(ch)
        found = next((name for name, ranges in _SCRIPTS
                      if any(lo <= code <= hi for lo, hi in ranges)), "latin")
        counts[found] = counts.get(found, 0) + 1
    if not counts:
        return "latin"
    return max(counts, key=lambda name: (counts[name], name != "latin"))


def has_letters(text: str) -> bool:
    return any(unicodedata.category(ch).startswith("L") for ch in text)

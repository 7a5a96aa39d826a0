"""Speaking a text: phrases, one synthesis per phrase, measured, joined, cached.

A text is split into phrases (at punctuation, and at most ``MAX_WORDS`` words each). Each
phrase is synthesised on its own; its audio is trimmed to where the speech is (samples
above ``THRESHOLD``) and the phrases are joined with pauses of our own (longer after a
sentence than after a comma). So the timings are measured, not estimated: a phrase starts
exactly where its audio does in the joined file. Words inside a phrase start where the
provider says (espeak-ng's word events), or, from a provider that cannot tell, are spread
over the phrase's speech by their length.

The result — ``<key>.wav`` and ``<key>.json`` (duration, phrases, words) — is kept in a
content-addressed cache: the key hashes the provider and its version, the voice, the rate
and the text, so a second render reuses the audio and an upgraded provider speaks afresh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import re
import tempfile
import wave
from pathlib import Path
from typing import Any

import numpy as np

from framefarm.speech import espeak_lib, providers, voices

FORMAT = 1  # of the audio and timings made here; part of every key
MAX_WORDS = 7
THRESHOLD = 0.02  # of full scale: below it a sample is silence
GUARD = 0.01  # seconds of the audio kept before and after a phrase's speech
PAUSES = {"sentence": 0.40, "clause": 0.22, "split": 0.15}  # seconds between phrases

_SENTENCE_END = ".!?…؟।॥"
_CLAUSE_END = ",;:،؛"
_BREAK = re.compile(r"(?<=[" + re.escape(_SENTENCE_END + _CLAUSE_END) + r"])\s+|\n+")


class Inaudible(ValueError):
    """The text gave no audible speech (it has no words to speak)."""


@dataclasses.dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds from the start of the speech
    end: float


@dataclasses.dataclass(frozen=True)
class Phrase:
    text: str
    start: float
    end: float
    words: tuple[Word, ...]
    words_by: str = "spread"  # "provider": the words' times are the provider's
    voice: str = ""  # the voice that spoke it


@dataclasses.dataclass(frozen=True)
class Speech:
    """Synthesised speech: its WAV file, length, and where each phrase and word is."""

    key: str
    audio: Path
    duration: float
    voice: str
    phrases: tuple[Phrase, ...]

    @property
    def words(self) -> list[Word]:
        return [w for p in self.phrases for w in p.words]


def phrases(text: str) -> list[tuple[str, str]]:
    """``text`` as (phrase, what follows it: "sentence", "clause" or "split")."""
    found: list[tuple[str, str]] = []
    for clause in _BREAK.split(text.strip()):
        words = clause.split()
        if not words:
            continue
        parts = math.ceil(len(words) / MAX_WORDS)
        size = math.ceil(len(words) / parts)
        for k in range(0, len(words), size):
            found.append((" ".join(words[k:k + size]), "split"))
        # A clause ends at a comma (or the like), or a sentence: at its mark or a line break.
        kind = "clause" if words[-1][-1] in _CLAUSE_END else "sentence"
        found[-1] = (found[-1][0], kind)
    return found


def cache_dir() -> Path:
    """``FRAMEFARM_SPEECH_CACHE``, else ``$XDG_CACHE_HOME/framefarm/speech`` (``~/.cache``)."""
    given = os.environ.get("FRAMEFARM_SPEECH_CACHE")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "framefarm" / "speech"


def digest(*parts: Any) -> str:
    blob = json.dumps([FORMAT, *parts], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def load(key: str, folder: Path) -> Speech | None:
    """The speech stored as ``<key>.json`` and ``<key>.wav`` in ``folder``, if both are."""
    meta, audio = folder / f"{key}.json", folder / f"{key}.wav"
    if not (meta.is_file() and audio.is_file()):
        return None
    try:
        raw = json.loads(meta.read_text(encoding="utf-8"))
        return Speech(key=key, audio=audio, duration=float(raw["duration"]),
                      voice=str(raw["voice"]), phrases=tuple(
                          Phrase(p["text"], float(p["start"]), float(p["end"]),
                                 tuple(Word(w["text"], float(w["start"]), float(w["end"]))
                                       for w in p["words"]), str(p.get("words_by", "spread")),
                                 str(p.get("voice", raw["voice"])))
                          for p in raw["phrases"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged entry is spoken again


def speak(text: str, *, provider: providers.Provider, voice: str | None, rate: int | None,
          key: str, folder: Path) -> Speech:
    """Synthesise ``text`` into ``folder/<key>.wav`` and ``<key>.json`` (or reuse them).

    With no ``voice``, each phrase is spoken in the voice of its own script (a phrase of
    no letters, such as a number, in the text's), so an English sentence in an Arabic text
    is spoken in English."""
    found = load(key, folder)
    if found is not None:
        return found
    try:
        folder.mkdir(parents=True, exist_ok=True)
        scratch_dir = tempfile.TemporaryDirectory(prefix=".speak-", dir=folder)
    except OSError as exc:
        raise providers.SpeechError(
            f"the speech cache {folder} cannot be written ({exc.strerror or exc}); set "
            "FRAMEFARM_SPEECH_CACHE to a writable folder") from None
    with scratch_dir as scratch:
        joined = _Joined()
        main = provider.voice_for(text, voice)
        for n, (phrase, follows) in enumerate(plan := phrases(text)):
            part = Path(scratch) / f"{n}.wav"
            spoken = voice or (provider.voice_for(phrase, None) if voices.has_letters(phrase)
                               else main)
            provider.speak(phrase, spoken, rate, part)
            joined.add(phrase, *_read(part, provider.name), provider.name,
                       provider.word_times(phrase, spoken, rate),
                       PAUSES[follows] if n + 1 < len(plan) else 0.0, spoken)
        if not joined.phrases:
            raise Inaudible(f"{provider.name} speaks nothing audible for {text[:40]!r}")
        meta = {"format": FORMAT, "provider": provider.identity(), "voice": main,
                "rate": rate, "text": text, "duration": joined.seconds,
                "phrases": [{"text": p.text, "start": p.start, "end": p.end,
                             "voice": p.voice, "words_by": p.words_by,
                             "words": [dataclasses.asdict(w) for w in p.words]}
                            for p in joined.phrases]}
        joined.write(Path(scratch) / "speech.wav")
        (Path(scratch) / "speech.json").write_text(
            json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(Path(scratch) / "speech.wav", folder / f"{key}.wav")
        os.replace(Path(scratch) / "speech.json", folder / f"{key}.json")  # last: complete
    stored = load(key, folder)
    assert stored is not None
    return stored


@dataclasses.dataclass
class _Joined:
    """Phrases' audio trimmed to their speech and joined with pauses, and where each is."""

    pieces: list[np.ndarray] = dataclasses.field(default_factory=list)
    phrases: list[Phrase] = dataclasses.field(default_factory=list)
    rate: int = 0
    channels: int = 0
    samples: int = 0

    @property
    def seconds(self) -> float:
        return self.samples / self.rate if self.rate else 0.0

    def add(self, phrase: str, samples: np.ndarray, hz: int, channels: int, who: str,
            timings: espeak_lib.Timings | None, pause: float, voice: str) -> None:
        if self.rate and (hz, channels) != (self.rate, self.channels):
            raise providers.SpeechError(
                f"{who} spoke phrases at different sample rates or channels")
        self.rate, self.channels = hz, channels
        first, last = _speech_bounds(samples)
        if first is None:
            return  # nothing audible (a lone punctuation mark): no phrase
        guard = round(GUARD * hz)
        cut = max(0, first - guard)
        at = self.samples / hz
        start, end = at + (first - cut) / hz, at + (last - cut) / hz
        timed = _timed(phrase, timings, len(samples) / hz, at - cut / hz, start, end)
        self.phrases.append(Phrase(phrase, round(start, 4), round(end, 4),
                                   timed or _spread(phrase, start, end),
                                   "provider" if timed else "spread", voice))
        self.pieces += [samples[cut:last + guard],
                        np.zeros((round(pause * hz), channels), np.int16)]
        self.samples += len(self.pieces[-2]) + len(self.pieces[-1])

    def write(self, path: Path) -> None:
        with wave.open(str(path), "wb") as out:
            out.setnchannels(self.channels)
            out.setsampwidth(2)
            out.setframerate(self.rate)
            out.writeframes(np.concatenate(self.pieces).astype("<i2").tobytes())


def _read(path: Path, who: str) -> tuple[np.ndarray, int, int]:
    """16-bit samples (frames x channels), sample rate and channels of a PCM WAV file."""
    try:
        with wave.open(str(path), "rb") as wav:
            width, hz, chans = wav.getsampwidth(), wav.getframerate(), wav.getnchannels()
            raw = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise providers.SpeechError(f"{who} wrote no PCM WAV file framefarm can read "
                                    f"({exc})") from None
    if width == 2:
        samples = np.frombuffer(raw, "<i2")
    elif width == 1:
        samples = ((np.frombuffer(raw, np.uint8).astype(np.int16) - 128) << 8).astype(np.int16)
    elif width == 4:
        samples = (np.frombuffer(raw, "<i4") >> 16).astype(np.int16)
    else:
        raise providers.SpeechError(f"{who} wrote {8 * width}-bit samples; framefarm reads "
                                    "8, 16 or 32-bit PCM")
    return samples.reshape(-1, chans), hz, chans


def _speech_bounds(samples: np.ndarray) -> tuple[int | None, int]:
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)).max(axis=1) > THRESHOLD * 32767)
    if not len(loud):
        return None, 0
    return int(loud[0]), int(loud[-1]) + 1


def _timed(phrase: str, timings: espeak_lib.Timings | None, seconds: float, shift: float,
           start: float, end: float) -> tuple[Word, ...] | None:
    """The phrase's words at the provider's times (seconds into its audio, plus ``shift``
    to the joined speech), each lasting until the next; None when there are none, they are
    for audio of another length (not this synthesis), or they miss a word."""
    if timings is None or abs(timings.seconds - seconds) > max(0.05, 0.02 * seconds):
        return None
    starts: list[float] = []
    words = list(re.finditer(r"\S+", phrase))
    for word in words:
        at = next((t for offset, t in timings.words if word.start() <= offset < word.end()),
                  None)
        if at is None:
            return None
        starts.append(max(start, at + shift))
    starts[0] = start  # the first word begins with the speech (the library counts from 0)
    if any(b <= a for a, b in itertools.pairwise(starts)) or starts[-1] >= end:
        return None
    ends = [*starts[1:], end]
    return tuple(Word(w.group(), round(a, 4), round(b, 4))
                 for w, a, b in zip(words, starts, ends, strict=True))


def _spread(phrase: str, start: float, end: float) -> tuple[Word, ...]:
    """The phrase's words over [start, end], each given time in proportion to its letters
    (and one for the gap after it)."""
    words = phrase.split()
    weights = [len(w) + 1 for w in words]
    total = sum(weights)
    found: list[Word] = []
    at = start
    for word, weight in zip(words, weights, strict=True):
        span = (end - start) * weight / total
        found.append(Word(word, round(at, 4), round(at + span, 4)))
        at += span
    return tuple(found)


"""Text-to-speech providers behind one small interface: a phrase of text in, a WAV file out.

- ``espeak-ng`` (the default): offline, no keys; Debian's ``espeak-ng`` package
  (``apt-get install espeak-ng``). ``FRAMEFARM_ESPEAK`` names another executable.
- ``command``: any program that reads the text on stdin and writes a WAV file, given by
  ``FRAMEFARM_TTS_COMMAND`` as an argument list with ``{voice}``, ``{rate}`` and
  ``{output}`` placeholders (run without a shell), e.g.
  ``piper --model {voice} --output_file {output}``.

:mod:`framefarm.speech.synth` speaks a text phrase by phrase and measures each phrase's
audio, so phrase timings come from the measured speech; word timings come from the
provider where it has them (espeak-ng: its library's word events, :mod:`.espeak_lib`),
else the words are spread over the phrase. These are the only subprocesses outside
``ffmpeg/runner.py``: a TTS program is not FFmpeg, and needs none of its progress parsing.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Protocol

from framefarm import errors
from framefarm.speech import espeak_lib, voices
from framefarm.speech.espeak_lib import Timings

TIMEOUT = 120.0  # seconds for one phrase; espeak-ng takes a few milliseconds


class SpeechError(errors.RenderError):
    """Text-to-speech failed (the provider is missing, misconfigured, or failed)."""


class Provider(Protocol):
    """What the rest of framefarm needs from a text-to-speech engine."""

    @property
    def name(self) -> str:
        """The provider's name in documents and settings."""

    def identity(self) -> str:
        """What the audio depends on besides the text, voice and rate (program version,
        configuration): part of the cache key."""

    def voice_for(self, text: str, voice: str | None) -> str:
        """The voice to speak ``text`` with: ``voice``, else one matching its script."""

    def speak(self, text: str, voice: str, rate: int | None, output: Path) -> None:
        """Write ``text`` spoken as a PCM WAV file at ``output``."""

    def word_times(self, text: str, voice: str, rate: int | None) -> Timings | None:
        """Where the words of ``text`` start in what :meth:`speak` writes for it, if the
        provider can tell (else the words are spread over the measured speech)."""


def _run(argv: list[str], text: str, what: str) -> None:
    try:
        done = subprocess.run(argv, input=text.encode("utf-8"), capture_output=True,
                              timeout=TIMEOUT, check=False)
    except FileNotFoundError:
        raise SpeechError(f"{what}: cannot run {argv[0]!r} (not found)") from None
    except subprocess.TimeoutExpired:
        raise SpeechError(f"{what}: gave no audio within {TIMEOUT:.0f} s") from None
    except OSError as exc:
        raise SpeechError(f"{what}: cannot run {argv[0]!r} ({exc})") from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip()[-500:]
        raise SpeechError(f"{what} failed (exit code {done.returncode})"
                          + (f": {said}" if said else ""))


_ESPEAK_MISSING = (
    "spoken voice-overs need espeak-ng, and {binary!r} cannot be run here. Install it "
    "(Debian/Ubuntu: apt-get install espeak-ng; Fedora: dnf install espeak-ng; macOS: "
    "brew install espeak-ng), or set FRAMEFARM_ESPEAK to its path"
)


@dataclasses.dataclass(frozen=True)
class EspeakNg:
    """espeak-ng, run once per phrase: ``espeak-ng -v VOICE -s RATE -z -w OUT --stdin``;
    word timings from libespeak-ng."""

    binary: str = "espeak-ng"
    name: str = "espeak-ng"

    def executable(self) -> str:
        found = shutil.which(self.binary)
        if found is None:
            raise SpeechError(_ESPEAK_MISSING.format(binary=self.binary))
        return found

    def identity(self) -> str:
        return f"espeak-ng {_espeak_version(self.executable())}"

    def voice_for(self, text: str, voice: str | None) -> str:
        return voice or voices.ESPEAK.get(voices.script(text), voices.ESPEAK["latin"])

    def speak(self, text: str, voice: str, rate: int | None, output: Path) -> None:
        # -z: no final sentence pause (the phrases' pauses are ours, and measured).
        argv = [self.executable(), "-v", voice, "-z", "-w", str(output), "--stdin"]
        if rate is not None:
            argv[3:3] = ["-s", str(rate)]
        _run(argv, text, f"espeak-ng (voice {voice!r})")

    def word_times(self, text: str, voice: str, rate: int | None) -> Timings | None:
        return espeak_lib.word_starts(text, voice, rate)


@functools.cache
def _espeak_version(executable: str) -> str:
    """``1.51`` from "eSpeak NG text-to-speech: 1.51  Data at: ..."."""
    try:
        done = subprocess.run([executable, "--version"], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SpeechError(_ESPEAK_MISSING.format(binary=executable) + f" ({exc})") from None
    words = done.stdout.split(":", 1)[-1].split()
    return words[0] if words else "unknown"


@dataclasses.dataclass(frozen=True)
class Command:
    """A program configured by settings: text on stdin, a WAV file at ``{output}``."""

    template: str
    default_voice: str = "default"
    script_voices: tuple[tuple[str, str], ...] = ()
    version: str = ""
    name: str = "command"

    def argv(self, voice: str, rate: int | None, output: Path) -> list[str]:
        if not self.template.strip():
            raise SpeechError("the 'command' text-to-speech provider needs "
                              "FRAMEFARM_TTS_COMMAND, e.g. 'mytts --voice {voice} --out "
                              "{output}' (the text comes on stdin)")
        values = {"voice": voice, "rate": "" if rate is None else str(rate),
                  "output": str(output)}
        try:
            return [part.format(**values) for part in shlex.split(self.template)]
        except (KeyError, IndexError, ValueError) as exc:
            raise SpeechError(f"FRAMEFARM_TTS_COMMAND {self.template!r}: only {{voice}}, "
                              f"{{rate}} and {{output}} can be filled ({exc})") from None

    def identity(self) -> str:
        return (f"command {self.template!r} {self.version} voices {self.default_voice!r} "
                f"{self.script_voices!r}")

    def voice_for(self, text: str, voice: str | None) -> str:
        return voice or dict(self.script_voices).get(voices.script(text), self.default_voice)

    def speak(self, text: str, voice: str, rate: int | None, output: Path) -> None:
        argv = self.argv(voice, rate, output)
        _run(argv, text, f"the text-to-speech command {argv[0]!r}")
        if not output.is_file():
            raise SpeechError(f"the text-to-speech command {argv[0]!r} wrote no file at "
                              f"{output}")

    def word_times(self, text: str, voice: str, rate: int | None) -> Timings | None:
        return None  # a command only writes audio


PROVIDERS = ("espeak-ng", "command")


def configured(name: str | None = None) -> Provider:
    """The provider ``name`` (default ``FRAMEFARM_TTS_PROVIDER``, else espeak-ng), configured
    from the environment (see the module docstring and docs/speech.md)."""
    env = os.environ
    chosen = name or env.get("FRAMEFARM_TTS_PROVIDER") or "espeak-ng"
    if chosen == "espeak-ng":
        return EspeakNg(env.get("FRAMEFARM_ESPEAK") or "espeak-ng")
    if chosen == "command":
        raw = env.get("FRAMEFARM_TTS_COMMAND_VOICES") or "{}"
        try:
            by_script = json.loads(raw)
            assert isinstance(by_script, dict)
        except (ValueError, AssertionError):
            raise SpeechError("FRAMEFARM_TTS_COMMAND_VOICES: expected a JSON object of script "
                              '-> voice, e.g. {"arabic": "ar-voice"}') from None
        return Command(env.get("FRAMEFARM_TTS_COMMAND", ""),
                       env.get("FRAMEFARM_TTS_COMMAND_VOICE") or "default",
                       tuple(sorted((str(k), str(v)) for k, v in by_script.items())),
                       env.get("FRAMEFARM_TTS_COMMAND_VERSION", ""))
    raise SpeechError(f"FRAMEFARM_TTS_PROVIDER {chosen!r}: use one of "
                      + ", ".join(PROVIDERS))

"""Word timings from libespeak-ng, the library the ``espeak-ng`` program speaks with.

The program writes the audio but tells nothing of where its words are; the library, asked
to speak the same phrase with the same voice and rate, reports each word's start
(``espeakEVENT_WORD``: its character position and its time in the audio). The caller
checks that the library's audio is as long as the program's before trusting the times
(they are the same synthesiser; a mismatch means another build, and the words are then
spread over the phrase instead).

The library keeps global state, so calls are serialised by a lock. Only the types and
functions used are declared (``speak_lib.h``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import functools
import threading

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report a missing data folder instead of exiting
_RATE = 1  # espeakRATE
_DEFAULT_RATE = 175
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED, _EVENT_WORD = 0, 1

_lock = threading.Lock()


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclasses.dataclass
class _Run:
    samples: int = 0
    words: list[tuple[int, float]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Timings:
    """Where each word starts: (character offset in the text, seconds into the audio)."""

    words: tuple[tuple[int, float], ...]
    seconds: float  # the length of the audio the library made


class _Library:
    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 200, None,
                                          _INITIALIZE_DONT_EXIT)
        self.run = _Run()
        self.callback = _Callback(self._collect)  # kept: the library holds the pointer
        lib.espeak_SetSynthCallback(self.callback)

    def _collect(self, _wav: object, count: int, events: ctypes.Array[_Event]) -> int:
        self.run.samples += max(0, count)
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_WORD:
                self.run.words.append((events[i].text_position - 1,
                                       events[i].audio_position / 1000))
            i += 1
        return 0


@functools.cache
def _library() -> _Library | None:
    name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    try:
        lib = _Library(ctypes.CDLL(name))
    except OSError:
        return None
    return lib if lib.rate > 0 else None


def word_starts(text: str, voice: str, rate: int | None) -> Timings | None:
    """The words of ``text`` as libespeak-ng speaks them, or None without the library (or
    when it does not know the voice)."""
    with _lock:
        library = _library()
        if library is None:
            return None
        lib = library.lib
        if lib.espeak_SetVoiceByName(voice.encode("utf-8")) != 0:
            return None
        lib.espeak_SetParameter(_RATE, rate or _DEFAULT_RATE, 0)
        library.run = _Run()
        data = text.encode("utf-8")
        # As the program does with -z: no pause at the end (no espeakENDPAUSE flag).
        if lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None,
                            None) != 0:
            return None
        lib.espeak_Synchronize()
        run = library.run
        return Timings(tuple(run.words), run.samples / library.rate)

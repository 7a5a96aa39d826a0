"""Spoken voice-overs and captions from them (docs/speech.md).

    providers.py  the text-to-speech interface; espeak-ng (default) and a command
    espeak_lib.py word timings from libespeak-ng's word events (ctypes)
    voices.py     a voice by the text's script (Arabic, Hebrew, Devanagari)
    synth.py      phrase by phrase, measured, joined, cached by content hash
    resolve.py    a loaded project's speech resolved to audio and caption layers; the
                  server's bundle of that audio for its nodes
    captions.py   cues, caption text layers, SRT and WebVTT

Engine-side: imports the document and ``media``, nothing from the service.
"""

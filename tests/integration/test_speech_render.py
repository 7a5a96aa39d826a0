"""Spoken voice-overs with the real espeak-ng and FFmpeg: ``auto`` duration from the
speech, the cache, voices by script, the command provider, captions that start where the
rendered speech does (measured on the output file's decoded audio), SRT/WebVTT beside the
video, and the word highlight."""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from framefarm import engine, errors, media
from framefarm.cli import app
from framefarm.speech import providers, resolve
from support.ci import skip_or_fail
from support.media import decode_audio, decode_video

pytestmark = pytest.mark.ffmpeg

ENGLISH = "Hello there, and welcome to framefarm. This voice is synthesised offline."
ONSET_TOLERANCE = 0.100  # seconds: a caption appears within this of its speech


@pytest.fixture(autouse=True)
def speech_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    if shutil.which("espeak-ng") is None:
        skip_or_fail("espeak-ng is not installed (apt-get install espeak-ng)")
    for name in ("FRAMEFARM_TTS_PROVIDER", "FRAMEFARM_ESPEAK", "FRAMEFARM_TTS_COMMAND"):
        monkeypatch.delenv(name, raising=False)
    cache = tmp_path / "speech-cache"
    monkeypatch.setenv("FRAMEFARM_SPEECH_CACHE", str(cache))
    yield cache


def document(*scenes: dict[str, Any], fps: int = 25) -> dict[str, Any]:
    return {"output": {"width": 320, "height": 180, "fps": fps, "quality": "draft"},
            "audio": {"normalize": False}, "scenes": list(scenes)}


def spoken_scene(text: str = ENGLISH, **extra: Any) -> dict[str, Any]:
    return {"duration": "auto", "auto": {"padding": 0.5, "min": 0.2, "max": 30},
            "voiceover": {"text": text}, "captions": {"from": "voiceover"}, **extra}


def onsets(signal: np.ndarray, rate: int, *, min_gap: float = 0.1,
           window: float = 0.005) -> list[float]:
    """Seconds where sound starts after at least ``min_gap`` of silence (or at the very
    start): an energy detector over ``window``-long blocks, the threshold at -34 dB of
    the loudest block."""
    block = round(window * rate)
    count = len(signal) // block
    levels = np.sqrt((signal[:count * block].reshape(count, block) ** 2).mean(axis=1))
    loud = levels > levels.max() * 10 ** (-34 / 20)
    found: list[float] = []
    quiet = math.inf
    for i, is_loud in enumerate(loud):
        if is_loud and quiet * window >= min_gap:
            found.append(i * window)
        quiet = 0 if is_loud else quiet + 1
    return found


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    cues = []
    for block in text.strip().split("\n\n"):
        _, times, *words = block.split("\n")
        a, b = (sum(float(x) * k for x, k in zip(
            t.replace(",", ".").split(":"), (3600, 60, 1), strict=True))
            for t in times.split(" --> "))
        cues.append((a, b, "\n".join(words)))
    return cues


# -- duration, cache, voices ----------------------------------------------------------------


def test_the_speech_s_length_drives_auto_duration(tmp_path: Path) -> None:
    short, long = "Hello.", ENGLISH + " " + ENGLISH
    tl = engine.load_timeline(document(spoken_scene(short), spoken_scene(long)),
                              base_dir=tmp_path)
    lengths = []
    for span in tl.scenes:
        vo = span.scene.voiceover
        assert vo is not None and vo.src is not None
        info = media.probe(tl.project.assets[vo.src])
        assert info.audio is not None
        lengths.append(info.audio.duration)
        assert span.frames == round((info.audio.duration + 0.5) * tl.fps)
    assert 0.3 < lengths[0] < 1.5 < 5 < lengths[1]
    faster = engine.load_timeline(document({**spoken_scene(long), "voiceover": {
        "text": long, "rate": 300}}), base_dir=tmp_path)
    assert faster.scenes[0].frames < 0.8 * tl.scenes[1].frames


def test_speech_is_cached_by_what_it_depends_on(tmp_path: Path, speech_cache: Path) -> None:
    doc = document(spoken_scene("Cached speech."))
    first = engine.load_timeline(doc, base_dir=tmp_path)
    entries = sorted(speech_cache.iterdir())
    assert [p.suffix for p in entries] == [".json", ".wav"]
    stamps = [p.stat().st_mtime_ns for p in entries]
    again = engine.load_timeline(doc, base_dir=tmp_path)
    assert sorted(speech_cache.iterdir()) == entries
    assert [p.stat().st_mtime_ns for p in entries] == stamps  # reused, not spoken again
    assert again.total_frames == first.total_frames
    assert again.project.cues == first.project.cues
    for other in ({"text": "Cached speech!"}, {"text": "Cached speech.", "rate": 120},
                  {"text": "Cached speech.", "voice": "en-gb"}):
        engine.load_timeline(document({**spoken_scene(), "voiceover": other}),
                             base_dir=tmp_path)
    assert len(list(speech_cache.glob("*.wav"))) == 4
    meta = json.loads(entries[0].read_text())
    assert meta["provider"].startswith("espeak-ng 1.") and meta["voice"] == "en-us"
    assert [p["words_by"] for p in meta["phrases"]] == ["provider"]


@pytest.mark.parametrize(("text", "voice"), [
    ("مرحبا بكم في هذا الفيديو", "ar"),
    ("שלום וברוכים הבאים", "he"),
    ("नमस्ते और आपका स्वागत है", "hi"),
])
def test_scripts_are_spoken_with_their_own_voice(tmp_path: Path, text: str,
                                                 voice: str) -> None:
    tl = engine.load_timeline(document(spoken_scene(text)), base_dir=tmp_path)
    vo = tl.scenes[0].scene.voiceover
    assert vo is not None and vo.src is not None
    audio = tl.project.assets[vo.src]
    assert json.loads(audio.with_suffix(".json").read_text())["voice"] == voice
    pcm, _ = decode_audio(audio)
    assert np.abs(pcm).max() > 0.1  # spoken, not silence
    assert tl.project.cues[0][0].text.split()[0] == text.split()[0]


def test_each_phrase_of_a_mixed_text_gets_its_script_s_voice(tmp_path: Path) -> None:
    text = "Welcome to the show. مرحبا بكم في البرنامج. 2026! שלום לכולם."
    tl = engine.load_timeline(document(spoken_scene(text)), base_dir=tmp_path)
    vo = tl.scenes[0].scene.voiceover
    assert vo is not None and vo.src is not None
    meta = json.loads(tl.project.assets[vo.src].with_suffix(".json").read_text())
    assert [(p["text"], p["voice"]) for p in meta["phrases"]] == [
        ("Welcome to the show.", "en-us"), ("مرحبا بكم في البرنامج.", "ar"),
        ("2026!", meta["voice"]), ("שלום לכולם.", "he")]
    chosen = {**spoken_scene(text), "voiceover": {"text": text, "voice": "en-gb"}}
    tl = engine.load_timeline(document(chosen), base_dir=tmp_path)
    vo = tl.scenes[0].scene.voiceover
    assert vo is not None and vo.src is not None
    meta = json.loads(tl.project.assets[vo.src].with_suffix(".json").read_text())
    assert {p["voice"] for p in meta["phrases"]} == {"en-gb"}  # a voice given is kept


def test_template_placeholders_are_spoken_filled(tmp_path: Path) -> None:
    doc = document(spoken_scene("Hello {{name}}, welcome."))
    doc["variables"] = {"name": {"type": "text", "required": True}}
    tl = engine.load_timeline(doc, data={"name": "Ada"}, base_dir=tmp_path)
    assert [c.text for c in tl.project.cues[0]] == ["Hello Ada,", "welcome."]
    vo = tl.scenes[0].scene.voiceover
    assert vo is not None and vo.src is not None
    said = json.loads(tl.project.assets[vo.src].with_suffix(".json").read_text())
    assert said["text"] == "Hello Ada, welcome."


# -- providers ----------------------------------------------------------------------------------


def test_the_command_provider_speaks_through_a_configured_program(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, speech_cache: Path) -> None:
    # A real second program: espeak-ng driven the command provider's way (text on stdin,
    # WAV at {output}), at another pitch so its audio differs from the default provider's.
    monkeypatch.setenv("FRAMEFARM_TTS_COMMAND",
                       "espeak-ng -p 80 -v {voice} -s {rate} -w {output} --stdin")
    monkeypatch.setenv("FRAMEFARM_TTS_COMMAND_VOICE", "en-gb")
    scene = {**spoken_scene(), "voiceover": {"text": "From a command.", "rate": 170,
                                             "provider": "command"}}
    tl = engine.load_timeline(document(scene), base_dir=tmp_path)
    vo = tl.scenes[0].scene.voiceover
    assert vo is not None and vo.src is not None
    meta = json.loads(tl.project.assets[vo.src].with_suffix(".json").read_text())
    assert meta["provider"].startswith("command 'espeak-ng -p 80") and meta["voice"] == "en-gb"
    assert [p["words_by"] for p in meta["phrases"]] == ["spread"]  # a command tells no times
    assert [c.text for c in tl.project.cues[0]] == ["From a command."]
    default = engine.load_timeline(document({**spoken_scene(), "voiceover": {
        "text": "From a command.", "rate": 170}}), base_dir=tmp_path)
    other = default.scenes[0].scene.voiceover
    assert other is not None and other.src != vo.src  # its own cache entry
    monkeypatch.setenv("FRAMEFARM_TTS_COMMAND",
                       f"{sys.executable} -c 'import sys; sys.exit(\"no voice {{voice}}\")'")
    with pytest.raises(providers.SpeechError, match="no voice en-gb"):
        engine.load_timeline(document({**scene, "voiceover": {
            "text": "Fails.", "provider": "command"}}), base_dir=tmp_path)
    monkeypatch.setenv("FRAMEFARM_TTS_COMMAND", str(tmp_path / "missing-tts") + " {output}")
    with pytest.raises(providers.SpeechError, match=r"missing-tts.*not found"):
        engine.load_timeline(document({**scene, "voiceover": {
            "text": "Fails.", "provider": "command"}}), base_dir=tmp_path)


def test_a_text_with_nothing_to_say_is_an_invalid_document(tmp_path: Path) -> None:
    with pytest.raises(errors.DocumentError, match=r"scenes\[1\]\.voiceover\.text: .*nothing"):
        engine.load_timeline(document(spoken_scene(), spoken_scene("...")), base_dir=tmp_path)


def test_an_unwritable_cache_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("FRAMEFARM_SPEECH_CACHE", str(blocker / "cache"))
    with pytest.raises(providers.SpeechError, match="FRAMEFARM_SPEECH_CACHE to a writable"):
        engine.load_timeline(document(spoken_scene()), base_dir=tmp_path)


def test_missing_espeak_ng_fails_the_cli_clearly(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMEFARM_ESPEAK", str(tmp_path / "bin" / "espeak-ng"))
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(document(spoken_scene())))
    result = CliRunner().invoke(app, ["render", str(path), "-o", str(tmp_path / "out.mp4")])
    assert result.exit_code == 1, result.output
    assert "spoken voice-overs need espeak-ng" in result.output
    assert "apt-get install espeak-ng" in result.output
    assert not (tmp_path / "out.mp4").exists()


def test_the_cli_writes_captions_beside_the_video(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(document(spoken_scene("Hello there, and welcome."))))
    out, vtt = tmp_path / "out.mp4", tmp_path / "out.vtt"
    refused = CliRunner().invoke(app, ["render", str(path), "-o", str(out), "--captions",
                                       str(tmp_path / "out.txt")])
    assert refused.exit_code == 2 and "as .srt or .vtt" in refused.output
    assert not out.exists()
    result = CliRunner().invoke(app, ["render", str(path), "-o", str(out), "--captions",
                                      str(vtt), "-q"])
    assert result.exit_code == 0, result.output
    assert f"wrote {vtt} 2 caption(s)" in " ".join(result.output.split())
    assert vtt.read_text(encoding="utf-8").count(" --> ") == 2 and out.is_file()


def test_a_node_renders_the_bundled_speech_without_espeak(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the server ships with a job (``framefarm-speech/<request key>.*``) is used as
    it is: a node with no espeak-ng and an empty cache builds the same timeline."""
    doc = document(spoken_scene())
    server = engine.load_timeline(doc, base_dir=tmp_path)
    vo = server.scenes[0].scene.voiceover
    assert vo is not None and vo.src is not None
    node_dir = tmp_path / "node" / resolve.BUNDLE_DIR
    node_dir.mkdir(parents=True)
    key = resolve.request_key(vo)
    for suffix in (".wav", ".json"):
        shutil.copy(server.project.assets[vo.src].with_suffix(suffix), node_dir / f"{key}{suffix}")
    monkeypatch.setenv("FRAMEFARM_ESPEAK", str(tmp_path / "none"))
    monkeypatch.setenv("FRAMEFARM_SPEECH_CACHE", str(tmp_path / "empty-cache"))
    node = engine.load_timeline(doc, base_dir=tmp_path / "node")
    assert node.total_frames == server.total_frames
    assert node.project.cues == server.project.cues
    assert not (tmp_path / "empty-cache").exists()


# -- captions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunks", [1, 2])
def test_captions_start_where_the_rendered_speech_does(tmp_path: Path, chunks: int) -> None:
    """Onsets detected in the output file's decoded audio, against the cues of the SRT file
    written beside it; a second scene (after a transition) and music under the voice."""
    hebrew = "שלום וברוכים הבאים. זהו קול מסונתז."
    doc = document(
        {**spoken_scene(), "transition": {"type": "dissolve", "duration": 0.4}},
        {**spoken_scene(hebrew), "voiceover": {"text": hebrew, "delay": 0.3}})
    doc["output"]["chunks"] = chunks
    out, srt = tmp_path / "spoken.mp4", tmp_path / "spoken.srt"
    result = engine.render(doc, out, base_dir=tmp_path, captions=srt)
    cues = parse_srt(srt.read_text(encoding="utf-8"))
    assert result.captions == len(cues) == 5
    assert [c[2] for c in cues] == ["Hello there,", "and welcome to framefarm.",
                                    "This voice is synthesised offline.",
                                    "שלום וברוכים הבאים.", "זהו קול מסונתז."]
    pcm, rate = decode_audio(out)
    heard = onsets(pcm.mean(axis=0), rate)
    assert len(heard) == len(cues), (heard, cues)
    missed = [abs(h - c[0]) for h, c in zip(heard, cues, strict=True)]
    assert max(missed) <= ONSET_TOLERANCE, list(zip(heard, [c[0] for c in cues], strict=True))
    assert all(a < b <= c for (a, b, _), (c, _, _) in itertools.pairwise(cues))
    assert cues[-1][1] <= result.duration + 1e-3


def test_word_cues_start_where_their_words_do(tmp_path: Path) -> None:
    """Word timings from espeak-ng (its library's word events), checked on the rendered
    file: every word here starts with a voiceless stop (p, t, k), whose closure is silence
    and whose burst is a sharp onset 40-60 ms into the word. Each word cue (``max_words``
    1) must begin at most 100 ms before such a burst and not after it. Words spread by
    their length instead are up to 190 ms off on these sentences."""
    text = "Put ten popcorn kernels to cook. Take tiny cups, keep two."
    scene = spoken_scene(text)
    scene["captions"] = {"from": "voiceover", "max_words": 1}
    out, srt = tmp_path / "words.mp4", tmp_path / "words.srt"
    engine.render(document(scene), out, base_dir=tmp_path, captions=srt)
    cues = parse_srt(srt.read_text(encoding="utf-8"))
    assert [c[2] for c in cues] == text.split()
    pcm, rate = decode_audio(out)
    bursts = onsets(pcm.mean(axis=0), rate, min_gap=0.03, window=0.002)
    lags = []
    for start, _, word in cues:
        following = [b - start for b in bursts if b >= start - 0.005]
        assert following, word
        lags.append(round(min(following), 3))
    assert all(lag <= ONSET_TOLERANCE for lag in lags), list(zip(text.split(), lags,
                                                                 strict=True))


def test_captions_as_webvtt_for_a_frame_range(tmp_path: Path) -> None:
    doc = document(spoken_scene())
    tl = engine.load_timeline(doc, base_dir=tmp_path)
    whole = tl.project.cues[0]
    vtt = tmp_path / "part.vtt"
    first = round(whole[1].start * tl.fps) + 5  # inside the second cue
    engine.render(tl, tmp_path / "part.mp4", frames=(first, tl.total_frames), captions=vtt)
    text = vtt.read_text(encoding="utf-8")
    assert text.startswith("WEBVTT\n\n00:00:00.000 --> ")
    assert "and welcome to framefarm." in text and "Hello there," not in text


def _yellow(image: Path) -> np.ndarray:
    pixels = np.asarray(Image.open(image).convert("RGB")).astype(int)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return np.argwhere((r > 180) & (g > 150) & (b < 90))


@pytest.mark.parametrize(("text", "rtl"), [("one two three four five", False),
                                           ("אחת שתיים שלוש ארבע חמש", True)])
def test_the_spoken_word_is_highlighted(tmp_path: Path, text: str, rtl: bool) -> None:
    scene = spoken_scene(text)
    scene["captions"] = {"from": "voiceover", "highlight": {"color": "#ffd400"},
                         "style": {"size": 16}}
    tl = engine.load_timeline(document(scene), base_dir=tmp_path)
    words = tl.project.cues[0]
    assert len(words) == 1  # one phrase, five words
    layers = [layer for layer in tl.scenes[0].scene.layers if layer.highlight is not None]
    assert len(layers) == 5
    centres = []
    for n, layer in enumerate(layers):
        shot = tmp_path / f"w{n}.png"
        engine.snapshot(tl, shot, at=(layer.start + (layer.end or layer.start)) / 2)
        found = _yellow(shot)
        assert len(found) > 20, f"word {n}: no highlighted pixels"
        centres.append(found[:, 1].mean())
    moves = np.diff(centres)
    assert (moves < 0).all() if rtl else (moves > 0).all(), centres
    plain = tmp_path / "plain.png"
    no_highlight = document(spoken_scene(text))
    engine.snapshot(no_highlight, plain, at=layers[2].start + 0.01, base_dir=tmp_path)
    assert len(_yellow(plain)) == 0


def test_chunks_of_highlighted_captions_are_the_whole_render_s_frames(tmp_path: Path) -> None:
    scene = spoken_scene("Every chunk shows the same words, highlighted in turn.")
    scene["captions"] = {"from": "voiceover", "highlight": {}, "style": {"size": 18},
                         "animation": {"in": "fade", "out": "fade", "duration": 0.2}}
    doc = document(scene)
    doc["output"]["quality"] = "lossless"
    engine.render(doc, tmp_path / "whole.mp4", base_dir=tmp_path, chunks=1)
    engine.render(doc, tmp_path / "chunked.mp4", base_dir=tmp_path, chunks=3)
    whole, chunked = decode_video(tmp_path / "whole.mp4"), decode_video(tmp_path / "chunked.mp4")
    assert whole.shape == chunked.shape
    assert np.array_equal(whole, chunked)


def test_the_example_document_renders(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "examples" / "voiceover.json"
    out, srt = tmp_path / "voiceover.mp4", tmp_path / "voiceover.srt"
    result = engine.render(example, out, size="360p", quality="draft", captions=srt)
    assert result.frames > 0 and result.captions >= 3
    assert os.path.getsize(srt) > 0

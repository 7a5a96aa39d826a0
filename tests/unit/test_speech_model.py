"""Spoken voice-overs without speaking: the document syntax, phrases, voices by script,
cues and caption layers from given timings, SRT/WebVTT, provider configuration, and the
error when espeak-ng is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from framefarm import engine, errors
from framefarm.document import loader, models
from framefarm.speech import captions, espeak_lib, providers, resolve, synth, voices


def spoken(text: str = "Hello there.", **voiceover: Any) -> dict[str, Any]:
    return {"output": {"width": 320, "height": 180, "fps": 25},
            "scenes": [{"duration": "auto", "voiceover": {"text": text, **voiceover},
                        "captions": {"from": "voiceover"}}]}


# -- the document ---------------------------------------------------------------------------


def test_a_voiceover_is_a_file_or_a_text() -> None:
    assert models.Voiceover.model_validate({"text": "Hi", "voice": "en-gb", "rate": 160})
    assert models.Voiceover.model_validate({"text": "Hi", "voice": "en-us+f3"})
    for bad in ({"src": "a.wav", "text": "Hi"}, {}, {"src": "a.wav", "voice": "en"},
                {"text": "   "}, {"text": "Hi", "rate": 20}, {"text": "Hi", "provider": "x"},
                {"text": "Hi", "voice": "--stdout"}, {"text": "Hi", "voice": "../model"}):
        with pytest.raises(errors.DocumentError) as caught:
            loader.validate({"scenes": [{"voiceover": bad}]})
        assert "scenes[0].voiceover" in str(caught.value), bad


def test_captions_need_a_spoken_voiceover(tmp_path: Path) -> None:
    with pytest.raises(errors.DocumentError, match="captions from the voiceover need"):
        loader.validate({"scenes": [{"captions": {"from": "voiceover"}}]})
    with pytest.raises(errors.DocumentError, match="captions from the voiceover need"):
        loader.validate({"scenes": [{"voiceover": {"src": "a.wav"},
                                     "captions": {"from": "voiceover"}}]})
    with pytest.raises(errors.DocumentError, match=r"captions\.from"):
        loader.validate({"scenes": [{"voiceover": {"text": "Hi"},
                                     "captions": {"from": "music"}}]})


def test_a_spoken_text_is_bounded_like_a_text_layer(tmp_path: Path) -> None:
    with pytest.raises(errors.DocumentError, match=r"voiceover\.text: 5001 characters"):
        loader.load(spoken("a" * 5001), base_dir=tmp_path)


def test_placeholders_fill_the_spoken_text(tmp_path: Path) -> None:
    doc = spoken("Hello {{name}}.")
    doc["variables"] = {"name": {"type": "text", "required": True}}
    project = loader.load(doc, data={"name": "Ada"}, base_dir=tmp_path)
    assert project.document.scenes[0].voiceover is not None
    assert project.document.scenes[0].voiceover.text == "Hello Ada."


def test_a_smaller_size_scales_the_captions(tmp_path: Path) -> None:
    doc = spoken()
    doc["scenes"][0]["captions"]["style"] = {"size": 40}
    project = loader.load(doc, base_dir=tmp_path, overrides={"width": 160, "height": 90})
    assert project.document.scenes[0].captions is not None
    assert project.document.scenes[0].captions.style.size == 20


def test_a_highlight_must_be_inside_its_text() -> None:
    layer = {"type": "text", "text": "one two", "highlight": {"start": 4, "end": 8}}
    with pytest.raises(errors.DocumentError, match="not inside the text"):
        loader.validate({"scenes": [{"layers": [layer]}]})


# -- phrases and voices ---------------------------------------------------------------------


def test_phrases_break_at_punctuation_and_at_seven_words() -> None:
    assert synth.phrases("Hello there, and welcome. Bye") == [
        ("Hello there,", "clause"), ("and welcome.", "sentence"), ("Bye", "sentence")]
    long = " ".join(f"w{i}" for i in range(10))
    assert synth.phrases(long) == [("w0 w1 w2 w3 w4", "split"), ("w5 w6 w7 w8 w9", "sentence")]
    assert synth.phrases("مرحبا، كيف حالك؟ شكرا") == [
        ("مرحبا،", "clause"), ("كيف حالك؟", "sentence"), ("شكرا", "sentence")]
    assert synth.phrases("नमस्ते। आप कैसे हैं") == [("नमस्ते।", "sentence"), ("आप कैसे हैं", "sentence")]
    assert synth.phrases("first line\nsecond line") == [("first line", "sentence"),
                                                        ("second line", "sentence")]


@pytest.mark.parametrize(("text", "script", "voice"), [
    ("Hello world", "latin", "en-us"),
    ("مرحبا بكم في فريم فارم", "arabic", "ar"),
    ("سلام دنیا", "arabic", "ar"),  # Persian: Arabic script, spoken by the Arabic voice
    ("שלום עולם", "hebrew", "he"),
    ("नमस्ते दुनिया", "devanagari", "hi"),
    ("Render ویدیو و تصویر", "arabic", "ar"),  # mostly Arabic-script letters
    ("Hello שלום", "latin", "en-us"),
    ("1234 !?", "latin", "en-us"),
])
def test_a_voice_is_chosen_by_the_text_s_script(text: str, script: str, voice: str) -> None:
    assert voices.script(text) == script
    assert providers.EspeakNg().voice_for(text, None) == voice
    assert providers.EspeakNg().voice_for(text, "en-gb") == "en-gb"


def test_the_command_provider_is_configured_by_the_environment(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FRAMEFARM_TTS_PROVIDER", "command")
    monkeypatch.setenv("FRAMEFARM_TTS_COMMAND", "tts --voice {voice} --speed {rate} -o {output}")
    monkeypatch.setenv("FRAMEFARM_TTS_COMMAND_VOICES", '{"hebrew": "he-voice"}')
    provider = providers.configured()
    assert isinstance(provider, providers.Command)
    assert provider.voice_for("שלום", None) == "he-voice"
    assert provider.voice_for("hello", None) == "default"
    assert provider.argv("v1", 150, tmp_path / "o.wav") == [
        "tts", "--voice", "v1", "--speed", "150", "-o", str(tmp_path / "o.wav")]
    assert isinstance(providers.configured("espeak-ng"), providers.EspeakNg)
    monkeypatch.setenv("FRAMEFARM_TTS_COMMAND", "tts {text}")
    with pytest.raises(providers.SpeechError, match=r"only \{voice\}, \{rate\} and \{output\}"):
        providers.configured().argv("v", None, tmp_path / "o.wav")
    monkeypatch.setenv("FRAMEFARM_TTS_COMMAND", "")
    with pytest.raises(providers.SpeechError, match="needs FRAMEFARM_TTS_COMMAND"):
        providers.configured().argv("v", None, tmp_path / "o.wav")
    monkeypatch.setenv("FRAMEFARM_TTS_PROVIDER", "cloud")
    with pytest.raises(providers.SpeechError, match="use one of espeak-ng, command"):
        providers.configured()


def test_missing_espeak_ng_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("FRAMEFARM_ESPEAK", str(tmp_path / "no-such" / "espeak-ng"))
    monkeypatch.setenv("FRAMEFARM_SPEECH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(providers.SpeechError) as caught:
        engine.load_timeline(spoken(), base_dir=tmp_path)
    message = str(caught.value)
    assert "spoken voice-overs need espeak-ng" in message
    assert "apt-get install espeak-ng" in message and "FRAMEFARM_ESPEAK" in message
    assert isinstance(caught.value, errors.RenderError)  # exit code 1: the machine, not the doc


def test_the_request_key_is_what_the_document_asks_for() -> None:
    base = models.Voiceover(text="Hello")
    same = models.Voiceover(text="Hello", volume=0.5, delay=1)
    assert resolve.request_key(base) == resolve.request_key(same)
    for other in (models.Voiceover(text="Hello!"), models.Voiceover(text="Hello", rate=150),
                  models.Voiceover(text="Hello", voice="en-gb"),
                  models.Voiceover(text="Hello", provider="command")):
        assert resolve.request_key(other) != resolve.request_key(base)


# -- cues, layers, files ------------------------------------------------------------------------


def speech() -> synth.Speech:
    words = (synth.Word("Hello", 0.1, 0.4), synth.Word("there,", 0.4, 0.8))
    later = (synth.Word("and", 1.2, 1.4), synth.Word("welcome", 1.4, 1.9),
             synth.Word("to", 1.9, 2.0), synth.Word("framefarm.", 2.0, 2.6))
    return synth.Speech("k", Path("k.wav"), 2.7, "en-us", (
        synth.Phrase("Hello there,", 0.1, 0.8, words),
        synth.Phrase("and welcome to framefarm.", 1.2, 2.6, later)))


def test_cues_follow_the_phrases_and_hold_until_the_next() -> None:
    found = captions.cues(speech(), models.SpokenCaptions.model_validate({"from": "voiceover"}),
                          delay=0.5)
    assert [(c.start, c.end, c.text) for c in found] == [
        (0.6, 1.7, "Hello there,"), (1.7, 3.6, "and welcome to framefarm.")]


def test_cues_of_at_most_max_words_and_inside_start_end() -> None:
    options = models.SpokenCaptions.model_validate({"from": "voiceover", "max_words": 2})
    found = captions.cues(speech(), options, delay=0)
    assert [c.text for c in found] == ["Hello there,", "and welcome", "to framefarm."]
    assert found[1].start == 1.2 and found[1].end == 1.9
    window = models.SpokenCaptions.model_validate({"from": "voiceover", "start": 0.5,
                                                   "end": 1.5})
    assert [(c.start, c.end) for c in captions.cues(speech(), window, 0)] == [
        (0.5, 1.2), (1.2, 1.5)]


def test_caption_layers_are_text_layers_with_a_highlight_per_word() -> None:
    options = models.SpokenCaptions.model_validate({
        "from": "voiceover", "highlight": {"color": "#00ff00"}, "style": {"size": 30},
        "animation": {"in": "fade", "out": "fade"}})
    found = captions.cues(speech(), options, 0)
    layers = captions.layers(found, speech(), options, 0)
    assert all(isinstance(layer, models.TextLayer) for layer in layers)
    assert [(layer.start, layer.end, layer.highlight.start if layer.highlight else None)
            for layer in layers] == [(0.1, 0.4, 0), (0.4, 1.2, 6), (1.2, 1.4, 0),
                                     (1.4, 1.9, 4), (1.9, 2.0, 12), (2.0, 3.1, 15)]
    assert {layer.position for layer in layers} == {"bottom"}
    assert [(layer.animation.in_, layer.animation.out) for layer in layers[:2]] == [
        ("fade", "none"), ("none", "fade")]
    plain = captions.layers(found, speech(), models.SpokenCaptions.model_validate(
        {"from": "voiceover", "y": 10}), 0)
    assert [(layer.text, layer.highlight, layer.position) for layer in plain] == [
        ("Hello there,", None, None), ("and welcome to framefarm.", None, None)]


def test_srt_and_webvtt() -> None:
    cues = [loader.Cue(0.01, 1.5, "Hello there,"), loader.Cue(3661.5, 3662.25, "שלום")]
    assert captions.srt(cues) == (
        "1\n00:00:00,010 --> 00:00:01,500\nHello there,\n\n"
        "2\n01:01:01,500 --> 01:01:02,250\nשלום\n")
    assert captions.vtt(cues) == (
        "WEBVTT\n\n00:00:00.010 --> 00:00:01.500\nHello there,\n\n"
        "01:01:01.500 --> 01:01:02.250\nשלום\n")


def test_a_captions_file_is_srt_or_vtt(tmp_path: Path) -> None:
    with pytest.raises(errors.DocumentError, match=r"as \.srt or \.vtt"):
        engine.check_captions_output(tmp_path / "captions.txt")
    with pytest.raises(errors.RenderError, match="does not exist"):
        engine.check_captions_output(tmp_path / "missing" / "captions.srt")


def test_word_times_from_a_provider_are_used_only_when_they_fit() -> None:
    phrase = "and welcome to framefarm."
    events = ((0, 0.0), (4, 0.198), (12, 0.634), (15, 0.758))
    timed = synth._timed(phrase, espeak_lib.Timings(events, 1.44), 1.44, 10.0, 10.002, 11.4)
    assert timed is not None
    assert [(w.text, w.start, w.end) for w in timed] == [
        ("and", 10.002, 10.198), ("welcome", 10.198, 10.634), ("to", 10.634, 10.758),
        ("framefarm.", 10.758, 11.4)]
    assert synth._timed(phrase, None, 1.44, 10.0, 10.0, 11.4) is None
    # Audio of another length: another synthesis, its times are not this audio's.
    assert synth._timed(phrase, espeak_lib.Timings(events, 1.8), 1.44, 10.0, 10.0, 11.4) is None
    # A word without an event, or times out of order.
    assert synth._timed(phrase, espeak_lib.Timings(events[:3], 1.44), 1.44, 0, 0, 1.4) is None
    backwards = ((0, 0.0), (4, 0.6), (12, 0.3), (15, 0.758))
    assert synth._timed(phrase, espeak_lib.Timings(backwards, 1.44), 1.44, 0, 0, 1.4) is None

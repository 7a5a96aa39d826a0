"""Timeline arithmetic: seconds snapped to frames, transitions overlapping scenes."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from framefarm import engine, errors
from framefarm.document.timeline import Timeline, to_frames
from support.documents import small_output
from support.media import write_wav


def build(doc: dict[str, Any], base: Path) -> Timeline:
    doc = {"output": small_output(), **doc}
    return engine.load_timeline(doc, base_dir=base)


def spans(tl: Timeline) -> list[tuple[int, int, int]]:
    return [(s.start, s.frames, s.transition_frames) for s in tl.scenes]


def test_two_scenes_with_a_transition(tmp_path: Path) -> None:
    tl = build({"scenes": [
        {"duration": 2, "transition": {"type": "dissolve", "duration": 0.5}},
        {"duration": 2},
    ]}, tmp_path)
    assert spans(tl) == [(0, 60, 15), (45, 60, 0)]
    assert tl.total_frames == 105
    assert tl.duration == pytest.approx(3.5)
    assert (tl.width, tl.height, tl.fps) == (160, 90, 30)
    assert [s.index for s in tl.scenes_at(44)] == [0]
    assert [s.index for s in tl.scenes_at(45)] == [0, 1]
    assert [s.index for s in tl.scenes_at(59)] == [0, 1]
    assert [s.index for s in tl.scenes_at(60)] == [1]
    assert [s.index for s in tl.scenes_at(104)] == [1]
    assert tl.scenes_at(105) == []


def test_no_transitions_back_to_back(tmp_path: Path) -> None:
    tl = build({"scenes": [{"duration": 1}, {"duration": 0.5}, {"duration": 1.5}]}, tmp_path)
    assert spans(tl) == [(0, 30, 0), (30, 15, 0), (45, 45, 0)]
    assert tl.total_frames == 90


def test_three_scenes_two_transitions_at_25_fps(tmp_path: Path) -> None:
    tl = build({"output": small_output(fps=25), "scenes": [
        {"duration": 3, "transition": {"type": "wipe_left", "duration": 1}},
        {"duration": 2, "transition": {"type": "fade", "duration": 0.4}},
        {"duration": 1.2},
    ]}, tmp_path)
    # 75 frames, overlap 25 -> next at 50; 50 frames, overlap 10 -> next at 90; 30 frames.
    assert spans(tl) == [(0, 75, 25), (50, 50, 10), (90, 30, 0)]
    assert tl.total_frames == 120


def test_transition_on_the_last_scene_is_ignored(tmp_path: Path) -> None:
    tl = build({"scenes": [{"duration": 1}, {"duration": 1, "transition": {"duration": 0.5}}]},
               tmp_path)
    assert spans(tl) == [(0, 30, 0), (30, 30, 0)]
    assert tl.scenes[1].transition is None
    assert tl.total_frames == 60


def test_durations_snap_to_the_nearest_frame(tmp_path: Path) -> None:
    tl = build({"output": small_output(fps=24), "scenes": [{"duration": 1.01}, {"duration": 0.03},
                                                            {"duration": 0.001}]}, tmp_path)
    # 24.24 -> 24; 0.72 -> 1; 0.024 -> 0, but a scene is at least one frame
    assert spans(tl) == [(0, 24, 0), (24, 1, 0), (25, 1, 0)]


def test_to_frames() -> None:
    assert to_frames(0.5, 30) == 15
    assert to_frames(1 / 3, 30) == 10
    assert to_frames(2.0, 60) == 120


def test_transition_as_long_as_a_scene_is_refused(tmp_path: Path) -> None:
    with pytest.raises(errors.DocumentError) as caught:
        build({"scenes": [{"duration": 1, "transition": {"duration": 1}}, {"duration": 3}]},
              tmp_path)
    assert caught.value.problems == [
        "scenes[0].transition.duration: 1.0s is not shorter than this scene or the next "
        "(1.00s, 3.00s)"]


def test_transition_longer_than_the_next_scene_is_refused(tmp_path: Path) -> None:
    with pytest.raises(errors.DocumentError) as caught:
        build({"scenes": [{"duration": 5}, {"duration": 4, "transition": {"duration": 2}},
                          {"duration": 1.5}]}, tmp_path)
    assert caught.value.problems == [
        "scenes[1].transition.duration: 2.0s is not shorter than this scene or the next "
        "(4.00s, 1.50s)"]


def test_key_frame_is_the_middle_of_each_scene_outside_transitions(tmp_path: Path) -> None:
    tl = build({"scenes": [
        {"duration": 2, "transition": {"duration": 0.5}},
        {"duration": 2},
    ]}, tmp_path)
    # Scene 0 shows alone on frames 0..44, scene 1 on frames 60..104.
    assert tl.key_frame(0) == 22
    assert tl.key_frame(1) == 82
    for index in (0, 1):
        assert [s.index for s in tl.scenes_at(tl.key_frame(index))] == [index]
    with pytest.raises(errors.FrameSelectionError,
                       match=r"^scene 2 does not exist: the document has scenes 0\.\.1$"):
        tl.key_frame(2)
    with pytest.raises(errors.FrameSelectionError, match=r"^scene -1 does not exist"):
        tl.key_frame(-1)


def test_key_frame_avoids_a_long_incoming_transition(tmp_path: Path) -> None:
    tl = build({"scenes": [
        {"duration": 2, "transition": {"duration": 1.5}},
        {"duration": 2},
    ]}, tmp_path)
    # Scene 1 spans frames 15..74; frames 15..59 are the transition from scene 0.
    assert spans(tl) == [(0, 60, 45), (15, 60, 0)]
    assert [s.index for s in tl.scenes_at(tl.key_frame(1))] == [1]


# -- frame selection: one function for the CLI and the API, neutral messages ------------------


def _two_scenes(tmp_path: Path) -> Timeline:
    # 60 + 60 - 15 = 105 frames, 3.5 s.
    return build({"scenes": [{"duration": 2, "transition": {"duration": 0.5}},
                             {"duration": 2}]}, tmp_path)


def test_select_frame_by_frame_time_or_scene(tmp_path: Path) -> None:
    tl = _two_scenes(tmp_path)
    assert tl.select_frame() == 0
    assert tl.select_frame(frame=0) == 0
    assert tl.select_frame(frame=104) == 104
    assert tl.select_frame(at=0) == 0
    assert tl.select_frame(at=1.0) == 30
    assert tl.select_frame(at=1.51) == 45  # the nearest frame
    assert tl.select_frame(at=3.5) == 104  # the very end shows the last frame
    assert tl.select_frame(scene=0) == tl.key_frame(0) == 22
    assert tl.select_frame(scene=1) == 82


def test_select_frame_precedence_is_scene_then_time_then_frame(tmp_path: Path) -> None:
    tl = _two_scenes(tmp_path)
    assert tl.select_frame(frame=3, at=1.0, scene=1) == 82
    assert tl.select_frame(frame=3, at=1.0) == 30


@pytest.mark.parametrize(("kwargs", "field", "message", "labelled"), [
    ({"at": 9.0}, "at", "9.0 s is past the end: the video lasts 3.50 s",
     "--at 9.0: the video lasts 3.50 s"),
    ({"at": -1.0}, "at", "-1.0 s is before the start: the video lasts 3.50 s",
     "--at -1.0: the video lasts 3.50 s"),
    ({"at": float("nan")}, "at", "nan s is past the end: the video lasts 3.50 s",
     "--at nan: the video lasts 3.50 s"),
    ({"frame": 105}, "frame", "frame 105 is not in the video: the video has frames 0-104",
     "--frame 105: the video has frames 0-104"),
    ({"frame": -1}, "frame", "frame -1 is not in the video: the video has frames 0-104",
     "--frame -1: the video has frames 0-104"),
    ({"scene": 2}, "scene", "scene 2 does not exist: the document has scenes 0..1",
     "--scene 2: the document has scenes 0..1"),
])
def test_select_frame_errors_name_the_selector(tmp_path: Path, kwargs: dict[str, Any],
                                               field: str, message: str, labelled: str) -> None:
    tl = _two_scenes(tmp_path)
    with pytest.raises(errors.FrameSelectionError) as caught:
        tl.select_frame(**kwargs)
    exc = caught.value
    assert isinstance(exc, errors.DocumentError)
    assert exc.field == field
    assert str(exc) == message
    assert str(exc.labelled(f"--{field}")) == labelled
    assert str(exc.labelled(field)) == labelled.removeprefix("--")  # the API's wording
    assert exc.labelled("--x").field == field


def test_frame_range(tmp_path: Path) -> None:
    tl = _two_scenes(tmp_path)
    assert tl.frame_range() == (0, 105)
    assert tl.frame_range((10, 20)) == (10, 20)
    assert tl.frame_range((0, 105)) == (0, 105)
    for bad, problem in [((20, 10), "frames 20-10 is an empty range"),
                         ((5, 5), "frames 5-5 is an empty range"),
                         ((0, 106), "frames 0-106 is not inside the video"),
                         ((-1, 5), "frames -1-5 is not inside the video")]:
        with pytest.raises(errors.FrameSelectionError) as caught:
            tl.frame_range(bad)
        assert caught.value.field == "frames"
        assert str(caught.value) == f"{problem}: the video has frames 0-105 (end exclusive)"
    assert str(caught.value.labelled("--frames")) == (
        "--frames -1-5: the video has frames 0-105 (end exclusive)")


def test_frame_selection_error_survives_pickling() -> None:
    exc = errors.FrameSelectionError("at", "9.0", "9.0 s is past the end",
                                     "the video lasts 3.50 s").labelled("at")
    copy = pickle.loads(pickle.dumps(exc))
    assert (copy.field, copy.value, str(copy)) == ("at", "9.0", "at 9.0: the video lasts 3.50 s")


# -- auto durations (WAV voice-overs, measured in-process by PyAV) ------------------------------


@pytest.mark.parametrize(
    ("voice", "delay", "frames"),
    [
        (1.0, 0.0, 75),  # 1.0 + 0.5 padding = 1.5 -> clamped up to min 2.5 s
        (3.0, 0.0, 105),  # 3.0 + 0.5 = 3.5 s
        (3.0, 0.5, 120),  # the delay counts too: 4.0 s
        (20.0, 0.0, 240),  # 20.5 -> clamped down to max 8 s
    ],
)
def test_auto_duration_is_voice_plus_padding_clamped(
    tmp_path: Path, voice: float, delay: float, frames: int
) -> None:
    write_wav(tmp_path / "vo.wav", voice)
    tl = build({"scenes": [{"duration": "auto", "voiceover": {"src": "vo.wav", "delay": delay}}]},
               tmp_path)
    assert spans(tl) == [(0, frames, 0)]


def test_auto_duration_with_custom_clamp(tmp_path: Path) -> None:
    write_wav(tmp_path / "short.wav", 0.2)
    write_wav(tmp_path / "mid.wav", 1.3)
    write_wav(tmp_path / "long.wav", 6.0)
    auto = {"padding": 0.2, "min": 1.0, "max": 3.0}
    tl = build({"scenes": [
        {"duration": "auto", "auto": auto, "voiceover": {"src": "short.wav"}},
        {"duration": "auto", "auto": auto, "voiceover": {"src": "mid.wav"},
         "transition": {"duration": 0.5}},
        {"duration": "auto", "auto": auto, "voiceover": {"src": "long.wav"}},
    ]}, tmp_path)
    # 0.4 -> 1.0 s (30); 1.5 s (45), overlap 15; 6.2 -> 3.0 s (90)
    assert spans(tl) == [(0, 30, 0), (30, 45, 15), (60, 90, 0)]
    assert tl.total_frames == 150


def test_auto_min_above_max_is_refused(tmp_path: Path) -> None:
    write_wav(tmp_path / "vo.wav", 1.0)
    with pytest.raises(errors.DocumentError) as caught:
        build({"scenes": [{"duration": "auto", "auto": {"min": 5, "max": 2},
                           "voiceover": {"src": "vo.wav"}}]}, tmp_path)
    assert caught.value.problems == ["scenes[0]: auto.min must not exceed auto.max"]


def test_auto_scene_decides_whether_a_transition_fits(tmp_path: Path) -> None:
    write_wav(tmp_path / "vo.wav", 0.5)
    auto = {"padding": 0, "min": 0.5, "max": 8}
    with pytest.raises(errors.DocumentError, match=r"scenes\[0\]\.transition\.duration"):
        build({"scenes": [
            {"duration": 3, "transition": {"duration": 1}},
            {"duration": "auto", "auto": auto, "voiceover": {"src": "vo.wav"}},
        ]}, tmp_path)


def test_auto_scene_counts_with_its_max_against_the_limit(tmp_path: Path) -> None:
    from framefarm.limits import Limits

    write_wav(tmp_path / "vo.wav", 3.0)
    doc = {"output": small_output(),
           "scenes": [{"duration": 2}, {"duration": "auto", "voiceover": {"src": "vo.wav"},
                                        "auto": {"max": 3}}]}
    # The loader's estimate uses auto.max (2 + 3 = 5 s) before anything is measured.
    with pytest.raises(errors.DocumentError) as caught:
        engine.load_timeline(doc, base_dir=tmp_path, limits=Limits(max_duration=4))
    assert caught.value.problems == [
        "scenes: the video would last up to 5 s, the limit is 4 s"]
    assert engine.load_timeline(doc, base_dir=tmp_path,
                                limits=Limits(max_duration=5)).total_frames == 150


def test_voiceover_with_no_audio_stream_is_refused(tmp_path: Path) -> None:
    from PIL import Image

    # A GIF is media FFmpeg reads, but with video only.
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(errors.AssetError) as caught:
        build({"scenes": [{"duration": 1, "voiceover": {"src": "anim.gif"}}]}, tmp_path)
    assert caught.value.problems == ["scenes[0].voiceover.src: 'anim.gif' has no audio stream"]

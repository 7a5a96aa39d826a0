"""Properties of the timeline's snapping of seconds to frames, on generated documents.

What ``timeline.build`` promises: each scene is snapped on its own (its length and its
transition rounded to the nearest frame, at least one frame long), and scenes are chained in
integer frames, each starting where the previous one ends less the transition. So a scene
lasts the same number of frames wherever it stands, and the error against exact seconds is
at most half a frame per rounded value: it adds up along the video rather than being
corrected at each boundary.
"""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from framefarm import engine, errors
from framefarm.document.timeline import Timeline

FPS = st.sampled_from([24, 25, 30, 50, 60])
DURATION = st.floats(0.01, 20.0, allow_nan=False)
TRANSITION = st.none() | st.floats(0.01, 5.0, allow_nan=False)

# Building goes through pydantic and the loader: a few milliseconds an example, more on a
# loaded machine, so no deadline.
slow = settings(deadline=None, max_examples=150)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    fps = draw(FPS)
    count = draw(st.integers(1, 10))
    scenes = []
    for _ in range(count):
        scene: dict[str, Any] = {"duration": draw(DURATION)}
        transition = draw(TRANSITION)
        if transition is not None:
            scene["transition"] = {"type": "dissolve", "duration": transition}
        scenes.append(scene)
    return {"output": {"width": 160, "height": 90, "fps": fps, "quality": "draft"},
            "scenes": scenes}


def snapped(doc: dict[str, Any]) -> tuple[list[int], list[int]]:
    """Each scene's frames and each transition's overlap, rounded one by one."""
    fps = doc["output"]["fps"]
    scenes = doc["scenes"]
    frames = [max(1, round(s["duration"] * fps)) for s in scenes]
    overlaps = [round(s["transition"]["duration"] * fps)
                if "transition" in s and i + 1 < len(scenes) else 0
                for i, s in enumerate(scenes)]
    return frames, overlaps


def fits(frames: list[int], overlaps: list[int]) -> bool:
    """Every transition is shorter than the scenes on both sides of it."""
    return all(o < min(frames[i], frames[i + 1]) for i, o in enumerate(overlaps[:-1]))


def build(doc: dict[str, Any]) -> Timeline:
    return engine.load_timeline(doc)


@slow
@given(documents())
def test_built_exactly_when_every_transition_fits(doc: dict[str, Any]) -> None:
    frames, overlaps = snapped(doc)
    if fits(frames, overlaps):
        build(doc)
    else:
        try:
            build(doc)
        except errors.DocumentError as exc:
            assert "the scenes' timing does not work" in str(exc)
        else:
            raise AssertionError("a transition as long as a scene was accepted")


@slow
@given(documents())
def test_scenes_are_chained_in_whole_frames(doc: dict[str, Any]) -> None:
    frames, overlaps = snapped(doc)
    assume(fits(frames, overlaps))
    tl = build(doc)
    assert [s.frames for s in tl.scenes] == frames
    assert [s.transition_frames for s in tl.scenes] == overlaps
    assert tl.scenes[0].start == 0
    assert tl.scenes[-1].transition is None
    for before, after in zip(tl.scenes, tl.scenes[1:], strict=False):
        assert after.start == before.end - before.transition_frames
        assert after.start > before.start  # monotonic: a transition never reaches back
    assert tl.total_frames == sum(frames) - sum(overlaps) == tl.scenes[-1].end
    assert tl.duration == tl.total_frames / tl.fps


@slow
@given(documents())
def test_snapping_error_is_half_a_frame_per_value(doc: dict[str, Any]) -> None:
    frames, overlaps = snapped(doc)
    assume(fits(frames, overlaps))
    tl = build(doc)
    fps = tl.fps
    exact_start = 0.0  # in frames, unrounded
    bound = 0.0  # the rounding errors allowed so far, in frames
    for span, scene in zip(tl.scenes, doc["scenes"], strict=True):
        assert abs(span.start - exact_start) <= bound + 1e-6
        length = scene["duration"] * fps
        clamped = length < 0.5  # rounds to nothing: one frame instead
        assert abs(span.frames - length) <= (1 if clamped else 0.5) + 1e-9
        overlap = span.transition.duration * fps if span.transition is not None else 0.0
        assert abs(span.transition_frames - overlap) <= 0.5 + 1e-9
        exact_start += length - overlap
        bound += (1 if clamped else 0.5) + (0.5 if span.transition is not None else 0)


def test_rounding_errors_add_up_along_the_video() -> None:
    # 1.02 s is 24.48 frames at 24 fps: each scene gets 24, so ten of them last 240 frames
    # (10.0 s), not the 245 that 10.2 s would round to.
    tl = build({"output": {"width": 160, "height": 90, "fps": 24},
                "scenes": [{"duration": 1.02}] * 10})
    assert [s.start for s in tl.scenes] == list(range(0, 240, 24))
    assert tl.total_frames == 240


@slow
@given(documents(), documents())
def test_a_scene_lasts_the_same_wherever_it_stands(first: dict[str, Any],
                                                   second: dict[str, Any]) -> None:
    # The same scenes after different ones: their frames and overlaps do not change.
    joined = {**first, "scenes": first["scenes"] + second["scenes"]}
    alone = {**second, "output": first["output"]}
    frames, overlaps = snapped(joined)
    assume(fits(frames, overlaps) and fits(*snapped(alone)))
    tail = build(joined).scenes[len(first["scenes"]):]
    ref = build(alone).scenes
    assert [(s.frames, s.transition_frames) for s in tail] == [
        (s.frames, s.transition_frames) for s in ref]
    offset = tail[0].start
    assert [s.start - offset for s in tail] == [s.start for s in ref]


@slow
@given(documents())
def test_every_frame_shows_a_scene(doc: dict[str, Any]) -> None:
    frames, overlaps = snapped(doc)
    assume(fits(frames, overlaps))
    tl = build(doc)
    for n in range(tl.total_frames):
        showing = tl.scenes_at(n)
        assert showing, n
        assert [s.index for s in showing] == sorted(s.index for s in showing)
        in_transition = any(s.end - s.transition_frames <= n < s.end for s in tl.scenes)
        assert (len(showing) >= 2) == in_transition
    assert tl.scenes_at(tl.total_frames) == []


@slow
@given(documents())
def test_two_scenes_at_most_when_transitions_do_not_overlap(doc: dict[str, Any]) -> None:
    # build() does not refuse a scene shorter than the transitions into and out of it
    # together; then three scenes show at once. Here: the documents where they do not.
    frames, overlaps = snapped(doc)
    assume(fits(frames, overlaps))
    assume(all(frames[i] >= overlaps[i - 1] + overlaps[i] for i in range(1, len(frames))))
    tl = build(doc)
    assert all(len(tl.scenes_at(n)) <= 2 for n in range(tl.total_frames))


@slow
@given(documents(), st.data())
def test_select_frame_at_a_time_is_that_time_snapped(doc: dict[str, Any],
                                                     data: st.DataObject) -> None:
    assume(fits(*snapped(doc)))
    tl = build(doc)
    at = data.draw(st.floats(0, tl.duration))
    frame = tl.select_frame(at=at)
    assert 0 <= frame < tl.total_frames
    assert abs(frame - at * tl.fps) <= 0.5 + 1e-9 or frame == tl.total_frames - 1
    assert tl.select_frame(frame=frame) == frame

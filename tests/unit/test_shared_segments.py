"""Which frames of a batch are shared by every row: decided from what each frame depends
on, never by rendering (``framefarm.batch.shared``)."""

from __future__ import annotations

import copy
import wave
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from framefarm import engine
from framefarm.batch import shared
from framefarm.document.timeline import Timeline

FPS = 30
ENCODER = "test-build"  # stands for the FFmpeg build: unit tests start no process


def scene(seconds: float | str, text: str, **extra: Any) -> dict[str, Any]:
    return {"duration": seconds, "background": "#203040", "layers": [
        {"type": "shape", "shape": "circle", "x": 10, "y": 10, "width": 60, "height": 60,
         "fill": "#ff5a00", "keyframes": {"x": [{"time": 0, "value": 0},
                                                {"time": seconds, "value": 200}]}},
        {"type": "text", "text": text, "position": "center"}], **extra}


def template(*scenes: dict[str, Any], **variables: dict[str, Any]) -> dict[str, Any]:
    return {"output": {"width": 320, "height": 180, "fps": FPS, "quality": "draft"},
            "variables": variables or {"name": {"type": "text", "default": "x"}},
            "scenes": list(scenes)}


def timelines(doc: dict[str, Any], rows: list[dict[str, Any]], base: Path | None = None,
              **overrides: Any) -> list[Timeline]:
    return [engine.load_timeline(doc, data=row, base_dir=base, **overrides) for row in rows]


def layout(plan: shared.Plan) -> list[tuple[int, int, bool]]:
    return [(s.start, s.end, s.shared) for s in plan.segments]


def plan_of(doc: dict[str, Any], rows: list[dict[str, Any]], base: Path | None = None,
            **options: Any) -> shared.Plan:
    return shared.plan(timelines(doc, rows, base), encoder=ENCODER, **options)


ROWS = [{"name": "Ann"}, {"name": "Bob"}, {"name": "Cy"}]


def test_a_variable_in_the_intro_only_shares_everything_after_it() -> None:
    doc = template(scene(2, "Hello {{name}}"), scene(2, "Product"), scene(1, "Bye"))
    assert layout(plan_of(doc, ROWS)) == [(0, 60, False), (60, 150, True)]


def test_a_variable_in_the_middle_scene_shares_the_intro_and_the_outro() -> None:
    doc = template(scene(2, "Welcome"), scene(1, "Hello {{name}}"), scene(2, "Bye"))
    plan = plan_of(doc, ROWS)
    assert layout(plan) == [(0, 60, True), (60, 90, False), (90, 150, True)]
    assert plan.shared_frames == 120 and plan.total_frames == 150
    assert all(s.key is not None for s in plan.shared)
    assert len({s.key for s in plan.shared}) == 2


def test_transition_frames_belong_to_the_row_when_either_side_does() -> None:
    fade = {"transition": {"type": "fade", "duration": 0.5}}  # 15 frames of overlap
    doc = template(scene(2, "Welcome", **fade), scene(1, "Hello {{name}}", **fade),
                   scene(2, "Bye"))
    # Scene 1 starts at 45 (60 - 15) and ends at 75; scene 2 starts at 60.
    assert layout(plan_of(doc, ROWS)) == [(0, 45, True), (45, 75, False), (75, 120, True)]


def test_a_variable_in_every_scene_shares_nothing() -> None:
    doc = template(scene(1, "Hi {{name}}"), scene(1, "Still {{name}}"),
                   scene(1, "Bye {{name}}"))
    plan = plan_of(doc, ROWS)
    assert layout(plan) == [(0, 90, False)]
    assert plan.shared == []


def test_a_text_with_the_same_value_in_every_row_is_shared() -> None:
    doc = template(scene(1, "Welcome"), scene(1, "Hello {{name}}"), scene(1, "Bye"))
    plan = plan_of(doc, [{"name": "Ann"}] * 3)
    assert layout(plan) == [(0, 90, True)]


def test_only_the_frames_where_a_varying_layer_shows_are_the_rows_own() -> None:
    middle = scene(3, "Product")
    middle["layers"].append({"type": "text", "text": "for {{name}}", "position": "bottom",
                             "start": 1.0, "end": 2.0})
    doc = template(scene(2, "Welcome"), middle, scene(2, "Bye"))
    assert layout(plan_of(doc, ROWS)) == [(0, 90, True), (90, 120, False), (120, 210, True)]


def write_png(path: Path, colour: str) -> Path:
    Image.new("RGB", (64, 36), colour).save(path)
    return path


def test_an_image_variable_is_decided_by_the_files_content(tmp_path: Path) -> None:
    write_png(tmp_path / "red.png", "#ff0000")
    write_png(tmp_path / "blue.png", "#0000ff")
    write_png(tmp_path / "red-again.png", "#ff0000")
    photo = scene(2, "Look")
    photo["layers"].insert(0, {"type": "image", "src": "{{photo}}", "fit": "cover"})
    doc = template(scene(2, "Welcome"), photo, scene(2, "Bye"),
                   photo={"type": "image", "default": "red.png"})
    different = plan_of(doc, [{"photo": "red.png"}, {"photo": "blue.png"}], tmp_path)
    assert layout(different) == [(0, 60, True), (60, 120, False), (120, 180, True)]
    # Two names, the same bytes: the same pixels, so shared.
    same = plan_of(doc, [{"photo": "red.png"}, {"photo": "red-again.png"}], tmp_path)
    assert layout(same) == [(0, 180, True)]


def test_a_background_image_variable_is_the_scenes_content(tmp_path: Path) -> None:
    write_png(tmp_path / "a.png", "#00ff00")
    write_png(tmp_path / "b.png", "#ffff00")
    doc = template(scene(2, "Welcome"), scene(2, "Hi", background_image="{{bg}}"),
                   bg={"type": "image", "default": "a.png"})
    plan = plan_of(doc, [{"bg": "a.png"}, {"bg": "b.png"}], tmp_path)
    assert layout(plan) == [(0, 60, True), (60, 120, False)]


def write_wav(path: Path, seconds: float) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x10" * int(8000 * seconds))
    return path


def test_a_variable_that_only_changes_the_sound_shares_every_frame(tmp_path: Path) -> None:
    write_wav(tmp_path / "music.wav", 1.0)
    doc = template(scene(1, "Welcome"), scene(1, "Bye"),
                   volume={"type": "number", "default": 0.5})
    doc["music"] = {"src": "music.wav", "volume": "{{volume}}"}
    plan = plan_of(doc, [{"volume": 0.2}, {"volume": 0.9}], tmp_path)
    assert layout(plan) == [(0, 60, True)]


def test_a_row_dependent_length_shifts_what_follows_out_of_sharing() -> None:
    doc = template(scene(1, "Welcome"), scene("{{seconds}}", "Hi"), scene(1, "Bye"),
                   seconds={"type": "number", "default": 1})
    plan = plan_of(doc, [{"seconds": 1}, {"seconds": 2}], min_frames=1)
    # Only the intro agrees: the middle scene's length is in every one of its frames (its
    # layers' timing depends on it), and the outro comes a second later in the second row.
    # The plan covers the longer row; the shorter one is cut to its length.
    assert layout(plan) == [(0, 30, True), (30, 120, False)]
    assert [(s.start, s.end) for s in plan.for_row(90)] == [(0, 30), (30, 90)]


def test_a_short_shared_run_is_not_worth_a_part() -> None:
    doc = template(scene(1, "Hi {{name}}"), scene(0.3, "Flash"), scene(1, "Bye {{name}}"))
    # 9 shared frames between two of the rows' own stretches: below the threshold.
    assert layout(plan_of(doc, ROWS)) == [(0, 69, False)]
    assert layout(plan_of(doc, ROWS, min_frames=5)) == [
        (0, 30, False), (30, 39, True), (39, 69, False)]


def test_the_threshold_is_the_break_even_of_a_parts_fixed_cost() -> None:
    cost = shared.PART_COST_FRAMES
    assert shared.min_shared_frames(2) == 3 * cost
    assert shared.min_shared_frames(100) == -(-cost * 101 // 99)
    assert shared.min_shared_frames(10) < shared.min_shared_frames(3)
    # One row shares with no one.
    doc = template(scene(1, "Welcome"))
    assert layout(plan_of(doc, ROWS[:1])) == [(0, 30, False)]


def intro_key(doc: dict[str, Any], **overrides: Any) -> str | None:
    tls = timelines(doc, ROWS[:2], **overrides)
    return shared.plan(tls, encoder=overrides.pop("encoder", ENCODER)).segments[0].key


INTRO = scene(2, "Welcome")


def test_keys_are_equal_for_equal_content_wherever_it_is() -> None:
    first = template(copy.deepcopy(INTRO), scene(1, "Hello {{name}}"))
    # Another template: the same intro, then other scenes (and another frame rate would
    # not be the same content; see below).
    second = template(copy.deepcopy(INTRO), scene(2, "Dear {{name}}"), scene(1, "More"))
    assert intro_key(first) == intro_key(second) is not None
    assert intro_key(first) == intro_key(copy.deepcopy(first))


@pytest.mark.parametrize("change", [
    {"quality": "high"}, {"size": "360p"}, {"fps": 25}, {"format": "webm"}, {"format": "gif"},
])
def test_keys_differ_for_other_encoder_settings(change: dict[str, Any]) -> None:
    doc = template(copy.deepcopy(INTRO), scene(1, "Hello {{name}}"))
    assert intro_key(doc) != intro_key(doc, **change)


def test_keys_differ_for_another_encoder_build_and_other_pixels() -> None:
    doc = template(copy.deepcopy(INTRO), scene(1, "Hello {{name}}"))
    tls = timelines(doc, ROWS[:2])
    assert (shared.plan(tls, encoder="build-a").segments[0].key
            != shared.plan(tls, encoder="build-b").segments[0].key)
    other = template(scene(2, "Welcome!"), scene(1, "Hello {{name}}"))
    assert intro_key(other) != intro_key(doc)
    recoloured = copy.deepcopy(doc)
    recoloured["output"]["background"] = "#ffffff"
    assert intro_key(recoloured) != intro_key(doc)


def test_a_frame_digest_ignores_what_cannot_show() -> None:
    base = template(scene(1, "Welcome", name="intro"))
    renamed = template(scene(1, "Welcome", name="opening"))
    a = shared.frame_digests(engine.load_timeline(base), encoder=ENCODER)
    b = shared.frame_digests(engine.load_timeline(renamed), encoder=ENCODER)
    assert a == b
    assert len(set(a)) == len(a)  # the circle moves: every frame is its own

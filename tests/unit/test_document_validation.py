"""Document validation: every refusal names the JSON path (or file) and what is wrong."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from framefarm import errors
from framefarm.document import loader, models
from framefarm.limits import Limits
from support.documents import small_output, write_doc
from support.media import write_solid_png, write_wav


def load_error(doc: dict[str, Any], base: Path, **kwargs: Any) -> errors.DocumentError:
    with pytest.raises(errors.DocumentError) as caught:
        loader.load(doc, base_dir=base, **kwargs)
    return caught.value


def one_problem(doc: dict[str, Any], base: Path) -> str:
    exc = load_error(doc, base)
    assert len(exc.problems) == 1, exc.problems
    return exc.problems[0]


def scene(**fields: Any) -> dict[str, Any]:
    return {"duration": 1, **fields}


# -- schema errors -----------------------------------------------------------------------------


def test_missing_text_names_its_json_path(tmp_path: Path) -> None:
    doc = {"scenes": [scene(layers=[{"type": "text", "text": "ok"}, {"type": "text"}])]}
    assert one_problem(doc, tmp_path) == "scenes[0].layers[1].text: required field is missing"


def test_wrong_type_of_field_names_path_inside_style(tmp_path: Path) -> None:
    doc = {"scenes": [scene(), scene(layers=[
        {"type": "shape"}, {"type": "text", "text": "a", "style": {"size": "big"}}])]}
    problem = one_problem(doc, tmp_path)
    assert problem.startswith("scenes[1].layers[1].style.size: ")
    assert "number" in problem


def test_unknown_layer_type_is_named_with_the_known_ones(tmp_path: Path) -> None:
    doc = {"scenes": [scene(layers=[{"type": "hologram"}])]}
    problem = one_problem(doc, tmp_path)
    assert problem.startswith("scenes[0].layers[0]: ")
    assert "'hologram'" in problem
    for known in models.LAYER_TYPES:
        assert f"'{known}'" in problem


@pytest.mark.parametrize("duration", [-1, 0, -0.5])
def test_non_positive_duration(tmp_path: Path, duration: float) -> None:
    doc = {"scenes": [scene(), {"duration": duration}]}
    problem = one_problem(doc, tmp_path)
    assert problem == f"scenes[1].duration: duration must be positive, got {float(duration)}"


def test_negative_layer_start(tmp_path: Path) -> None:
    doc = {"scenes": [scene(layers=[{"type": "shape", "start": -1}])]}
    problem = one_problem(doc, tmp_path)
    assert problem.startswith("scenes[0].layers[0].start: ")
    assert "greater than or equal to 0" in problem


def test_layer_end_before_start(tmp_path: Path) -> None:
    doc = {"scenes": [scene(layers=[{"type": "shape", "start": 2, "end": 1}])]}
    assert one_problem(doc, tmp_path) == (
        "scenes[0].layers[0]: end (1.0) must be after start (2.0)")


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"scenes": [{"durration": 3}]}, "scenes[0].durration"),
        ({"outptu": {}, "scenes": [{}]}, "outptu"),
        ({"scenes": [scene(layers=[{"type": "text", "text": "a", "colour": "#fff"}])]},
         "scenes[0].layers[0].colour"),
        ({"scenes": [scene(layers=[{"type": "text", "text": "a", "style": {"font_size": 3}}])]},
         "scenes[0].layers[0].style.font_size"),
    ],
)
def test_unknown_field_is_reported_with_its_path(
    tmp_path: Path, doc: dict[str, Any], path: str
) -> None:
    assert one_problem(doc, tmp_path) == f"{path}: unknown field (check the spelling)"


@pytest.mark.parametrize("colour", ["#ggg", "red-ish", "#12345", "rgb(1,2,3)", ""])
def test_bad_colour(tmp_path: Path, colour: str) -> None:
    doc = {"scenes": [scene(layers=[{"type": "shape", "fill": colour}])]}
    problem = one_problem(doc, tmp_path)
    assert problem.startswith("scenes[0].layers[0].fill: expected a colour like '#ff5a00'")
    assert repr(colour) in problem


@pytest.mark.parametrize(
    ("given", "stored"),
    [("#abc", "#abc"), ("#A1B2C3", "#A1B2C3"), ("#00000080", "#00000080"), ("Orange", "#ff8000"),
     (" white ", "#ffffff"), ("transparent", "#00000000")],
)
def test_good_colours_are_normalised(given: str, stored: str) -> None:
    doc = models.Document.model_validate({"scenes": [{"background": given}]})
    assert doc.scenes[0].background == stored


def test_every_error_is_listed_not_just_the_first(tmp_path: Path) -> None:
    doc = {"scenes": [
        scene(background="nope"),
        {"duration": -2, "layers": [{"type": "text"}]},
    ]}
    exc = load_error(doc, tmp_path)
    paths = sorted(p.split(":")[0] for p in exc.problems)
    assert paths == ["scenes[0].background", "scenes[1].duration", "scenes[1].layers[0].text"]
    assert str(exc).startswith("the document has 3 error(s)\n  - ")


def test_control_characters_in_text_are_refused(tmp_path: Path) -> None:
    doc = {"scenes": [scene(layers=[{"type": "text", "text": "bell\x07here"}])]}
    assert one_problem(doc, tmp_path) == (
        "scenes[0].layers[0].text: text contains the control character U+0007 at position 4; "
        "only newlines and tabs are allowed")


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\x85", "\r"])
def test_other_control_characters_are_refused(tmp_path: Path, char: str) -> None:
    doc = {"scenes": [scene(layers=[{"type": "text", "text": f"a{char}"}])]}
    problem = one_problem(doc, tmp_path)
    assert f"U+{ord(char):04X} at position 1" in problem


def test_newline_and_tab_are_allowed_in_text() -> None:
    doc = models.Document.model_validate(
        {"scenes": [{"layers": [{"type": "text", "text": "line\none\tand two"}]}]})
    layer = doc.scenes[0].layers[0]
    assert isinstance(layer, models.TextLayer)
    assert layer.text == "line\none\tand two"


def test_width_without_height(tmp_path: Path) -> None:
    doc = {"output": {"width": 320}, "scenes": [scene()]}
    assert one_problem(doc, tmp_path) == "output: give both width and height, or neither"


def test_auto_duration_needs_a_voiceover(tmp_path: Path) -> None:
    doc = {"scenes": [{"duration": "auto"}]}
    assert one_problem(doc, tmp_path) == (
        "scenes[0]: duration 'auto' needs a voiceover to measure")


def test_document_must_be_an_object(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(errors.DocumentError, match="must be a JSON object with 'scenes'"):
        loader.load(path)


def test_document_needs_scenes(tmp_path: Path) -> None:
    assert one_problem({}, tmp_path) == "scenes: required field is missing"


# -- limits ------------------------------------------------------------------------------------


def test_huge_output_refused_by_check_limits() -> None:
    doc = models.Document.model_validate(
        {"output": {"width": 100000, "height": 100000}, "scenes": [{}]})
    with pytest.raises(errors.DocumentError) as caught:
        loader.check_limits(doc, Limits())
    assert caught.value.problems == ["output: 100000x100000 is larger than the limit 4096x4096"]


def test_huge_output_refused_by_load(tmp_path: Path) -> None:
    doc = {"output": {"width": 100000, "height": 100000}, "scenes": [scene()]}
    assert one_problem(doc, tmp_path) == (
        "output: 100000x100000 is larger than the limit 4096x4096")


def test_too_many_pixels_within_side_limits(tmp_path: Path) -> None:
    doc = {"output": {"width": 4096, "height": 4096}, "scenes": [scene()]}
    assert one_problem(doc, tmp_path) == (
        f"output: 4096x4096 has more than {3840 * 2160} pixels")


def test_ten_hour_video_refused(tmp_path: Path) -> None:
    doc = {"scenes": [{"duration": 36000}]}
    assert one_problem(doc, tmp_path) == (
        "scenes: the video would last up to 36000 s, the limit is 3600 s")


def test_ten_hours_split_over_scenes_refused(tmp_path: Path) -> None:
    doc = {"scenes": [{"duration": 3600} for _ in range(10)]}
    assert one_problem(doc, tmp_path) == (
        "scenes: the video would last up to 36000 s, the limit is 3600 s")


def test_limits_are_configurable_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAMEFARM_LIMIT_MAX_DURATION", "10")
    doc = {"scenes": [{"duration": 11}]}
    assert one_problem(doc, tmp_path) == (
        "scenes: the video would last up to 11 s, the limit is 10 s")


def test_too_long_text_refused(tmp_path: Path) -> None:
    doc = {"scenes": [scene(layers=[{"type": "shape"}, {"type": "text", "text": "x" * 5001}])]}
    assert one_problem(doc, tmp_path) == (
        "scenes[0].layers[1].text: 5001 characters, the limit is 5000")


def test_limits_collect_every_problem(tmp_path: Path) -> None:
    doc = {"output": {"width": 8000, "height": 100, "chunks": 300},
           "scenes": [{"duration": 4000, "layers": [{"type": "shape"}] * 65}]}
    exc = load_error(doc, tmp_path)
    assert exc.problems == [
        "output: 8000x100 is larger than the limit 4096x4096",
        "output.chunks: 300 is above 256",
        "scenes: the video would last up to 4000 s, the limit is 3600 s",
        "scenes[0].layers: 65 layers, the limit is 64",
    ]


@pytest.mark.parametrize(
    ("output", "size"),
    [({"size": "360p"}, (640, 360)), ({"size": "1080p", "aspect": "9:16"}, (1080, 1920)),
     ({"size": "720p", "aspect": "1:1"}, (720, 720)), ({"size": "480p", "aspect": "4:5"},
                                                       (480, 600)),
     ({"width": 161, "height": 91}, (160, 90)), ({}, (1920, 1080))],
)
def test_output_size(output: dict[str, Any], size: tuple[int, int]) -> None:
    assert models.Output.model_validate(output).dimensions == size


def test_size_override_replaces_explicit_width_and_height(tmp_path: Path) -> None:
    doc = {"output": {"width": 160, "height": 90}, "scenes": [scene()]}
    project = loader.load(doc, base_dir=tmp_path, overrides={"size": "360p", "fps": None})
    assert project.document.output.dimensions == (640, 360)
    assert project.document.output.fps == 30


# -- malformed JSON ----------------------------------------------------------------------------


def test_read_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "scenes": [\n    {"duration": 1,}\n  ]\n}', encoding="utf-8")
    with pytest.raises(errors.DocumentError) as caught:
        loader.read_json(path)
    assert str(caught.value) == (
        f"document {path}: malformed JSON at line 3, column 20: "
        "Expecting property name enclosed in double quotes")


def test_read_json_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.json"
    with pytest.raises(errors.DocumentError, match=r"nowhere\.json: no such file"):
        loader.read_json(path, what="data file")


def test_read_json_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.json"
    path.write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(errors.DocumentError, match=r"latin\.json: cannot be read"):
        loader.read_json(path)


# -- paths -------------------------------------------------------------------------------------


@pytest.mark.parametrize("src", ["../../etc/passwd", "media/../../outside.png", ".."])
def test_safe_path_refuses_escapes(tmp_path: Path, src: str) -> None:
    base = (tmp_path / "project").resolve()
    base.mkdir()
    with pytest.raises(errors.AssetError) as caught:
        loader.safe_path(base, src, "scenes[0].layers[0].src")
    assert str(caught.value) == (
        f"scenes[0].layers[0].src: {src!r} points outside the document's folder")


def test_safe_path_refuses_absolute(tmp_path: Path) -> None:
    with pytest.raises(errors.AssetError) as caught:
        loader.safe_path(tmp_path.resolve(), "/etc/passwd", "music.src")
    assert str(caught.value) == (
        "music.src: '/etc/passwd' is absolute; give a path relative to the document's folder")


@pytest.mark.parametrize("src", ["http://example.com/a.png", "file:///etc/passwd", "", "a\x00b"])
def test_safe_path_refuses_urls_and_junk(tmp_path: Path, src: str) -> None:
    with pytest.raises(errors.AssetError, match=r"^music\.src: "):
        loader.safe_path(tmp_path.resolve(), src, "music.src")


def test_safe_path_accepts_inside(tmp_path: Path) -> None:
    base = tmp_path.resolve()
    assert loader.safe_path(base, "media/./a.png", "x") == base / "media" / "a.png"
    assert loader.safe_path(base, "media/../a.png", "x") == base / "a.png"


def test_symlink_escaping_the_folder_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    outside = write_solid_png(tmp_path / "secret.png", (8, 8), "red")
    os.symlink(outside, project / "innocent.png")
    doc = {"scenes": [scene(layers=[{"type": "image", "src": "innocent.png"}])]}
    assert one_problem(doc, project) == (
        "scenes[0].layers[0].src: 'innocent.png' points outside the document's folder")


def test_symlink_inside_the_folder_is_fine(tmp_path: Path) -> None:
    target = write_solid_png(tmp_path / "real.png", (8, 8), "red")
    os.symlink(target, tmp_path / "alias.png")
    doc = {"scenes": [scene(layers=[{"type": "image", "src": "alias.png"}])]}
    project = loader.load(doc, base_dir=tmp_path)
    assert project.asset("alias.png") == target.resolve()


def test_load_from_path_uses_the_documents_folder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write_solid_png(tmp_path / "sub" / "pic.png", (8, 8), "blue")
    path = write_doc(tmp_path / "sub", {"scenes": [
        scene(layers=[{"type": "image", "src": "pic.png"}])]})
    project = loader.load(path)
    assert project.base_dir == (tmp_path / "sub").resolve()
    assert project.asset("pic.png") == (tmp_path / "sub" / "pic.png").resolve()


# -- assets ------------------------------------------------------------------------------------


def test_missing_asset_is_named(tmp_path: Path) -> None:
    doc = {"scenes": [scene(), scene(layers=[{"type": "shape"},
                                             {"type": "image", "src": "media/gone.png"}])]}
    assert one_problem(doc, tmp_path) == "scenes[1].layers[1].src: 'media/gone.png' does not exist"


def test_every_missing_asset_is_listed(tmp_path: Path) -> None:
    doc = {"music": {"src": "m.wav"},
           "scenes": [scene(voiceover={"src": "v.wav"}, background_image="bg.png",
                            layers=[{"type": "slides", "images": [{"src": "a.png"},
                                                                  {"src": "b.png"}]}])]}
    exc = load_error(doc, tmp_path)
    assert isinstance(exc, errors.AssetError)
    assert exc.problems == [
        "music.src: 'm.wav' does not exist",
        "scenes[0].background_image: 'bg.png' does not exist",
        "scenes[0].voiceover.src: 'v.wav' does not exist",
        "scenes[0].layers[0].images[0].src: 'a.png' does not exist",
        "scenes[0].layers[0].images[1].src: 'b.png' does not exist",
    ]


def test_image_with_wrong_suffix(tmp_path: Path) -> None:
    write_wav(tmp_path / "sound.wav", 0.1)
    doc = {"scenes": [scene(layers=[{"type": "image", "src": "sound.wav"}])]}
    assert one_problem(doc, tmp_path) == (
        "scenes[0].layers[0].src: 'sound.wav' should be one of "
        ".bmp, .gif, .jpeg, .jpg, .png, .tif, .tiff, .webp")


def test_corrupt_image_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    doc = {"scenes": [scene(layers=[{"type": "image", "src": "broken.png"}])]}
    problem = one_problem(doc, tmp_path)
    assert problem.startswith("scenes[0].layers[0].src: 'broken.png' is not a readable image")


def test_non_media_voiceover_is_named(tmp_path: Path) -> None:
    (tmp_path / "notes.mp3").write_text("these are not sounds\n" * 20, encoding="utf-8")
    doc = {"scenes": [scene(voiceover={"src": "notes.mp3"})]}
    problem = one_problem(doc, tmp_path)
    assert problem.startswith("scenes[0].voiceover.src: notes.mp3: not a media file")


def test_oversized_image_refused(tmp_path: Path) -> None:
    write_solid_png(tmp_path / "big.png", (300, 300), "red")
    doc = {"scenes": [scene(layers=[{"type": "image", "src": "big.png"}])]}
    exc = load_error(doc, tmp_path, limits=Limits(max_image_pixels=300 * 300 - 1))
    assert exc.problems == [
        "scenes[0].layers[0].src: 'big.png' is 300x300, more pixels than the limit"]


def test_valid_document_loads_with_probed_media(tmp_path: Path) -> None:
    write_wav(tmp_path / "voice.wav", 1.5)
    write_solid_png(tmp_path / "a.png", (32, 16), "red")
    doc = {"output": small_output(),
           "scenes": [scene(voiceover={"src": "voice.wav"},
                            layers=[{"type": "image", "src": "a.png"}])]}
    project = loader.load(doc, base_dir=tmp_path)
    info = project.media[(tmp_path / "voice.wav").resolve()]
    assert info.audio is not None
    assert info.audio.duration == pytest.approx(1.5, abs=1e-3)
    assert info.audio.sample_rate == 48000
    assert set(project.assets) == {"voice.wav", "a.png"}

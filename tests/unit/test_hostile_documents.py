"""Hostile JSON: non-finite and absurd numbers, and nesting deep enough to blow the stack,
are refused wherever a document enters (a file, a dict, a template, a data file), each
with the JSON path of the culprit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from framefarm import errors
from framefarm.document import loader, templates


def _problems(doc: Any, base: Path, **kwargs: Any) -> list[str]:
    with pytest.raises(errors.DocumentError) as caught:
        loader.load(doc, base_dir=base, **kwargs)
    return caught.value.problems


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": [value]}
    return value


@pytest.mark.parametrize(("doc", "path"), [
    ({"scenes": [{"duration": float("nan")}]}, "scenes[0].duration"),
    ({"scenes": [{"duration": 1, "layers": [{"type": "shape", "x": float("nan")}]}]},
     "scenes[0].layers[0].x"),
    ({"scenes": [{"duration": 1, "layers": [{"type": "shape", "keyframes": {
        "opacity": [{"time": 0, "value": float("nan")}]}}]}]},
     "scenes[0].layers[0].keyframes.opacity[0].value"),
    ({"scenes": [{"duration": 1, "layers": [{"type": "shape", "keyframes": {
        "scale": [{"time": 0, "value": 1}, {"time": 1, "value": 1e308}]}}]}]},
     "scenes[0].layers[0].keyframes.scale[1].value"),
    ({"scenes": [{"duration": 1}, {"duration": float("inf")}]}, "scenes[1].duration"),
    ({"scenes": [{"duration": 1e308}]}, "scenes[0].duration"),
    ({"scenes": [{"duration": 1, "layers": [{"type": "shape", "rotation": -1e12}]}]},
     "scenes[0].layers[0].rotation"),
])
def test_non_finite_and_absurd_numbers_name_their_path(
    tmp_path: Path, doc: dict[str, Any], path: str
) -> None:
    problems = _problems(doc, tmp_path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}: "), problems
    assert "inf s" not in problems[0] and "0" * 20 not in problems[0]


def test_numbers_from_a_file_with_nan_and_infinity(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_text('{"scenes": [{"duration": NaN}, {"duration": Infinity},'
                    ' {"duration": 1e999}]}', encoding="utf-8")
    problems = _problems(path, tmp_path)
    assert [p.split(":")[0] for p in problems] == [
        "scenes[0].duration", "scenes[1].duration", "scenes[2].duration"]


def test_huge_percentage_is_refused(tmp_path: Path) -> None:
    doc = {"scenes": [{"duration": 1, "layers": [{"type": "shape", "x": "9" * 400 + "%"}]}]}
    problems = _problems(doc, tmp_path)
    assert problems[0].startswith("scenes[0].layers[0].x: "), problems


def test_template_data_is_checked_too(tmp_path: Path) -> None:
    doc = {"variables": {"d": {"type": "number", "required": True}},
           "scenes": [{"duration": "{{d}}"}]}
    problems = _problems(doc, tmp_path, data={"d": float("nan")})
    assert problems == ["data.d: NaN is not a finite number"]


def test_deep_nesting_in_a_dict_is_refused_with_its_path(tmp_path: Path) -> None:
    doc = {"scenes": [{"duration": 1, "layers": [_nested(1000)]}]}
    problems = _problems(doc, tmp_path)
    assert len(problems) == 1
    assert problems[0].startswith("scenes[0].layers[0].a[0]"), problems[0][:200]
    assert "nested deeper than" in problems[0]


def test_deep_nesting_through_templates_resolve() -> None:
    """The API fills templates before loading: that entry point is guarded too."""
    with pytest.raises(errors.DocumentError, match="nested deeper than"):
        templates.resolve({"scenes": [{"duration": 1, "props": _nested(5000)}]})
    with pytest.raises(errors.DocumentError, match=r"data\.x"):
        templates.resolve({"variables": {"x": {}}, "scenes": []}, {"x": _nested(5000)})


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_file_is_a_document_error(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "doc.json"
    path.write_text('{"scenes": ' + "[" * depth + "]" * depth + "}", encoding="utf-8")
    problems = _problems(path, tmp_path)
    assert len(problems) == 1
    assert "nested deeper than" in problems[0]


def test_a_huge_integer_literal_is_a_document_error(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_text('{"scenes": [{"duration": ' + "9" * 5000 + "}]}", encoding="utf-8")
    problems = _problems(path, tmp_path)
    assert len(problems) == 1
    assert "doc.json" in problems[0]


def test_reasonable_documents_still_load(tmp_path: Path) -> None:
    doc = {"output": {"width": 160, "height": 90},
           "scenes": [{"duration": 2.5, "layers": [{"type": "shape", "x": -40.5, "y": "50%",
                                                     "rotation": 720}]}]}
    doc_with_depth = json.loads(json.dumps(doc))
    project = loader.load(doc_with_depth, base_dir=tmp_path)
    assert project.document.scenes[0].duration == 2.5

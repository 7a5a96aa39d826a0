"""Template resolution: variables, theme values, blocks with props."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
import pytest

from framefarm import errors
from framefarm.document import loader, models, templates


def text_scene(text: str, **extra: Any) -> dict[str, Any]:
    return {"duration": 1, "layers": [{"type": "text", "text": text, **extra}]}


def test_json_path() -> None:
    assert templates.json_path(("scenes", 2, "layers", 0, "src")) == "scenes[2].layers[0].src"
    assert templates.json_path(("output",)) == "output"
    assert templates.json_path(()) == "(document)"


def test_variables_from_data_and_defaults() -> None:
    raw = {
        "variables": {"name": {"required": True}, "greeting": {"default": "Hello"},
                      "punct": {"default": "!"}},
        "scenes": [text_scene("{{greeting}}, {{ name }}{{punct}}")],
    }
    out = templates.resolve(raw, {"name": "Ada", "punct": "?"})
    assert out["scenes"][0]["layers"][0]["text"] == "Hello, Ada?"
    # The input is not modified.
    assert raw["scenes"][0]["layers"][0]["text"] == "{{greeting}}, {{ name }}{{punct}}"


def test_whole_placeholder_keeps_the_values_type() -> None:
    raw = {
        "variables": {"size": {"type": "number", "default": 48}, "on": {"default": False},
                      "x": {"default": 12.5}},
        "scenes": [text_scene("n={{size}}", style={"size": "{{size}}"}, x=" {{x}} ")],
    }
    out = templates.resolve(raw)
    layer = out["scenes"][0]["layers"][0]
    assert layer["style"]["size"] == 48
    assert isinstance(layer["style"]["size"], int)
    assert layer["x"] == 12.5
    assert layer["text"] == "n=48"  # inside a longer string it becomes text


def test_data_overrides_default_with_its_own_type() -> None:
    raw = {"variables": {"size": {"default": 48}},
           "scenes": [text_scene("a", style={"size": "{{size}}"})]}
    out = templates.resolve(raw, {"size": 72.5})
    assert out["scenes"][0]["layers"][0]["style"]["size"] == 72.5


def test_theme_values() -> None:
    raw = {
        "theme": {"accent": "#ff5a00", "gap": 24},
        "output": {"background": "{{theme.accent}}"},
        "scenes": [{"duration": 1, "background": "{{theme.accent}}",
                    "layers": [{"type": "shape", "x": "{{theme.gap}}",
                                "fill": "{{theme.accent}}"}]}],
    }
    out = templates.resolve(raw)
    assert out["output"]["background"] == "#ff5a00"
    assert out["scenes"][0]["background"] == "#ff5a00"
    assert out["scenes"][0]["layers"][0] == {"type": "shape", "x": 24, "fill": "#ff5a00"}


def test_block_expanded_with_props_and_scene_keys_override() -> None:
    raw = {
        "variables": {"who": {"default": "Ada"}},
        "theme": {"ink": "#112233"},
        "blocks": {
            "Title": {
                "duration": 3,
                "background": "#000000",
                "layers": [{"type": "text", "text": "{{props.heading}} by {{who}}",
                            "style": {"size": "{{props.size}}", "color": "{{theme.ink}}"}}],
            }
        },
        "scenes": [
            {"block": "Title", "props": {"heading": "Intro", "size": 80}, "duration": 2,
             "transition": {"type": "fade"}},
            {"block": "Title", "props": {"heading": "Outro", "size": 40}},
        ],
    }
    out = templates.resolve(raw)
    first, second = out["scenes"]
    assert first == {
        "duration": 2,
        "background": "#000000",
        "layers": [{"type": "text", "text": "Intro by Ada",
                    "style": {"size": 80, "color": "#112233"}}],
        "transition": {"type": "fade"},
    }
    assert second["duration"] == 3
    assert second["layers"][0]["text"] == "Outro by Ada"
    assert second["layers"][0]["style"]["size"] == 40
    # Blocks and variables stay as declared (they are not filled).
    assert out["blocks"] == raw["blocks"]
    # And the result is a valid document.
    doc = models.Document.model_validate(out)
    assert doc.scenes[0].duration == 2
    assert doc.scenes[1].duration == 3


def test_missing_required_variable_is_named() -> None:
    raw = {"variables": {"hero_name": {"required": True}, "other": {"default": 1}},
           "scenes": [text_scene("{{hero_name}}")]}
    with pytest.raises(errors.TemplateError) as caught:
        templates.resolve(raw, {})
    assert caught.value.problems == ["variables.hero_name: required, but --data gives no value"]


def test_placeholder_with_no_value_names_its_json_path() -> None:
    raw = {"scenes": [text_scene("ok"), {"duration": 1, "layers": [
        {"type": "shape"}, {"type": "text", "text": "Hi {{nobody}}!"}]}]}
    with pytest.raises(errors.TemplateError) as caught:
        templates.resolve(raw)
    assert caught.value.problems == [
        "scenes[1].layers[1].text: placeholder {{nobody}} has no value"]
    assert str(caught.value).startswith("1 template placeholder(s) have no value")


def test_declared_variable_without_default_or_data_has_no_value() -> None:
    raw = {"variables": {"subtitle": {}}, "scenes": [text_scene("{{subtitle}}")]}
    with pytest.raises(errors.TemplateError) as caught:
        templates.resolve(raw)
    assert caught.value.problems == [
        "scenes[0].layers[0].text: placeholder {{subtitle}} has no value"]


def test_every_missing_placeholder_is_listed() -> None:
    raw = {"output": {"background": "{{theme.bg}}"},
           "scenes": [text_scene("{{a}} {{b}}")]}
    with pytest.raises(errors.TemplateError) as caught:
        templates.resolve(raw)
    assert caught.value.problems == [
        "output.background: placeholder {{theme.bg}} has no value",
        "scenes[0].layers[0].text: placeholder {{a}} has no value",
        "scenes[0].layers[0].text: placeholder {{b}} has no value",
    ]


def test_unknown_block() -> None:
    raw = {"blocks": {"Title": {}, "Card": {}}, "scenes": [{"duration": 1}, {"block": "Titel"}]}
    with pytest.raises(errors.TemplateError) as caught:
        templates.resolve(raw)
    assert str(caught.value) == (
        "scenes[1].block: unknown block 'Titel' (declared: Card, Title)")


def test_block_without_any_blocks_declared() -> None:
    with pytest.raises(errors.TemplateError, match=r"unknown block 'X' \(declared: none\)"):
        templates.resolve({"scenes": [{"block": "X"}]})


def test_block_missing_a_prop_names_where_it_is_used() -> None:
    raw = {"blocks": {"Card": {"layers": [{"type": "text", "text": "{{props.title}}"}]}},
           "scenes": [{"block": "Card", "props": {"titel": "x"}}]}
    with pytest.raises(errors.TemplateError) as caught:
        templates.resolve(raw)
    assert str(caught.value).startswith("block 'Card' used at scenes[0] lacks props")
    assert caught.value.problems == [
        "scenes[0].<block Card>.layers[0].text: placeholder {{props.title}} has no value"]


def test_undeclared_data_key() -> None:
    raw = {"variables": {"name": {"default": "x"}}, "scenes": [text_scene("{{name}}")]}
    with pytest.raises(errors.TemplateError) as caught:
        templates.resolve(raw, {"name": "Ada", "nmae": "typo", "extra": 1})
    assert caught.value.problems == [
        "data gives 'extra', 'nmae' which the document does not declare in 'variables'"]


def test_template_errors_are_document_errors_via_load(tmp_path: Path) -> None:
    raw = {"variables": {"title": {"required": True}}, "scenes": [text_scene("{{title}}")]}
    with pytest.raises(errors.DocumentError) as caught:
        loader.load(raw, base_dir=tmp_path)
    assert isinstance(caught.value, errors.TemplateError)
    assert caught.value.exit_code == 2
    project = loader.load(raw, base_dir=tmp_path, data={"title": "Filled"})
    layer = project.document.scenes[0].layers[0]
    assert isinstance(layer, models.TextLayer)
    assert layer.text == "Filled"


def test_filled_value_is_validated_like_any_other(tmp_path: Path) -> None:
    raw = {"variables": {"bg": {"type": "color", "default": "#zzzzzz"}},
           "scenes": [{"duration": 1, "background": "{{bg}}"}]}
    with pytest.raises(errors.DocumentError) as caught:
        loader.load(raw, base_dir=tmp_path)
    assert caught.value.problems[0].startswith("scenes[0].background: expected a colour")


def test_a_choice_takes_only_its_choices_and_longtext_is_text() -> None:
    doc = {"variables": {"tone": {"type": "choice", "choices": ["calm", "bold"],
                                  "default": "calm"},
                         "bio": {"type": "longtext", "default": "line one\nline two"}},
           "scenes": [{"duration": 1, "layers": [{"type": "text", "text": "{{tone}}: {{bio}}"}]}]}
    filled = templates.resolve(doc, {"tone": "bold"})
    assert filled["scenes"][0]["layers"][0]["text"] == "bold: line one\nline two"
    with pytest.raises(errors.TemplateError) as refused:
        templates.resolve(doc, {"tone": "loud"})
    assert refused.value.problems == [
        "data.tone: 'loud' is not one of the choices ('calm', 'bold')"]


@pytest.mark.parametrize("spec", [{"type": "choice"}, {"type": "text", "choices": ["a"]},
                                  {"type": "choice", "choices": ["a"], "default": "b"}])
def test_choices_belong_to_a_choice_and_hold_its_default(spec: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        models.Variable.model_validate(spec)

"""Props of a composition without a schema are checked for JSON shape against its
defaults (pure: no Node.js needed)."""

from __future__ import annotations

from framefarm.engines.remotion.engine import shape_problems

DEFAULTS = {"title": "Hello", "count": 3, "items": [{"label": "a", "on": True}],
            "extra": None, "style": {"color": "#fff"}}


def test_matching_props_pass() -> None:
    assert shape_problems({"title": "Hi", "count": 2.5, "items": [], "extra": [1, 2],
                           "style": {"color": "red"}}, DEFAULTS) == []


def test_each_mismatch_is_named_by_its_path() -> None:
    problems = shape_problems({"title": 5, "items": [{"label": "b", "on": "yes"}],
                               "style": {"colour": "red"}, "titel": "typo"}, DEFAULTS)
    assert problems == [
        "title: expected string, got number",
        "items.0.on: expected boolean, got string",
        "style.colour: not a prop of the composition (it has color)",
        "titel: not a prop of the composition (it has count, extra, items, style, title)",
    ]


def test_a_composition_without_defaults_takes_any_props() -> None:
    assert shape_problems({"anything": {"at": "all"}}, {}) == []

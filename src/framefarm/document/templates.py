"""Template resolution on the raw JSON, before validation.

- ``{{name}}`` takes a declared variable (from ``--data`` or its default);
- ``{{theme.key}}`` takes a theme value;
- a scene ``{"block": "Name", "props": {...}, ...}`` becomes a copy of ``blocks.Name`` with
  ``{{props.x}}`` filled in, and the scene's other keys (duration, transition...) on top.

A string that is exactly one placeholder takes the value's own type, so ``"size":
"{{title_size}}"`` can become a number.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from typing import Any

from framefarm import errors

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}")
_TEMPLATE_KEYS = ("variables", "blocks")

MAX_DEPTH = 64  # objects and arrays inside one another; real documents use under 10
MAX_MAGNITUDE = 1e9  # no size, time, angle or factor in a document comes near this
_MAX_PROBLEMS = 20  # a hostile document could have millions; the first few say enough


def json_path(parts: tuple[str | int, ...]) -> str:
    """``("scenes", 2, "layers", 0, "src")`` -> ``scenes[2].layers[0].src``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


def check_raw(value: Any, root: tuple[str | int, ...] = ()) -> None:
    """Refuse raw JSON no document could need, before anything else walks it: nesting
    deeper than ``MAX_DEPTH``, non-finite numbers (NaN, Infinity) and numbers beyond
    ``MAX_MAGNITUDE``. Iterative, so no depth of nesting can exhaust the stack."""
    problems: list[str] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, root)]
    while stack and len(problems) < _MAX_PROBLEMS:
        item, path = stack.pop()
        if isinstance(item, Mapping | list | tuple):
            if len(path) - len(root) >= MAX_DEPTH:
                problems.append(f"{json_path(path)}: nested deeper than {MAX_DEPTH} levels")
                continue
            children = item.items() if isinstance(item, Mapping) else enumerate(item)
            # Reversed, so that problems are reported in document order.
            stack.extend((v, (*path, k)) for k, v in reversed(list(children)))
        elif isinstance(item, bool) or not isinstance(item, int | float):
            continue
        elif isinstance(item, float) and not math.isfinite(item):
            shown = "NaN" if math.isnan(item) else ("Infinity" if item > 0 else "-Infinity")
            problems.append(f"{json_path(path)}: {shown} is not a finite number")
        elif abs(item) > MAX_MAGNITUDE:
            shown = (f"{float(item):.3g}" if abs(item) < 1e300
                     else f"a number of about {int(int(item).bit_length() * 0.30103)} digits")
            problems.append(f"{json_path(path)}: {shown} is out of range "
                            f"(at most {MAX_MAGNITUDE:.0e} either side of 0)")
    if problems:
        raise errors.DocumentError(f"{len(problems)} unusable value(s)", problems)


def resolve(raw: dict[str, Any], data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return a copy of ``raw`` with blocks expanded and every placeholder filled.

    ``raw`` and ``data`` are first checked with :func:`check_raw` (every document, from a
    file, the API or a stored template, comes through here)."""
    check_raw(raw)
    if data is not None:
        check_raw(data, ("data",))
    doc = copy.deepcopy(raw)
    values = _variable_values(doc.get("variables") or {}, dict(data or {}))
    theme = doc.get("theme") or {}
    if not isinstance(theme, dict):
        raise errors.TemplateError("theme: expected an object of name -> value")
    scope: dict[str, Any] = dict(values)
    # Theme values may themselves use variables ("brand": "{{accent}}").
    problems: list[str] = []
    theme = _fill(theme, values, ("theme",), problems)
    scope.update({f"theme.{k}": v for k, v in theme.items()})

    scenes = doc.get("scenes")
    if isinstance(scenes, list):
        blocks = doc.get("blocks") or {}
        doc["scenes"] = [
            _expand_block(scene, blocks, ("scenes", i)) for i, scene in enumerate(scenes)
        ]
    for key in list(doc):
        if key not in _TEMPLATE_KEYS:
            doc[key] = _fill(doc[key], scope, (key,), problems)
    if problems:
        raise errors.TemplateError(
            f"{len(problems)} template placeholder(s) have no value", problems
        )
    return doc


def _variable_values(declared: Any, data: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(declared, dict):
        raise errors.TemplateError("variables: expected an object of name -> definition")
    problems: list[str] = []
    unknown = sorted(set(data) - set(declared))
    if unknown:
        problems.append(
            "data gives " + ", ".join(repr(u) for u in unknown) + " which the document "
            "does not declare in 'variables'"
        )
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        spec = spec if isinstance(spec, dict) else {}
        if name in data:
            values[name] = data[name]
            choices = spec.get("choices") if spec.get("type") == "choice" else None
            if isinstance(choices, list) and data[name] not in choices:
                problems.append(f"data.{name}: {data[name]!r} is not one of the choices "
                                f"({', '.join(repr(c) for c in choices)})")
        elif spec.get("default") is not None:
            values[name] = spec["default"]
        elif spec.get("required"):
            problems.append(f"variables.{name}: required, but --data gives no value")
    if problems:
        raise errors.TemplateError("the data does not fit the template", problems)
    return values


def _expand_block(scene: Any, blocks: Any, path: tuple[str | int, ...]) -> Any:
    if not isinstance(scene, dict) or "block" not in scene:
        return scene
    name = scene["block"]
    if not isinstance(blocks, dict) or name not in blocks:
        known = ", ".join(sorted(blocks)) if isinstance(blocks, dict) and blocks else "none"
        raise errors.TemplateError(
            f"{json_path((*path, 'block'))}: unknown block {name!r} (declared: {known})"
        )
    props = scene.get("props") or {}
    if not isinstance(props, dict):
        raise errors.TemplateError(f"{json_path((*path, 'props'))}: expected an object")
    problems: list[str] = []
    body = _fill(copy.deepcopy(blocks[name]), {f"props.{k}": v for k, v in props.items()},
                 (*path, f"<block {name}>"), problems, only_prefix="props.")
    if problems:
        raise errors.TemplateError(f"block {name!r} used at {json_path(path)} lacks props",
                                   problems)
    if not isinstance(body, dict):
        raise errors.TemplateError(f"blocks.{name}: expected a scene object")
    for key, value in scene.items():
        if key not in ("block", "props"):
            body[key] = value
    return body


def _fill(
    value: Any,
    scope: Mapping[str, Any],
    path: tuple[str | int, ...],
    problems: list[str],
    only_prefix: str | None = None,
) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, scope, (*path, k), problems, only_prefix) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, scope, (*path, i), problems, only_prefix) for i, v in enumerate(value)]
    if not isinstance(value, str) or "{{" not in value:
        return value

    def lookup(name: str) -> Any:
        if only_prefix and not name.startswith(only_prefix):
            return None  # left for the document-wide pass
        if name not in scope:
            problems.append(f"{json_path(path)}: placeholder {{{{{name}}}}} has no value")
            return ""
        return scope[name]

    whole = PLACEHOLDER.fullmatch(value.strip())
    if whole:
        found = lookup(whole.group(1))
        return value if found is None else found

    def substitute(match: re.Match[str]) -> str:
        found = lookup(match.group(1))
        return match.group(0) if found is None else str(found)

    return PLACEHOLDER.sub(substitute, value)

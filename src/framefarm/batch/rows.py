"""Rows of a batch, from CSV or JSON, each checked against the template's variables.

A row is a mapping of variable name -> value, converted by the variable's declared type
(``document/models.py``: ``Variable``). Row 1 is the first data row (the line after a CSV
header). A row that does not fit becomes a :class:`RowError` naming the row and the field;
a problem of the whole input (no header, an unknown column, more than ``max_rows`` rows)
raises :class:`~framefarm.errors.DocumentError`, since no row could be right.

CSV: the header names the variables; a cell left empty is "not given", so the variable's
default applies; blank lines are ignored (and not numbered); a UTF-8 byte order mark is
dropped; quoted cells may hold commas and newlines.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pydantic

from framefarm import errors
from framefarm.document import models

_BOOLEAN = {"true": True, "yes": True, "y": True, "1": True,
            "false": False, "no": False, "n": False, "0": False}
_INTEGER = re.compile(r"[+-]?[0-9]{1,30}")
_SHOWN = 60  # characters of a bad value quoted in a message


@dataclasses.dataclass(frozen=True)
class RowError:
    """Why one row cannot be rendered; ``row`` 1 is the first data row, ``field`` the
    variable (or column) at fault, None for the row as a whole."""

    row: int
    field: str | None
    message: str


@dataclasses.dataclass(frozen=True)
class Rows:
    """The rows that fit (row number, data), the ones that do not, and how many were
    given in all."""

    good: list[tuple[int, dict[str, Any]]]
    bad: list[RowError]
    total: int


class TooManyRows(errors.DocumentError):
    """More rows than a batch may have."""


def from_csv(lines: Iterable[str], variables: Mapping[str, Any], *, max_rows: int) -> Rows:
    """The rows of CSV text. ``lines`` keep their line endings (as a file opened with
    ``newline=''`` gives them), so a quoted cell may hold a newline."""
    declared = _declared(variables)
    records = csv.reader(_without_bom(lines), strict=True)
    try:
        header = next(_non_blank(records), None)
        if header is None:
            raise errors.DocumentError("the CSV is empty: its first line names the variables")
        columns = _columns(header, declared)
        good: list[tuple[int, dict[str, Any]]] = []
        bad: list[RowError] = []
        number = 0
        for cells in _non_blank(records):
            number += 1
            if number > max_rows:
                raise TooManyRows(f"the CSV has more than {max_rows} rows; a batch may have "
                                  f"at most {max_rows}")
            if len(cells) != len(columns):
                bad.append(RowError(number, None, f"row {number}: {len(cells)} cells, but "
                                    f"the header has {len(columns)} columns"))
                continue
            given = {name: cell for name, cell in zip(columns, cells, strict=True)
                     if cell.strip() != ""}
            _check_row(number, given, declared, good, bad, convert=_from_text)
    except csv.Error as exc:
        raise errors.DocumentError(f"the CSV cannot be read (line {records.line_num}): "
                                   f"{exc}") from None
    return Rows(good, bad, number)


def from_json(items: Any, variables: Mapping[str, Any], *, max_rows: int) -> Rows:
    """The rows of a JSON array of objects (variable -> value; null is "not given")."""
    declared = _declared(variables)
    if not isinstance(items, list):
        raise errors.DocumentError("rows: expected an array of objects (variable -> value)")
    if len(items) > max_rows:
        raise TooManyRows(f"rows: {len(items)} rows; a batch may have at most {max_rows}")
    good: list[tuple[int, dict[str, Any]]] = []
    bad: list[RowError] = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            bad.append(RowError(number, None, f"row {number}: expected an object of "
                                "variable -> value"))
            continue
        unknown = [k for k in item if k not in declared]
        if unknown:
            bad.append(RowError(number, str(unknown[0]), f"row {number}, {unknown[0]}: not a "
                                f"variable of the template (it has {_names(declared)})"))
            continue
        given = {k: v for k, v in item.items() if v is not None}
        _check_row(number, given, declared, good, bad, convert=_from_json)
    return Rows(good, bad, len(items))


# -- the variables ----------------------------------------------------------------------------


def _declared(variables: Mapping[str, Any]) -> dict[str, models.Variable]:
    """The template's variables as models (stored templates hold them as JSON)."""
    found: dict[str, models.Variable] = {}
    for name, spec in variables.items():
        if isinstance(spec, models.Variable):
            found[name] = spec
            continue
        try:
            found[name] = models.Variable.model_validate(spec or {})
        except pydantic.ValidationError as exc:
            raise errors.DocumentError(f"variables.{name}: {exc.errors()[0]['msg']}") from None
    return found


def _names(declared: Mapping[str, models.Variable]) -> str:
    return ", ".join(declared) if declared else "no variables"


def _columns(header: list[str], declared: Mapping[str, models.Variable]) -> list[str]:
    """The header's variable names, checked: each known, none twice, every required
    variable without a default present."""
    columns = [cell.strip() for cell in header]
    for index, name in enumerate(columns, start=1):
        if not name:
            raise errors.DocumentError(f"CSV header: column {index} has no name")
        if name not in declared:
            raise errors.DocumentError(f"CSV header: column {name!r} is not a variable of "
                                       f"the template (it has {_names(declared)})")
        if columns.index(name) != index - 1:
            raise errors.DocumentError(f"CSV header: column {name!r} appears twice")
    missing = [name for name, spec in declared.items()
               if spec.required and spec.default is None and name not in columns]
    if missing:
        raise errors.DocumentError("CSV header: no column for the required variable(s) "
                                   + ", ".join(missing))
    return columns


def _check_row(number: int, given: Mapping[str, Any], declared: Mapping[str, models.Variable],
               good: list[tuple[int, dict[str, Any]]], bad: list[RowError], *,
               convert: Any) -> None:
    """Convert the row's values; the first problem makes it a bad row."""
    data: dict[str, Any] = {}
    for name, spec in declared.items():
        if name not in given:
            if spec.required and spec.default is None:
                bad.append(RowError(number, name, f"row {number}, {name}: required, but no "
                                    "value is given"))
                return
            continue
        try:
            data[name] = convert(given[name], spec)
        except ValueError as exc:
            bad.append(RowError(number, name, f"row {number}, {name}: {exc}"))
            return
    good.append((number, data))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN - 3] + "..."


def _from_text(cell: str, spec: models.Variable) -> Any:
    """A CSV cell as the variable's type; ValueError says why not."""
    kind = spec.type
    if kind in ("text", "longtext"):
        return cell
    value = cell.strip()
    if kind == "number":
        return _number(value)
    if kind == "boolean":
        found = _BOOLEAN.get(value.lower())
        if found is None:
            raise ValueError(f"{_shown(cell)} is not a boolean (true/false, yes/no, 1/0)")
        return found
    if kind == "color":
        return _color(value)
    if kind == "choice":
        for choice in spec.choices or []:
            if _same_choice(value, choice):
                return choice
        raise ValueError(f"{_shown(cell)} is not one of the choices "
                         f"({', '.join(str(c) for c in spec.choices or [])})")
    return value  # image, audio, video: an asset path, checked with the document


def _from_json(value: Any, spec: models.Variable) -> Any:
    """A JSON value as the variable's type (text from a spreadsheet is read as a cell)."""
    if isinstance(value, str):
        if value.strip() == "" and spec.type not in ("text", "longtext"):
            raise ValueError(f"an empty string is not a {spec.type}")
        return _from_text(value, spec)
    kind = spec.type
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return _number(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "choice" and value in (spec.choices or []):
        return value
    if kind in ("text", "longtext") and isinstance(value, int | float) \
            and not isinstance(value, bool):
        return str(value)
    if kind == "choice":
        raise ValueError(f"{_shown(value)} is not one of the choices "
                         f"({', '.join(str(c) for c in spec.choices or [])})")
    raise ValueError(f"{_shown(value)} is not a {kind}")


def _number(value: str | float) -> int | float:
    if isinstance(value, int) or (isinstance(value, str) and _INTEGER.fullmatch(value)):
        return int(value)
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{_shown(value)} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{_shown(value)} is not a finite number")
    return number


def _color(value: str) -> str:
    try:
        return models._check_color(value)  # the document's own rule for colours
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def _same_choice(cell: str, choice: str | float | bool) -> bool:
    if isinstance(choice, bool):
        return _BOOLEAN.get(cell.lower()) is choice
    if isinstance(choice, int | float):
        try:
            return float(cell) == choice
        except ValueError:
            return False
    return cell == choice


def _without_bom(lines: Iterable[str]) -> Iterator[str]:
    iterator = iter(lines)
    first = next(iterator, None)
    if first is None:
        return
    yield first.removeprefix("\ufeff")
    yield from iterator


def _non_blank(records: Iterator[list[str]]) -> Iterator[list[str]]:
    for cells in records:
        if any(cell.strip() for cell in cells):
            yield cells

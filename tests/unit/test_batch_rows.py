"""Rows of a batch from CSV and JSON: conversion by the variables' types, bad rows named by
row and field, whole-input problems refused."""

from __future__ import annotations

import io
from typing import Any

import pytest

from framefarm import errors
from framefarm.batch import rows
from framefarm.batch.rows import RowError

VARIABLES: dict[str, Any] = {
    "name": {"type": "text", "required": True},
    "bio": {"type": "longtext", "default": "-"},
    "price": {"type": "number", "default": 1},
    "vip": {"type": "boolean", "default": False},
    "accent": {"type": "color", "default": "#ff5a00"},
    "tone": {"type": "choice", "choices": ["dark", "light"], "default": "dark"},
    "photo": {"type": "image", "default": "a.jpg"},
}


def from_csv(text: str, max_rows: int = 100) -> rows.Rows:
    return rows.from_csv(io.StringIO(text, newline=""), VARIABLES, max_rows=max_rows)


def test_cells_are_converted_by_type_and_empty_cells_take_the_default() -> None:
    found = from_csv("\ufeffname,price,vip,accent,tone,photo\r\n"
                     "Ann,3,yes,red,light,p/1.jpg\r\n"
                     "Bob,2.5,0,#abc,dark,\r\n"
                     "Cy,,,,,\r\n")
    assert found.bad == [] and found.total == 3
    assert found.good == [
        (1, {"name": "Ann", "price": 3, "vip": True, "accent": "#ff0000", "tone": "light",
             "photo": "p/1.jpg"}),
        (2, {"name": "Bob", "price": 2.5, "vip": False, "accent": "#abc", "tone": "dark"}),
        (3, {"name": "Cy"}),
    ]


def test_quoted_cells_keep_commas_and_newlines_and_blank_lines_are_ignored() -> None:
    found = from_csv('name,bio\n"Smith, Ann","line one\nline two"\n\n,\nBo,x\n')
    assert found.good == [(1, {"name": "Smith, Ann", "bio": "line one\nline two"}),
                          (2, {"name": "Bo", "bio": "x"})]
    assert found.total == 2


def test_bad_rows_name_their_row_and_field() -> None:
    found = from_csv("name,price,vip,accent,tone\n"
                     "a,abc,,,\n"  # 1
                     "b,1,maybe,,\n"  # 2
                     "c,1,,nope,\n"  # 3
                     "d,1,,,grey\n"  # 4
                     "e,1\n"  # 5: ragged
                     ",1,,,\n"  # 6: the required name is empty
                     "g,inf,,,\n"  # 7
                     "h,1,,,,extra\n")  # 8: ragged
    assert [(b.row, b.field) for b in found.bad] == [
        (1, "price"), (2, "vip"), (3, "accent"), (4, "tone"), (5, None), (6, "name"),
        (7, "price"), (8, None)]
    assert found.bad[0] == RowError(1, "price", "row 1, price: 'abc' is not a number")
    assert found.bad[3].message == "row 4, tone: 'grey' is not one of the choices (dark, light)"
    assert found.bad[4].message == "row 5: 2 cells, but the header has 5 columns"
    assert found.bad[5].message == "row 6, name: required, but no value is given"
    assert found.good == [] and found.total == 8


@pytest.mark.parametrize(("text", "words"), [
    ("", "the CSV is empty"),
    ("\n\n", "the CSV is empty"),
    ("name,colour\nA,red\n", "column 'colour' is not a variable of the template"),
    ("name,name\nA,B\n", "column 'name' appears twice"),
    ("name,,price\n", "column 2 has no name"),
    ("price\n3\n", "no column for the required variable(s) name"),
    ('name\n"a"b\n', "the CSV cannot be read (line 2)"),
])
def test_problems_of_the_whole_csv_are_refused(text: str, words: str) -> None:
    with pytest.raises(errors.DocumentError) as caught:
        from_csv(text)
    assert words in str(caught.value)


def test_more_rows_than_allowed_is_refused_before_reading_the_rest() -> None:
    def lines() -> Any:
        yield "name\n"
        for i in range(10):
            yield f"p{i}\n"
        raise AssertionError("read past the limit")

    with pytest.raises(rows.TooManyRows, match="at most 3"):
        rows.from_csv(lines(), VARIABLES, max_rows=3)
    assert from_csv("name\na\nb\nc\n", max_rows=3).total == 3


def test_json_rows_are_typed_and_strings_read_as_cells() -> None:
    found = rows.from_json([
        {"name": "a", "price": 2, "vip": True, "tone": "light"},
        {"name": "b", "price": "3.5", "vip": "no", "photo": None},
        {"name": 7},
        {"name": "d", "price": True},
        {"name": "e", "colour": "red"},
        "not an object",
        {"vip": True},
        {"name": "h", "price": ""},
    ], VARIABLES, max_rows=10)
    assert found.good == [(1, {"name": "a", "price": 2, "vip": True, "tone": "light"}),
                          (2, {"name": "b", "price": 3.5, "vip": False}),
                          (3, {"name": "7"})]
    assert [(b.row, b.field) for b in found.bad] == [
        (4, "price"), (5, "colour"), (6, None), (7, "name"), (8, "price")]
    assert found.bad[0].message == "row 4, price: True is not a number"
    assert found.bad[1].message.startswith("row 5, colour: not a variable of the template")
    assert found.total == 8


def test_json_limits_and_shape() -> None:
    with pytest.raises(rows.TooManyRows):
        rows.from_json([{"name": "a"}] * 4, VARIABLES, max_rows=3)
    with pytest.raises(errors.DocumentError, match="expected an array"):
        rows.from_json({"name": "a"}, VARIABLES, max_rows=3)


def test_big_integers_stay_exact_and_long_values_are_shortened_in_messages() -> None:
    found = from_csv(f"name,price\na,123456789012345678901\nb,{'x' * 500}\n")
    assert found.good == [(1, {"name": "a", "price": 123456789012345678901})]
    assert len(found.bad[0].message) < 120 and found.bad[0].message.endswith("is not a number")


def test_invalid_variable_declarations_are_refused() -> None:
    with pytest.raises(errors.DocumentError, match=r"variables\.x"):
        rows.from_json([], {"x": {"type": "nope"}}, max_rows=3)

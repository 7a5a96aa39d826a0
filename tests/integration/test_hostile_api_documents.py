"""The API loads documents with the same loader: deep nesting and NaN are 422s naming the
JSON path (not 500s), and an asset problem names the asset as the project names it, never
the server's scratch folder."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.api import bearer
from support.farm import Farm, clear_framefarm_env

pytestmark = pytest.mark.ffmpeg


@pytest.fixture
def farm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Farm]:
    clear_framefarm_env(monkeypatch)
    opened = Farm.open("sqlite", tmp_path / "farm")
    try:
        yield opened
    finally:
        opened.close()


def _submit(farm: Farm, body: dict[str, Any]) -> Any:
    return farm.client.post("/v1/renders", json=body, headers=farm.admin)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": [value]}
    return value


def test_deep_nesting_is_a_422(farm: Farm) -> None:
    body = {"document": {"scenes": [{"duration": 1, "layers": [_nested(400)]}]}}
    response = _submit(farm, body)
    assert response.status_code == 422, response.text
    assert "nested deeper than 64 levels" in response.text


def test_nan_and_huge_numbers_are_422s_with_their_path(farm: Farm) -> None:
    body = {"document": {"scenes": [{"duration": 1, "layers": [
        {"type": "shape", "keyframes": {"scale": [{"time": 0, "value": 1e308}]}}]}]}}
    response = _submit(farm, body)
    assert response.status_code == 422, response.text
    assert "scenes[0].layers[0].keyframes.scale[0].value" in response.text


def test_asset_errors_name_the_asset_not_the_server_path(farm: Farm) -> None:
    auth = bearer(farm.admin_key)
    response = farm.client.post("/v1/projects", json={"name": "p"}, headers=auth)
    assert response.status_code == 201, response.text
    project = str(response.json()["id"])
    noise = random.Random(3).randbytes(4000)
    response = farm.client.post(f"/v1/projects/{project}/assets", headers=auth,
                                data={"folder": "media"},
                                files={"files": ("a.png", noise, "image/png")})
    assert response.status_code == 201, response.text
    response = _submit(farm, {"project_id": project, "document": {"scenes": [
        {"duration": 1, "layers": [{"type": "image", "src": "media/a.png"}]}]}})
    assert response.status_code == 422, response.text
    assert "media/a.png" in response.text
    assert str(farm.tmp) not in response.text and "validate-" not in response.text

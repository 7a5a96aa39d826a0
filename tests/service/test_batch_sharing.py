"""Frames a batch's rows share, rendered once on the farm (application/sharing.py), on
SQLite and PostgreSQL: a template whose intro and outro do not depend on the row is cut
on those segments; the first row's tasks make them, the other rows' wait and take them;
every row's video equals that row rendered alone, frame for frame (lossless, so the part
boundaries cannot change a pixel); a row that was to make a part and is cancelled hands
it to the next row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

from framefarm import engine
from framefarm.document import templates
from support.api import bearer
from support.farm import Farm
from support.media import decode_video
from support.polling import wait_for

FPS = 24
TEMPLATE: dict[str, Any] = {
    "output": {"width": 160, "height": 90, "fps": FPS, "quality": "lossless"},
    "variables": {"name": {"type": "text", "required": True}},
    "scenes": [
        {"duration": 1.5, "background": "#203040", "layers": [
            {"type": "text", "text": "Welcome", "position": "center",
             "keyframes": {"opacity": [{"time": 0, "value": 0}, {"time": 1, "value": 1}]}}]},
        {"duration": 1, "background": "#402020", "layers": [
            {"type": "text", "text": "{{name}}", "position": "center"}]},
        {"duration": 1.5, "background": "#204020", "layers": [
            {"type": "text", "text": "Thanks", "position": "center"}]},
    ],
}
NAMES = ["Ada", "Grace", "Alan", "Edsger"]
INTRO, MIDDLE = (0, 36), (36, 60)  # frames: 1.5 s and 1 s at 24 fps


def create(farm: Farm, key: str) -> dict[str, Any]:
    c, auth = farm.client, bearer(key)
    template = c.post("/v1/templates", headers=auth,
                      json={"name": "greeting", "document": TEMPLATE}).json()["id"]
    response = c.post(f"/v1/templates/{template}/batches", headers=auth,
                      json={"rows": [{"name": n} for n in NAMES]})
    assert response.status_code == 202, response.text
    return dict(response.json())


def rows(farm: Farm, key: str, batch_id: str) -> list[dict[str, Any]]:
    found = farm.client.get(f"/v1/batches/{batch_id}/jobs", headers=bearer(key)).json()
    return list(found["items"])


def finished(farm: Farm, key: str, batch_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = farm.client.get(f"/v1/batches/{batch_id}", headers=bearer(key)).json()
        return found if found["finished_at"] else None
    return wait_for(check, timeout=300, interval=0.2, what=f"batch {batch_id}")


def test_shared_frames_are_rendered_once_and_every_row_equals_its_solo_render(
        farm: Farm, tmp_path: Path) -> None:
    key = farm.tenant("shop")
    nodes = farm.start_nodes(2)
    batch = create(farm, key)
    done = finished(farm, key, batch["id"])
    assert done["counts"]["succeeded"] == len(NAMES), done

    renders = [t for node in nodes for t in node.started if t.kind.value == "render"]
    spans = [tuple(t.frames) for t in renders]
    assert spans.count(INTRO) == 1, spans  # made once, for every row
    assert spans.count((60, 96)) == 1, spans  # the outro too
    assert sum(a >= MIDDLE[0] and b <= MIDDLE[1] for a, b in spans) >= len(NAMES)

    for row in rows(farm, key, batch["id"]):
        name = NAMES[row["row"] - 1]
        response = farm.client.get(f"/v1/exports/{row['export']['id']}/file",
                                   headers=bearer(key))
        assert response.status_code == 200, response.text
        farmed = tmp_path / f"{name}.mp4"
        farmed.write_bytes(response.content)
        alone = tmp_path / f"{name}-alone.mp4"
        filled = templates.resolve(TEMPLATE, {"name": name})
        filled.pop("variables")
        engine.render(engine.load_timeline(filled, base_dir=tmp_path), alone)
        a, b = decode_video(farmed), decode_video(alone)
        assert a.shape == b.shape == (96, 90, 160, 3)
        assert not np.array_equal(a[5], a[30])  # the intro fades in: frames differ
        for n in range(len(a)):
            assert np.array_equal(a[n], b[n]), f"row {name}: frame {n} differs"

    # The shared parts are kept while a row needs them, then swept like any part.
    storage = farm.svc.ctx.storage
    assert len(list(storage.list_objects("shared/"))) == 2
    swept = farm.svc.exports.sweeper.sweep(now=farm.svc.ctx.now() + dt.timedelta(hours=2))
    assert swept["shared"] == 2 and not list(storage.list_objects("shared/"))


def test_a_row_that_was_to_make_a_part_hands_it_to_the_next(farm: Farm) -> None:
    key = farm.tenant("shop")
    batch = create(farm, key)
    first, *others = rows(farm, key, batch["id"])
    cancel = farm.client.post(f"/v1/renders/{first['id']}/cancel", headers=bearer(key))
    assert cancel.status_code == 200, cancel.text
    farm.start_nodes(1)
    done = finished(farm, key, batch["id"])
    assert done["counts"] == {**done["counts"], "succeeded": len(others), "cancelled": 1}
    said = [line["message"] for row in others for line in farm.client.get(
        f"/v1/renders/{row['id']}/logs", headers=bearer(key)).json()]
    # One row took over each of the two parts (intro and outro), the others waited.
    assert sum("makes the frames its batch shares" in line for line in said) == 2, said

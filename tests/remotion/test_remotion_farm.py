"""Remotion renders through the render service: the example project uploaded as a
project's files, a render job prepared by a node (its size, rate and length planning the
job's chunks), rendered by two nodes and assembled; the video equals a local render frame
for frame. Jobs are routed by engine: a node without the engine never claims a Remotion
task, and a farm with no node that has it refuses the render at submit."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from framefarm.engines.remotion import local
from support.api import assert_error, bearer, wait_job
from support.media import decode_audio, decode_video
from support.remotion import (
    EXAMPLE,
    PROPS,
    assert_sound_throughout,
    code_tenant,
    render_body,
    upload_example,
)

pytestmark = pytest.mark.ffmpeg


def test_two_nodes_render_a_composition_equal_to_a_local_render(
        make_farm: Any, remotion_cache: Path, tmp_path: Path) -> None:
    farm = make_farm()
    key = code_tenant(farm)
    project_id = upload_example(farm, key, archive=True)
    nodes = farm.start_nodes(2, threads=1, remotion_cache=remotion_cache)
    job = farm.submit(key, render_body(project_id))
    done = wait_job(farm.client, key, job["id"], timeout=600)
    assert done["state"] == "succeeded", done
    assert done["frames"]["total"] == 120

    tasks = [t for node in nodes for t in node.started]
    kinds = sorted(t.kind.value for t in tasks)
    assert kinds.count("prepare") == 1 and kinds.count("assemble") == 1
    assert kinds.count("render") >= 2, kinds  # planned in chunks for the two nodes
    assert "audio" not in kinds, kinds  # the chunks bring their own range's sound
    assert {t.engine for t in tasks} == {"remotion"}

    response = farm.client.get(f"/v1/exports/{done['export']['id']}/file",
                               headers=bearer(key), follow_redirects=True)
    assert response.status_code == 200, response.text
    farmed = tmp_path / "farm.mp4"
    farmed.write_bytes(response.content)
    alone = tmp_path / "local.mp4"
    local.render(EXAMPLE, alone, composition="Card", props=PROPS, quality="lossless",
                 size="360p", cache=remotion_cache)
    a, b = decode_video(farmed), decode_video(alone)
    assert a.shape == b.shape == (120, 360, 640, 3)
    assert not np.array_equal(a[10], a[60])  # it moves: not a still compared with itself
    for n in range(len(a)):
        same = same_share(a[n], b[n])
        # Chromium does not draw bit for bit the same twice: two local renders differ in
        # about 0.1% of a frame's pixels, by a few levels, in a few frames. So each frame
        # is nearly all identical to the local one, and closer to it than to its
        # neighbours there (a frame lost or doubled at a seam would shift them all).
        assert same > 0.99, f"frame {n}: only {same:.2%} of its pixels are the local ones"
        for other in (n - 1, n + 1):
            if 0 <= other < len(b) and not np.array_equal(b[other], b[n]):
                assert same_share(a[n], b[other]) < same, f"frame {n} matches frame {other}"

    # The sound, joined from the chunks' own, is continuous and as long as the video.
    pcm = assert_sound_throughout(farmed, 120)
    alone_pcm, _ = decode_audio(alone)
    length = min(pcm.shape[1], alone_pcm.shape[1])
    assert np.abs(pcm[:, :length] - alone_pcm[:, :length]).mean() < 0.01


def same_share(x: np.ndarray, y: np.ndarray) -> float:
    """The share of pixels that are identical in two frames."""
    return float(np.all(x == y, axis=-1).mean())


def test_props_that_fail_the_schema_fail_the_job_at_prepare(
        make_farm: Any, remotion_cache: Path) -> None:
    farm = make_farm()
    key = code_tenant(farm)
    project_id = upload_example(farm, key)
    farm.start_nodes(1, threads=1, remotion_cache=remotion_cache)
    job = farm.submit(key, render_body(project_id, items=[{"label": "x", "value": 500}]))
    done = wait_job(farm.client, key, job["id"], timeout=300)
    assert done["state"] == "failed"
    assert done["failed_step"] == "prepare"
    assert "items.0.value" in done["error"], done["error"]


def test_a_node_without_the_engine_never_claims_its_tasks(make_farm: Any,
                                                          remotion_cache: Path) -> None:
    farm = make_farm()
    key = code_tenant(farm)
    project_id = upload_example(farm, key)
    [plain] = farm.start_nodes(1, engines=["framefarm"], remotion_cache=remotion_cache)
    # Only a node without the engine: the render is refused, saying why.
    response = farm.client.post("/v1/renders", json=render_body(project_id),
                                headers=bearer(key))
    body = assert_error(response, 422)
    assert "remotion" in body["message"] and "FRAMEFARM_UNSERVED_ENGINES" in body["message"]

    # A Remotion node registered (not running): the render is queued, and the plain node
    # renders a JSON document submitted after it while never touching the Remotion job.
    farm.agent("remotion-node", remotion_cache=remotion_cache)
    code_job = farm.submit(key, render_body(project_id))
    doc = {"output": {"width": 160, "height": 90, "fps": 24},
           "scenes": [{"duration": 1, "background": "#204080"}]}
    plain_job = farm.submit(key, {"document": doc})
    assert wait_job(farm.client, key, plain_job["id"], timeout=120)["state"] == "succeeded"
    still = farm.client.get(f"/v1/renders/{code_job['id']}", headers=bearer(key)).json()
    assert still["state"] == "queued"
    assert all(t.engine == "framefarm" for t in plain.started)
    caps = farm.client.get("/v1/admin/nodes", headers=farm.admin).json()
    engines = {n["name"]: n["capabilities"]["engines"] for n in caps}
    assert engines[plain.name] == ["framefarm"]
    assert engines["remotion-node"] == ["framefarm", "remotion"]


def test_a_compile_error_and_an_unknown_composition_fail_at_prepare(
        make_farm: Any, remotion_cache: Path, tmp_path: Path) -> None:
    farm = make_farm()
    key = code_tenant(farm)
    project_id = upload_example(farm, key)
    farm.start_nodes(1, threads=1, remotion_cache=remotion_cache)
    body = render_body(project_id)
    body["document"]["composition"] = "Poster"
    done = wait_job(farm.client, key, farm.submit(key, body)["id"], timeout=300)
    assert (done["state"], done["failed_step"]) == ("failed", "prepare")
    assert "Poster" in done["error"] and "Card" in done["error"], done["error"]

    broken = farm.client.post(f"/v1/projects/{project_id}/assets", headers=bearer(key),
                              data={"folder": "src"},
                              files={"files": ("Card.tsx", b"export const Card = (: => <div",
                                               "text/plain")})
    assert broken.status_code == 201, broken.text
    done = wait_job(farm.client, key, farm.submit(key, render_body(project_id))["id"],
                    timeout=300)
    assert (done["state"], done["failed_step"]) == ("failed", "prepare")
    assert "Card.tsx" in done["error"], done["error"]
    # Once each: a failure of the project itself is not retried elsewhere.
    logs = farm.client.get(f"/v1/renders/{done['id']}/logs", headers=bearer(key)).json()
    assert sum("failed" in line["message"] for line in logs if line["level"] == "error") == 1

    snap = farm.client.post("/v1/snapshots", headers=bearer(key),
                            json={"project_id": project_id, "document": body["document"],
                                  "wait": 120})
    assert "Card.tsx" in assert_error(snap, 422, "snapshot_failed")["message"]


def test_a_snapshot_of_a_code_template_through_the_api(
        make_farm: Any, remotion_cache: Path, tmp_path: Path) -> None:
    farm = make_farm()
    key = code_tenant(farm)
    project_id = upload_example(farm, key)
    farm.start_nodes(1, threads=1, remotion_cache=remotion_cache)
    document = {"engine": "remotion", "composition": "Card", "props": PROPS}
    body = {"project_id": project_id, "document": document, "frame": 40, "wait": 120}
    first = farm.client.post("/v1/snapshots", headers=bearer(key), json=body)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/png"
    assert (first.headers["x-frame"], first.headers["x-cache"]) == ("40", "miss")
    with Image.open(io.BytesIO(first.content)) as image:
        assert image.size == (1280, 720)  # the composition's own size
        got = np.asarray(image.convert("RGB"), dtype=np.int16)
    alone = tmp_path / "local.png"
    local.snapshot(EXAMPLE, alone, composition="Card", props=PROPS, frame=40,
                   cache=remotion_cache)
    with Image.open(alone) as image:
        assert np.abs(got - np.asarray(image.convert("RGB"), dtype=np.int16)).mean() < 1.0
    other = local.snapshot(EXAMPLE, tmp_path / "other.png", composition="Card",
                           props=PROPS, frame=90, cache=remotion_cache)
    with Image.open(tmp_path / "other.png") as image:  # not a still picture compared
        assert other == 90
        assert np.abs(got - np.asarray(image.convert("RGB"), dtype=np.int16)).mean() > 1.0

    again = farm.client.post("/v1/snapshots", headers=bearer(key), json=body)
    assert again.headers["x-cache"] == "hit" and again.content == first.content
    jpeg = farm.client.post("/v1/snapshots", headers=bearer(key),
                            json={**body, "format": "jpeg"})
    assert jpeg.status_code == 200 and jpeg.headers["content-type"] == "image/jpeg"

    late = farm.client.post("/v1/snapshots", headers=bearer(key),
                            json={**body, "frame": 5000})
    assert "frame 5000" in assert_error(late, 422, "snapshot_failed")["message"]
    timed = farm.client.post("/v1/snapshots", headers=bearer(key),
                             json={**body, "frame": None, "at": 1.5})
    assert "names its frame" in assert_error(timed, 422)["message"]


def test_code_templates_are_off_until_an_admin_turns_them_on(make_farm: Any,
                                                             remotion_cache: Path) -> None:
    farm = make_farm()
    key = farm.tenant("plain")
    project_id = upload_example(farm, key)
    farm.agent("remotion-node", remotion_cache=remotion_cache)
    response = farm.client.post("/v1/renders", json=render_body(project_id),
                                headers=bearer(key))
    body = assert_error(response, 403, "not_in_plan")
    assert "--code-templates" in body["message"]


def test_a_code_template_reserves_its_credits_once_prepared(make_farm: Any,
                                                             remotion_cache: Path) -> None:
    farm = make_farm()
    farm.start_nodes(1, threads=1, remotion_cache=remotion_cache)
    outcomes = {}
    for name, credits in (("short", 3), ("enough", 10)):
        key = farm.tenant(name)
        tenant_id = farm.client.get("/v1/me", headers=bearer(key)).json()["tenant_id"]
        admin = f"/v1/admin/tenants/{tenant_id}"
        assert farm.client.put(f"{admin}/plan", headers=farm.admin, json={
            "code_templates": True, "credits_per_second": 1}).status_code == 200
        assert farm.client.post(f"{admin}/credits", headers=farm.admin,
                                json={"amount": credits}).status_code in (200, 201)
        body = render_body(upload_example(farm, key))
        body["options"] = {"quality": "draft", "size": "360p"}
        job = farm.submit(key, body)  # its length is not known yet: nothing reserved
        done = wait_job(farm.client, key, job["id"], timeout=600)
        ledger = farm.client.get(f"{admin}/ledger", headers=farm.admin).json()
        balance = farm.client.get("/v1/usage", headers=bearer(key)).json()["balance"]
        outcomes[name] = (done, ledger, balance)
    done, _, balance = outcomes["short"]
    assert (done["state"], done["failed_step"]) == ("failed", "prepare")
    assert "needs 4 credits" in done["error"] and "balance is 3" in done["error"], done
    assert balance == 3
    done, ledger, balance = outcomes["enough"]
    assert done["state"] == "succeeded", done
    assert balance == 6  # 120 frames at 30 fps, 1 credit per second
    assert sum(entry["amount"] for entry in ledger) == balance  # reserve, settle, grant

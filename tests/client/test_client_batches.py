"""``framefarm.Client``'s batches against a real ``framefarm serve`` with one local render
node: a CSV file streamed from disk, bad rows skipped, wait_batch on the live events, the
manifest and the ZIP; JSON rows refused in mode refuse; another tenant's batch."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

import framefarm
from framefarm import media as probe
from framefarm.api import models
from support.server import Server

pytestmark = pytest.mark.ffmpeg

TEMPLATE: dict[str, Any] = {
    "output": {"width": 64, "height": 36, "fps": 24, "quality": "draft"},
    "variables": {"name": {"type": "text", "required": True},
                  "price": {"type": "number", "default": 1}},
    "scenes": [{"duration": 1, "background": "#203040", "layers": [
        {"type": "text", "text": "{{name}} {{price}}", "position": "center"}]}],
}


def test_a_csv_batch_from_disk_to_archive(server: Server, tenant_key: str,
                                          folder: Path) -> None:
    table = folder / "rows.csv"
    table.write_text("name,price\nAnn,3\nBob,lots\nCy,\n", encoding="utf-8")
    with framefarm.Client(server.url, tenant_key) as client:
        template = client.create_template("card", TEMPLATE)
        batch = client.create_batch(template.id, csv=table, options={"quality": "low"})
        assert isinstance(batch, models.Batch)
        assert (batch.rows_total, batch.rows_queued, batch.rows_skipped) == (3, 2, 1)
        assert batch.skipped[0] == models.SkippedRow(row=2, field="price",
                                                     message="row 2, price: 'lots' is "
                                                     "not a number")
        seen: list[models.BatchProgress] = []
        done = client.wait_batch(batch.id, on_progress=seen.append, timeout=120)
        assert done.state == "succeeded" and done.counts.succeeded == 2 and done.finished
        assert seen and all(isinstance(p, models.BatchProgress) for p in seen)
        assert [b.id for b in client.batches().items] == [batch.id]
        assert [j.row for j in client.batch_jobs(batch.id).items] == [1, 3]

        manifest = client.batch_manifest(batch.id)
        assert [(r.row, r.state, r.file) for r in manifest.rows] == [
            (1, "succeeded", "row-00001.mp4"), (2, "skipped", None),
            (3, "succeeded", "row-00003.mp4")]
        archive = client.download_batch_archive(batch.id, folder / "batch.zip")
        with zipfile.ZipFile(archive) as zf:
            assert zf.namelist() == ["row-00001.mp4", "row-00003.mp4", "manifest.csv"]
            (folder / "one.mp4").write_bytes(zf.read("row-00001.mp4"))
        info = probe.probe(folder / "one.mp4", count_frames=True)
        assert info.video is not None and info.video.frames == 24

        with pytest.raises(framefarm.client.Conflict):
            client.retry_batch(batch.id)  # nothing failed
        with pytest.raises(framefarm.client.Conflict):
            client.cancel_batch(batch.id)  # nothing left to cancel


def test_refused_rows_and_other_tenants(server: Server, tenant_key: str) -> None:
    response = server.post("/v1/admin/tenants", json={"name": "someone-else"})
    other_key = str(response.json()["api_key"])
    with framefarm.Client(server.url, tenant_key) as client:
        template = client.create_template("card", TEMPLATE)
        with pytest.raises(framefarm.client.Invalid) as caught:
            client.create_batch(template.id, rows=[{"name": "a"}, {"price": 2}],
                                mode="refuse")
        assert caught.value.code == "invalid_rows"
        assert caught.value.details == [{"row": 2, "field": "name", "message":
                                         "row 2, name: required, but no value is given"}]
        batch = client.create_batch(template.id, rows=[{"name": "a"}], idempotency_key="k")
        again = client.create_batch(template.id, rows=[{"name": "b"}], idempotency_key="k")
        assert again.id == batch.id
        with pytest.raises(ValueError):
            client.create_batch(template.id)
    with framefarm.Client(server.url, other_key) as other:
        with pytest.raises(framefarm.client.NotFound):
            other.batch(batch.id)
        with pytest.raises(framefarm.client.NotFound):
            other.wait_batch(batch.id)


def test_framefarm_batch_on_a_server_uploads_what_rows_use_and_downloads_each_row(
        server: Server, tenant_key: str, folder: Path) -> None:
    """`framefarm batch ... --server URL` as a subprocess: a photo per row uploaded with
    the template, a bad row reported, every good row's video in the folder."""
    import subprocess
    import sys

    from support.media import write_photo
    from support.server import clean_env

    (folder / "photos").mkdir()
    write_photo(folder / "photos" / "ann.jpg", "#c03030")
    write_photo(folder / "photos" / "cy.jpg", "#3050c0")
    template = folder / "card.json"
    template.write_text(json.dumps({
        "output": {"width": 64, "height": 36, "fps": 24, "quality": "draft"},
        "variables": {"name": {"type": "text", "required": True},
                      "photo": {"type": "image", "required": True}},
        "scenes": [{"duration": 1, "layers": [
            {"type": "image", "src": "{{photo}}"},
            {"type": "text", "text": "{{name}}", "position": "center"}]}]}))
    table = folder / "rows.csv"
    table.write_text("name,photo\nAnn,photos/ann.jpg\nBob,photos/nobody.jpg\n"
                     "Cy,photos/cy.jpg\n", encoding="utf-8")
    out = folder / "videos"
    done = subprocess.run(
        [sys.executable, "-m", "framefarm", "batch", str(template), str(table), "-o", str(out),
         "--server", server.url, "-q"], env=clean_env(API_KEY=tenant_key),
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 2, done.stderr + done.stdout  # a row's data was at fault
    assert "2 rendered" in done.stdout and "1 skipped" in done.stdout, done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["manifest.csv", "row-00001.mp4",
                                                     "row-00003.mp4"]
    for name in ("row-00001.mp4", "row-00003.mp4"):
        info = probe.probe(out / name, count_frames=True)
        assert info.video is not None and info.video.frames == 24
    manifest = (out / "manifest.csv").read_text().splitlines()
    assert manifest[0] == "row,file,state,error"
    assert manifest[2].startswith("2,,skipped,") and "nobody.jpg" in manifest[2]

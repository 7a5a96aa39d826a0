"""A spoken voice-over through the render service: the server speaks it at submit and
ships the audio with the job, so nodes without espeak-ng render exactly that speech (in
two chunks and an audio task) and the captions start where the delivered file's speech
does."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framefarm import engine
from framefarm import media as probe
from framefarm.repos import jobs
from framefarm.speech import resolve
from support.api import bearer, wait_job
from support.ci import skip_or_fail
from support.farm import Farm, clear_framefarm_env
from support.media import decode_audio

pytestmark = pytest.mark.ffmpeg

TEXT = "Hello from the farm. Every node hears the same voice, and reads the same captions."


def test_nodes_render_the_speech_the_server_made(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("espeak-ng") is None:
        skip_or_fail("espeak-ng is not installed (apt-get install espeak-ng)")
    from test_speech_render import ONSET_TOLERANCE, onsets  # the same detector as the engine tests

    clear_framefarm_env(monkeypatch)
    monkeypatch.setenv("FRAMEFARM_SPEECH_CACHE", str(tmp_path / "server-cache"))
    farm = Farm.open("sqlite", tmp_path / "farm", lease_seconds=10.0, heartbeat_seconds=0.2,
                     retry_backoff_seconds=0.0, public_url="http://testserver",
                     min_chunk_seconds=0.5)
    try:
        key = farm.tenant("acme")
        doc = {"output": {"width": 320, "height": 180, "fps": 25, "quality": "draft"},
               "scenes": [{"duration": "auto", "voiceover": {"text": TEXT},
                           "captions": {"from": "voiceover"}}]}
        farm.start_nodes(2)  # two nodes seen at submit: the plan has chunks
        farm.stop_nodes()
        job = farm.submit(key, {"document": doc})
        stored = farm.svc.renders.job(None, job["id"])
        bundled = sorted(n for n in stored.assets if n.startswith(resolve.BUNDLE_DIR + "/"))
        assert [Path(n).suffix for n in bundled] == [".json", ".wav"]

        local = engine.load_timeline(doc, base_dir=tmp_path)
        middle = round((local.project.cues[0][1].start + 0.2) * local.fps)
        expected = tmp_path / "local.png"
        engine.snapshot(local, expected, frame=middle)
        # A snapshot job (the other path through the server's submit) gets the bundle too.
        queued = farm.client.post("/v1/snapshots", json={"document": doc, "frame": middle,
                                                         "wait": 0}, headers=bearer(key))
        assert queued.status_code == 202, queued.text
        snapshot_job = queued.json()["job_id"]

        # The nodes cannot speak: no espeak-ng, an empty cache. They must use the bundle.
        monkeypatch.setenv("FRAMEFARM_ESPEAK", str(tmp_path / "no" / "espeak-ng"))
        monkeypatch.setenv("FRAMEFARM_SPEECH_CACHE", str(tmp_path / "node-cache"))
        farm.start_nodes(2)
        done = wait_job(farm.client, key, job["id"], timeout=120)
        assert done["state"] == "succeeded", done
        assert done["frames"]["total"] == job["frames"]["total"]
        with farm.svc.ctx.db.read() as conn:
            kinds = sorted(t.kind for t in jobs.tasks_of(conn, [job["id"]])[job["id"]])
        assert kinds[:2] == ["assemble", "audio"] and kinds.count("render") >= 2, kinds

        export = done["export"]
        out = tmp_path / "farm.mp4"
        response = farm.client.get(f"/v1/exports/{export['id']}/file", headers=bearer(key))
        assert response.status_code == 200
        out.write_bytes(response.content)
        info = probe.probe(out, count_frames=True)
        assert info.video is not None and info.video.frames == done["frames"]["total"]

        speech_json = next(n for n in bundled if n.endswith(".json"))
        blob = farm.svc.ctx.storage.local_path(f"assets/{stored.assets[speech_json]}")
        phrases = json.loads(blob.read_text(encoding="utf-8"))["phrases"]
        pcm, rate = decode_audio(out)
        heard = onsets(pcm.mean(axis=0), rate)
        assert len(heard) == len(phrases) == 3, heard
        assert max(abs(h - p["start"]) for h, p in zip(heard, phrases, strict=True)) \
            <= ONSET_TOLERANCE
        wait_job(farm.client, key, snapshot_job, timeout=60)
        shot = farm.client.get(f"/v1/snapshots/{snapshot_job}", headers=bearer(key))
        assert shot.status_code == 200, shot.text
        got = np.asarray(Image.open(io.BytesIO(shot.content)).convert("RGB"))
        assert np.array_equal(got, np.asarray(Image.open(expected).convert("RGB")))
        assert got[120:, :, :].max() > 200  # the caption is there, at the bottom
        assert not (tmp_path / "node-cache").exists()
    finally:
        farm.close()

"""``framefarm compositions``, ``render`` and ``snapshot`` on a Remotion project: the
same options, progress and exit codes as for documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from framefarm import media
from framefarm.cli import app
from framefarm.engines.remotion import project

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "remotion-card"

pytestmark = pytest.mark.ffmpeg


@pytest.fixture
def env(prepared: project.Prepared, remotion_cache: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMEFARM_REMOTION_CACHE", str(remotion_cache))


def test_compositions_command(env: None) -> None:
    result = CliRunner().invoke(app, ["compositions", str(EXAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    [card] = json.loads(result.stdout)
    assert card["id"] == "Card" and card["durationInFrames"] == 120 and card["schema"] is True


def test_render_with_props_in_chunks(env: None, tmp_path: Path) -> None:
    data = tmp_path / "props.json"
    data.write_text(json.dumps({"title": "From a file", "items": [{"label": "One",
                                                                   "value": 1}]}))
    out = tmp_path / "card.webm"
    result = CliRunner().invoke(app, ["render", str(EXAMPLE), "--composition", "Card",
                                      "--data", str(data), "--frames", "0-12", "--chunks",
                                      "2", "--size", "360p", "--quality", "draft", "-q",
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "640x360 30 fps  0.40 s  12 frames" in result.stdout
    info = media.probe(out, count_frames=True)
    assert info.video is not None and info.video.frames == 12
    assert info.audio is not None


def test_snapshot_command(env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a relative output: Node.js runs from another folder
    out = tmp_path / "frame.jpg"
    result = CliRunner().invoke(app, ["snapshot", str(EXAMPLE), "--composition", "Card",
                                      "--at", "1.5", "--size", "360p", "--props",
                                      '{"title": "Snap"}', "-o", "frame.jpg"])
    assert result.exit_code == 0, result.output
    assert "(frame 45)" in result.stdout
    assert out.read_bytes()[:2] == b"\xff\xd8"


@pytest.mark.parametrize(("args", "message"), [
    (["--composition", "Nope"], "unknown composition 'Nope' (available: Card)"),
    (["--composition", "Card", "--props", '{"items": [{"label": "a", "value": -1}]}'],
     "items.0.value: Too small"),
    (["--composition", "Card", "--props", "[1]"], "--props: expected a JSON object"),
    (["--composition", "Card", "--fps", "25"], "runs at 30 fps"),
])
def test_invalid_input_exits_2_naming_the_cause(env: None, tmp_path: Path, args: list[str],
                                                message: str) -> None:
    result = CliRunner().invoke(app, ["render", str(EXAMPLE), *args, "-q",
                                      "-o", str(tmp_path / "x.mp4")])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert not (tmp_path / "x.mp4").exists()

"""Every example document renders (small and fast) to exactly the frames its timeline has."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from framefarm import engine
from framefarm import media as probe
from framefarm.document import loader
from support.ci import IN_CI, skip_or_fail

pytestmark = pytest.mark.ffmpeg

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
MEDIA_SCRIPT = ROOT / "scripts" / "make_example_media.py"

# (document, template data or None)
CASES = [
    ("slideshow.json", None),
    ("story.json", "story.data.json"),
    ("typography.json", None),
    ("social.json", None),
]
SMALL = {"size": "360p", "quality": "draft"}


@pytest.fixture(scope="session")
def example_media() -> Path:
    """Generate examples/media once per session (the script skips files it already made)."""
    if not MEDIA_SCRIPT.is_file():
        skip_or_fail(f"{MEDIA_SCRIPT.relative_to(ROOT)} is not there yet")
    proc = subprocess.run([sys.executable, str(MEDIA_SCRIPT.relative_to(ROOT)), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    return EXAMPLES / "media"


@pytest.mark.parametrize(("name", "data_name"), CASES, ids=[c[0] for c in CASES])
def test_example_renders_to_its_timeline(
    name: str, data_name: str | None, example_media: Path, tmp_path: Path
) -> None:
    path = EXAMPLES / name
    if not path.is_file():
        skip_or_fail(f"examples/{name} is not written yet")
    data = None
    if data_name is not None:
        data_path = EXAMPLES / data_name
        if not data_path.is_file() and not IN_CI:
            pytest.skip(f"examples/{data_name} is not written yet")
        data = loader.read_json(data_path, what="data file")

    tl = engine.load_timeline(path, data=data, **SMALL)
    fmt = tl.output.format
    assert tl.height == 360 or tl.width == 360  # the short side of 360p
    out = tmp_path / f"{path.stem}.{fmt}"
    result = engine.render(path, out, data=data, **SMALL)
    assert out.is_file()
    assert (result.width, result.height, result.fps) == (tl.width, tl.height, tl.fps)
    if fmt == "png":
        assert result.frames == 1
        return
    assert result.frames == tl.total_frames

    info = probe.probe(out, count_frames=True)
    assert info.video is not None
    assert (info.video.width, info.video.height) == (tl.width, tl.height)
    assert info.video.frames == tl.total_frames
    assert abs(info.duration - tl.duration) <= 1 / tl.fps
    if fmt != "gif":
        assert info.video.fps == pytest.approx(tl.fps)
        assert info.audio is not None
        assert abs(info.audio.duration - tl.duration) <= 0.05
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]

"""The Remotion engine's suite: the example project (examples/remotion-card) installed
from the npm registry with ``npm ci`` and bundled once, into a cache that outlives the
session (pytest's cache folder; the engine keys dependencies by the lockfile's hash and
bundles by the content hash, so a changed example installs or bundles again by itself).

Node.js, npm and Chromium are needed: without them the tests skip, and under CI=true
they fail."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from framefarm.engines.remotion import RemotionEngine, process, project
from support.ci import skip_or_fail

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "remotion-card"


@pytest.fixture(scope="session")
def tools() -> None:
    missing = process.missing_tools()
    if missing:
        skip_or_fail("the Remotion engine needs " + "; ".join(missing))


@pytest.fixture(scope="session")
def remotion_cache(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    if cache is None:
        return tmp_path_factory.mktemp("framefarm-remotion")
    return Path(cache.mkdir("framefarm-remotion"))


@pytest.fixture(scope="session")
def prepared(tools: None, remotion_cache: Path) -> project.Prepared:
    """The example, installed and bundled (once; later sessions find both cached)."""
    return project.prepare(EXAMPLE, remotion_cache)


@pytest.fixture(scope="session")
def remotion(prepared: project.Prepared, remotion_cache: Path) -> RemotionEngine:
    return RemotionEngine(remotion_cache)


@pytest.fixture
def example_copy(tmp_path: Path) -> Iterator[Path]:
    """A copy of the example's own files (no node_modules) to break on purpose."""
    target = tmp_path / "card"
    target.mkdir()
    for name in project.files(EXAMPLE):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(EXAMPLE / name, target / name)
    yield target

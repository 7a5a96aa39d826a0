"""The Remotion engine's suite: the example project (examples/remotion-card) installed
from the npm registry with ``npm ci`` and bundled once, into a cache that outlives the
session (pytest's cache folder; the engine keys dependencies by the lockfile's hash and
bundles by the content hash, so a changed example installs or bundles again by itself).

Node.js, npm and Chromium are needed: without them the tests skip, and under CI=true
they fail."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from framefarm.engines.remotion import RemotionEngine, process, project, sandbox
from support.ci import skip_or_fail
from support.farm import Farm, clear_framefarm_env

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "remotion-card"


def open_to_the_sandbox(folder: Path) -> Path:
    """pytest makes its temporary folders 0700; the sandbox's user (the engine drops to
    it when the tests run as root) must be able to enter a cache made inside one."""
    for parent in (folder, *folder.parents):
        if parent == Path(tempfile.gettempdir()) or parent == parent.parent:
            break
        os.chmod(parent, parent.stat().st_mode | 0o111)
    return folder


@pytest.fixture(autouse=True)
def _reachable_tmp_path(tmp_path: Path) -> None:
    open_to_the_sandbox(tmp_path)


# The suites that run the programs in the sandbox: its own checks, and the farm's nodes.
SANDBOXED = ("test_remotion_farm", "test_remotion_sandbox")


@pytest.fixture(autouse=True)
def _sandbox_where_it_is_tested(request: pytest.FixtureRequest,
                                monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The engine's own suites (rendering, its errors, the CLI) run Node.js and Chromium
    directly, as a developer rendering their own project does (FRAMEFARM_SANDBOX=off);
    the sandbox's suite and the farm's nodes run them in the sandbox (the default)."""
    module = request.module.__name__.rsplit(".", 1)[-1]
    monkeypatch.setenv("FRAMEFARM_SANDBOX", "auto" if module in SANDBOXED else "off")
    sandbox.base_policy.cache_clear()
    yield
    sandbox.base_policy.cache_clear()


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
        return open_to_the_sandbox(tmp_path_factory.mktemp("framefarm-remotion"))
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


@pytest.fixture
def make_farm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              prepared: project.Prepared) -> Iterator[Callable[..., Farm]]:
    """An in-process render service on SQLite (the queue is tested on both databases
    elsewhere); its nodes share the session's prepared example."""
    clear_framefarm_env(monkeypatch)
    farms: list[Farm] = []

    def make(**settings: Any) -> Farm:
        values = {"lease_seconds": 60.0, "heartbeat_seconds": 0.2,
                  "retry_backoff_seconds": 0.0, "public_url": "http://testserver",
                  "min_chunk_seconds": 1.0, **settings}
        farm = Farm.open("sqlite", tmp_path / f"farm{len(farms)}", **values)
        farms.append(farm)
        return farm

    yield make
    for farm in farms:
        farm.close()

"""What a node reports it can run: the engine names what this machine lacks, and a render
on a machine without it fails at once, saying so (never downloading a browser)."""

from __future__ import annotations

from pathlib import Path

import pytest

from framefarm import errors
from framefarm.engines import Source
from framefarm.engines.remotion import RemotionEngine
from framefarm.engines.remotion import errors as remotion_errors

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "remotion-card"


def test_a_machine_with_the_tools_can_run_the_engine(tools: None) -> None:
    assert RemotionEngine().available() == []


def test_a_missing_chromium_is_reported_and_refused(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMEFARM_CHROMIUM", str(tmp_path / "no-chromium"))
    engine = RemotionEngine(tmp_path / "cache")
    [problem] = [p for p in engine.available() if "Chromium" in p]
    assert str(tmp_path / "no-chromium") in problem
    with pytest.raises(remotion_errors.ToolMissing, match="Chromium") as caught:
        engine.describe(Source(EXAMPLE, "Card"))
    assert isinstance(caught.value, errors.RenderError)
    assert not (tmp_path / "cache" / "deps").exists()  # refused before installing anything


def test_a_missing_node_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no node or npm there
    monkeypatch.delenv("FRAMEFARM_NODE", raising=False)
    monkeypatch.delenv("FRAMEFARM_NPM", raising=False)
    problems = RemotionEngine(browser="/bin/sh").available()
    assert any("Node.js" in p for p in problems) and any("npm" in p for p in problems)

"""Each way a Remotion render goes wrong fails at once, with a message that names the
step and the cause: a TSX compile error, an unknown composition, props that fail the
schema, an npm install that cannot install the lockfile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framefarm import errors
from framefarm.engines import Settings, Source
from framefarm.engines.remotion import RemotionEngine, project
from framefarm.engines.remotion import errors as remotion_errors

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "remotion-card"


def test_an_unknown_composition_names_the_ones_there_are(remotion: RemotionEngine) -> None:
    with pytest.raises(remotion_errors.CompositionError) as caught:
        remotion.describe(Source(EXAMPLE, "Nope"))
    assert str(caught.value) == "unknown composition 'Nope' (available: Card)"
    assert caught.value.exit_code == 2
    assert caught.value.available == ["Card"]


def test_props_that_fail_the_schema_name_each_field(remotion: RemotionEngine,
                                                    tmp_path: Path) -> None:
    bad = {"title": "", "items": [{"label": "ok", "value": 10}, {"label": "x", "value": 500}]}
    with pytest.raises(remotion_errors.PropsError) as caught:
        remotion.render_range(Source(EXAMPLE, "Card", bad), (0, 3), tmp_path / "p.mp4",
                              Settings(scale=0.25))
    assert isinstance(caught.value, errors.DocumentError)
    text = str(caught.value)
    assert text.startswith("props invalid")
    assert "title: Too small" in text
    assert "items.1.value: Too big: expected number to be <=100" in text
    assert not (tmp_path / "p.mp4").exists()


def test_props_of_the_wrong_type_fail_too(remotion: RemotionEngine) -> None:
    with pytest.raises(remotion_errors.PropsError, match=r"accent: "):
        remotion.validate(Source(EXAMPLE, "Card", {"accent": 12}))


def test_a_tsx_compile_error_fails_the_bundle_with_file_and_line(
        example_copy: Path, remotion_cache: Path, prepared: project.Prepared) -> None:
    card = example_copy / "src" / "Card.tsx"
    lines = card.read_text().splitlines()
    lines.insert(20, "  const broken = ;")  # line 21: an expression missing
    card.write_text("\n".join(lines) + "\n")
    with pytest.raises(remotion_errors.BundleError) as caught:
        project.prepare(example_copy, remotion_cache)
    text = str(caught.value)
    assert text.startswith("bundle failed: ")
    assert 'src/Card.tsx:21:17: ERROR: Unexpected ";"' in text, text
    assert caught.value.exit_code == 2
    # Nothing half-made is left to be found as a bundle next time.
    key = project.content_hash(example_copy)
    assert not (remotion_cache / "builds" / key).exists()


def test_npm_ci_failing_says_so_with_npms_message(example_copy: Path, tmp_path: Path,
                                                  tools: None) -> None:
    package = json.loads((example_copy / "package.json").read_text())
    package["dependencies"]["zod"] = "3.0.0"  # not what the lockfile holds
    (example_copy / "package.json").write_text(json.dumps(package, indent=2))
    with pytest.raises(remotion_errors.InstallError) as caught:
        project.prepare(example_copy, tmp_path / "cache")
    text = str(caught.value)
    assert text.startswith("npm install failed: ")
    assert "in sync" in text and "lock" in text, text
    assert caught.value.exit_code == 2
    assert not list((tmp_path / "cache" / "deps").glob("*/node_modules"))


def test_a_folder_without_a_lockfile_is_refused_before_npm(example_copy: Path,
                                                           tmp_path: Path) -> None:
    (example_copy / "package-lock.json").unlink()
    with pytest.raises(remotion_errors.ProjectError, match=r"package-lock\.json is missing"):
        project.prepare(example_copy, tmp_path / "cache")


def test_links_in_the_project_are_refused(example_copy: Path, tmp_path: Path) -> None:
    (example_copy / "src" / "secret.txt").symlink_to("/etc/hostname")
    with pytest.raises(remotion_errors.ProjectError, match="links are not allowed"):
        project.prepare(example_copy, tmp_path / "cache")


def test_props_of_a_composition_without_a_schema_are_checked_against_its_defaults(
        example_copy: Path, remotion_cache: Path, prepared: project.Prepared) -> None:
    root = example_copy / "src" / "Root.tsx"
    root.write_text(root.read_text().replace("    <Composition\n", """    <>
    <Composition
      id="Plain"
      component={Card}
      width={640}
      height={360}
      fps={25}
      durationInFrames={50}
      defaultProps={{title: 'Plain', image: 'badge.png', items: [], music: null,
        accent: '#336699'}}
    />
    <Composition
""", 1).replace("    />\n  );", "    />\n    </>\n  );"))
    engine = RemotionEngine(remotion_cache)
    listed = {c.id: c for c in engine.compositions(example_copy)}
    assert listed["Plain"].has_schema is False and listed["Card"].has_schema is True
    assert (listed["Plain"].width, listed["Plain"].fps, listed["Plain"].frames) == (640, 25, 50)
    ok = engine.validate(Source(example_copy, "Plain", {"title": "Fine"}))
    assert ok.props["title"] == "Fine"
    with pytest.raises(remotion_errors.PropsError) as caught:
        engine.validate(Source(example_copy, "Plain", {"title": 5, "colour": "red"}))
    assert caught.value.problems == [
        "title: expected string, got number",
        "colour: not a prop of the composition (it has accent, image, items, music, title)"]

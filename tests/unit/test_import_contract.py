"""The layers of docs/architecture.md, held true: each rule names a part of the package
and what it may not import. Read from the source (AST), so nothing is imported to check."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import framefarm

PACKAGE = Path(framefarm.__file__).parent
ENGINE = ("framefarm.engine", "framefarm.document", "framefarm.compiler",
          "framefarm.compositor", "framefarm.ffmpeg", "framefarm.media", "framefarm.formats",
          "framefarm.chunks", "framefarm.speech", "framefarm.engines", "framefarm.batch")
SERVICE = ("framefarm.api", "framefarm.application", "framefarm.repos", "framefarm.queue",
           "framefarm.db", "framefarm.worker", "framefarm.storage", "framefarm.serve",
           "framefarm.webhooks", "framefarm.settings", "framefarm.records",
           "framefarm.studio")
RULES: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    # (what, modules it covers, what they may not import)
    ("routes never reach the data layer", ("framefarm.api",),
     ("framefarm.repos", "framefarm.db", "framefarm.application.queue", "sqlalchemy")),
    ("the application layer knows no web framework", ("framefarm.application",),
     ("fastapi", "starlette", "uvicorn", "framefarm.api")),
    ("only repositories (and migrations) write SQL against the tables",
     ("framefarm.api", "framefarm.application", "framefarm.queue", "framefarm.worker"),
     ("framefarm.db.schema",)),
    ("repositories serve, they do not orchestrate", ("framefarm.repos",),
     ("framefarm.api", "framefarm.application", "framefarm.application.queue")),
    ("the state machine imports nothing above it", ("framefarm.queue",),
     ("framefarm.api", "framefarm.application", "framefarm.repos", "framefarm.db",
      "sqlalchemy")),
    ("the engine imports nothing from the service", ENGINE, SERVICE),
    ("document/ imports nothing above it", ("framefarm.document",),
     (*SERVICE, "framefarm.engine", "framefarm.compiler", "framefarm.compositor",
      "framefarm.ffmpeg")),
    ("nodes speak only the protocol", ("framefarm.worker",),
     ("framefarm.api", "framefarm.application", "framefarm.repos", "framefarm.db",
      "framefarm.queue", "framefarm.storage", "sqlalchemy")),
    ("the protocol is shared vocabulary", ("framefarm.protocol",), ("framefarm",)),
    ("the client speaks only the API's models", ("framefarm.client",),
     (*(m for m in SERVICE if m != "framefarm.api"), *ENGINE, "framefarm.api.app",
      "framefarm.api.deps", "framefarm.api.errors", "fastapi", "starlette", "uvicorn",
      "sqlalchemy")),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def inside(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(rule: tuple[str, tuple[str, ...], tuple[str, ...]],
               root: Path = PACKAGE) -> list[str]:
    _, covered, forbidden = rule
    found = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(path)
        if not inside(name, covered) or "migrations" in path.parts:
            continue
        found += [f"{name} imports {target}" for target in sorted(imports(path))
                  if inside(target, forbidden)]
    return found


@pytest.mark.parametrize("rule", RULES, ids=[r[0] for r in RULES])
def test_layers(rule: tuple[str, tuple[str, ...], tuple[str, ...]]) -> None:
    assert violations(rule) == [], rule[0]


def test_every_module_is_covered_by_a_layer() -> None:
    """A new top-level module must be placed in the map (and here) on purpose."""
    placed = (*ENGINE, *SERVICE, "framefarm.protocol", "framefarm.errors", "framefarm.limits",
              "framefarm.clock", "framefarm.logs", "framefarm.cli", "framefarm.cli_remotion",
              "framefarm.cli_batch", "framefarm.cli_admin", "framefarm.__main__",
              "framefarm.client")
    # The package itself is only its __init__: "framefarm" as a prefix would place all.
    loose = [name for name in map(module_name, PACKAGE.rglob("*.py"))
             if name != "framefarm" and not inside(name, placed)]
    assert loose == []


def test_a_route_importing_a_repository_is_caught(tmp_path: Path) -> None:
    """The check itself can fail: a route module that imports a repository is reported."""
    fake = tmp_path / "framefarm" / "api" / "bad.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("from framefarm.repos import jobs\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "framefarm"
    try:
        assert violations(RULES[0], PACKAGE) == [
            "framefarm.api.bad imports framefarm.repos",
            "framefarm.api.bad imports framefarm.repos.jobs"]
    finally:
        PACKAGE = saved

"""A Remotion project on disk, and its preparation: dependencies installed once per
lockfile, the bundle made once per content hash, both kept in a cache folder.

A project is a folder with ``package.json``, ``package-lock.json`` and ``src/`` holding the
entry point that calls ``registerRoot`` (``src/index.ts`` by default). Its content hash
covers the lockfile, package.json and every file under ``src/`` and ``public/`` (and the
root's config files), so a changed file means a new bundle and a changed lockfile new
dependencies::

    CACHE/deps/<lockfile hash>/       package.json, package-lock.json, node_modules/
    CACHE/builds/<content hash>/      source/ (a copy of the project, node_modules linked
                                      to the deps), bundle/ (Remotion's bundle: the
                                      serve URL every chunk, audio and snapshot uses)

Each is built in a temporary folder and renamed into place under a file lock, so nodes
(or chunks) preparing the same project at once do the work once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from framefarm.engines.remotion import errors as remotion_errors
from framefarm.engines.remotion import process, sandbox

ENTRY_POINTS = ("src/index.ts", "src/index.tsx", "src/index.js", "src/index.jsx")
_ROOT_FILES = (".json", ".ts", ".tsx", ".js", ".mjs", ".cjs")  # config files at the root
_SKIPPED = {"node_modules", ".git", "out", "build", "dist", ".cache"}
# Bounds on what is hashed and copied: a project is source code and a few media files.
MAX_FILES = 5000
MAX_BYTES = 500 * 1024 * 1024


def is_project(path: Path) -> bool:
    """A folder with a package.json: what the CLI treats as a Remotion project."""
    return path.is_dir() and (path / "package.json").is_file()


def entry_point(project: Path) -> Path:
    for name in ENTRY_POINTS:
        if (project / name).is_file():
            return project / name
    raise remotion_errors.ProjectError(
        f"{project}: no entry point; Remotion's root file is one of {', '.join(ENTRY_POINTS)} "
        "(it calls registerRoot)")


def check(project: Path) -> None:
    """Refuse a folder that is not a project framefarm can prepare, saying what is missing."""
    project = Path(project)
    if not project.is_dir():
        raise remotion_errors.ProjectError(f"{project}: not a folder")
    problems = []
    if not (project / "package.json").is_file():
        problems.append("package.json is missing")
    if not (project / "package-lock.json").is_file():
        problems.append("package-lock.json is missing: framefarm installs exactly the "
                        "lockfile's versions (run `npm install` once and keep the lockfile)")
    if problems:
        raise remotion_errors.ProjectError(f"{project}: {'; '.join(problems)}", problems)
    try:
        json.loads((project / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise remotion_errors.ProjectError(f"{project}/package.json: not valid JSON ({exc})") \
            from None
    entry_point(project)


def files(project: Path) -> list[Path]:
    """The files that make the project (relative paths, sorted): package.json, the
    lockfile, the root's config files, everything under src/ and public/. Links and files
    outside the folder are refused."""
    found: list[Path] = []
    total = 0
    root = project.resolve()
    for name in sorted(os.listdir(project)):
        path = project / name
        if path.is_symlink():
            continue  # a link at the root (node_modules often is one) is not the project's
        if path.is_file() and (name.endswith(_ROOT_FILES) or name in ("package.json",)):
            found.append(Path(name))
    for folder in ("src", "public"):
        base = project / folder
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED)
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if path.is_symlink():
                    raise remotion_errors.ProjectError(
                        f"{path.relative_to(project)}: links are not allowed in a project")
                if not path.resolve().is_relative_to(root):
                    raise remotion_errors.ProjectError(f"{path}: outside the project")
                total += path.stat().st_size
                found.append(path.relative_to(project))
                if len(found) > MAX_FILES or total > MAX_BYTES:
                    raise remotion_errors.ProjectError(
                        f"{project}: more than {MAX_FILES} files or {MAX_BYTES >> 20} MiB in "
                        "src/ and public/")
    return found


def _digest(project: Path, names: list[Path]) -> str:
    sha = hashlib.sha256()
    for name in names:
        sha.update(str(name).encode() + b"\0")
        with (project / name).open("rb") as stream:
            sha.update(hashlib.file_digest(stream, "sha256").digest())
    return sha.hexdigest()


def lock_hash(project: Path) -> str:
    """What the installed dependencies depend on: package.json and the lockfile."""
    return _digest(project, [Path("package.json"), Path("package-lock.json")])


def content_hash(project: Path) -> str:
    """The project version: every file of :func:`files`."""
    return _digest(project, files(project))


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A project ready to render: ``source`` (a copy with its dependencies) and
    ``bundle`` (the serve URL), both immutable once made."""

    project: Path
    content_hash: str
    source: Path
    bundle: Path
    entry: Path
    timings: dict[str, float]  # seconds the steps took here; 0.0: found in the cache


def default_cache() -> Path:
    """``FRAMEFARM_REMOTION_CACHE``, else the user's cache folder (root's: under
    /var/cache, which the sandbox's user can enter)."""
    if os.environ.get("FRAMEFARM_REMOTION_CACHE"):
        return Path(os.environ["FRAMEFARM_REMOTION_CACHE"])
    if os.geteuid() == 0:  # root's home is closed to the sandbox's user
        return Path("/var/cache/framefarm/remotion")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "framefarm" / "remotion"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install(project: Path, cache: Path, *, timeout: float | None = None,
            cancel: threading.Event | None = None) -> tuple[Path, float]:
    """The project's node_modules, installed by ``npm ci`` once per lockfile; returns it
    and the seconds the install took (0.0 when it was cached)."""
    key = lock_hash(project)
    target = cache / "deps" / key
    with _locked(cache / "deps" / f"{key}.lock"):
        if (target / "node_modules").is_dir():
            return target / "node_modules", 0.0
        began = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=cache / "deps"))
        try:
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(project / name, work / name)
            process.npm_ci(work, timeout=timeout, cancel=cancel)
            os.replace(work, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return target / "node_modules", time.monotonic() - began


def owner_number(cache: Path | str, owner: str) -> int:
    """This machine's number for ``owner`` (a tenant), the same for every node sharing the
    cache: what its sandbox user is made of (:func:`sandbox.owned_by`). Kept in the
    cache, readable by the node alone."""
    cache = Path(cache)
    registry = cache / "owners.json"
    with _locked(cache / "owners.lock"):
        known: dict[str, int] = {}
        if registry.exists():  # a damaged registry is an error, never renumbered owners
            known = json.loads(registry.read_text(encoding="utf-8"))
        if owner not in known:
            known[owner] = max(known.values(), default=0) + 1
            part = registry.with_name(f".{registry.name}.part")
            part.write_text(json.dumps(known), encoding="utf-8")
            os.chmod(part, 0o600)
            os.replace(part, registry)
        return int(known[owner])


def prepare(project: Path | str, cache: Path | str | None = None, *,
            timeout: float | None = None, cancel: threading.Event | None = None) -> Prepared:
    """Install (once per lockfile) and bundle (once per content hash, and per owner
    inside :func:`sandbox.owned_by`) ``project``."""
    project = Path(project).resolve()
    check(project)
    cache = (Path(cache) if cache is not None else default_cache()).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    rules = sandbox.policy()
    rules.check_reachable(cache)
    names = files(project)
    key = _digest(project, names)
    entry = entry_point(project).relative_to(project)
    # An owner's build is its own (readable by its group alone), even of the same files.
    folder = hashlib.sha256(f"{rules.uid}:{key}".encode()).hexdigest() if rules.owned else key
    build = cache / "builds" / folder
    timings = {"install": 0.0, "bundle": 0.0}
    with _locked(cache / "builds" / f"{folder}.lock"):
        if (build / "bundle" / "index.html").is_file():
            return Prepared(project, key, build / "source", build / "bundle", entry, timings)
        modules, timings["install"] = install(project, cache, timeout=timeout, cancel=cancel)
        began = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix=f".{folder[:12]}-", dir=cache / "builds"))
        try:
            source = work / "source"
            for name in names:
                (source / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(project / name, source / name)
            (source / "node_modules").symlink_to(modules, target_is_directory=True)
            final_source = build / "source"
            # The bundle is made from where the source will stay, so any path Remotion
            # records in it is the final one: the work folder is renamed before bundling.
            os.replace(work, build)
            work = build
            rules.take_back(build)  # the node's, readable by the sandbox (the owner's)
            process.bridge("bundle", {"projectDir": str(final_source),
                                      "entryPoint": str(final_source / entry),
                                      "outDir": str(build / "bundle.part")},
                           cwd=final_source, timeout=timeout, cancel=cancel)
            os.replace(build / "bundle.part", build / "bundle")
            rules.take_back(build)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        timings["bundle"] = time.monotonic() - began
        return Prepared(project, key, build / "source", build / "bundle", entry, timings)

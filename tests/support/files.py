"""What a folder holds (to check that a render left nothing behind)."""

from __future__ import annotations

from pathlib import Path


def files_in(folder: Path) -> set[str]:
    """Names of everything in ``folder``, hidden entries included."""
    return {p.name for p in folder.iterdir()}
